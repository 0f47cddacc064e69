// Test helper: a DataPlane in this process, built from YAML text (with expression checks), listening on 127.0.0.1:0.
import { formatProblems } from '../../src/model/load-config.ts';
import { parseCheckedConfig } from '../../src/policy/load-checked.ts';
import { DataPlane } from '../../src/app/data-plane.ts';
import type { PolicyServices } from '../../src/proxy/policy-pipeline.ts';
import { request } from 'undici';

export const GATEWAY = `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
`;

export interface PolicyGateway {
  url: string;
  plane: DataPlane;
  close(): Promise<void>;
}

/** Throws with every problem (file:line:col) when the config is invalid. */
export async function startPolicyGateway(yaml: string, services: PolicyServices = {}): Promise<PolicyGateway> {
  const loaded = parseCheckedConfig(yaml, 'test.yaml');
  if (!loaded.config) throw new Error(formatProblems(loaded.problems));
  const plane = new DataPlane(loaded.config, { accessLog: false, policyServices: services });
  const ports = await plane.listen();
  return {
    url: `http://127.0.0.1:${ports.http}`,
    plane,
    close: () => plane.drain(1000),
  };
}

/** Runs `fn` against a gateway built from `yaml`, closing it afterwards whatever happens. */
export async function withGateway(yaml: string, fn: (g: PolicyGateway) => Promise<void>, services: PolicyServices = {}): Promise<void> {
  const g = await startPolicyGateway(yaml, services);
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

/** One request; the body read as text (and JSON on demand). */
export async function call(url: string, opts: Parameters<typeof request>[1] = {}) {
  const r = await request(url, opts);
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text) };
}
