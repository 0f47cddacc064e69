// Tests for W3C traceparent parsing/formatting and the pooled random hex source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createRandomHex, formatTraceparent, newSpanId, newTraceId, parseTraceparent } from './trace-context.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

test('parses the spec example', () => {
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, parentId: SPAN, flags: 1 });
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-00`), { traceId: TRACE, parentId: SPAN, flags: 0 });
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-ff`)?.flags, 255);
});

test('version 00 is strict', () => {
  const bad = [
    '', `00-${TRACE}-${SPAN}`, `00-${TRACE}-${SPAN}-1`, `00-${TRACE}-${SPAN}-01-`, `00-${TRACE}-${SPAN}-01-extra`, ` 00-${TRACE}-${SPAN}-01`,
    `00-${TRACE.toUpperCase()}-${SPAN}-01`, `00-${TRACE}-${SPAN.toUpperCase()}-01`, `00-${TRACE}-${SPAN}-0A`, `00-${TRACE}-${SPAN}-0g`,
    `00-${'0'.repeat(32)}-${SPAN}-01`, `00-${TRACE}-${'0'.repeat(16)}-01`, `00_${TRACE}-${SPAN}-01`, `00-${TRACE}_${SPAN}-01`,
    `00-${TRACE}-${SPAN}_01`, `00-${TRACE.slice(1)}x-${SPAN}-01`, `00-${TRACE.slice(0, 31)}-${SPAN}0-01`, `0-${TRACE}-${SPAN}-010`,
    `ff-${TRACE}-${SPAN}-01`, `FF-${TRACE}-${SPAN}-01`, `0A-${TRACE}-${SPAN}-01`, `xx-${TRACE}-${SPAN}-01`,
  ];
  for (const v of bad) assert.equal(parseTraceparent(v), undefined, v);
});

test('future versions are parsed by their version-00 prefix', () => {
  assert.deepEqual(parseTraceparent(`01-${TRACE}-${SPAN}-09`), { traceId: TRACE, parentId: SPAN, flags: 9 });
  assert.deepEqual(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-the-future-holds`), { traceId: TRACE, parentId: SPAN, flags: 1 });
  assert.equal(parseTraceparent(`cc-${TRACE}-${SPAN}-01.what-the-future-holds`), undefined);
  assert.equal(parseTraceparent(`cc-${'0'.repeat(32)}-${SPAN}-01`), undefined);
});

test('formatTraceparent writes version 00 and round-trips through the parser', () => {
  assert.equal(formatTraceparent(TRACE, SPAN, 1), `00-${TRACE}-${SPAN}-01`);
  assert.equal(formatTraceparent(TRACE, SPAN, 0x1ff), `00-${TRACE}-${SPAN}-ff`);
  const hex = (len: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: len, maxLength: len }).filter((s) => /[1-9a-f]/.test(s));
  fc.assert(fc.property(hex(32), hex(16), fc.nat(255), (t, s, f) => {
    assert.deepEqual(parseTraceparent(formatTraceparent(t, s, f)), { traceId: t, parentId: s, flags: f });
  }));
});

test('new ids are lowercase hex of the right length, distinct, and usable in a traceparent', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const t = newTraceId();
    const s = newSpanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    seen.add(t);
    assert.ok(parseTraceparent(formatTraceparent(t, s, 1)));
  }
  assert.equal(seen.size, 5000);
});

test('all-zero ids are never produced, even from a broken random source', () => {
  const zeros = createRandomHex((b) => b.fill(0), 128);
  assert.equal(newTraceId(zeros), '0'.repeat(31) + '1');
  assert.equal(newSpanId(zeros), '0'.repeat(15) + '1');
});

test('the pool fills in blocks and hands out consecutive, non-overlapping hex', () => {
  let fills = 0;
  let next = 0;
  const hex = createRandomHex((buf) => {
    fills++;
    for (let i = 0; i < buf.length; i++) buf[i] = next++ & 0xff;
  }, 256);
  const ids = Array.from({ length: 16 }, () => hex(32));
  assert.equal(fills, 1); // 16 x 16 bytes = one 256-byte block
  assert.equal(ids.join(''), Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex'));
  hex(16);
  assert.equal(fills, 2);
  // A request larger than what is left of a chunk starts a fresh chunk rather than straddling.
  const mixed = createRandomHex((buf) => buf.fill(0xab), 128);
  assert.equal(mixed(250), 'ab'.repeat(125));
  assert.equal(mixed(16), 'ab'.repeat(8));
  assert.throws(() => mixed(257), RangeError);
  assert.throws(() => createRandomHex(() => {}, 100), RangeError);
});

test('fastRandomFill: every byte value appears, no two blocks alike, ids stay unique', async () => {
  const { fastRandomFill, newTraceId } = await import('./trace-context.ts');
  const a = Buffer.alloc(4096);
  const b = Buffer.alloc(4096);
  fastRandomFill(a);
  fastRandomFill(b);
  assert.notDeepEqual(a, b);
  const seen = new Set(a);
  assert.ok(seen.size > 250, `byte values seen: ${seen.size}`);
  const ids = new Set(Array.from({ length: 20_000 }, () => newTraceId()));
  assert.equal(ids.size, 20_000);
});
