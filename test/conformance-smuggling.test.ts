// Cross-process: the reliability.md §2.3 malformed-input catalogue, byte for byte, against a real gateway and upstream.
import { test, before, after } from 'node:test';
import http from 'node:http';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream, type SeenRequest } from './helpers/upstream.ts';
import { RawConnection, sendRaw, summarize, header, type RawResult } from './helpers/raw-http.ts';

let up: Upstream;
let gw: GatewayProcess;
let port: number;
/** Requests whose headers reached the upstream, complete or not (`up.seen` only holds complete ones). */
const started: string[] = [];

/** The valid request pipelined behind every malformed one: it must never be answered on its own. */
const PIPE = 'GET /ok HTTP/1.1\r\nHost: x\r\n\r\n';
/** Time for a request leaked by the gateway to reach the upstream before we count. */
const SETTLE_MS = 30;

function config(upstreamPort: number): string {
  return `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { path: "off" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec:
  url: http://127.0.0.1:${upstreamPort}
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: all }
spec:
  path: /
  backend: up
  operations:
    # Everything is routed (so a leaked request is visible upstream) except requests that ask for a 404.
    - { name: any, urlTemplate: /*, headers: [{ name: x-no-route, present: false }] }
`;
}

before(async () => {
  up = await startUpstream();
  up.server.on('request', (req) => started.push(`${req.method} ${req.url}`));
  gw = await startGateway(config(up.port));
  port = gw.ports.http;
});

after(async () => {
  await gw?.stop();
  await up?.close();
});

interface Mark {
  seen: number;
  started: number;
}

function mark(): Mark {
  return { seen: up.seen.length, started: started.length };
}

function since(m: Mark): { seen: SeenRequest[]; started: string[] } {
  return { seen: up.seen.slice(m.seen), started: started.slice(m.started) };
}

// ---------------------------------------------------------------------------------------------
// Malformed requests: 400 (or the stated status), close within 1 s, one response, nothing upstream.

interface BadCase {
  name: string;
  bytes: string;
  expect?: number[];
  /** Headers are valid, the error is in the body: the gateway may have started streaming upstream, but must never complete it. */
  bodyLevel?: boolean;
}

const post = (headers: string, body = ''): string => `POST /smuggle HTTP/1.1\r\nHost: x\r\n${headers}\r\n${body}`;
const CHUNKED_BODY = '5\r\nhello\r\n0\r\n\r\n';
const te = (value: string): string => post(`Transfer-Encoding: ${value}\r\n`, CHUNKED_BODY);
const cl = (value: string, body = ''): string => post(`Content-Length: ${value}\r\n`, body);
const chunks = (body: string): string => post('Transfer-Encoding: chunked\r\n', body);
const getWith = (headers: string): string => `GET / HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;

const BAD: BadCase[] = [
  // Framing, CL
  { name: 'CL: 1 + CL: 0', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 0\r\n\r\nZ' },
  { name: 'CL: 0 + CL: 1', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\nZ' },
  { name: 'CL: (empty) + CL: 59 (HAProxy CVE-2023-40225)', bytes: post('Content-Length:\r\nContent-Length: 59\r\n') },
  { name: 'CL: (empty) alone', bytes: 'GET / HTTP/1.1\r\nHost: whatever\r\nContent-Length: \r\n\r\n' },
  { name: 'CL: 0x10', bytes: cl('0x10', '0123456789abcdef') },
  { name: 'CL: +1_0', bytes: cl('+1_0', '0123456789') },
  { name: 'CL: 010 (leading zero)', bytes: cl('010', '01234567') },
  { name: 'CL: -48', bytes: cl('-48') },
  { name: 'CL: 1Z', bytes: cl('1Z', 'Z') },
  { name: 'CL: 18446744073709551616 (2^64)', bytes: cl('18446744073709551616') },
  { name: 'CL: 9007199254740993 (over 2^53)', bytes: cl('9007199254740993') },
  { name: 'CL: 1000,1000', bytes: cl('1000,1000') },
  { name: 'CL: 1000 1000', bytes: cl('1000 1000') },
  { name: 'CL: 1000\\x11', bytes: cl('1000\x11') },
  { name: 'CL: 1.0', bytes: cl('1.0', 'Z') },
  { name: 'CL: 2, 2', bytes: cl('2, 2', 'ZZ') },

  // Framing, TE
  { name: 'TE: chunked + CL: 5', bytes: post('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n') },
  { name: 'CL: 5 + TE: chunked', bytes: post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n') },
  { name: 'TE: chunked twice', bytes: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '1\r\nZ\r\n0\r\n\r\n') },
  { name: 'TE: chunked,chunked', bytes: te('chunked,chunked') },
  { name: 'TE: ,chunked', bytes: te(',chunked') },
  { name: 'TE: ,chunked + CL: 5 (Garden bug 21)', bytes: post('Transfer-Encoding: ,chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n') },
  { name: 'TE: chunked, identity', bytes: te('chunked, identity') },
  { name: 'TE: identity, chunked, identity', bytes: te('identity, chunked, identity') },
  { name: 'TE: xchunked', bytes: te('xchunked') },
  { name: 'TE: chunk', bytes: te('chunk') },
  { name: 'TE: "chunked"', bytes: te('"chunked"') },
  { name: "TE: 'chunked'", bytes: te("'chunked'") },
  { name: 'TE:\\x0bchunked', bytes: post('Transfer-Encoding:\x0bchunked\r\n', CHUNKED_BODY) },
  { name: 'TE: chunked\\r', bytes: te('chunked\r') },
  { name: 'TE: chunked\\t', bytes: te('chunked\t') },
  { name: 'TE: \\xa0chunked\\xa0', bytes: te('\xa0chunked\xa0') },
  { name: 'TE: \\xffchunked\\xff', bytes: te('\xffchunked\xff') },
  { name: 'Transf\\x82r-Encoding: chunked', bytes: post('Transf\x82r-Encoding: chunked\r\n', CHUNKED_BODY) },
  { name: 'Transfer_Encoding: chunked', bytes: post('Transfer_Encoding: chunked\r\n', CHUNKED_BODY) },
  { name: 'Transfer Encoding: chunked', bytes: post('Transfer Encoding: chunked\r\n', CHUNKED_BODY) },
  { name: 'Transfer-Encoding : chunked', bytes: post('Transfer-Encoding : chunked\r\n', CHUNKED_BODY) },
  { name: 'Transfer-%45ncoding: chunked', bytes: post('Transfer-%45ncoding: chunked\r\n', CHUNKED_BODY) },
  { name: 'Content_Length: 5 (look-alike name)', bytes: post('Content_Length: 5\r\n', 'hello') },
  { name: 'folded: Foo: bar\\r\\n Transfer-Encoding: chunked', bytes: post('Foo: bar\r\n Transfer-Encoding: chunked\r\n', CHUNKED_BODY) },
  { name: 'Foo: bar\\rTransfer-Encoding: chunked', bytes: post('Foo: bar\rTransfer-Encoding: chunked\r\n', CHUNKED_BODY) },
  { name: 'Foo: bar\\nTransfer-Encoding: chunked', bytes: post('Foo: bar\nTransfer-Encoding: chunked\r\n', CHUNKED_BODY) },
  { name: 'Transfer-\\r\\nEncoding: chunked (Passenger, Garden bug 37)', bytes: post('Transfer-\r\nEncoding: chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n') },
  { name: 'TE: chunked in HTTP/1.0', bytes: `POST /smuggle HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}` },

  // Chunk body
  { name: 'chunk size 0_2e (Garden bug 22)', bytes: chunks('0_2e\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk size 0x1', bytes: chunks('0x1\r\nA\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk size -0x0', bytes: chunks('-0x0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk size Z', bytes: chunks('Z\r\nA\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk size ZZ', bytes: chunks('ZZ\r\nA\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk size " 0" (leading SP)', bytes: chunks(' 0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk size empty (Garden bug 17)', bytes: chunks('\r\n\r\n'), bodyLevel: true },
  { name: 'chunk size 1these-bytes-never-get-validated', bytes: chunks('1these-bytes-never-get-validated\r\nA\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk line 2\\r\\r;a', bytes: chunks('2\r\r;a\r\nAB\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk line 41;a=b\\r\\r… (Garden bug 36)', bytes: chunks(`41;a=b\r\r${'X'.repeat(65)}\r\n0\r\n\r\nGET /bad_path/pwned HTTP/1.1\r\nHost: a\r\nContent-Length: 412\r\n\r\n0\r\n\r\n`), bodyLevel: true },
  { name: 'chunk line 5\\r\\r;ABCD (Node, Garden bug 31)', bytes: chunks('5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk ext 1;a\\rb', bytes: chunks('1;a\rb\r\nA\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk ext bare ";"', bytes: chunks('5;\r\nhello\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk size 5 with 7 bytes of data', bytes: chunks('5\r\nABCDEFG\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk data without its CRLF', bytes: chunks('5\r\nABCDE0\r\n\r\n'), bodyLevel: true },
  { name: 'chunked body without the 0 chunk (next request follows)', bytes: chunks('5\r\nABCDE\r\n'), bodyLevel: true },
  { name: 'chunk size of 18 hex digits (overflow)', bytes: chunks('100000000000000000\r\nA\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk size FFFFFFFFFFFFFFFFFF', bytes: chunks('FFFFFFFFFFFFFFFFFF\r\nA\r\n0\r\n\r\n'), bodyLevel: true },
  { name: 'chunk lines ended by bare LF', bytes: chunks('5\nhello\n0\n\n'), bodyLevel: true },
  { name: 'chunk extension of 100 KB (DoS cap)', bytes: chunks(`1;a=${'x'.repeat(100 * 1024)}\r\nA\r\n0\r\n\r\n`), expect: [400, 413], bodyLevel: true },

  // Line endings / whitespace
  { name: 'bare LF line endings', bytes: 'GET / HTTP/1.1\nHost: a\n\n' },
  { name: '\\r\\n\\rZ ends the header block (Node, Garden bug 30)', bytes: 'GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\nHost: a\r\n\r\n' },
  { name: 'bare CR in a value: X: a\\rb', bytes: getWith('X: a\rb\r\n') },
  { name: 'bare CR between fields (Garden bug 13)', bytes: getWith('Visible: :/\rSmuggled: :)\r\n') },
  { name: 'NUL in a value: Header: v\\x00alue', bytes: getWith('Header: v\x00alue\r\n') },
  { name: 'NUL then CR in a value (Garden bug 2)', bytes: getWith('Header: v\x00\ralue\r\n') },
  { name: 'Content-Length\\x85: 10', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length\x85: 10\r\n\r\n0123456789' },
  { name: 'first header preceded by \\t', bytes: 'GET / HTTP/1.1\r\n\tContent-Length: 1\r\nHost: x\r\n\r\nX' },
  { name: 'first header preceded by SP', bytes: 'GET / HTTP/1.1\r\n Host: x\r\n\r\n' },
  { name: 'obs-fold on an ordinary header', bytes: getWith('X-Foo: a\r\n b\r\n') },
  { name: 'obs-fold with a tab', bytes: getWith('X-Foo: a\r\n\tb\r\n') },
  { name: 'empty value then bare LF (Garden bug 19)', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nUseless:\n\nGET / HTTP/1.1\r\n\r\n' },

  // Names
  { name: 'empty name ": z"', bytes: 'GET / HTTP/1.1\r\n: z\r\nHost: x\r\n\r\n' },
  { name: 'empty name and value ":" (Garden bug 27)', bytes: 'GET / HTTP/1.1\r\nHost: x\r\n:\r\nI: am chopped off\r\n\r\n' },
  { name: 'space in a name: X Y: z', bytes: getWith('X Y: z\r\n') },
  { name: 'non-ASCII name: \\xefoo: bar', bytes: getWith('\xefoo: bar\r\n') },
  ...'"(),/;<=>?@[\\]{}'.split('').map((c) => ({ name: `name containing ${JSON.stringify(c)}`, bytes: getWith(`X${c}Y: z\r\n`) })),
  ...['\x00', '\x01', '\x08', '\x0b', '\x7f'].map((c) => ({ name: `name containing control \\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`, bytes: getWith(`X${c}Y: z\r\n`) })),
  { name: 'Content-Length 10 (no colon, Garden bug 28)', bytes: 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length 10\r\n\r\n0123456789' },

  // Request line
  { name: 'GET ! HTTP/1.1', bytes: 'GET ! HTTP/1.1\r\nHost: x\r\n\r\n' },
  { name: 'GET /\\nHTTP/1.1', bytes: 'GET /\nHTTP/1.1\r\n\r\n' },
  { name: 'GET / HTTP/\\r\\r1.1', bytes: 'GET / HTTP/\r\r1.1\r\n\r\n' },
  { name: 'GET /test HTTP/1.32', bytes: 'GET /test HTTP/1.32\r\nHost: x\r\n\r\n' },
  { name: 'GET / HTTP/4294967295.255', bytes: 'GET / HTTP/4294967295.255\r\nHost: x\r\n\r\n' },
  { name: 'HTTP/1.10', bytes: 'GET / HTTP/1.10\r\nHost: x\r\n\r\n' },
  { name: 'HTTP/1 (no minor)', bytes: 'GET / HTTP/1\r\nHost: x\r\n\r\n' },
  { name: 'HTTP/0.9 (no version)', bytes: 'GET /\r\n\r\n' },
  // RFC 9112 §3: exactly one SP between the parts (llhttp tolerated a doubled one; the h1 engine does not).
  { name: 'two spaces in the request line', bytes: 'GET  /two HTTP/1.1\r\nHost: x\r\n\r\n' },
  { name: 'tab in the request line', bytes: 'GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n' },
  { name: 'fragment in the target: /a#b', bytes: 'GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n' },
  { name: 'method not a token: G=":<>(e),[T];?"', bytes: 'G=":<>(e),[T];?" /get HTTP/1.1\r\nHost: x\r\n\r\n' },
  { name: '\\x00 / HTTP/............0596.7407.', bytes: '\x00 / HTTP/............0596.7407.\r\n\r\n' },
  { name: '100 KB request target → 414', bytes: `GET /${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, expect: [414] },
  { name: '10 KB request target (over maxUrlLength 8 KiB) → 414', bytes: `GET /${'a'.repeat(10 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, expect: [414] },
  { name: '10 KB method → 501', bytes: `${'X'.repeat(10 * 1024)} / HTTP/1.1\r\nHost: x\r\n\r\n`, expect: [501] },

  // Host
  { name: 'no Host', bytes: 'GET / HTTP/1.1\r\n\r\n' },
  { name: 'two different Hosts', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' },
  { name: 'two identical Hosts', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n' },
  { name: 'Host: a,b', bytes: 'GET / HTTP/1.1\r\nHost: a,b\r\n\r\n' },
  { name: 'Host: user@a', bytes: 'GET / HTTP/1.1\r\nHost: user@a\r\n\r\n' },
  { name: 'Host: a/b', bytes: 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n' },
  { name: 'Host: (empty)', bytes: 'GET / HTTP/1.1\r\nHost:\r\n\r\n' },
  { name: 'Host: google.com\\x00.evil', bytes: 'GET / HTTP/1.1\r\nHost: google.com\x00.evil\r\n\r\n' },

  // Sizes
  { name: 'header block over the limit (20 KB header) → 431', bytes: getWith(`X-Big: ${'a'.repeat(20 * 1024)}\r\n`), expect: [431] },
  { name: 'over 100 header fields → 431', bytes: getWith(Array.from({ length: 100 }, (_, i) => `X-H${i}: v\r\n`).join('')), expect: [431] },
  { name: '1 MB single cookie → 431', bytes: getWith(`Cookie: a=${'b'.repeat(1024 * 1024)}\r\n`), expect: [431] },
];

// PortSwigger http-request-smuggler DesyncBox.applyDesync, applied to "Transfer-Encoding: chunked" of one base request.
const TE_LINE = 'Transfer-Encoding: chunked';
const DESYNC_BASE = `POST /smuggle HTTP/1.1\r\nHost: x\r\n${TE_LINE}\r\n\r\n${CHUNKED_BODY}`;
const H = 'Transfer-Encoding: ';
const special = [0x00, 0x09, 0x0b, 0x0c, 0x0d, 0x7f];
const withHeader = (req: string, from: string, to: string): string => req.replace(from, to);
const addHeader = (req: string, line: string): string => req.replace('\r\n\r\n', `\r\n${line}\r\n\r\n`);

const DESYNC_BAD: Array<[string, string]> = [
  ['underjoin1', withHeader(DESYNC_BASE, H, H.replace('-', '_'))],
  ['spacejoin1', withHeader(DESYNC_BASE, H, H.replace('-', ' '))],
  ['space1', withHeader(DESYNC_BASE, H, H.replace(':', ' :'))],
  ['nameprefix1', withHeader(DESYNC_BASE, H, `Foo: bar\r\n ${H}`)],
  ['nameprefix2', withHeader(DESYNC_BASE, H, `Foo: bar\r\n\t${H}`)],
  ['linewrapped1', withHeader(DESYNC_BASE, H, H.replace(' ', '\n '))],
  ['gareth1', withHeader(DESYNC_BASE, H, H.replace(':', '\n :'))],
  ['badsetupCR', withHeader(DESYNC_BASE, H, `Foo: bar\r${H}`)],
  ['badsetupLF', withHeader(DESYNC_BASE, H, `Foo: bar\n${H}`)],
  ['vertwrap', withHeader(DESYNC_BASE, H, `${H}\n\x0b`)],
  ['tabwrap', withHeader(DESYNC_BASE, H, `${H}\r\n\t`)],
  ['0dwrap', withHeader(DESYNC_BASE, H, `Foo: bar\r\n\r${H}`)],
  ['0dspam', withHeader(DESYNC_BASE, H, `${H.slice(0, 3)}\r${H.slice(3)}`)],
  ['spjunk', withHeader(DESYNC_BASE, H, H.replace(':', ' x:'))],
  ['backslash', withHeader(DESYNC_BASE, H, H.replace('-', '\\'))],
  ['spaceFF', withHeader(DESYNC_BASE, H, `${H.slice(0, -1)}\xff`)],
  ['unispace', withHeader(DESYNC_BASE, H, `${H.slice(0, -1)}\xa0`)],
  ['commaCow', withHeader(DESYNC_BASE, TE_LINE, 'Transfer-Encoding: chunked, identity')],
  ['cowComma', withHeader(DESYNC_BASE, H, 'Transfer-Encoding: identity, ')],
  ['quoted', withHeader(DESYNC_BASE, TE_LINE, 'Transfer-Encoding: "chunked"')],
  ['aposed', withHeader(DESYNC_BASE, TE_LINE, "Transfer-Encoding: 'chunked'")],
  ['dualchunk', addHeader(DESYNC_BASE, 'Transfer-encoding: identity')],
  ['lazygrep', withHeader(DESYNC_BASE, TE_LINE, 'Transfer-Encoding: chunk')],
  ['0dsuffix', withHeader(DESYNC_BASE, TE_LINE, 'Transfer-Encoding: chunked\r')],
  ['tabsuffix', withHeader(DESYNC_BASE, TE_LINE, 'Transfer-Encoding: chunked\t')],
  ['revdualchunk', withHeader(DESYNC_BASE, TE_LINE, 'Transfer-Encoding: identity\r\nTransfer-Encoding: chunked')],
  ['nested', withHeader(DESYNC_BASE, TE_LINE, 'Transfer-Encoding: identity, chunked, identity')],
  ['encode', withHeader(DESYNC_BASE, TE_LINE, 'Transfer-%45ncoding: chunked')],
  ['accentTE', withHeader(DESYNC_BASE, H, 'Transf\x82r-Encoding: ')],
  ['accentCH', withHeader(DESYNC_BASE, 'Transfer-Encoding: chu', 'Transfer-Encoding: ch\x96')],
  ['badwrap', withHeader(withHeader(DESYNC_BASE, H, 'X-Blah-Ignore: '), '\r\n', `\r\n ${H}chunked\r\n`)],
  ['bodysplit', addHeader(withHeader(DESYNC_BASE, TE_LINE, 'X: y'), 'Foo: barn\n\nTransfer-Encoding: chunked')],
  // spacefix1/prefix1/suffix1 with the special characters. A leading HTAB is OWS (RFC 9110 §5.6.3): spacefix1:9 and
  // prefix1:9 are listed with the valid controls below. A trailing one is rejected, as §2.3 lists `TE: chunked\t`.
  ...special.flatMap((c): Array<[string, string]> => [
    ...(c === 0x09 ? [] : ([
      [`spacefix1:${c}`, withHeader(DESYNC_BASE, H, `${H.replace(' ', '')}${String.fromCharCode(c)}`)],
      [`prefix1:${c}`, withHeader(DESYNC_BASE, H, `${H}${String.fromCharCode(c)}`)],
    ] as Array<[string, string]>)),
    [`suffix1:${c}`, withHeader(DESYNC_BASE, TE_LINE, `${TE_LINE}${String.fromCharCode(c)}`)],
  ]),
];
for (const [technique, bytes] of DESYNC_BAD) BAD.push({ name: `DesyncBox ${technique}`, bytes });

function problemsOf(r: RawResult, expect: number[], upstream: { seen: SeenRequest[]; started: string[] }, bodyLevel: boolean): string[] {
  const p: string[] = [];
  if (r.status === undefined || !expect.includes(r.status)) p.push(`status ${r.status ?? 'none'}, expected ${expect.join('/')}`);
  if (r.responses.length !== 1) p.push(`${r.responses.length} responses, expected exactly 1`);
  if (!r.closed || (r.closeMs ?? Infinity) > 1000) p.push(r.closed ? `closed only after ${Math.round(r.closeMs!)} ms` : 'connection not closed within 1 s');
  if (upstream.seen.length) p.push(`upstream completed ${upstream.seen.map((s) => `${s.method} ${s.url}`).join(', ')}`);
  else if (!bodyLevel && upstream.started.length) p.push(`upstream received headers of ${upstream.started.join(', ')}`);
  return p;
}

for (const c of BAD) {
  test(`rejects ${c.name}`, async () => {
    const m = mark();
    const r = await sendRaw(port, c.bytes + PIPE);
    await delay(SETTLE_MS);
    const problems = problemsOf(r, c.expect ?? [400], since(m), c.bodyLevel === true);
    assert.deepEqual(problems, [], `${summarize(r)}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Valid controls: framing the gateway must accept, with exactly the right upstream requests.

interface Expected {
  method: string;
  url: string;
  body?: string;
}

/** Sends `bytes`, waits for `statuses.length` responses, and checks them and what the upstream got, in order. */
async function expectForwarded(bytes: string, statuses: number[], upstream: Expected[]): Promise<{ r: RawResult; seen: SeenRequest[] }> {
  const m = mark();
  const r = await sendRaw(port, bytes, { responses: statuses.length, timeoutMs: 3000 });
  await delay(SETTLE_MS);
  const got = since(m);
  assert.deepEqual(r.responses.map((x) => x.status), statuses, summarize(r));
  // Pipelined requests go upstream concurrently (over separate pooled connections), so compare them in any order;
  // the order that matters, that of the responses, is checked by the callers from the echoed bodies.
  const key = (x: { method: string; url: string }): string => `${x.method} ${x.url}`;
  const byKey = (a: { method: string; url: string }, b: { method: string; url: string }): number => key(a).localeCompare(key(b));
  const want = [...upstream].sort(byKey);
  assert.deepEqual(
    [...got.seen].sort(byKey).map((s, i) => ({ method: s.method, url: s.url, body: want[i]?.body === undefined ? undefined : s.body })),
    want.map((u) => ({ method: u.method, url: u.url, body: u.body })),
  );
  assert.equal(got.started.length, upstream.length, `upstream saw the headers of ${got.started.join(', ')}`);
  return { r, seen: got.seen };
}

/** The request URLs the upstream echoed, in the order the responses arrived. */
function echoedUrls(r: RawResult): string[] {
  return r.responses.map((x) => (JSON.parse(x.body.toString()) as { url: string }).url);
}

/** The upstream must see framing undici wrote (one `transfer-encoding: chunked` or one numeric content-length), never the client's. */
function assertCleanFraming(s: SeenRequest): void {
  const names = s.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  const te = s.rawHeaders.filter((_, i) => i % 2 === 1 && names[(i - 1) / 2] === 'transfer-encoding');
  const clv = s.rawHeaders.filter((_, i) => i % 2 === 1 && names[(i - 1) / 2] === 'content-length');
  assert.ok(te.length + clv.length <= 1, `one framing header upstream, got TE ${JSON.stringify(te)} CL ${JSON.stringify(clv)}`);
  if (te.length) assert.equal(te[0], 'chunked');
  if (clv.length) assert.equal(clv[0], String(Buffer.byteLength(s.body)));
}

const VALID_CHUNKED: Array<[string, string]> = [
  ['TRANSFER-ENCODING: CHUNKED (uppercase name and value)', 'TRANSFER-ENCODING: CHUNKED'],
  ['DesyncBox vanilla', TE_LINE],
  ['DesyncBox UPPERCASE (name only)', 'TRANSFER-ENCODING: chunked'],
  ['DesyncBox multiCase', 'tRANSFER-ENCODING: chunked'],
  ['DesyncBox nospace1', 'Transfer-Encoding:chunked'],
  ['DesyncBox valueprefix1 (two spaces)', 'Transfer-Encoding:  chunked'],
  // §2.1: "accept only exactly chunked (case-insensitive, OWS trimmed)"; a leading HTAB is OWS (RFC 9110 §5.6.3).
  ['DesyncBox prefix1:9 (leading HTAB is OWS)', 'Transfer-Encoding: \tchunked'],
  ['DesyncBox spacefix1:9', 'Transfer-Encoding:\tchunked'],
  ['DesyncBox connection (TE also named in Connection)', 'Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked'],
];

for (const [name, line] of VALID_CHUNKED) {
  test(`accepts ${name}: chunked body parsed, re-framed upstream`, async () => {
    const bytes = `POST /ctl HTTP/1.1\r\nHost: x\r\n${line}\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n${PIPE}`;
    const { r, seen } = await expectForwarded(bytes, [200, 200], [{ method: 'POST', url: '/ctl', body: 'hello world' }, { method: 'GET', url: '/ok', body: '' }]);
    assert.deepEqual(echoedUrls(r), ['/ctl', '/ok']);
    assertCleanFraming(seen.find((s) => s.method === 'POST')!);
  });
}

test('accepts a trailer that looks like a request line (Puma, Garden bug 39); the trailer never reaches the upstream as a header', async () => {
  const bytes = `POST /ctl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX:POST / HTTP/1.1\r\n\r\n${PIPE}`;
  const { r, seen } = await expectForwarded(bytes, [200, 200], [{ method: 'POST', url: '/ctl', body: '' }, { method: 'GET', url: '/ok', body: '' }]);
  assert.deepEqual(echoedUrls(r), ['/ctl', '/ok']);
  const post = seen.find((s) => s.method === 'POST')!;
  assert.equal(post.headers.x, undefined);
  assertCleanFraming(post);
});

test('DesyncBox contentEnc (Content-Encoding: chunked is no framing): the body-less POST is answered, then the leftover is a bad request', async () => {
  const m = mark();
  const r = await sendRaw(port, `POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Encoding: chunked\r\n\r\n${CHUNKED_BODY}${PIPE}`);
  await delay(SETTLE_MS);
  const got = since(m);
  assert.deepEqual(r.responses.map((x) => x.status), [200, 400], summarize(r));
  assert.ok(r.closed && r.closeMs! <= 1000, summarize(r));
  assert.deepEqual(got.seen.map((s) => `${s.method} ${s.url} ${JSON.stringify(s.body)}`), ['POST /smuggle ""']);
});

test('pipelined GET / + GET /admin: both routed separately, answered in order', async () => {
  const bytes = 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
  const { r } = await expectForwarded(bytes, [200, 200], [{ method: 'GET', url: '/' }, { method: 'GET', url: '/admin' }]);
  assert.deepEqual(echoedUrls(r), ['/', '/admin']);
});

test('pipelined valid request then one the gateway rejects (duplicate Host): 200, then 400 and close', async () => {
  const m = mark();
  const r = await sendRaw(port, 'GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n' + PIPE);
  await delay(SETTLE_MS);
  const got = since(m);
  assert.deepEqual(r.responses.map((x) => x.status), [200, 400], summarize(r));
  assert.ok(r.closed && r.closeMs! <= 1000, summarize(r));
  assert.deepEqual(got.started, ['GET /first']);
});

test('pipelined valid request then one the parser rejects (bare LF): 200, then 400 and close, in order', async () => {
  const m = mark();
  const r = await sendRaw(port, 'GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\nHost: x\n\n' + PIPE);
  await delay(SETTLE_MS);
  const got = since(m);
  assert.deepEqual(r.responses.map((x) => x.status), [200, 400], summarize(r));
  assert.ok(r.closed && r.closeMs! <= 1000, summarize(r));
  assert.deepEqual(got.started, ['GET /first']);
});

// ---------------------------------------------------------------------------------------------
// Early responses (CL.0 / 0.CL): an answer before the body is read must not let the body become a request.

const SMUGGLED = 'GET /ok HTTP/1.1\r\nHost: x\r\n\r\n';

/** Sends `head`, expects the early 404, then sends a request-shaped body: it must never be answered or forwarded. */
async function assertEarlyRefusalIsFinal(head: string): Promise<void> {
  const m = mark();
  const conn = await RawConnection.open(port);
  try {
    conn.write(head);
    assert.ok(await conn.waitForResponses(1, 2000), summarize(conn.result()));
    assert.equal(conn.result().status, 404);
    conn.write(SMUGGLED);
    await conn.waitForClose(1000);
    await delay(SETTLE_MS);
    const r = conn.result();
    assert.equal(r.responses.length, 1, summarize(r));
    assert.deepEqual(since(m).started, []);
  } finally {
    conn.close();
  }
}

test('early 404 with a partly sent body: the rest of the body is never parsed as a request', async () => {
  await assertEarlyRefusalIsFinal(`POST /nowhere HTTP/1.1\r\nHost: x\r\nX-No-Route: 1\r\nContent-Length: 60\r\n\r\nabcde`);
});

test('early 404 before any body byte: a body that is exactly a request (CL.0) is never answered', async () => {
  await assertEarlyRefusalIsFinal(`POST /nowhere HTTP/1.1\r\nHost: x\r\nX-No-Route: 1\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n`);
});

test('Expect: 100-continue to an unknown route: the final 404 without a 100 first, then close; the body is never a request', async () => {
  const m = mark();
  const conn = await RawConnection.open(port);
  try {
    conn.write(`POST /nowhere HTTP/1.1\r\nHost: x\r\nX-No-Route: 1\r\nExpect: 100-continue\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n`);
    assert.ok(await conn.waitForResponses(1, 2000), summarize(conn.result()));
    assert.equal(conn.result().status, 404, summarize(conn.result()));
    assert.equal(header(conn.result().responses[0], 'connection'), 'close');
    conn.write(SMUGGLED);
    assert.ok(await conn.waitForClose(1000), `closed within 1 s: ${summarize(conn.result())}`);
    await delay(SETTLE_MS);
    const r = conn.result();
    assert.deepEqual(r.responses.map((x) => x.status), [404], summarize(r));
    assert.deepEqual(since(m).started, []);
  } finally {
    conn.close();
  }
});

test('Expect: 100-continue to a route: 100, then the body is forwarded and answered; Expect is not forwarded', async () => {
  const m = mark();
  const conn = await RawConnection.open(port);
  try {
    conn.write('POST /exp HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    assert.ok(await conn.waitForResponses(1, 2000), summarize(conn.result()));
    assert.equal(conn.result().status, 100);
    conn.write('hello');
    assert.ok(await conn.waitForResponses(2, 2000), summarize(conn.result()));
    assert.deepEqual(conn.result().responses.map((x) => x.status), [100, 200]);
    const got = since(m).seen;
    assert.equal(got.length, 1);
    assert.equal(got[0].body, 'hello');
    assert.equal(got[0].headers.expect, undefined);
  } finally {
    conn.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Request hygiene: what the upstream sees.

test('hop-by-hop headers and every name listed in Connection are dropped; framing is the gateway\'s own', async () => {
  const bytes =
    'POST /hygiene HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret, X-Forwarded-For, Via\r\nX-Secret: s\r\n' +
    'Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\n' +
    'X-Forwarded-For: 6.6.6.6\r\nVia: 1.0 evil\r\nContent-Length: 5\r\n\r\nhello';
  const { seen } = await expectForwarded(bytes, [200], [{ method: 'POST', url: '/hygiene', body: 'hello' }]);
  const h = seen[0].headers;
  for (const name of ['x-secret', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding']) {
    assert.equal(h[name], undefined, `${name} forwarded: ${JSON.stringify(h[name])}`);
  }
  // undici frames its own connection; nothing of the client's Connection list survives.
  assert.ok(h.connection === undefined || /^(keep-alive|close)$/.test(h.connection), `connection ${h.connection}`);
  // `Connection: X-Forwarded-For, Via` cannot strip what the gateway adds (hop-by-hop removal happens first).
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.match(String(h.via), /1\.1 lockgate$/);
  assertCleanFraming(seen[0]);
});

test('a chunked request reaches the upstream with one chunked framing from undici and the exact bytes', async () => {
  const body = 'a'.repeat(3000);
  const bytes = `POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${(1000).toString(16)}\r\n${body.slice(0, 1000)}\r\n${(2000).toString(16)};ext=1\r\n${body.slice(1000)}\r\n0\r\nX-Trailer: t\r\n\r\n`;
  const { seen } = await expectForwarded(bytes, [200], [{ method: 'POST', url: '/chunked', body }]);
  assertCleanFraming(seen[0]);
  assert.equal(seen[0].headers['x-trailer'], undefined);
});

test('refusals at the parser are counted in lockgate_requests_refused_total by status', async () => {
  await sendRaw(port, 'GET / HTTP/1.1\nHost: a\n\n');
  await sendRaw(port, getWith(`X-Big: ${'a'.repeat(20 * 1024)}\r\n`));
  const text = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: gw.admin, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
    }).on('error', reject);
  });
  const count = (status: number): number => Number(new RegExp(`^lockgate_requests_refused_total\\{status="${status}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  assert.ok(count(400) >= 1, text.split('\n').filter((l) => l.includes('refused')).join('\n'));
  assert.ok(count(431) >= 1);
});
