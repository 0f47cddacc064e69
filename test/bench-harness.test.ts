// The benchmark harness's pure parts on fixed inputs: /proc parsing, wrk parsing, ratios, config generation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { ANY_HOST, catchAllApi, generateRoutes, lockgateYaml, requestsFileText } from '../bench/config.ts';
import type { BenchApi } from '../bench/config.ts';
import { coreBusy, cpuUsPerRequest, parseCoreTicks, parseKbField, parseStat } from '../bench/measure.ts';
import { proxyConfig, upstreamConfig } from '../bench/nginx.ts';
import { computeRatios, medianPairRound, medianRound, pairedRatio, replaceReadmeSection } from '../bench/report.ts';
import type { SystemResult } from '../bench/report.ts';
import { buildScenarios, parseOnly, selectScenarios } from '../bench/scenarios.ts';
import { parseWrkOutput, wrkArgs } from '../bench/wrk.ts';
import { parseConfigText } from '../src/model/load-config.ts';

test('parseStat reads utime and stime after a command name holding spaces and parentheses', () => {
  const line = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 9000 0 3 0 1234 567 0 0 20 0 11 0 28198 1478448 35000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n';
  assert.deepEqual(parseStat(line), { utime: 1234, stime: 567 });
  assert.throws(() => parseStat('garbage'), /no "\)"/);
});

test('parseKbField reads VmHWM and Anonymous in kB', () => {
  const status = 'Name:\tnode\nVmPeak:\t 2000 kB\nVmHWM:\t  143716 kB\nVmRSS:\t  100000 kB\n';
  const rollup = '55e-7ff ---p 00000000 00:00 0  [rollup]\nRss:   1608 kB\nAnonymous:   108 kB\nAnonHugePages:  0 kB\n';
  assert.equal(parseKbField(status, 'VmHWM'), 143716);
  assert.equal(parseKbField(rollup, 'Anonymous'), 108);
  assert.throws(() => parseKbField(status, 'Anonymous'), /no Anonymous/);
});

test('core busy fractions come from the cpuN lines, with idle and iowait as not busy', () => {
  const before = parseCoreTicks('cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 100 0 50 800 50 0 0 0 0 0\ncpu1 0 0 0 1000 0 0 0 0 0 0\nintr 1\n');
  const after = parseCoreTicks('cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 170 0 80 800 50 0 0 0 0 0\ncpu1 10 0 0 1090 0 0 0 0 0 0\n');
  assert.deepEqual(before[0], { busy: 150, total: 1000 });
  const busy = coreBusy(before, after);
  assert.equal(busy[0], 1);
  assert.equal(busy[1], 0.1);
});

test('cpuUsPerRequest divides CPU time by requests', () => {
  // 250 ticks at 100 Hz = 2.5 s over 50,000 requests = 50 µs each
  assert.equal(cpuUsPerRequest({ utime: 1000, stime: 200 }, { utime: 1200, stime: 250 }, 50_000, 100), 50);
  assert.equal(cpuUsPerRequest({ utime: 0, stime: 0 }, { utime: 5, stime: 0 }, 0, 100), 0);
});

const WRK_TEXT = `Running 5s test @ http://127.0.0.1:37137
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.92ms  275.23us   3.38ms   81.27%
    Req/Sec    37.11k     0.93k   38.18k    75.00%
  Latency Distribution
     50%  850.00us
     75%    1.06ms
     90%    1.10ms
     99%    1.47s
  184725 requests in 5.00s, 2.27GB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 17
Requests/sec:  36945.12
Transfer/sec:      1.13GB
`;

test('parseWrkOutput reads the text summary with mixed latency units', () => {
  const r = parseWrkOutput(WRK_TEXT);
  assert.equal(r.requests, 184725);
  assert.equal(r.durationS, 5);
  assert.equal(r.rps, 36945.12);
  assert.equal(r.p50Ms, 0.85);
  assert.equal(r.p99Ms, 1470);
  assert.equal(r.non2xx, 17);
  assert.equal(r.socketErrors, 6);
});

test('parseWrkOutput prefers the exact WRK_JSON line from rotate.lua', () => {
  const json = 'WRK_JSON {"requests":73890,"duration_us":2000000,"bytes":1,"p50_us":1007,"p99_us":1473,"max_us":3381,"connect":0,"read":1,"write":0,"status":4,"timeout":0}';
  const r = parseWrkOutput(`${WRK_TEXT}${json}\n`);
  assert.equal(r.requests, 73890);
  assert.equal(r.rps, 36945);
  assert.equal(r.p50Ms, 1.007);
  assert.equal(r.p99Ms, 1.473);
  assert.equal(r.non2xx, 4);
  assert.equal(r.socketErrors, 1);
  assert.throws(() => parseWrkOutput('wrk: connection refused'), /unrecognised wrk output/);
});

test('wrkArgs pins wrk and keeps -t1 -c50 with the data file and body size after --', () => {
  const args = wrkArgs({ cpu: 0, port: 8080, durationS: 5, requestsFile: '/tmp/r.tsv', bodyBytes: 16384 });
  assert.deepEqual(args.slice(0, 2), ['-c', '0']);
  assert.ok(args.includes('-t1') && args.includes('-c50') && args.includes('-d5s') && args.includes('--latency'));
  assert.deepEqual(args.slice(-4), ['http://127.0.0.1:8080', '--', '/tmp/r.tsv', '16384']);
});

const result = (system: string, rps: number, cpu = 10): SystemResult => ({ system, rps, p50_ms: 1, p99_ms: 2, cpu_us_per_req: cpu, rss_mb: 50, anon_mb: 20 });

test('medianRound reports the whole middle round by req/s', () => {
  const rounds = [{ rps: 30, tag: 'a' }, { rps: 10, tag: 'b' }, { rps: 20, tag: 'c' }];
  assert.equal(medianRound(rounds)?.tag, 'c');
  assert.equal(medianRound([{ rps: 5 }, { rps: 9 }])?.rps, 5);
  assert.equal(medianRound([]), undefined);
});

test('computeRatios compares req/s with bare-dispatch, the faster Node peer and nginx', () => {
  const list = [result('lockgate', 20_000), result('bare-dispatch', 25_000), result('nginx', 40_000), result('@fastify/http-proxy', 8_000), result('http-proxy', 16_000)];
  assert.deepEqual(computeRatios('small-get', list), { 'lockgate/bare-dispatch': 0.8, 'lockgate/best-node-peer': 1.25, 'lockgate/nginx': 0.5 });
  assert.deepEqual(computeRatios('small-get', [result('nginx', 1)]), { 'lockgate/bare-dispatch': null, 'lockgate/best-node-peer': null, 'lockgate/nginx': null });
});

test('route scenarios add CPU-per-request ratios, and routes-10000 compares with routes-10', () => {
  const r10 = result('lockgate', 20_000, 40);
  const list = [result('lockgate', 18_000, 44), result('bare-dispatch', 24_000, 33)];
  assert.deepEqual(computeRatios('routes-10', [r10, result('bare-dispatch', 25_000, 32)]), { 'lockgate/bare-dispatch': 0.8, 'cpu:lockgate/bare-dispatch': 1.25 });
  assert.deepEqual(computeRatios('routes-10000', list, r10), { 'lockgate/bare-dispatch': 0.75, 'cpu:lockgate/bare-dispatch': 1.333, 'cpu:routes-10000/routes-10': 1.1 });
});

test('replaceReadmeSection rewrites only between the markers', () => {
  const readme = '# X\n## Performance\n<!-- bench:start -->\nold\n<!-- bench:end -->\ntail\n';
  assert.equal(replaceReadmeSection(readme, 'new table\n'), '# X\n## Performance\n<!-- bench:start -->\nnew table\n<!-- bench:end -->\ntail\n');
  assert.equal(replaceReadmeSection('# no markers', 'x'), null);
  assert.equal(replaceReadmeSection('<!-- bench:end --> <!-- bench:start -->', 'x'), null);
});

/** The matching the generated requests are meant to exercise, spelled out independently of Lockgate. */
function matches(apis: BenchApi[], host: string, path: string): boolean {
  return apis.some((api) => {
    if (api.hostnames.length > 0 && !api.hostnames.includes(host)) return false;
    if (!path.startsWith(`${api.path}/`)) return false;
    const rest = path.slice(api.path.length);
    return api.operations.some(({ urlTemplate: t }) => {
      if (t.endsWith('/*')) return rest.startsWith(t.slice(0, -1));
      if (t.includes('{id}')) return new RegExp(`^${t.replace('{id}', '[^/]+')}$`).test(rest);
      return rest === t;
    });
  });
}

test('generateRoutes makes 10,000 routes over ~100 Apis and ~20 hosts, each request hitting one', () => {
  const { apis, requests } = generateRoutes(10_000);
  assert.equal(apis.reduce((n, a) => n + a.operations.length, 0), 10_000);
  assert.equal(apis.length, 100);
  assert.equal(new Set(apis.flatMap((a) => a.hostnames)).size, 20);
  assert.equal(apis.filter((a) => a.hostnames.length === 0).length, 10);
  const templates = apis.flatMap((a) => a.operations.map((o) => o.urlTemplate));
  assert.ok(templates.some((t) => t.endsWith('/*')) && templates.some((t) => t.includes('{id}')) && templates.some((t) => !/[*{]/.test(t)));
  assert.equal(requests.length, 10_000);
  for (const r of requests) assert.ok(matches(apis, r.host, r.path), `${r.host} ${r.path}`);
  assert.ok(!apis.some((a) => a.hostnames.includes(ANY_HOST)));
  // shuffled, yet the same in every run
  assert.notDeepEqual(requests.slice(0, 5).map((r) => r.path), ['/svc0/r0', '/svc0/p1/a/b', '/svc0/t2/1002', '/svc0/r3', '/svc0/p4/a/b']);
  assert.deepEqual(generateRoutes(10_000).requests.slice(0, 20), requests.slice(0, 20));
});

test('generateRoutes(10) mixes a host-bound and an any-host Api', () => {
  const { apis, requests } = generateRoutes(10);
  assert.equal(apis.length, 2);
  assert.deepEqual(apis.map((a) => a.hostnames), [['h0.example.com'], []]);
  assert.equal(requests.length, 10);
  for (const r of requests) assert.ok(matches(apis, r.host, r.path));
  assert.equal(requestsFileText(requests.slice(0, 1)).split('\t').length, 3);
});

test('lockgateYaml writes Gateway, Backend and Apis with the access log to a file', () => {
  const yaml = lockgateYaml({ port: 18080, adminPort: 19901, upstreamPort: 18000, accessLogPath: '/tmp/b/access.log', apis: generateRoutes(10).apis });
  const docs = parseAllDocuments(yaml).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> });
  assert.deepEqual(docs.map((d) => d.kind), ['Gateway', 'Backend', 'Api', 'Api']);
  assert.deepEqual(docs[0].spec.accessLog, { path: '/tmp/b/access.log' });
  assert.deepEqual(docs[0].spec.listeners, [{ name: 'http', address: '127.0.0.1', port: 18080, protocol: 'http' }]);
  assert.deepEqual(docs[1].spec, { url: 'http://127.0.0.1:18000', maxConnections: 128 });
  assert.equal(docs[3].spec.hostnames, undefined);
  assert.deepEqual((docs[2].spec.operations as unknown[])[0], { methods: ['GET'], urlTemplate: '/r0' });
});

test('the generated configs pass Lockgate\'s own validation', () => {
  for (const apis of [[catchAllApi()], generateRoutes(10).apis, generateRoutes(10_000).apis]) {
    const text = lockgateYaml({ port: 18080, adminPort: 19901, upstreamPort: 18000, accessLogPath: '/tmp/b/access.log', apis });
    const { config, problems } = parseConfigText(text, 'bench.yaml');
    assert.deepEqual(problems.slice(0, 3), []);
    assert.equal(config?.apis.reduce((n, a) => n + Math.max(1, a.spec.operations.length), 0), Math.max(1, apis.reduce((n, a) => n + a.operations.length, 0)));
    assert.equal(config?.gateway.spec.accessLog.path, '/tmp/b/access.log');
  }
});

test('nginx configs keep every path in the temp dir and proxy with upstream keepalive', () => {
  const up = upstreamConfig('/tmp/b', 18000);
  const proxy = proxyConfig('/tmp/b', 18001, 18000);
  for (const conf of [up, proxy]) {
    assert.match(conf, /master_process off;/);
    assert.doesNotMatch(conf, /\/var\/|\/run\//);
  }
  assert.match(up, /listen 127\.0\.0\.1:18000 /);
  assert.match(proxy, /server 127\.0\.0\.1:18000;\s+keepalive 128;/);
  assert.match(proxy, /proxy_set_header Connection "";/);
});

test('--only takes scenario and system names in any mix', () => {
  assert.deepEqual(parseOnly('small-get'), { scenarios: ['small-get'], systems: null });
  assert.deepEqual(parseOnly('small-get,lockgate'), { scenarios: ['small-get'], systems: ['lockgate'] });
  assert.deepEqual(parseOnly(',lockgate,fastify'), { scenarios: null, systems: ['lockgate', '@fastify/http-proxy'] });
  assert.throws(() => parseOnly('small-gte'), /unknown --only name "small-gte"/);
  const picked = selectScenarios(buildScenarios(), parseOnly(',nginx'));
  // nginx is not in the route scenarios, so they drop out
  assert.deepEqual(picked.map((s) => [s.name, s.systems]), [['small-get', ['nginx']], ['large-response', ['nginx']], ['post-16k', ['nginx']], ['mesh-hop', ['nginx']]]);
  assert.deepEqual(parseOnly('mesh-hop,mesh-identity,lockgate'), { scenarios: ['mesh-hop', 'mesh-identity'], systems: ['lockgate'] });
  const mesh = selectScenarios(buildScenarios(), parseOnly('mesh-hop,mesh-identity,lockgate'));
  assert.deepEqual(mesh.map((s) => [s.name, s.systems]), [['mesh-hop', ['lockgate']], ['mesh-identity', ['lockgate']]]);
});

test('mesh-hop: lockgate/bare-mesh is the paired ratio when there is one, else the ratio of the median rounds', () => {
  const list = [result('lockgate', 3000, 300), result('bare-mesh', 4000, 200)];
  assert.equal(computeRatios('mesh-hop', list)['lockgate/bare-mesh'], 0.75);
  assert.equal(computeRatios('mesh-hop', list, undefined, undefined, undefined, 0.93)['lockgate/bare-mesh'], 0.93);
  assert.equal(computeRatios('mesh-hop', list, undefined, undefined, undefined, null)['lockgate/bare-mesh'], 0.75);
});

test('mesh-identity: its req/s and CPU over Lockgate\'s mesh-hop, paired when measured in one group, else the ratio of the rows', () => {
  const identity = [result('lockgate', 2700, 340)];
  const hop = result('lockgate', 3000, 280);
  assert.deepEqual(computeRatios('mesh-identity', identity, undefined, undefined, undefined, undefined, { meshHopLockgate: hop }), {
    'mesh-identity/mesh-hop': 0.9, 'cpu:mesh-identity/mesh-hop': 1.214,
  });
  const paired = computeRatios('mesh-identity', identity, undefined, undefined, undefined, undefined, { meshHopLockgate: hop, pairedRps: 0.87, pairedCpu: 1.17 });
  assert.deepEqual(paired, { 'mesh-identity/mesh-hop': 0.87, 'cpu:mesh-identity/mesh-hop': 1.17 });
  // No mesh-hop row (not selected, or failed): no ratio.
  assert.equal(computeRatios('mesh-identity', identity)['mesh-identity/mesh-hop'], null);
  // mesh-hop's own ratios do not change with it.
  assert.deepEqual(Object.keys(computeRatios('mesh-hop', [hop], undefined, undefined, undefined, undefined, { pairedRps: 0.5 })), ['lockgate/bare-mesh', 'lockgate/nginx', 'rss:lockgate/bare-mesh', 'cpu:lockgate/bare-mesh']);
});

test('buildReport puts mesh-identity/mesh-hop in the mesh-identity scenario, from the paired figures or mesh-hop\'s Lockgate row', async () => {
  const { buildReport, markdownTable } = await import('../bench/report.ts');
  const results = new Map([['mesh-hop', [result('lockgate', 3000, 280)]], ['mesh-identity', [{ ...result('lockgate', 2500, 330), rss_hops_mb: [170, 150] }]]]);
  const meta = { date: '2026-11-27T02:00:00Z', node: 'v24', cpus: 2 };
  const unpaired = buildReport(results, meta);
  assert.equal(unpaired.scenarios.find((s) => s.name === 'mesh-identity')?.ratios['mesh-identity/mesh-hop'], 0.833);
  const paired = buildReport(results, meta, undefined, undefined, undefined, { rps: 0.861, cpu: 1.2 });
  assert.deepEqual(paired.scenarios.find((s) => s.name === 'mesh-identity')?.ratios, { 'mesh-identity/mesh-hop': 0.861, 'cpu:mesh-identity/mesh-hop': 1.2 });
  const table = markdownTable(paired);
  assert.match(table, /\| mesh-identity \| lockgate \| 2,500 \|/);
  assert.match(table, /- mesh-identity: mesh-identity\/mesh-hop 0\.86, cpu:mesh-identity\/mesh-hop 1\.20/);
  assert.match(table, /gateway \/ sidecar b, MB\): 170\.0 \/ 150\.0/);
});

test('median is one measured value: the middle, or the lower middle for an even count', async () => {
  const { median } = await import('../bench/measure.ts');
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2);
  assert.equal(median([5]), 5);
});

test('medianPairRound: the round with the median per-round ratio, whose two rows then give the paired ratio', () => {
  // Per-round ratios 1.022, 0.935, 1.145: the median is round 0's (the independent median rounds would be 2 and 2).
  const a = [52.1, 40.6, 51.2];
  const b = [51.0, 43.4, 44.7];
  const i = medianPairRound(a, b)!;
  assert.equal(i, 0);
  assert.equal(Math.round((a[i] / b[i]) * 1000) / 1000, pairedRatio(a, b));
  assert.equal(medianPairRound([2, 1], [1, 1]), 1, 'even count: the lower middle');
  assert.equal(medianPairRound([], [1]), undefined);
  assert.equal(medianPairRound([0, 3], [1, 0]), undefined);
});

test('pairedRatio is the median of per-round ratios, so drift between rounds cancels', () => {
  // Round 2 ran on a machine twice as slow for both systems: a ratio of medians would say 1.5, the pairs say 1.1.
  assert.equal(pairedRatio([11, 22, 11.5], [10, 20, 10]), 1.1);
  assert.equal(pairedRatio([12, 10], [10, 10]), 1.1);
  assert.equal(pairedRatio([], [10]), null);
  assert.equal(pairedRatio([0, 5], [1, 0]), null);
  const list = [result('lockgate', 10, 33), result('bare-dispatch', 10, 40)];
  assert.equal(computeRatios('routes-10000', list, result('lockgate', 10, 30), 1.02)['cpu:routes-10000/routes-10'], 1.02);
});

test('policy-chain: the config compiles, every request carries a token and a key, and the chain admits them', async () => {
  const { buildPolicyChain, TOKENS } = await import('../bench/policy-chain.ts');
  const { startPolicyGateway } = await import('./helpers/policy-gateway.ts');
  const { startUpstream } = await import('./helpers/upstream.ts');
  const { SubscriptionStore } = await import('../src/store/subscription-store.ts');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const chain = buildPolicyChain();
  assert.equal(chain.requests.length, TOKENS);
  assert.equal(new Set(chain.requests.map((r) => r.headers![0])).size, TOKENS, 'distinct tokens');
  assert.equal(requestsFileText(chain.requests.slice(0, 1)).split('\t').length, 4);
  const up = await startUpstream((_req, res) => res.end('hello world!'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-chain-'));
  const yaml = lockgateYaml({ port: 0, adminPort: 0, upstreamPort: up.port, accessLogPath: path.join(dir, 'a.log'), apis: [chain.api], extraYaml: chain.extraYaml });
  const g = await startPolicyGateway(yaml);
  try {
    const store = SubscriptionStore.open(chain.prepareDataDir(dir));
    g.plane.setSubscriptions(store.list());
    store.close();
    const headers = (i: number) => Object.fromEntries(chain.requests[i].headers!.map((h) => [h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 2)]));
    for (const i of [0, 1, 999]) {
      const r = await fetch(`${g.url}${chain.requests[i].path}`, { headers: headers(i) });
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal(await r.text(), 'hello world!');
    }
    const seen = up.seen.at(-1)!;
    assert.equal(seen.headers['x-user'], 'user-999');
    assert.equal(seen.headers['x-gateway'], 'lockgate');
    // Without the token the chain refuses.
    const noToken = await fetch(`${g.url}${chain.requests[0].path}`, { headers: { 'Ocp-Apim-Subscription-Key': headers(0)['Ocp-Apim-Subscription-Key'] } });
    assert.equal(noToken.status, 401);
  } finally {
    await g.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
