// The mesh part of `lockgate up`'s config (orders and inventory in namespace shop, a canary split, deny by default) and
// the identity part (the development IdentityProvider, /backoffice for signed-in staff).

/** The gateway's workload name: its identity is spiffe://lockgate.local/ns/default/sa/edge. */
export const DEMO_GATEWAY_SERVICE = 'edge';
export const DEMO_TRUST_DOMAIN = 'lockgate.local';

export const DEMO_MESH_CONFIG = `# The demo mesh: every call needs an AccessPolicy (defaultAccess: deny).
apiVersion: lockgate.dev/v1alpha1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${DEMO_TRUST_DOMAIN}, mtls: strict, defaultAccess: deny, certificateLifetime: 24h }
---
apiVersion: lockgate.dev/v1alpha1
kind: MeshService
metadata: { name: orders, namespace: shop }
spec:
  ports: [{ name: http, port: 80, protocol: http }]
---
apiVersion: lockgate.dev/v1alpha1
kind: MeshService
metadata: { name: inventory, namespace: shop }
spec:
  ports: [{ name: http, port: 80, protocol: http }]
  loadBalancing: { algorithm: round-robin }
---
# Canary: 90 % of calls to inventory go to v1, 10 % to v2 (smooth weighted round-robin: exactly 9 of every 10).
apiVersion: lockgate.dev/v1alpha1
kind: MeshRoute
metadata: { name: inventory-canary, namespace: shop }
spec:
  service: inventory
  rules:
    - backends:
        - { service: inventory, version: v1, weight: 90 }
        - { service: inventory, version: v2, weight: 10 }
---
# Only the edge gateway may call orders.
apiVersion: lockgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders-from-edge, namespace: shop }
spec:
  target: { service: orders }
  allow:
    - sources: ["spiffe://${DEMO_TRUST_DOMAIN}/ns/default/sa/${DEMO_GATEWAY_SERVICE}"]
---
# orders may read stock for anyone. Supplier records only for orders-admins: the end user behind the call, whom the
# gateway asserted (signed) and orders passed on; or for a person an orders-admin let in for a while (just-in-time
# access: lockgate access request / approve). Nothing else: POST /shop/orders/1/cancel makes orders DELETE
# reservations, and that is denied.
apiVersion: lockgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: inventory-readers, namespace: shop }
spec:
  target: { service: inventory }
  allow:
    - sources: [orders]
      methods: [GET]
      paths: ["/stock/*"]
    - sources: [orders]
      groups: [orders-admins]
      methods: [GET]
      paths: ["/suppliers/*"]
    - sources: [orders]
      grant: true
  requests: { approvers: [orders-admins], maxDuration: 1h }
`;

/** The edge's way into the mesh: /shop goes to the orders MeshService over mTLS with the gateway's own identity. */
export const DEMO_EDGE_MESH_CONFIG = `# The gateway calls orders inside the mesh (its traffic policy comes from the MeshService).
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: shop-orders }
spec: { type: mesh, meshService: shop/orders }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: shop }
spec:
  path: /shop
  backend: shop-orders
  stripPath: true
`;

/**
 * The identity part of the demo: the development OpenID provider `lockgate up` started, and /backoffice, the same orders
 * service for signed-in people, open to staff at the gateway (inventory's sidecar decides again, on the same person).
 */
export function demoIdentityConfig(issuer: string, clientId: string, audience: string, cliClientId = 'lockgate-cli'): string {
  return `# The development identity provider (users alice: orders-admins, bob: staff). Its JWT access tokens name the audience;
# \`lockgate login\` signs people in with its public CLI client (device-code flow).
apiVersion: lockgate.dev/v1alpha1
kind: IdentityProvider
metadata: { name: demo }
spec:
  issuer: ${issuer}
  clientId: ${clientId}
  cliClientId: ${cliClientId}
  scopes: [openid, email, profile, groups]
  audience: [${JSON.stringify(audience)}]
---
# Admin access for people: orders-admins administer namespace shop (config, join tokens, roles and tokens there);
# staff may look. Neither reaches the installation-wide routes (secrets, CA, keys, audit): those stay with the
# bootstrap token until a RoleBinding gives someone admin over "*".
apiVersion: lockgate.dev/v1alpha1
kind: RoleBinding
metadata: { name: shop-admins }
spec:
  role: admin
  provider: demo
  groups: [orders-admins]
  namespaces: [shop]
---
apiVersion: lockgate.dev/v1alpha1
kind: RoleBinding
metadata: { name: shop-viewers }
spec:
  role: viewer
  provider: demo
  groups: [staff]
  namespaces: [shop]
---
# /backoffice: orders again, for people with a bearer token from the demo provider (none: 401).
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: backoffice }
spec:
  path: /backoffice
  backend: shop-orders
  stripPath: true
  authentication: { providers: [demo] }
---
# The gateway lets staff and orders-admins in; what they may reach inside the mesh, each sidecar decides again.
apiVersion: lockgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: backoffice-staff }
spec:
  target: { api: backoffice }
  allow:
    - groups: [staff, orders-admins]
`;
}
