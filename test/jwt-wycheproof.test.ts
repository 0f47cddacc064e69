// Wycheproof JWS vectors (C2SP/wycheproof json_web_signature_test.json) through our JWS half: parse, key choice, signature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { verifyJws } from '../src/proxy/jwt-validator.ts';
import { keyFromJwk, type VerificationKey } from '../src/proxy/jwks-source.ts';

const DIR = path.resolve(import.meta.dirname, '..', '..', 'shared', 'corpus', 'wycheproof-jose');
const FILE = path.join(DIR, 'json_web_signature_test.json');
const missing = existsSync(FILE) ? false : `Wycheproof corpus not found at ${FILE}; skipping`;

interface Vector { tcId: number; comment: string; jws: unknown; result: 'valid' | 'invalid'; flags: string[] }
interface Group { comment: string; public?: unknown; private?: unknown; tests: Vector[] }

/**
 * Where we are deliberately stricter than a vector marked "valid", with the reason. Each entry is
 * asserted to be rejected, so a change in behaviour fails here rather than passing silently.
 */
const STRICTER: Record<number, string> = {
  346: 'RFC 7520 Figure 20: the JWK declares alg PS256, the token says PS384; a JWK "alg" pins the algorithm (identity.md §3 #27)',
  350: 'as 346, with key_ops',
  347: 'RFC 7520 Figure 27: the JWK declares alg "ES521", which is no algorithm; the key can verify nothing',
  351: 'as 347, with key_ops',
  372: 'a "?" inserted in the header: the signing input is the literal text (RFC 7515 §5.2), and it is not base64url',
  373: 'a "?" inserted in the payload: same as 372',
};

/**
 * Vectors marked "invalid" whose token is byte-identical to a "valid" one (the padding they are
 * named after is not in the data). No verifier can satisfy both; we accept, and the test checks
 * that the bytes really are identical, so a fixed corpus makes this entry fail loudly.
 */
const IDENTICAL_TO_VALID: Record<number, number> = { 367: 357, 370: 357 };

function importGroupKey(g: Group): VerificationKey[] {
  // Verify with the public key when the group has one; HMAC groups only have the (secret) key.
  const r = keyFromJwk(g.public ?? g.private, { allowSecret: g.public === undefined });
  return 'key' in r ? [r.key] : [];
}

test('Wycheproof JWS vectors', { skip: missing }, async (t) => {
  const data = JSON.parse(readFileSync(FILE, 'utf8')) as { numberOfTests: number; testGroups: Group[] };
  const byId = new Map(data.testGroups.flatMap((g) => g.tests.map((v) => [v.tcId, v] as const)));
  for (const [id, twin] of Object.entries(IDENTICAL_TO_VALID)) {
    assert.equal(byId.get(Number(id))?.jws, byId.get(twin)?.jws, `tcId ${id} no longer equals tcId ${twin}: drop the override`);
    assert.equal(byId.get(twin)?.result, 'valid');
  }
  for (const id of Object.keys(STRICTER)) assert.equal(byId.get(Number(id))?.result, 'valid', `tcId ${id} is not a "valid" vector any more`);
  let ran = 0;
  let accepted = 0;
  for (const [i, g] of data.testGroups.entries()) {
    await t.test(`group ${i + 1}: ${g.comment} (${g.tests.length} vectors)`, async () => {
      const keys = importGroupKey(g);
      const mismatches: string[] = [];
      for (const v of g.tests) {
        ran++;
        // Only compact serialization is accepted: anything else (JSON serialization) must fail too.
        const token = typeof v.jws === 'string' ? v.jws : JSON.stringify(v.jws);
        const r = await verifyJws(token, keys);
        const ok = 'key' in r;
        if (ok) accepted++;
        const expected = STRICTER[v.tcId] !== undefined ? false : IDENTICAL_TO_VALID[v.tcId] !== undefined ? true : v.result === 'valid';
        if (ok !== expected) {
          const got = ok ? 'accept' : `reject (${'reason' in r ? r.reason : ''}: ${'detail' in r ? r.detail : ''})`;
          mismatches.push(`tcId ${v.tcId} ${v.comment} ${v.flags.join(',')}: expected ${expected ? 'accept' : 'reject'}, got ${got}`);
        }
      }
      assert.deepEqual(mismatches, []);
    });
  }
  t.diagnostic(`${ran} vectors, ${accepted} accepted, ${Object.keys(STRICTER).length} deliberately stricter than Wycheproof`);
  assert.equal(ran, data.numberOfTests);
  // A verifier that rejected everything would pass the invalid half: make sure the valid half really validates.
  assert.ok(accepted >= 25, `only ${accepted} vectors accepted`);
});
