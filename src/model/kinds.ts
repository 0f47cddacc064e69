// The table of document kinds: each kind's fields and its cross-field checks. Adding a kind is adding a row.
import { accessGrantFields, finishAccessGrant } from './access-grant-fields.ts';
import { apiFields } from './api-fields.ts';
import { apiPolicyFields } from './api-policy-fields.ts';
import { apiVersionSetFields } from './api-version-set-fields.ts';
import { backendFields } from './backend-fields.ts';
import type { DocContext } from './doc-context.ts';
import { dict, obj, oneOf, str } from './field.ts';
import type { ObjField } from './field.ts';
import { gatewayFields } from './gateway-fields.ts';
import { identityProviderFields } from './identity-provider-fields.ts';
import { accessPolicyFields, meshFields, meshRouteFields, meshServiceFields } from './mesh-fields.ts';
import type { AccessPolicySpec, MeshRouteSpec, MeshServiceSpec, MeshSpec } from './mesh-types.ts';
import { finishNamedValue, namedValueFields } from './named-value-fields.ts';
import type { NamedValueSpec } from './named-value-types.ts';
import { policyFragmentFields } from './policy-fragment-fields.ts';
import { productFields } from './product-fields.ts';
import { finishRoleBinding, roleBindingFields } from './role-binding-fields.ts';
import type { AccessGrantSpec, ApiPolicySpec, ApiSpec, BackendSpec, GatewaySpec, IdentityProviderSpec, PolicyFragmentSpec, RoleBindingSpec } from './types.ts';
import { finishApi } from './validate-api.ts';
import { finishApiPolicy, finishPolicyFragment } from './validate-api-policy.ts';
import { finishBackend } from './validate-backend.ts';
import { finishGateway } from './validate-gateway.ts';
import { finishIdentityProvider } from './validate-identity.ts';
import { finishAccessPolicy, finishGatewayMesh, finishMesh, finishMeshRoute, finishMeshService } from './validate-mesh.ts';
import { checkLabelKey, checkName } from './value-checks.ts';

export const API_VERSION = 'lockgate.dev/v1alpha1';

export interface KindDef {
  spec: ObjField;
  /** Whether a document of this kind may leave out `spec` (every field has a default). */
  specOptional: boolean;
  /** Derived defaults and checks across fields of one resource; mutates the decoded spec. */
  finish: (spec: never, cx: DocContext) => void;
}

export const KINDS: Record<string, KindDef> = {
  Gateway: {
    spec: gatewayFields,
    specOptional: true,
    finish: (s: GatewaySpec, cx) => {
      finishGateway(s, cx);
      finishGatewayMesh(s, cx);
    },
  },
  Api: { spec: apiFields, specOptional: false, finish: (s: ApiSpec, cx) => finishApi(s, cx) },
  Backend: { spec: backendFields, specOptional: false, finish: (s: BackendSpec, cx) => finishBackend(s, cx) },
  Product: { spec: productFields, specOptional: false, finish: () => {} },
  ApiVersionSet: { spec: apiVersionSetFields, specOptional: false, finish: () => {} },
  ApiPolicy: { spec: apiPolicyFields, specOptional: false, finish: (s: ApiPolicySpec, cx) => finishApiPolicy(s, cx) },
  PolicyFragment: { spec: policyFragmentFields, specOptional: false, finish: (s: PolicyFragmentSpec, cx) => finishPolicyFragment(s, cx) },
  Mesh: { spec: meshFields, specOptional: true, finish: (s: MeshSpec, cx) => finishMesh(s, cx) },
  MeshService: { spec: meshServiceFields, specOptional: true, finish: (s: MeshServiceSpec, cx) => finishMeshService(s, cx) },
  MeshRoute: { spec: meshRouteFields, specOptional: false, finish: (s: MeshRouteSpec, cx) => finishMeshRoute(s, cx) },
  AccessPolicy: { spec: accessPolicyFields, specOptional: false, finish: (s: AccessPolicySpec, cx) => finishAccessPolicy(s, cx) },
  NamedValue: { spec: namedValueFields, specOptional: false, finish: (s: NamedValueSpec, cx) => finishNamedValue(s, cx) },
  AccessGrant: { spec: accessGrantFields, specOptional: false, finish: (s: AccessGrantSpec, cx) => finishAccessGrant(s, cx) },
  IdentityProvider: { spec: identityProviderFields, specOptional: false, finish: (s: IdentityProviderSpec, cx) => finishIdentityProvider(s, cx) },
  RoleBinding: { spec: roleBindingFields, specOptional: false, finish: (s: RoleBindingSpec, cx) => finishRoleBinding(s, cx) },
};

export const metadataFields = obj(
  {
    name: str('Name, unique per kind and namespace: lower-case letters, digits and "-".', { required: true, check: checkName }),
    namespace: str('Namespace; references without one resolve in the same namespace.', { default: 'default', check: checkName }),
    labels: dict(str('Label value'), 'Free-form string labels.', { default: {}, keyCheck: checkLabelKey }),
  },
  'Identity of the resource.',
);

const documents = new Map<string, ObjField>();

/** The fields of a whole document of this kind: apiVersion, kind, metadata, spec. */
export function documentFields(kind: string): ObjField {
  let d = documents.get(kind);
  if (!d) {
    const def = KINDS[kind];
    d = obj(
      {
        apiVersion: oneOf([API_VERSION], 'Schema version.', { required: true }),
        kind: oneOf(Object.keys(KINDS), 'Resource kind.', { required: true }),
        metadata: { ...metadataFields, required: true },
        spec: { ...def.spec, required: !def.specOptional },
      },
      `A ${kind} document.`,
    );
    documents.set(kind, d);
  }
  return d;
}
