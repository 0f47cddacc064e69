// Tests for CIDR sets: IPv4, IPv6, IPv4-mapped IPv6, validation, and agreement with node:net BlockList.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { compileCidrs, isValidCidr } from './cidr.ts';

test('isValidCidr accepts IPv4, IPv6, mapped and bare addresses', () => {
  for (const s of ['10.0.0.0/8', '0.0.0.0/0', '192.168.1.1', '192.168.1.1/32', '10.1.2.3/8', '::/0', '::1', '::1/128', '2001:db8::/32',
    'fe80::/10', '::ffff:10.0.0.0/104', '2001:0db8:0000:0000:0000:ff00:0042:8329', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::8',
    '1:2:3:4:5:6:1.2.3.4', 'ABCD:EF01::/64']) {
    assert.equal(isValidCidr(s), true, s);
  }
});

test('isValidCidr rejects malformed entries', () => {
  for (const s of ['', '/', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/08', '10.0.0.0/-1', '10.0.0/8', '10.0.0.0.0', '256.0.0.0', '01.2.3.4',
    '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4/8/8', 'a.b.c.d', '::/129', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', ':1::', '1:', '1::/1x',
    'fe80::1%eth0', 'g::', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3', '::ffff:1.2.3.256', 'localhost', '1.2.3.4/', '[::1]']) {
    assert.equal(isValidCidr(s), false, s);
  }
});

test('compileCidrs throws on an invalid entry', () => {
  assert.throws(() => compileCidrs(['10.0.0.0/8', 'nope']), RangeError);
});

test('IPv4 ranges, with host bits in the entry masked off', () => {
  const set = compileCidrs(['10.0.0.0/8', '192.168.1.7', '172.16.5.9/12']);
  for (const ip of ['10.0.0.0', '10.255.255.255', '192.168.1.7', '172.16.0.1', '172.31.255.255']) assert.equal(set.contains(ip), true, ip);
  for (const ip of ['11.0.0.0', '9.255.255.255', '192.168.1.8', '172.32.0.0', '', 'x', '10.0.0', '10.0.0.256', '::1']) assert.equal(set.contains(ip), false, ip);
  assert.equal(compileCidrs(['0.0.0.0/0']).contains('255.255.255.255'), true);
  assert.equal(compileCidrs([]).contains('127.0.0.1'), false);
});

test('IPv4-mapped IPv6 addresses match IPv4 ranges and IPv4 addresses match mapped ranges', () => {
  const set = compileCidrs(['1.2.3.0/24']);
  assert.equal(set.contains('::ffff:1.2.3.4'), true);
  assert.equal(set.contains('::FFFF:1.2.3.200'), true);
  assert.equal(set.contains('::ffff:102:304'), true);
  assert.equal(set.contains('::ffff:1.2.4.4'), false);
  assert.equal(set.contains('::1.2.3.4'), false); // IPv4-compatible, not mapped
  const mapped = compileCidrs(['::ffff:10.0.0.0/104']);
  assert.equal(mapped.contains('10.9.8.7'), true);
  assert.equal(mapped.contains('11.9.8.7'), false);
  assert.equal(compileCidrs(['::ffff:0:0/96']).contains('8.8.8.8'), true);
});

test('IPv6 ranges, including zone ids on addresses', () => {
  const set = compileCidrs(['2001:db8::/32', 'fe80::/10', '::1']);
  for (const ip of ['2001:db8::1', '2001:DB8:ffff:ffff:ffff:ffff:ffff:ffff', 'fe80::1%eth0', 'febf::1', '::1', '0:0:0:0:0:0:0:1']) {
    assert.equal(set.contains(ip), true, ip);
  }
  for (const ip of ['2001:db9::', 'fec0::1', '::2', '::', '1.2.3.4', '2001:db8::g', '2001:db8:::1']) assert.equal(set.contains(ip), false, ip);
  assert.equal(compileCidrs(['::/0']).contains('ffff::'), true);
  assert.equal(compileCidrs(['1:2:3:4:5:6:7:8/127']).contains('1:2:3:4:5:6:7:9'), true);
  assert.equal(compileCidrs(['1:2:3:4:5:6:7:8/127']).contains('1:2:3:4:5:6:7:a'), false);
});

// node:net BlockList is an independent implementation of the same matching (without v4/v6 mapping).
const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
const v6short = fc.tuple(fc.array(fc.nat(0xffff), { maxLength: 3 }), fc.array(fc.nat(0xffff), { maxLength: 3 }))
  .map(([a, b]) => `${a.map((x) => x.toString(16)).join(':')}::${b.map((x) => x.toString(16)).join(':')}`);

test('property: IPv4 matching agrees with node:net BlockList', () => {
  fc.assert(fc.property(fc.array(fc.tuple(v4, fc.nat(32)), { maxLength: 4 }), v4, (entries, ip) => {
    const bl = new net.BlockList();
    for (const [a, p] of entries) bl.addSubnet(a, p, 'ipv4');
    assert.equal(compileCidrs(entries.map(([a, p]) => `${a}/${p}`)).contains(ip), bl.check(ip, 'ipv4'));
  }), { numRuns: 3000 });
});

test('property: IPv6 matching agrees with node:net BlockList', () => {
  const addr = fc.oneof(v6, v6short);
  fc.assert(fc.property(fc.array(fc.tuple(addr, fc.nat(128)), { maxLength: 4 }), addr, (entries, ip) => {
    const bl = new net.BlockList();
    for (const [a, p] of entries) bl.addSubnet(a, p, 'ipv6');
    const set = compileCidrs(entries.map(([a, p]) => `${a}/${p}`));
    assert.equal(set.contains(ip), bl.check(ip, 'ipv6'), ip);
    // Each entry's own address is inside it: exercises matches, not only misses.
    if (entries.length > 0) assert.equal(set.contains(entries[0][0]), true);
  }), { numRuns: 3000 });
});

test('property: isValidCidr agrees with net.isIP on bare addresses without zones', () => {
  const text = fc.oneof(v4, v6, v6short, fc.string({ unit: fc.constantFrom(...'0123456789abcdef:.'), maxLength: 20 }));
  fc.assert(fc.property(text, (s) => {
    assert.equal(isValidCidr(s), net.isIP(s) !== 0, s);
  }), { numRuns: 5000 });
});

test('property: compressed and full IPv6 spellings parse to the same address', () => {
  const group = fc.oneof(fc.constant(0), fc.constant(0), fc.nat(0xffff));
  const groups = fc.array(group, { minLength: 8, maxLength: 8 });
  fc.assert(fc.property(groups, fc.nat(7), (g, flip) => {
    const full = g.map((x) => x.toString(16)).join(':');
    const compressed = new URL(`http://[${full}]`).hostname.slice(1, -1); // WHATWG serializes with the longest zero run as ::
    assert.equal(compileCidrs([`${full}/128`]).contains(compressed), true, `${full} vs ${compressed}`);
    assert.equal(compileCidrs([`${compressed}/128`]).contains(full), true, `${compressed} vs ${full}`);
    const other = g.slice();
    other[flip] ^= 1;
    const otherText = new URL(`http://[${other.map((x) => x.toString(16)).join(':')}]`).hostname.slice(1, -1);
    assert.equal(compileCidrs([`${compressed}/128`]).contains(otherText), false, `${compressed} vs ${otherText}`);
  }), { numRuns: 3000 });
});
