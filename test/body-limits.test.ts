// Request bodies of unknown length (chunked) are counted as they stream: over maxBodySize the upstream request is
// aborted and the client gets 413; under it the body arrives whole and bytesIn is logged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { sendRaw } from './helpers/raw-http.ts';
import { simpleConfig } from './helpers/config.ts';

let up: Upstream;
let gw: GatewayProcess;

before(async () => {
  up = await startUpstream();
  gw = await startGateway(simpleConfig({ upstreamPort: up.port, gateway: '  limits: { maxBodySize: 1KiB }\n  accessLog: { path: stdout }' }));
});

after(async () => {
  await gw?.stop();
  await up?.close();
});

function chunked(total: number, chunk = 256): string {
  let out = '';
  for (let sent = 0; sent < total; sent += chunk) {
    const n = Math.min(chunk, total - sent);
    out += `${n.toString(16)}\r\n${'x'.repeat(n)}\r\n`;
  }
  return out + '0\r\n\r\n';
}

test('a chunked body under maxBodySize is forwarded whole and counted in bytesIn', async () => {
  const r = await sendRaw(gw.ports.http, `POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked(1000)}`);
  assert.equal(r.status, 200);
  const seen = up.seen.find((s) => s.url === '/small');
  assert.equal(seen?.body.length, 1000);
  let line: string | undefined;
  for (let i = 0; i < 100 && !line; i++) {
    line = gw.stdout.find((l) => l.includes('"path":"/small"'));
    if (!line) await new Promise((res) => setTimeout(res, 20));
  }
  assert.equal(JSON.parse(line!).bytesIn, 1000);
});

test('a chunked body over maxBodySize: 413, and the upstream never receives it complete', async () => {
  const r = await sendRaw(gw.ports.http, `POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(4096)}`);
  assert.equal(r.status, 413, JSON.stringify(r.responses.map((x) => x.status)));
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(up.seen.filter((s) => s.url === '/big').length, 0);
});

test('a Content-Length over maxBodySize is refused before anything is forwarded', async () => {
  const r = await sendRaw(gw.ports.http, `POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n${'y'.repeat(2048)}`);
  assert.equal(r.status, 413);
  assert.ok(r.closed);
  assert.equal(up.seen.filter((s) => s.url === '/cl').length, 0);
});
