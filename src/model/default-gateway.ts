// The Gateway used when no config file defines one: one HTTP listener on 0.0.0.0:8080, every other field at its default.
import { defaultOf } from './field.ts';
import { gatewayFields } from './gateway-fields.ts';
import { API_VERSION } from './kinds.ts';
import type { GatewayResource, GatewaySpec } from './types.ts';

export function defaultGateway(): GatewayResource {
  return {
    apiVersion: API_VERSION,
    kind: 'Gateway',
    metadata: { name: 'default', namespace: 'default', labels: {} },
    spec: defaultOf(gatewayFields) as GatewaySpec,
  };
}
