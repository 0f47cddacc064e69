// set-header's value checks, and a client that leaves while a policy pipeline holds a backend response still streaming (outbound policies run on its
// head, so forward-request captures it): the backend response is dropped at once, not read to its end, even while an
// outbound step is still waiting (a send-request). The listener that does this is added only for such responses
// (policy-forward.ts); the direct path streams straight through and ends with the client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { GATEWAY, call, withGateway } from './helpers/policy-gateway.ts';

/** A backend that streams a chunk every 20 ms for up to 10 s; records when each response's connection closed early. */
function slowBackend(): Promise<{ server: http.Server; url: string; closedEarly: () => number; started: () => number }> {
  let closed = 0;
  let started = 0;
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/slow')) {
      // What the outbound send-request waits for: longer than the test allows the drop to take.
      setTimeout(() => res.end('late'), 2500);
      return;
    }
    started++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    let n = 0;
    const timer = setInterval(() => {
      res.write('x'.repeat(1024));
      if (++n >= 500) {
        clearInterval(timer);
        res.end();
      }
    }, 20);
    res.on('close', () => {
      clearInterval(timer);
      if (!res.writableFinished) closed++;
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    resolve({ server, url, closedEarly: () => closed, started: () => started });
  }));
}

/** The gateway, Backend `up`, Api `t` on /t and the start of its ApiPolicy, up to the inbound steps that follow. */
const gatewayWithPolicy = (upUrl: string): string => `${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "${upUrl}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: t }
spec: { path: /t, backend: up, stripPath: true }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: p }
spec:
  scope: { api: t }
  inbound:
`;

const config = (upUrl: string, outbound: boolean): string => `${gatewayWithPolicy(upUrl)}    - set-header: { name: x-in, value: "1" }
${outbound ? `  outbound:\n    - send-request: { responseVariableName: slow, url: "${upUrl}/slow", timeout: 10s }\n    - set-header: { name: x-out, value: "1" }\n` : ''}`;

/** Sends a GET and leaves: after 4 KiB of the response, or (outbound: nothing comes while send-request waits) after 300 ms. */
async function leave(url: string, waitForBody: boolean): Promise<string> {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.write('GET /t/stream HTTP/1.1\r\nHost: t\r\n\r\n');
  let got = '';
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (got.length > 4096) resolve();
    });
    socket.on('error', reject);
    if (!waitForBody) setTimeout(resolve, 300);
  });
  socket.destroy();
  return got;
}

for (const outbound of [true, false]) {
  test(`a client leaving drops the backend's streaming response at once (${outbound ? 'captured, outbound send-request waiting' : 'direct path'})`, async () => {
    const up = await slowBackend();
    try {
      await withGateway(config(up.url, outbound), async (g) => {
        const got = await leave(g.url, !outbound);
        const left = Date.now();
        if (!outbound) assert.match(got, /^HTTP\/1\.1 200/);
        else assert.equal(got, '', 'nothing is sent while the outbound send-request waits');
        while (up.closedEarly() === 0 && Date.now() - left < 2000) await sleep(20);
        assert.equal(up.started(), 1);
        assert.equal(up.closedEarly(), 1, 'the backend response was dropped');
        assert.ok(Date.now() - left < 1500, `dropped ${Date.now() - left} ms after the client left, not when send-request returned (2.5 s)`);
      });
    } finally {
      up.server.closeAllConnections();
      await new Promise((resolve) => up.server.close(resolve));
    }
  });
}

test('set-header refuses a computed value with a line break, in its one-value path and with several values', async () => {
  const up = http.createServer((req, res) => res.end(JSON.stringify(req.headers)));
  await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
  const upUrl = `http://127.0.0.1:${(up.address() as AddressInfo).port}`;
  const yaml = `${gatewayWithPolicy(upUrl)}    - set-header: { name: x-one, value: "@(context.Request.Url.Query['v'])" }
    - set-header: { name: x-lit, value: "fixed" }
    - set-header: { name: x-two, existsAction: append, values: ["a", "@(context.Request.Url.Query['w'])"] }
`;
  try {
    await withGateway(yaml, async (g) => {
      const ok = await call(`${g.url}/t/x?v=one&w=two`);
      assert.equal(ok.status, 200);
      const seen = ok.json() as Record<string, string>;
      assert.deepEqual([seen['x-one'], seen['x-lit'], seen['x-two']], ['one', 'fixed', 'a,two']);
      assert.equal((await call(`${g.url}/t/x?v=a%0Ab&w=two`)).status, 500, 'a line break in the one value');
      assert.equal((await call(`${g.url}/t/x?v=one&w=a%0Db`)).status, 500, 'a CR in one of several values');
    });
  } finally {
    await new Promise((resolve) => up.close(resolve));
  }
});
