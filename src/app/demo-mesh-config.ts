// The mesh part of `lockgate up`'s config: orders and inventory in namespace shop, a canary split, deny by default.

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
# orders may read stock, nothing else: POST /shop/orders/1/cancel makes orders DELETE reservations, and that is denied.
apiVersion: lockgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: inventory-readers, namespace: shop }
spec:
  target: { service: inventory }
  allow:
    - sources: [orders]
      methods: [GET]
      paths: ["/stock/*"]
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
