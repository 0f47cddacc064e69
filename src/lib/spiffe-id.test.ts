// Tests for SPIFFE ID parsing: the shared go-spiffe/spec corpus (skipped when absent), every byte value, and workload IDs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MAX_SPIFFE_ID_BYTES, parseSpiffeId, parseTrustDomain, parseWorkloadId, workloadId } from './spiffe-id.ts';

const CORPUS = fileURLToPath(new URL('../../../shared/corpus/spiffe-id/', import.meta.url));

interface Case { input: string; valid: boolean; trustDomain?: string; path?: string; reason?: string; source: string }

function loadCases(file: string): Case[] | undefined {
  const p = `${CORPUS}${file}`;
  return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) as Case[] : undefined;
}

const idCases = loadCases('spiffe-id-cases.json');
const tdCases = loadCases('trust-domain-cases.json');

test('the SPIFFE ID corpus: every case, with go-spiffe\'s error text', { skip: idCases === undefined && `no corpus at ${CORPUS}` }, () => {
  assert.ok(idCases !== undefined && idCases.length >= 60, 'corpus unexpectedly small');
  for (const c of idCases) {
    const r = parseSpiffeId(c.input);
    const label = `${JSON.stringify(c.input.length > 80 ? `${c.input.slice(0, 80)}…` : c.input)} (${c.source})`;
    if (c.valid) {
      assert.deepEqual(r, { trustDomain: c.trustDomain, path: c.path }, label);
    } else {
      assert.ok('error' in r, `${label} should be rejected`);
      assert.equal(r.error, c.reason, label);
    }
  }
});

test('the trust domain corpus', { skip: tdCases === undefined && `no corpus at ${CORPUS}` }, () => {
  assert.ok(tdCases !== undefined && tdCases.length >= 10);
  for (const c of tdCases) {
    const r = parseTrustDomain(c.input);
    if (c.valid) assert.deepEqual(r, { trustDomain: c.trustDomain }, c.input);
    else assert.deepEqual(r, { error: c.reason }, c.input);
  }
});

test('every byte value in the trust domain and the path', () => {
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCharCode(b);
    const tdOk = /[a-z0-9._-]/.test(ch);
    const pathOk = /[a-zA-Z0-9._-]/.test(ch);
    assert.equal('error' in parseSpiffeId(`spiffe://trustdomain${ch}/path`), !tdOk, `td byte ${b}`);
    assert.equal('error' in parseSpiffeId(`spiffe://trustdomain/path${ch}`), !pathOk, `path byte ${b}`);
  }
});

test('length limits and rules the corpus does not cover', () => {
  const at = `spiffe://td/${'a'.repeat(MAX_SPIFFE_ID_BYTES - 'spiffe://td/'.length)}`;
  assert.equal(at.length, MAX_SPIFFE_ID_BYTES);
  assert.ok(!('error' in parseSpiffeId(at)));
  assert.deepEqual(parseSpiffeId(`${at}b`), { error: 'SPIFFE ID longer than 2048 bytes' });
  assert.deepEqual(parseSpiffeId('spiffe://td/a\0b'), { error: 'path segment characters are limited to letters, numbers, dots, dashes, and underscores' });
  assert.deepEqual(parseSpiffeId('spiffe://td/a/'), { error: 'path cannot have a trailing slash' });
  assert.deepEqual(parseSpiffeId('spiffe://td/a/../b'), { error: 'path cannot contain dot segments' });
  assert.deepEqual(parseSpiffeId('spiffe://td/..a/b.'), { trustDomain: 'td', path: '/..a/b.' });
});

test('workloadId and parseWorkloadId round-trip; bad parts are refused', () => {
  const id = workloadId('mesh.local', 'shop', 'orders');
  assert.equal(id, 'spiffe://mesh.local/ns/shop/sa/orders');
  assert.deepEqual(parseWorkloadId(id), { trustDomain: 'mesh.local', namespace: 'shop', service: 'orders' });
  for (const [td, ns, svc] of [['Mesh', 'a', 'b'], ['td', 'a/b', 'c'], ['td', '', 'c'], ['td', 'a', '..'], ['td', 'a', 'b c'], ['', 'a', 'b']]) {
    assert.throws(() => workloadId(td, ns, svc), RangeError, `${td} ${ns} ${svc}`);
  }
  for (const bad of ['spiffe://td/ns/a/sa', 'spiffe://td/ns/a/sa/b/c', 'spiffe://td/ns/a/xx/b', 'spiffe://td', 'spiffe://td/nss/a/sa/b', 'spiffe://td/ns/a/sa/b/', 'http://td/ns/a/sa/b']) {
    assert.equal(parseWorkloadId(bad), null, bad);
  }
});
