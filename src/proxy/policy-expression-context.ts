// The expression context of one request: PolicyContext seen through the engine's ExpressionSource (read lazily, per evaluation).
import { buildExpressionContext, type ExpressionContext, type ExpressionSource } from '../policy/expression-context.ts';
import { formatScope } from '../model/subscription.ts';
import type { PolicyContext } from './policy-context.ts';
import { readableBody } from './policy-body.ts';

/** `{name}` segments of an operation template → their values in `path` (one segment each). */
export function templateParams(template: string, path: string): Map<string, string> {
  const out = new Map<string, string>();
  const t = template.split('/');
  const p = path.split('/');
  for (let i = 0; i < t.length && i < p.length; i++) {
    const m = /^\{([^}]+)\}$/.exec(t[i]);
    if (m) out.set(m[1], p[i]);
  }
  return out;
}

const EMPTY_VARS: ReadonlyMap<string, unknown> = new Map();

/** A view, not a copy: every evaluation sees the request as the policies before it left it. */
class Source implements ExpressionSource {
  readonly #pc: PolicyContext;
  constructor(pc: PolicyContext) {
    this.#pc = pc;
  }
  get method() {
    return this.#pc.req.method;
  }
  get path() {
    return this.#pc.req.path;
  }
  get queryString() {
    return this.#pc.req.query;
  }
  get headers() {
    return this.#pc.req.headers;
  }
  get clientIp() {
    return this.#pc.ex.clientIp;
  }
  matchedParameters(): ReadonlyMap<string, string> {
    return templateParams(this.#pc.facts?.urlTemplate ?? '', this.#pc.req.originalPath);
  }
  get originalPath() {
    return this.#pc.req.originalPath;
  }
  get originalQueryString() {
    return this.#pc.req.originalQuery;
  }
  requestBody() {
    // Decoded by the pipeline; a body in an encoding the gateway cannot decode fails (415) rather than read as garbage.
    const b = readableBody(this.#pc, false, 'expression');
    return b === null ? null : b.body.toString('utf8');
  }
  get response() {
    const r = this.#pc.res;
    if (r === null) return null;
    const pc = this.#pc;
    return {
      status: r.status,
      headers: r.headers,
      body: () => {
        const b = readableBody(pc, true, 'expression');
        return b === null ? null : b.body.toString('utf8');
      },
    };
  }
  get variables() {
    return this.#pc.variables.size === 0 ? EMPTY_VARS : this.#pc.variables;
  }
  get subscription() {
    const s = this.#pc.subscription;
    return s === null ? null : { id: s.id, name: s.name, scope: formatScope(s.scope) };
  }
  get product() {
    return this.#pc.product || null;
  }
  get api() {
    const f = this.#pc.facts;
    return { name: this.#pc.route.api, path: f?.apiPath ?? '', version: '' };
  }
  get operation() {
    const f = this.#pc.facts;
    return { id: this.#pc.route.operation, method: this.#pc.ex.method, urlTemplate: f?.urlTemplate ?? '' };
  }
  get claims() {
    return this.#pc.claims;
  }
  get lastError() {
    return this.#pc.lastError;
  }
  get requestId() {
    return this.#pc.ex.requestId;
  }
  get deployment() {
    return { region: '', gatewayId: this.#pc.facts?.gateway ?? '' };
  }
}

export function contextFor(pc: PolicyContext): ExpressionContext {
  return buildExpressionContext(new Source(pc));
}
