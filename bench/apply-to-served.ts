// apply-to-served (issue 4 §8): how long from `lockgate apply` until every node serves the new config. Skeleton, not wired yet.
//
// The figure: one control plane, 20 nodes (sidecars or gateways joined with tokens), a config of 10,000 routes
// (bench/config.ts generateRoutes), then at least 50 applies, each changing one route's response in a way a
// request can see (e.g. a `set-header` policy whose value is the apply's sequence number). For each apply:
// t0 = just before the admin API's PUT is sent; for each node, t1 = the first time a probe request through
// that node returns the new value (probes every ~5 ms per node, round-robin, on CPU 0 with the load side);
// the apply's figure is max over nodes of t1 − t0. Report p50 and p99 over the applies (ms) and the slowest
// node; target p99 ≤ 300 ms. Node acks (`/nodes/<id>` acked version) are reported next to it but are not the
// figure: a node that acked a version it does not serve yet is exactly what this measures.
//
// Usage (once wired): node bench/apply-to-served.ts [--nodes 20] [--routes 10000] [--applies 50]
import { parseArgs } from 'node:util';

/** Nearest-rank percentile (p in 0..100) of the applies' apply-to-served times; NaN for none. */
export function percentileMs(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { nodes: { type: 'string', default: '20' }, routes: { type: 'string', default: '10000' }, applies: { type: 'string', default: '50' } } });
  console.error(
    `apply-to-served (${values.nodes} nodes, ${values.routes} routes, ${values.applies} applies) is not wired yet: it needs the control plane's ` +
      'admin API (apply), join tokens and a way to start nodes from the bench. See the comment at the top of bench/apply-to-served.ts.',
  );
  process.exit(2);
}
