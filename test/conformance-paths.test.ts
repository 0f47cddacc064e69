// Cross-process: the reliability.md §3.3 path vectors — which upstream gets each request, and the canonical path it sees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { sendRaw, summarize } from './helpers/raw-http.ts';

// No JWT filter exists yet: "needs auth" in §3.3 means "routed to the admin upstream" here.
type Name = 'public' | 'admin' | 'lenient' | 'hosted';
const NAMES: Name[] = ['public', 'admin', 'lenient', 'hosted'];
const ups = {} as Record<Name, Upstream>;
let gw: GatewayProcess;
let port: number;

function config(): string {
  const backend = (n: Name): string => `---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: ${n} }
spec:
  url: http://127.0.0.1:${ups[n].port}
`;
  return `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { path: "off" }
${NAMES.map(backend).join('')}---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: public }
spec: { path: /public, backend: public }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: admin }
spec: { path: /admin, backend: admin }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: lenient }
spec:
  path: /lenient
  backend: lenient
  pathOptions: { escapedSlashes: decode, backslash: slash, semicolon: strip }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: hosted }
spec:
  hostnames: [admin.example.com]
  path: /hosted
  backend: hosted
`;
}

before(async () => {
  for (const n of NAMES) ups[n] = await startUpstream();
  gw = await startGateway(config());
  port = gw.ports.http;
});

after(async () => {
  await gw?.stop();
  for (const n of NAMES) await ups[n]?.close();
});

/** Either an error status with nothing forwarded, or a 200 from one upstream that saw exactly `path`. */
type Outcome = { status: 400 | 404 } | { to: Name; path: string };

interface Vector {
  target: string;
  host?: string;
  /** More than one outcome where §3.3 allows either (e.g. "400, or under decode-and-merge /admin/x"). */
  expect: Outcome | Outcome[];
  note?: string;
}

const admin = (path: string): Outcome => ({ to: 'admin', path });
const pub = (path: string): Outcome => ({ to: 'public', path });
const len = (path: string): Outcome => ({ to: 'lenient', path });
const S400: Outcome = { status: 400 };
const S404: Outcome = { status: 404 };

const VECTORS: Vector[] = [
  // Controls.
  { target: '/public/x', expect: pub('/public/x') },
  { target: '/public', expect: pub('/public') },
  { target: '/admin', expect: admin('/admin') },
  { target: '/admin/', expect: admin('/admin/') },
  { target: '/public/a/./b/../c?q=%2F..&r=/../x', expect: pub('/public/a/c?q=%2F..&r=/../x'), note: 'the query is kept verbatim' },

  // Dot segments, plain and encoded: canonical /admin/x, so the admin route decides.
  { target: '/public/../admin/x', expect: admin('/admin/x') },
  { target: '/public/%2e%2e/admin/x', expect: admin('/admin/x') },
  { target: '/public/%2E%2e/admin/x', expect: admin('/admin/x') },
  { target: '/public/.%2e/admin/x', expect: admin('/admin/x') },
  { target: '/public/../../../admin/x', expect: admin('/admin/x'), note: '".." above the root is clamped at /' },

  // Escaped slashes: 400 by default (the lenient Api's decode cannot carry a request out of /lenient).
  { target: '/public/..%2fadmin/x', expect: [S400, admin('/admin/x')] },
  { target: '/public/..%2Fadmin/x', expect: [S400, admin('/admin/x')] },
  { target: '/public%2f..%2fadmin', expect: [S400, admin('/admin')] },
  { target: '/public/a%2Fb', expect: S400 },

  // No double decoding.
  { target: '/public/%252e%252e/admin', expect: pub('/public/%252e%252e/admin') },

  // Backslashes.
  { target: '/public/..\\admin', expect: [S400, admin('/admin')] },
  { target: '/public\\..\\admin', expect: [S400, admin('/admin')] },
  { target: '/public/%5c../admin', expect: [S400, admin('/admin')] },
  { target: '/public/a\\b', expect: S400 },

  // Merged slashes.
  { target: '//admin/x', expect: admin('/admin/x') },
  { target: '/public//..//admin', expect: admin('/admin') },
  { target: '///admin///x', expect: admin('/admin/x') },

  // Semicolons: strip-; → /admin/x, or 400 (§3.3).
  { target: '/admin;/x', expect: [S400, admin('/admin/x')] },
  { target: '/public/..;/admin/x', expect: [S400, admin('/admin/x')] },
  { target: '/admin;jsessionid=1/x', expect: [S400, admin('/admin/x')] },

  // Case-sensitive matching.
  { target: '/ADMIN/x', expect: S404 },
  { target: '/Admin/x', expect: S404 },

  // NUL, fragments, non-ASCII after decoding.
  { target: '/admin%00/x', expect: S400 },
  { target: '/admin%00.json', expect: S400 },
  { target: '/admin#/x', expect: S400 },
  { target: '/admin/x#', expect: S400 },
  { target: '/admin%c0%af..', expect: S400 },
  { target: '/admin%ef%bc%8f', expect: S400 },
  { target: '/public/%e2%80%ae', expect: S400 },

  // Malformed escapes.
  { target: '/public/%', expect: S400 },
  { target: '/public/%2', expect: S400 },
  { target: '/public/%zz', expect: S400 },

  // Unreserved decoding.
  { target: '/%61dmin/x', expect: admin('/admin/x') },
  { target: '/%41dmin/x', expect: S404, note: '%41 is "A": case-sensitive, so /Admin/x' },
  { target: '/public/%7euser', expect: pub('/public/~user') },
  { target: '/public/a%2bb', expect: pub('/public/a%2Bb'), note: 'reserved escapes stay encoded, hex upper-cased' },

  // Windows trailing dot/space and prefix boundaries.
  { target: '/admin%20/x', expect: S404 },
  { target: '/admin./x', expect: S404 },
  { target: '/administrator', expect: S404 },
  { target: '/admin-x', expect: S404 },
  { target: '/publicity', expect: S404 },

  // Host matching for an Api with hostnames: case-insensitive, trailing dot and port ignored.
  { target: '/hosted/x', host: 'admin.example.com', expect: { to: 'hosted', path: '/hosted/x' } },
  { target: '/hosted/x', host: 'ADMIN.example.com.', expect: { to: 'hosted', path: '/hosted/x' } },
  { target: '/hosted/x', host: 'Admin.Example.COM:8080', expect: { to: 'hosted', path: '/hosted/x' } },
  { target: '/hosted/x', host: 'admin.example.com.:8080', expect: { to: 'hosted', path: '/hosted/x' } },
  { target: '/hosted/x', host: 'other.example.com', expect: S404 },
  { target: '/hosted/x', host: 'xadmin.example.com', expect: S404 },
  { target: '/hosted/x', host: 'admin.example.com..', expect: [S400, S404] },

  // The lenient Api: escapedSlashes decode, backslash slash, semicolon strip.
  { target: '/lenient/a%2Fb', expect: len('/lenient/a/b') },
  { target: '/lenient/a%2fb', expect: len('/lenient/a/b') },
  { target: '/lenient/a%5Cb', expect: len('/lenient/a/b') },
  { target: '/lenient/a\\b', expect: len('/lenient/a/b') },
  { target: '/lenient/a;v=1/b', expect: len('/lenient/a/b') },
  { target: '/lenient/a;v=1', expect: len('/lenient/a') },
  { target: '/lenient/a%2F%2Fb/./c', expect: len('/lenient/a/b/c') },
  // …but what it decodes may not leave /lenient for an Api that did not opt in.
  { target: '/lenient/..%2fadmin/x', expect: [S400, admin('/admin/x')] },
  { target: '/lenient\\..\\admin/x', expect: [S400, admin('/admin/x')] },
  { target: '/lenient/..;/admin/x', expect: [S400, admin('/admin/x')] },
  { target: '/lenient/%2e%2e%2fadmin/x', expect: [S400, admin('/admin/x')] },
  // Still strict where the option does not reach.
  { target: '/lenient/a%00b', expect: S400 },
  { target: '/lenient/%c0%af', expect: S400 },
];

function outcomeText(o: Outcome): string {
  return 'status' in o ? String(o.status) : `200 via ${o.to} ${o.path}`;
}

for (const v of VECTORS) {
  const host = v.host ?? 'gw.test';
  const expected = Array.isArray(v.expect) ? v.expect : [v.expect];
  const title = `${JSON.stringify(v.target)}${v.host ? ` Host: ${v.host}` : ''} → ${expected.map(outcomeText).join(' or ')}${v.note ? ` (${v.note})` : ''}`;
  test(title, async () => {
    const before = NAMES.map((n) => ups[n].seen.length);
    const r = await sendRaw(port, `GET ${v.target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, { timeoutMs: 2000 });
    const got = NAMES.flatMap((n, i) => ups[n].seen.slice(before[i]).map((s) => `${n} ${s.url}`));
    const observed = got.length === 0 ? String(r.status ?? 'no response') : `${r.status} via ${got.join(' + ')}`;
    const ok = expected.some((o) => ('status' in o ? r.status === o.status && got.length === 0 : r.status === 200 && got.length === 1 && got[0] === `${o.to} ${o.path}`));
    assert.ok(ok, `observed ${observed}; expected ${expected.map(outcomeText).join(' or ')}; ${summarize(r)}`);
    assert.equal(r.responses.length, 1, summarize(r));
    assert.ok(r.closed, `connection closed after Connection: close; ${summarize(r)}`);
  });
}

test('absolute-form "GET http://internal-host/admin" is rejected with 400 and close, nothing forwarded', async () => {
  const before = NAMES.map((n) => ups[n].seen.length);
  const r = await sendRaw(port, 'GET http://internal-host/admin HTTP/1.1\r\nHost: public\r\n\r\n');
  const got = NAMES.flatMap((n, i) => ups[n].seen.slice(before[i]).map((s) => `${n} ${s.url}`));
  assert.equal(r.status, 400, summarize(r));
  assert.equal(r.responses.length, 1, summarize(r));
  assert.ok(r.closed && r.closeMs! <= 1000, `closed within 1 s; ${summarize(r)}`);
  assert.deepEqual(got, []);
});

test('absolute-form with a path-only authority trick "GET http://gw.test/public/../admin" is rejected too', async () => {
  const before = NAMES.map((n) => ups[n].seen.length);
  const r = await sendRaw(port, 'GET http://gw.test/public/../admin HTTP/1.1\r\nHost: gw.test\r\n\r\n');
  const got = NAMES.flatMap((n, i) => ups[n].seen.slice(before[i]).map((s) => `${n} ${s.url}`));
  assert.equal(r.status, 400, summarize(r));
  assert.ok(r.closed && r.closeMs! <= 1000, `closed within 1 s; ${summarize(r)}`);
  assert.deepEqual(got, []);
});
