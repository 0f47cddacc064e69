// The policy-chain scenario (issue #3): validate-jwt (ES256, 1,000 distinct valid tokens in rotation) + subscription key +
// rate-limit-by-key (never reached) + two set-header, with access log and metrics on, against Lockgate's own small-get.
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { SubscriptionStore } from '../src/store/subscription-store.ts';
import type { BenchApi, BenchRequest } from './config.ts';

const ISSUER = 'https://bench.lockgate.dev/';
const AUDIENCE = 'bench-api';
export const TOKENS = 1000;

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export function es256Token(key: KeyObject, claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'bench' }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), { key, dsaEncoding: 'ieee-p1363' });
  return `${head}.${body}.${b64url(sig)}`;
}

export interface PolicyChain {
  api: BenchApi;
  requests: BenchRequest[];
  /** ApiPolicy, Product documents appended to Lockgate's config. */
  extraYaml: string;
  /** Creates the data directory holding the subscription; returns its path. */
  prepareDataDir(dir: string): string;
}

export function buildPolicyChain(): PolicyChain {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'bench', alg: 'ES256', use: 'sig' };
  const key = createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const subscriptionKey = randomBytes(16).toString('hex');
  const now = Math.floor(Date.now() / 1000);
  const requests: BenchRequest[] = [];
  for (let i = 0; i < TOKENS; i++) {
    // Valid for a day: the whole run, with margin.
    const token = es256Token(key, { iss: ISSUER, aud: AUDIENCE, sub: `user-${i}`, iat: now - 60, exp: now + 86_400, jti: `t${i}` });
    requests.push({ method: 'GET', host: '', path: `/chain/items/${i % 100}`, headers: [`Authorization: Bearer ${token}`, `Ocp-Apim-Subscription-Key: ${subscriptionKey}`] });
  }
  const doc = (kind: string, name: string, spec: object): string =>
    stringify({ apiVersion: 'lockgate.dev/v1alpha1', kind, metadata: { name }, spec }, { lineWidth: 0 });
  const extraYaml = [
    doc('Product', 'bench', { apis: ['chain'] }),
    doc('ApiPolicy', 'chain', {
      scope: { api: 'chain' },
      inbound: [
        { base: {} },
        { 'validate-jwt': { issuerSigningKeys: [{ jwk: JSON.stringify(jwk), kid: 'bench' }], issuers: [ISSUER], audiences: [AUDIENCE], allowedAlgorithms: ['ES256'] } },
        { 'rate-limit-by-key': { calls: 1_000_000_000, renewalPeriod: '60s', counterKey: 'context.Subscription.Id' } },
        { 'set-header': { name: 'x-user', value: '@(context.User.sub)' } },
        { 'set-header': { name: 'x-gateway', value: 'lockgate' } },
      ],
    }),
  ].join('---\n');
  return {
    api: { name: 'chain', hostnames: [], path: '/chain', operations: [], subscriptionRequired: true },
    requests,
    extraYaml,
    prepareDataDir(dir: string): string {
      const dataDir = join(dir, 'policy-chain-data');
      mkdirSync(dataDir, { recursive: true });
      const store = SubscriptionStore.open(dataDir);
      try {
        if (store.list().length === 0) store.create({ name: 'bench', scope: { kind: 'product', name: 'bench' }, primaryKey: subscriptionKey });
      } finally {
        store.close();
      }
      return dataDir;
    },
  };
}
