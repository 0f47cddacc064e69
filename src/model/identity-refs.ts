// The Api → IdentityProvider references (across documents): unknown names, shared issuers, login without a secret.
import { report } from './doc-context.ts';
import type { ParsedResource } from './parse-documents.ts';
import { didYouMean } from './suggest.ts';
import type { ApiAuthentication, ApiResource, IdentityProviderResource, IdentityProviderSpec, RoleBindingResource } from './types.ts';

function hasSecret(spec: IdentityProviderSpec): boolean {
  return spec.clientSecret !== undefined || spec.clientSecretFile !== undefined || spec.clientSecretEnv !== undefined;
}

/** A provider reference as written in an Api of `namespace`, qualified. */
export function qualifyProviderRef(ref: string, namespace: string): string {
  return ref.includes('/') ? ref : `${namespace}/${ref}`;
}

/** Checks each Api's (and operation's) provider references: unknown names, shared issuers, login without a secret. */
export function resolveIdentityRefs(apis: ParsedResource[], providers: ParsedResource[]): Map<string, IdentityProviderResource> {
  const byKey = new Map<string, IdentityProviderResource>();
  for (const p of providers) {
    const key = `${p.resource.metadata.namespace}/${p.resource.metadata.name}`;
    if (!byKey.has(key)) byKey.set(key, p.resource as IdentityProviderResource);
  }
  const check = (item: ParsedResource, auth: ApiAuthentication | undefined, at: string): void => {
    if (!auth || !Array.isArray(auth.providers)) return;
    const ns = item.resource.metadata.namespace;
    const issuers = new Map<string, string>();
    // Not rewritten in place: a kept Api's authentication is shared and frozen (parse-documents.ts); use qualifyProviderRef.
    auth.providers.forEach((ref, i) => {
      if (typeof ref !== 'string') return;
      const key = qualifyProviderRef(ref, ns);
      const found = byKey.get(key);
      if (!found) {
        const [rns, name] = key.split('/');
        const same = [...byKey.values()].filter((r) => r.metadata.namespace === rns).map((r) => r.metadata.name);
        report(item.cx, `${at}.providers[${i}]`, `IdentityProvider ${JSON.stringify(name)} not found in namespace ${JSON.stringify(rns)}${didYouMean(name, same)}`);
        return;
      }
      const iss = found.spec?.issuer;
      const other = typeof iss === 'string' ? issuers.get(iss) : undefined;
      if (other !== undefined) report(item.cx, `${at}.providers[${i}]`, `IdentityProviders "${other}" and "${key}" have the same issuer; tokens are told apart by issuer, so list one`);
      else if (typeof iss === 'string') issuers.set(iss, key);
      if (i === 0 && auth.login === true && found.spec && !hasSecret(found.spec)) {
        report(item.cx, `${at}.login`, `login uses IdentityProvider "${key}", which has no clientSecret (or clientSecretFile, clientSecretEnv)`);
      }
    });
    if (auth.login === true && auth.required === false) report(item.cx, `${at}.required`, 'login sends anonymous browsers to sign in, so it needs required: true');
  };
  for (const item of apis) {
    const spec = (item.resource as ApiResource).spec;
    if (!spec) continue;
    check(item, spec.authentication, 'spec.authentication');
    (spec.operations ?? []).forEach((op, i) => check(item, op?.authentication, `spec.operations[${i}].authentication`));
  }
  return byKey;
}

/** Checks each RoleBinding's provider reference (the provider must exist: a typo would silently bind nobody). */
export function resolveRoleBindingRefs(bindings: ParsedResource[], providers: Map<string, IdentityProviderResource>): RoleBindingResource[] {
  const out: RoleBindingResource[] = [];
  for (const item of bindings) {
    const b = item.resource as RoleBindingResource;
    out.push(b);
    const ref = b.spec?.provider;
    if (typeof ref !== 'string') continue;
    const key = qualifyProviderRef(ref, b.metadata.namespace);
    if (providers.has(key)) continue;
    const [rns, name] = key.split('/');
    const same = [...providers.values()].filter((r) => r.metadata.namespace === rns).map((r) => r.metadata.name);
    report(item.cx, 'spec.provider', `IdentityProvider ${JSON.stringify(name)} not found in namespace ${JSON.stringify(rns)}${didYouMean(name, same)}`);
  }
  return out;
}
