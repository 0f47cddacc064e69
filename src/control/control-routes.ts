// The contract between the control plane's HTTPS server and the modules that add routes to it (admin API, node API).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { AdminAccess, AdminAction } from './admin-access.ts';
import type { Person } from './access-requests.ts';

export type ControlRequest = IncomingMessage | Http2ServerRequest;
export type ControlResponse = ServerResponse | Http2ServerResponse;

/**
 * Who is calling, decided by the server before a handler runs:
 * - `admin`: someone at the admin API: the bootstrap token or the operator certificate (access: everything), an
 *   automation token (its role and scope), or a person signed in with an IdentityProvider (the roles RoleBindings
 *   give them, possibly none); routes check `access` for what they do;
 * - `node`: a client certificate issued by this mesh's CA (verified chain + one SPIFFE URI SAN);
 * - `anonymous`: neither (only routes with `auth: 'none'` see these, e.g. join with a one-time token).
 */
export type Caller =
  | { kind: 'admin'; subject: string; access: AdminAccess; via: 'token' | 'certificate' | 'person'; person?: Person; expiresAt?: number }
  | { kind: 'node'; spiffeId: string; namespace: string; service: string; certificateSerial: string; notAfter: number }
  | { kind: 'anonymous' };

export interface RouteContext {
  caller: Caller;
  /** Path parameters from `{name}` segments of the route's path. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The request id (also sent back as `x-request-id`). */
  requestId: string;
  /** Aborted when the client goes away or the server closes (long-lived streams end on it). */
  signal: AbortSignal;
}

export interface ControlRoute {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';
  /** `/v1/config/{kind}/{namespace}/{name}`: literal segments and `{param}` segments. */
  path: string;
  /** The least a caller must be; `admin` routes refuse nodes and vice versa. */
  auth: 'admin' | 'node' | 'none';
  /**
   * For an admin route about the whole installation (secrets, keys, the CA, backups, the audit log): the action the
   * caller needs over everything, checked by the server before the handler. Routes about namespaced things check in
   * the handler, where they know the namespace.
   */
  cluster?: AdminAction;
  handle: (req: ControlRequest, res: ControlResponse, cx: RouteContext) => Promise<void>;
}
