// authentication-certificate: the request forward-request sends presents a client certificate to the backend (mutual TLS).
import { loadClientCertificate } from '../proxy/policy-http-client.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';

export const authenticationCertificatePolicy: PolicyFactory = (attrs, env) => {
  // Read and checked now (a missing file or a key that does not match is a config problem), then handed to the runtime,
  // which builds a copy of every backend the route can reach whose TLS connections carry it.
  const cert = loadClientCertificate({ certFile: String(attrs.certFile), keyFile: String(attrs.keyFile) }, env);
  const variantOf = env.backends.withClientCertificate({ certFile: cert.certFile, keyFile: cert.keyFile });
  return {
    name: 'authentication-certificate',
    path: env.entry.path,
    run(pc) {
      const next = variantOf(pc.cluster);
      // Every cluster the route can reach has a variant; none means a backend chosen some other way: fail rather than send without the certificate.
      if (next === undefined) throw Object.assign(new Error(`no client-certificate connection pool for backend ${JSON.stringify(pc.cluster.name)}`), { reason: 'ClientCertificateNotAvailable' });
      pc.cluster = next;
    },
  };
};
