// The NamedValue kind's fields (API Management's named values, reference/apim.md §1.8): a value that config strings
// use as `{{name}}`, written in the document (plain), read from the node's environment, or kept as a control-plane secret.
import { int, obj, str } from './field.ts';
import type { DocContext } from './doc-context.ts';
import { report } from './doc-context.ts';
import type { NamedValueSpec } from './named-value-types.ts';
import { checkName } from './value-checks.ts';

/** API Management's limit on a named value's length. */
export const MAX_NAMED_VALUE_CHARS = 4096;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why a value cannot be substituted into config text (never quoting the value: it may be a secret). */
export function namedValueValueProblem(value: string): string | undefined {
  if (value.length === 0) return 'is empty';
  if (value.length > MAX_NAMED_VALUE_CHARS) return `is ${value.length} characters long; at most ${MAX_NAMED_VALUE_CHARS}`;
  // Substituted into header values and URLs: a line break or NUL there would split or end a field.
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) return 'holds a control character (a line break, NUL, …); only tab is allowed';
  return undefined;
}

export const namedValueFields = obj(
  {
    value: str('A plain value, substituted as written. Visible to anyone who can read the config: use `secret` or `env` for credentials.', { optional: true }),
    secret: str('The name of a secret kept by the control plane (`lockgate secrets set NAME`): the value reaches only the nodes that need it, over mTLS, and never appears in `/config`, `lockgate get` or logs.', { optional: true, check: checkName }),
    version: int('With `secret`: this version of the secret (default: the newest enabled version, so a `lockgate secrets set` reaches the nodes without a config change).', { optional: true, min: 1 }),
    env: str('An environment variable of the node process (standalone gateways: the secret is given to the process, not written in the file).', { optional: true, check: (v) => (ENV_NAME.test(v) ? undefined : `${JSON.stringify(v)} is not an environment variable name`) }),
    description: str('What the value is for.', { optional: true }),
  },
  'A named value: referenced as `{{name}}` (or `{{namespace/name}}`) in ApiPolicy and PolicyFragment attribute values, Backend and IdentityProvider fields; substituted on the node when the config is loaded, never inside `@(...)` expressions; a named value cannot reference another.',
  { oneOf: ['value', 'secret', 'env'] },
);

export function finishNamedValue(spec: NamedValueSpec, cx: DocContext): void {
  if (spec.version !== undefined && spec.secret === undefined) report(cx, 'spec.version', '`version` goes with `secret`', 'key');
  if (spec.value !== undefined) {
    const why = namedValueValueProblem(spec.value);
    if (why !== undefined) report(cx, 'spec.value', `the value ${why}`);
  }
}
