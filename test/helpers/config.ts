// Test helper: the smallest complete config — one Gateway (port 0, admin port 0), one Backend, one Api at `/`.

export interface SimpleConfig {
  upstreamPort: number;
  /** Extra lines for the Gateway spec, already indented by two spaces (e.g. `  limits: { maxBodySize: 1KiB }`). */
  gateway?: string;
}

export function simpleConfig(c: SimpleConfig): string {
  return `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
${c.gateway ?? ''}
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "http://127.0.0.1:${c.upstreamPort}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: api }
spec: { path: /, backend: up }
`;
}
