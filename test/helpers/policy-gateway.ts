// Test helper: a DataPlane in this process, built from YAML text (with expression checks), listening on 127.0.0.1:0.
import { formatProblems } from '../../src/model/load-config.ts';
import { parseCheckedConfig } from '../../src/policy/load-checked.ts';
import { DataPlane } from '../../src/app/data-plane.ts';
import type { PolicyServices } from '../../src/proxy/policy-pipeline.ts';

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
