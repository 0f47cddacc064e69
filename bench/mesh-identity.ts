// The mesh-identity scenario (issue 5): 1,000 distinct end users through a Lockgate gateway (validate-jwt, an Api
// AccessPolicy, a signed assertion minted per user) and over mTLS to sidecar b (assertion verified, AccessPolicy on the
// user's groups and the calling workload), then the app. Keys and tokens are made once per run with throw-away keys.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { stringify } from 'yaml';
import type { AssertionKeys, PublicJwk } from '../src/model/snapshot.ts';
import type { BenchRequest } from './config.ts';
import { MESH_NAMESPACE, TRUST_DOMAIN } from './mesh-certs.ts';
import type { MeshCerts } from './mesh-certs.ts';
import { httpGet } from './net.ts';
import { es256Token } from './policy-chain.ts';

export const MESH_IDENTITY_SCENARIO = 'mesh-identity';
export const IDENTITY_USERS = 1000;
export const BENCH_GROUP = 'bench-users';
/** A user in bench-users whom sidecar b's AccessPolicy denies: a 403 from b proves the assertion's user reached it. */
export const BLOCKED_USER = 'blocked';
const JWT_ISSUER = 'https://idp.bench.lockgate.dev/';
const JWT_AUDIENCE = 'bench-api';
/** The assertion issuer: the control plane's workload ID, as a joined mesh would have it. */
export const ASSERTION_ISSUER = `spiffe://${TRUST_DOMAIN}/ns/lockgate-system/sa/control-plane`;
const ASSERTION_KID = 'bench-assertion-1';

export interface MeshIdentity {
  /** The end users' JWT issuer's public key (validate-jwt at the gateway), kid `bench`. */
  jwtJwk: Record<string, unknown>;
  /** The assertion keys with the signing key (the gateway's keys file). */
  gatewayKeys: AssertionKeys;
  /** Public keys only (sidecar b's snapshot `identity`). */
  sidecarKeys: AssertionKeys;
  /** One request per user, user-0000 … user-0999, each with its own bearer token. */
  requests: BenchRequest[];
  /** A valid token of a user outside bench-users: the gateway's AccessPolicy must refuse it (403). */
  outsiderToken: string;
  /** A valid token of BLOCKED_USER, in bench-users: the gateway lets it through, sidecar b's deny rule refuses it. */
  blockedToken: string;
}

const pad = (i: number): string => String(i).padStart(4, '0');

/** Throw-away keys (end users' issuer, assertions) and the 1,000 users' tokens, valid for a day (the whole run). */
export function buildMeshIdentity(users = IDENTITY_USERS): MeshIdentity {
  const idp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwtJwk = { ...idp.publicKey.export({ format: 'jwk' }), kid: 'bench', alg: 'ES256', use: 'sig' };
  const asr = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = asr.publicKey.export({ format: 'jwk' });
  const d = asr.privateKey.export({ format: 'jwk' }).d ?? '';
  const publicJwk: PublicJwk = { kty: 'EC', crv: 'P-256', x: pub.x ?? '', y: pub.y ?? '', kid: ASSERTION_KID, alg: 'ES256', use: 'sig' };
  const now = Math.floor(Date.now() / 1000);
  const token = (key: KeyObject, sub: string, groups: string[]): string =>
    es256Token(key, { iss: JWT_ISSUER, aud: JWT_AUDIENCE, sub, email: `${sub}@bench.example`, groups, iat: now - 60, exp: now + 86_400 });
  const requests: BenchRequest[] = [];
  for (let i = 0; i < users; i++) {
    requests.push({ method: 'GET', host: '', path: `/api/items/${i}`, headers: [`Authorization: Bearer ${token(idp.privateKey, `user-${pad(i)}`, [BENCH_GROUP])}`] });
  }
  return {
    jwtJwk,
    gatewayKeys: { issuer: ASSERTION_ISSUER, keys: [publicJwk], signing: { ...publicJwk, d } },
    sidecarKeys: { issuer: ASSERTION_ISSUER, keys: [publicJwk] },
    requests,
    outsiderToken: token(idp.privateKey, 'outsider', ['other']),
    blockedToken: token(idp.privateKey, BLOCKED_USER, [BENCH_GROUP]),
  };
}

const doc = (kind: string, metadata: object, spec: object): string => stringify({ apiVersion: 'lockgate.dev/v1alpha1', kind, metadata, spec }, { lineWidth: 0 });

/** Sidecar b's extra snapshot documents: access only for the gateway's workload (a) on behalf of bench-users, never BLOCKED_USER. */
export function identitySidecarPolicyYaml(): string {
  return doc('AccessPolicy', { name: 'b-bench-users', namespace: MESH_NAMESPACE }, {
    target: { service: 'b' },
    allow: [{ sources: ['a'], groups: [BENCH_GROUP] }],
    deny: [{ user: BLOCKED_USER }],
  });
}

export interface IdentityGatewayOptions {
  port: number;
  adminPort: number;
  /** Sidecar b's mTLS listener. */
  bPort: number;
  accessLogPath: string;
  keysFile: string;
  certs: MeshCerts;
  identity: MeshIdentity;
  /** The end users' IdentityProvider discovery document (benchIdp). */
  discovery: string;
}

let idp: Promise<string> | undefined;

/**
 * The end users' OpenID provider, as the gateway sees one: a discovery document and the JWKS, served from the bench
 * process on loopback (read once, when the gateway starts). Started on first use; it never keeps the run alive.
 */
export function benchIdp(identity: MeshIdentity): Promise<string> {
  idp ??= new Promise<string>((resolve, reject) => {
    let base = '';
    const server = http.createServer((req, res) => {
      const send = (body: unknown): void => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/.well-known/openid-configuration') {
        send({
          issuer: JWT_ISSUER, jwks_uri: `${base}/jwks`, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token`,
          response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['ES256'],
        });
      } else if (req.url === '/jwks') send({ keys: [identity.jwtJwk] });
      else res.writeHead(404).end();
    });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      server.unref();
      resolve(`${base}/.well-known/openid-configuration`);
    });
  });
  return idp;
}

/**
 * The standalone gateway: it presents hop a's certificate (so its workload ID is a's), validates the end user's bearer
 * token against an IdentityProvider (the way an identity-aware Api is configured: no ApiPolicy), lets bench-users in,
 * and mints an assertion for b on every mesh call (reused per user for up to a minute).
 */
export function identityGatewayYaml(o: IdentityGatewayOptions): string {
  return [
    doc('Mesh', { name: 'default' }, { trustDomain: TRUST_DOMAIN, mtls: 'strict', defaultAccess: 'allow' }),
    doc('Gateway', { name: 'bench' }, {
      listeners: [{ name: 'http', address: '127.0.0.1', port: o.port, protocol: 'http' }],
      admin: { address: '127.0.0.1', port: o.adminPort },
      accessLog: { path: o.accessLogPath },
      mesh: { identity: o.certs.a.spiffeId, assertions: { keysFile: o.keysFile, exchange: false, userHeaders: false } },
    }),
    doc('MeshService', { name: 'b', namespace: MESH_NAMESPACE }, { ports: [{ name: 'http', port: 80, protocol: 'http' }] }),
    doc('Backend', { name: 'b' }, {
      type: 'mesh',
      meshService: `${MESH_NAMESPACE}/b`,
      endpoints: [{ url: `https://127.0.0.1:${o.bPort}` }],
      maxConnections: 128,
      tls: { caFile: o.certs.rootFile, certFile: o.certs.a.certFile, keyFile: o.certs.a.keyFile, verify: true, spiffeIds: [o.certs.b.spiffeId] },
    }),
    doc('IdentityProvider', { name: 'bench-idp' }, {
      issuer: JWT_ISSUER, discovery: o.discovery, clientId: 'bench', audience: [JWT_AUDIENCE], allowedAlgorithms: ['ES256'],
    }),
    doc('Api', { name: 'all' }, { path: '/', backend: 'b', authentication: { providers: ['bench-idp'] } }),
    doc('AccessPolicy', { name: 'all-bench-users' }, { target: { api: 'all' }, allow: [{ groups: [BENCH_GROUP] }] }),
  ].join('---\n');
}

/**
 * Beyond verify()'s 200s: a user outside bench-users is refused by the gateway, and BLOCKED_USER (in bench-users) by
 * sidecar b, which can only know the user from the assertion the gateway minted. Returns the problem, or null.
 */
export async function checkIdentityHops(port: number, identity: MeshIdentity): Promise<string | null> {
  const get = (token: string) => httpGet(port, '/api/items/1', { headers: [`Authorization: Bearer ${token}`], timeoutMs: 5000 });
  const outsider = await get(identity.outsiderToken);
  if (outsider.status !== 403 || !outsider.body.includes('"hop":"gateway')) {
    return `a user outside ${BENCH_GROUP}: status ${outsider.status} (want 403 from the gateway): ${outsider.body.slice(0, 300)}`;
  }
  const blocked = await get(identity.blockedToken);
  if (blocked.status !== 403 || !blocked.body.includes(`"hop":"sidecar ${MESH_NAMESPACE}/b"`)) {
    return `user ${BLOCKED_USER}: status ${blocked.status} (want 403 from sidecar ${MESH_NAMESPACE}/b, deciding on the asserted user): ${blocked.body.slice(0, 300)}`;
  }
  return null;
}
