// `kind: AccessGrant`: an approved just-in-time AccessRequest as the nodes get it (the control plane writes these into
// snapshots; `lockgate access` is how people ask for and approve one).
import { report, type DocContext } from './doc-context.ts';
import { list, obj, str } from './field.ts';
import { checkAccessPath, checkServiceRef, checkUpperMethod } from './mesh-checks.ts';
import { checkName, checkNotEmpty } from './value-checks.ts';
import type { AccessGrantSpec } from './types.ts';

const checkTime = (v: string): string | undefined => (Number.isFinite(Date.parse(v)) && /^\d{4}-\d{2}-\d{2}T/.test(v) ? undefined : ('expected an RFC 3339 time, e.g. "2026-11-27T10:00:00Z"'));

export const accessGrantFields = obj(
  {
    request: str('The AccessRequest it comes from.', { required: true, check: checkNotEmpty }),
    user: str("The end user's subject (`sub`) it is for.", { required: true, check: checkNotEmpty }),
    target: obj(
      {
        service: str('A MeshService: "name" or "namespace/name".', { optional: true, check: checkServiceRef }),
        api: str('An Api, by name.', { optional: true, check: checkName }),
        operation: str("One of the Api's operations; all when unset.", { optional: true }),
      },
      'What it opens.',
      { required: true, oneOf: ['service', 'api'] },
    ),
    methods: list(str('Method', { check: checkUpperMethod }), 'Upper-case methods; empty = any.', { default: [] }),
    paths: list(str('Path', { check: checkAccessPath }), 'Exact paths or "/x/*" prefixes; empty = any.', { default: [] }),
    from: str('Start, RFC 3339.', { required: true, check: checkTime }),
    until: str('End (exclusive), RFC 3339.', { required: true, check: checkTime }),
    approvedBy: list(str('Approver'), 'Who approved it.', { default: [] }),
  },
  'An approved AccessRequest: the user may call the target with these methods and paths from `from` until `until`. Made by the control plane.',
);

/** Checks the window (the service is qualified with the document's namespace when the config is assembled). */
export function finishAccessGrant(spec: AccessGrantSpec, cx: DocContext): void {
  if (spec.from !== undefined && spec.until !== undefined && Date.parse(spec.until) <= Date.parse(spec.from)) report(cx, 'spec.until', 'until must be after from');
}
