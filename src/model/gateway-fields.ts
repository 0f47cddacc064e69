// The Gateway kind's fields, defaults and descriptions (the single source for decoding, docs and the JSON Schema).
import { checkSpiffeId } from './mesh-checks.ts';
import { bool, duration, int, list, num, obj, oneOf, size, str } from './field.ts';
import { checkBackendRef, checkBindAddress, checkCidr, checkHostPattern, checkHttpUrl, checkName, checkNotEmpty, unixSocketPath } from './value-checks.ts';
import type { Check } from './field.ts';

const checkTcpAddress: Check = (v) => (unixSocketPath(v) !== undefined ? 'a TCP address is needed here, not unix:' : checkBindAddress(v));

const tlsCertificate = obj(
  {
    certFile: str('PEM certificate chain file; a relative path resolves against the config file, and the file must exist.', {
      required: true,
      check: checkNotEmpty,
    }),
    keyFile: str('PEM private key file; resolved like certFile.', { required: true, check: checkNotEmpty }),
    hostnames: list(str('SNI name', { check: checkHostPattern }), 'SNI names this certificate serves; empty makes it the default certificate.', {
      default: [],
    }),
  },
  'A certificate with its key.',
);

const listenerTls = obj(
  {
    certificates: list(tlsCertificate, 'Certificates, chosen by SNI.', { required: true, minItems: 1 }),
    minVersion: oneOf(['TLSv1.2', 'TLSv1.3'], 'Oldest TLS version accepted.', { default: 'TLSv1.2' }),
    clientCertificate: oneOf(
      ['none', 'request', 'require'],
      'request: ask clients for a certificate (never required by the handshake; the validate-client-certificate policy decides per Api); require: mutual TLS, the handshake fails without a certificate that chains to clientCaFile.',
      { default: 'none' },
    ),
    clientCaFile: str('PEM bundle client certificates must chain to; needed by require. Relative paths resolve against the config file.', {
      optional: true,
      check: checkNotEmpty,
    }),
    plaintext: bool('Permissive mTLS: this TLS port also accepts plaintext HTTP (for migrating services into the mesh).'),
    generation: str('Opaque; a change makes the gateway reload the certificate files (rotation).', { optional: true }),
  },
  'TLS settings; required when protocol is https.',
  { optional: true },
);

export const DEFAULT_LISTENER = { name: 'http-8080', address: '0.0.0.0', port: 8080, protocol: 'http', proxyProtocol: 'off' };

const listener = obj(
  {
    name: str('Unique name within the Gateway.', { check: checkName, defaultText: '"<protocol>-<port>", e.g. "http-8080"' }),
    address: str(
      'Address to bind: an IP address or hostname, or "unix:/path" for a Unix domain socket (created with mode 0600 so only this user may connect; a stale socket file nobody answers on is replaced; one worker only).',
      { default: '0.0.0.0', check: checkBindAddress },
    ),
    port: int('TCP port; 0 lets the OS pick one. Ignored for a unix: address.', { required: true, min: 0, max: 65535 }),
    protocol: oneOf(
      ['http', 'https', 'h2'],
      'http: HTTP/1.1 in clear; https: TLS with ALPN (h2 and http/1.1); h2: HTTP/2 only (over TLS when tls is set, else cleartext prior knowledge).',
      { default: 'http' },
    ),
    tls: listenerTls,
    proxyProtocol: oneOf(['off', 'v1', 'v2', 'any'], 'Expect a PROXY protocol header before HTTP (only behind a load balancer that sends one).', {
      default: 'off',
    }),
  },
  'A socket the gateway accepts connections on.',
);

const http2 = obj(
  {
    maxConcurrentStreams: int('Streams a client may open at once on one connection.', { default: 100, min: 1 }),
    maxHeaderListSize: size('Largest decoded header list accepted.', { default: 16 * 1024, min: 1 }),
    maxResetsPerSecond: int('RST_STREAM frames per second before the connection is closed (rapid-reset defence).', {
      default: 100,
      min: 1,
    }),
  },
  "HTTP/2 limits. CONTINUATION floods are capped by Node's nghttp2 itself (at most 8 CONTINUATION frames per header block), not configurable here.",
);

const limits = obj(
  {
    maxConnections: int('Open client connections across all listeners.', { default: 10_000, min: 1 }),
    maxHeaderSize: size('Largest request header block.', { default: 16 * 1024, min: 1 }),
    maxHeaderCount: int('Most request header fields.', { default: 100, min: 1 }),
    maxBodySize: size('Largest request body; 413 beyond it.', { default: 10 * 1024 * 1024, min: 0 }),
    maxBufferedBody: size('Largest body a policy may buffer (a request body a policy reads: 413 beyond it; a response body an outbound policy reads: 502). Bodies no policy reads stream through whatever their size.', { default: 4 * 1024 * 1024, min: 0 }),
    maxUrlLength: size('Longest request target; 414 beyond it.', { default: 8 * 1024, min: 1 }),
    headerTimeout: duration('Time to receive the whole header block.', { default: 10_000, min: 1 }),
    requestTimeout: duration('Time to receive the whole request.', { default: 60_000, min: 1 }),
    idleTimeout: duration('Keep-alive idle timeout; above the 60 s of common load balancers so they close first.', {
      default: 75_000,
      min: 1,
    }),
    http2,
  },
  'Resource limits that protect the gateway from slow or abusive clients.',
);

export const gatewayFields = obj(
  {
    listeners: list(listener, 'Sockets to accept connections on.', { default: [DEFAULT_LISTENER], minItems: 1 }),
    limits,
    trustedProxies: list(str('CIDR', { check: checkCidr, format: 'cidr' }), 'Peers (CIDRs or addresses) whose X-Forwarded-* and x-request-id headers are trusted.', {
      default: [],
    }),
    maxHops: int('Most `Via` hops before answering 508 Loop Detected.', { default: 10, min: 1, max: 255 }),
    admin: obj(
      {
        address: str('Address of the local admin port.', { default: '127.0.0.1', check: checkTcpAddress }),
        port: int('Admin port.', { default: 9901, min: 0, max: 65535 }),
        enabled: bool('Serve the admin port.', true),
      },
      'Local admin endpoint (health, metrics, config).',
    ),
    accessLog: obj(
      {
        enabled: bool('Write access logs.', true),
        path: str('"stdout", "stderr", "off" or a file path (reopened on SIGUSR1 for log rotation).', { default: 'stdout', check: checkNotEmpty }),
        bufferLines: int('Capacity of each of the two write buffers, in lines of ~512 bytes (at least 64 KiB). Lines are written every 50 ms; when both buffers are full, new lines are dropped and counted in lockgate_access_log_dropped_total, never blocking a request.', { default: 10_000, min: 1 }),
      },
      'JSON access log: one line per request with ids, route, status, bytes and phase durations in microseconds (durationsUs).',
    ),
    overload: obj(
      {
        maxEventLoopDelay: duration('Event-loop delay above which new requests are shed with 503.', { default: 500, min: 1 }),
        retryAfter: duration('Retry-After sent with shed requests.', { default: 1000, min: 0 }),
      },
      'Load shedding.',
    ),
    mesh: obj(
      {
        maxHops: int('Requests that have crossed this many mesh hops are refused with 508.', { default: 16, min: 1, max: 255 }),
        defaultAccess: oneOf(['allow', 'audit', 'deny'], 'Calls no AccessPolicy decides: allow, audit (log, allow) or deny.', { default: 'audit' }),
        identity: str("This node's own SPIFFE ID.", { optional: true, check: checkSpiffeId }),
        assertions: obj(
          {
            keysFile: str(
              'JSON file with the assertion issuer, the published keys and (to mint) the signing key, written by the node from its snapshot (0600).',
              { required: true, check: checkNotEmpty },
            ),
            exchange: bool("Plain listeners take the app's assertion (addressed to this node) and exchange it for one addressed to the service called (a sidecar's outbound side); otherwise a client's copy is dropped.", false),
            forwardBearer: bool("Keep the end user's `Authorization: Bearer` token on calls that carry an assertion (by default the gateway drops it there: the assertion says who the user is, and the user's token stays at the edge).", false),
            userHeaders: bool('An inbound hop also hands the app plain x-lockgate-user, x-lockgate-email and x-lockgate-groups from the verified assertion.', true),
          },
          "Signed end-user assertions between hops (x-lockgate-assertion, ES256): a gateway mints one for each mesh call made for a validated end user; an outbound sidecar exchanges the app's for one addressed to the next service; an inbound sidecar accepts one only when it is addressed to this node's identity and its act is the mTLS peer. Needs `identity`.",
          { optional: true },
        ),
        tcpRoutes: list(
          obj(
            {
              service: str('The MeshService, "namespace/name".', { required: true, check: checkBackendRef }),
              hostnames: list(str('Hostname', { check: checkHostPattern }), 'Names a CONNECT may use for it.', { required: true, minItems: 1 }),
              ports: list(int('Port', { min: 1, max: 65535 }), 'Its ports declared tcp (opaque); a CONNECT to any other port is refused (403).', { default: [] }),
              backend: str("The Backend whose endpoints are the service's sidecars: \"name\" (this Gateway's namespace) or \"namespace/name\".", {
                required: true,
                check: checkBackendRef,
              }),
            },
            'One mesh service a CONNECT may reach.',
          ),
          "Outbound opaque TCP: `CONNECT host:port` on this node's plain listeners opens a tunnel, over mutual TLS (ALPN lockgate-tcp) with the Backend's certificates and peer checks, to a sidecar of the service, which pipes the bytes to its app's port.",
          { optional: true },
        ),
        tcpInbound: obj(
          {
            service: str('The MeshService this node stands beside, "namespace/name" (its AccessPolicies decide each tunnel: method CONNECT, path "").', {
              required: true,
              check: checkBackendRef,
            }),
            host: str("The app's address; a tunnel reaches host:port.", { default: '127.0.0.1', check: checkTcpAddress }),
            ports: list(int('Port', { min: 1, max: 65535 }), 'Ports declared tcp: the only ones a tunnel may reach.', { default: [] }),
            connectTimeout: duration('Time to connect to the app.', { default: 1000, min: 1 }),
          },
          "Inbound opaque TCP: tunnels from mesh peers (mutual TLS, ALPN lockgate-tcp) on this node's mTLS listeners end here.",
          { optional: true },
        ),
      },
      'Set when this gateway or sidecar is a mesh node.',
      { optional: true },
    ),
    tracing: obj(
      {
        otlpEndpoint: str('OTLP/HTTP endpoint for spans; unset keeps spans local.', { optional: true, check: checkHttpUrl, format: 'uri' }),
        sampleRatio: num('Share of new traces sampled (0 to 1).', { default: 0.01, min: 0, max: 1 }),
        serviceName: str('service.name of exported spans.', { default: 'lockgate', check: checkNotEmpty }),
      },
      'Distributed tracing.',
    ),
  },
  'Edge listeners, TLS and process-wide limits. At most one per config; without one a default Gateway listens on 0.0.0.0:8080.',
);
