// Integration and certificate policies: send-request, send-one-way-request, authentication-certificate, validate-client-certificate.
import { any, bool, dict, duration, list, obj, oneOf, size, str } from './field.ts';
import { ALL, type PolicyDef } from './policy-def.ts';

const clientCertificate = (what: string, o: { optional?: boolean } = {}) =>
  obj(
    {
      certFile: str('PEM certificate (chain) file, relative to the config file.', { required: true }),
      keyFile: str('PEM private key file (unencrypted), relative to the config file.', { required: true }),
    },
    what,
    o,
  );

/** The request both send policies build: API Management's set-url, set-method, set-header and set-body children as attributes. */
const outboundRequest = {
  mode: oneOf(['new', 'copy'], 'new: an empty request; copy: start from the current backend request (method, URL, headers, body).', { default: 'new' }),
  url: str('The URL (set-url); an expression when written @(…). Required with mode new; with copy the current backend URL.', { optional: true }),
  method: str('The method (set-method); an expression when written @(…).', { optional: true, defaultText: 'GET (mode new) or the current method (copy)' }),
  headers: dict(list(str('Value'), 'Values (each an expression when written @(…)); an empty list removes the header.'), 'Headers (set-header): name → values; they replace headers of the same name.', { default: {} }),
  body: any('Body (set-body): a string (an expression when written @(…)) or a JSON value whose strings may be @(…) expressions.', { optional: true }),
  timeout: duration('Most time for the whole call, response body included.', { default: 60_000, min: 1 }),
  authenticationCertificate: clientCertificate('A client certificate presented to the server (authentication-certificate inside send-request).', { optional: true }),
  caFile: str('PEM CA bundle that verifies https servers instead of the system roots, relative to the config file (Lockgate addition).', { optional: true }),
};

export const INTEGRATION_POLICIES: Record<string, PolicyDef> = {
  'send-request': {
    attrs: obj(
      {
        ...outboundRequest,
        responseVariableName: str('Variable that receives the response: context.Variables["name"].StatusCode, .Headers, .Body (and .Json for a JSON body); return-response can send it.', { required: true }),
        ignoreError: bool('A failed call (connection, timeout, body too large) leaves the variable null instead of jumping to onError.', false),
        maxResponseBodySize: size('Largest response body read, at most 64MiB (Lockgate addition); a larger one fails the call.', { default: 1024 * 1024, min: 1 }),
      },
      'Sends a request to a URL, waits for the response and stores it in a variable.',
    ),
    sections: ALL,
  },
  'send-one-way-request': {
    attrs: obj(outboundRequest, 'Sends a request to a URL without waiting for the response (fire and forget); failures are only logged.'),
    sections: ALL,
  },
  'authentication-certificate': {
    attrs: obj(
      {
        certFile: str('PEM certificate (chain) file, relative to the config file.', { required: true }),
        keyFile: str('PEM private key file (unencrypted), relative to the config file.', { required: true }),
      },
      'Presents a client certificate to the backend (mutual TLS) on the request forward-request sends.',
    ),
    sections: ['inbound'],
  },
  'validate-client-certificate': {
    attrs: obj(
      {
        validateRevocation: bool('Check revocation (CRL/OCSP). Not supported: true is refused at load (API Management\'s default is true).', false),
        validateTrust: bool('The certificate must chain to a CA of caFile.', true),
        caFile: str('PEM file of trusted CA certificates, relative to the config file (Lockgate addition; required with validateTrust).', { optional: true }),
        validateNotBefore: bool('Refuse a certificate that is not valid yet.', true),
        validateNotAfter: bool('Refuse an expired certificate.', true),
        ignoreError: bool('A failed validation goes on to the next policy instead of jumping to onError.', false),
        identities: list(
          obj(
            {
              thumbprint: str('SHA-1 thumbprint (hex; colons and case ignored).', { optional: true }),
              serialNumber: str('Serial number (hex).', { optional: true }),
              commonName: str('Subject common name (CN).', { optional: true }),
              subject: str('Subject distinguished name, e.g. "CN=client, O=Example" (attribute order ignored).', { optional: true }),
              dnsName: str('A DNS name of the subject alternative names.', { optional: true }),
              issuerSubject: str('Issuer distinguished name.', { optional: true }),
              issuerThumbprint: str('SHA-1 thumbprint of the issuing certificate (found in the client\'s chain or caFile).', { optional: true }),
            },
            'An identity: every claim given must match.',
          ),
          'Accepted identities (at most 10): the certificate must match at least one; none means any certificate passing the checks.',
          { default: [] },
        ),
      },
      'Validates the TLS client certificate of the request (trust, validity dates, identities); failure: 403.',
    ),
    sections: ['inbound'],
  },
};
