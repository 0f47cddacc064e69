import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { applySnapshotDelta, configDocs, configDocuments, joinConfigDocuments, snapshotDelta } from './snapshot-delta.ts';
import type { Snapshot } from './snapshot.ts';

const snapshot = (config: string, version = 1, endpointsVersion = 1): Snapshot => ({
  schema: '1.0', version, endpointsVersion, node: { kind: 'gateway', namespace: 'default', service: 'edge', spiffeId: 'spiffe://t/ns/default/sa/edge' },
  config, endpoints: {}, trustBundle: ['PEM'],
});

// Texts made of lines that stress the cut: `---` lines, `--- x`, empty lines, a text without a final newline.
const line = fc.constantFrom('---', '--- ', '--- # c', 'kind: Api', '', 'a: "---"', '  - x', '...', '\r');
const text = fc.array(line, { maxLength: 12 }).chain((ls) => fc.boolean().map((nl) => ls.join('\n') + (nl ? '\n' : '')));

test('configDocuments: joining the documents gives back the very text (property)', () => {
  fc.assert(fc.property(text, (t) => {
    const docs = configDocuments(t);
    assert.equal(joinConfigDocuments(docs), t);
    for (const d of docs.slice(0, -1)) assert.ok(d.endsWith('\n') && !d.slice(0, -1).includes('\n---\n'));
  }), { numRuns: 500 });
  assert.deepEqual(configDocuments('a: 1\n---\nb: 2\n'), ['a: 1\n', 'b: 2\n']);
});

test('a delta rebuilds the next snapshot exactly, from the base the node received (property)', () => {
  const doc = fc.constantFrom<string>('kind: A\n', 'kind: B\nx: "1\\n"\n', 'kind: C\n', 'kind: D\ny: [1, 2]\t\n', 'kind: É\u2028 \\---\n');
  fc.assert(fc.property(fc.array(doc, { minLength: 1, maxLength: 8 }), fc.array(doc, { minLength: 1, maxLength: 8 }), (a, b) => {
    const base = snapshot(a.join('---\n'), 3, 7);
    const next = { ...snapshot(b.join('---\n'), 4, 8), trustBundle: ['PEM', 'PEM2'] };
    const delta = snapshotDelta(base, configDocuments(base.config), next, configDocuments(next.config));
    if (delta === undefined) {
      assert.ok(b.every((d) => !a.includes(d)), 'whole only when no document is shared');
      return;
    }
    // What goes on the wire: documents the base has are sent as indexes.
    for (const d of delta.docs) if (typeof d === 'string') assert.ok(!a.includes(d));
    const wire = JSON.parse(JSON.stringify(delta));
    const built = applySnapshotDelta(base, configDocs(base.config), wire);
    assert.ok(typeof built !== 'string', String(built));
    assert.deepEqual(built.snapshot, next);
    assert.deepEqual(built.docs, configDocs(next.config));
    // Its JSON is made of escaped documents, and is exactly what serializing it gives.
    assert.equal(built.json().join(''), JSON.stringify(built.snapshot));
  }), { numRuns: 300 });
});

test('a delta against another base, or a malformed one, is refused with the reason', () => {
  const base = snapshot('kind: A\n---\nkind: B\n', 5, 1);
  const next = snapshot('kind: A\n---\nkind: C\n', 6, 1);
  const delta = snapshotDelta(base, configDocuments(base.config), next, configDocuments(next.config))!;
  assert.deepEqual(delta.docs, [0, 'kind: C\n']);
  const other = snapshot('kind: A\n---\nkind: X\n', 4, 1);
  assert.match(applySnapshotDelta(other, configDocs(other.config), delta) as string, /against version 5\/1 .* received is 4\/1/);
  assert.match(applySnapshotDelta(undefined, undefined, delta) as string, /before any snapshot/);
  const docs = configDocs(base.config);
  assert.match(applySnapshotDelta(base, docs, { ...delta, docs: [7, 'x'] }) as string, /document reference 7 of 2/);
  assert.match(applySnapshotDelta(base, docs, { ...delta, docs: [0.5] }) as string, /document reference 0.5/);
  assert.match(applySnapshotDelta(base, docs, { ...delta, configLength: 3 }) as string, /rebuilt to \d+ characters of config, not 3/);
  assert.match(applySnapshotDelta(base, docs, { ...delta, base: null } as never) as string, /against version undefined/);
  assert.match(applySnapshotDelta(base, docs, { ...delta, docs: null } as never) as string, /malformed/);
  // Nothing shared: no delta (the whole snapshot is sent).
  assert.equal(snapshotDelta(base, docs.docs, snapshot('kind: Z\n', 7, 1), ['kind: Z\n']), undefined);
});
