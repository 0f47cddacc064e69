// `lockgate check`'s rules as one pure function: what the control plane reports (CA, nodes, metrics) and what the CLI
// measured (clock skew, app reachability) in, one ok / warn / fail line per check out.

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  /** One line, for people. */
  message: string;
  /** The individual findings behind a warn or fail (JSON output). */
  details?: string[];
}

/** GET /v1/ca, the fields the checks read. */
export interface CaReport {
  bundleFingerprint: string;
  roots: Array<{ fingerprint: string; notAfter: number; active: boolean }>;
  intermediate: { fingerprint: string; notAfter: number; revoked: boolean };
  controlPlane?: { notAfter: number; issuedAt: number };
}

/** One node of GET /v1/nodes, the fields the checks read. */
export interface NodeReport {
  id: string;
  connected: boolean;
  lastSeen: number;
  sentVersion?: number;
  sentAt?: number;
  ackedVersion?: number;
  lastAnswer?: { version: number; ok: boolean; reason?: string; at: number };
  certificateNotAfter?: number;
  certificateIssuedAt?: number;
  bundleFingerprint?: string;
  app?: { address: string; transport: 'tcp' | 'unix' };
}

export interface CheckInput {
  /** The local clock (the CLI's). */
  now: number;
  /** Local clock minus the control plane's, ± precisionMs (half the round trip, plus the Date header's rounding); null: not measured. */
  clock: { skewMs: number; precisionMs: number; source: string } | null;
  ca: CaReport;
  nodes: readonly NodeReport[];
  /** Whether this host could open a TCP connection to each non-loopback app address (see appsToProbe). */
  reachable?: Readonly<Record<string, boolean>>;
  /** The control plane's /metrics text; null when it could not be read. */
  metrics?: string | null;
}

const SECOND = 1000;
const DAY = 86_400_000;
/** Clock skew: a warning past 5 s; a failure past 60 s, the certificates' notBefore backdate (a peer that far behind refuses new certificates). */
export const SKEW_WARN_MS = 5 * SECOND;
export const SKEW_FAIL_MS = 60 * SECOND;
/** Roots and the intermediate: warn with less than 30 days left, fail with less than 7. */
export const CA_WARN_MS = 30 * DAY;
export const CA_FAIL_MS = 7 * DAY;
/** Leaves renew at half life: one past 75 % has missed its renewal. */
export const LEAF_WARN_FRACTION = 0.75;
/** A node whose acknowledged version lags what it was sent for this long is stale. */
export const STALE_VERSION_MS = 30 * SECOND;
/** Nodes neither connected nor seen within this are left alone (gone, or down long enough to be someone else's alarm). */
export const RECENT_MS = 10 * 60 * SECOND;
export const EXPIRY_METRIC = 'lockgate_certificate_expiry_timestamp_seconds';

const RANK: Record<CheckStatus, number> = { ok: 0, warn: 1, fail: 2 };

function worst(statuses: readonly CheckStatus[]): CheckStatus {
  return statuses.reduce<CheckStatus>((w, s) => (RANK[s] > RANK[w] ? s : w), 'ok');
}

function duration(ms: number): string {
  const a = Math.abs(ms);
  if (a < 90 * SECOND) return `${Math.round(a / 100) / 10} s`;
  if (a < 90 * 60 * SECOND) return `${Math.round(a / 60_000)} min`;
  if (a < 2 * DAY) return `${Math.round(a / 3_600_000)} h`;
  return `${Math.round(a / DAY)} d`;
}

/** "a, b, c and 4 more" */
function some(items: readonly string[], max = 3): string {
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

function live(n: NodeReport, now: number): boolean {
  return n.connected || now - n.lastSeen < RECENT_MS;
}

/** host of host:port (brackets kept off an IPv6 host). */
function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  const host = i < 0 ? address : address.slice(0, i);
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/** The app addresses `lockgate check` should try to connect to: TCP, not loopback, of live nodes. */
export function appsToProbe(nodes: readonly NodeReport[], now: number): string[] {
  const out = new Set<string>();
  for (const n of nodes) if (n.app?.transport === 'tcp' && live(n, now) && !isLoopback(hostOf(n.app.address))) out.add(n.app.address);
  return [...out].sort();
}

function clockCheck(input: CheckInput): CheckResult {
  const c = input.clock;
  if (!c) return { name: 'clock-skew', status: 'warn', message: 'could not compare clocks with the control plane (no server time in its answer)' };
  const skew = Math.max(0, Math.abs(c.skewMs) - c.precisionMs);
  const dir = c.skewMs > 0 ? 'ahead of' : 'behind';
  const text = `the local clock is ${duration(c.skewMs)} ${dir} the control plane's (±${duration(c.precisionMs)}, from ${c.source})`;
  if (skew > SKEW_FAIL_MS) return { name: 'clock-skew', status: 'fail', message: `${text}: more than the ${SKEW_FAIL_MS / SECOND} s certificates are backdated by, so fresh certificates are refused; fix time sync (NTP)` };
  if (skew > SKEW_WARN_MS) return { name: 'clock-skew', status: 'warn', message: `${text}: more than ${SKEW_WARN_MS / SECOND} s; check time sync (NTP)` };
  return { name: 'clock-skew', status: 'ok', message: text };
}

function expiryStatus(left: number): CheckStatus {
  return left < CA_FAIL_MS ? 'fail' : left < CA_WARN_MS ? 'warn' : 'ok';
}

function expiryText(left: number): string {
  return left <= 0 ? `expired ${duration(left)} ago` : `expires in ${duration(left)}`;
}

function rootCheck(input: CheckInput): CheckResult {
  const found = input.ca.roots.map((r) => {
    const left = r.notAfter - input.now;
    return { status: expiryStatus(left), text: `root ${r.fingerprint.slice(0, 23)}…${r.active ? '' : ' (old)'} ${expiryText(left)}` };
  });
  const status = worst(found.map((f) => f.status));
  const bad = found.filter((f) => f.status !== 'ok').map((f) => f.text);
  if (status === 'ok') return { name: 'root-expiry', status, message: some(found.map((f) => f.text)) };
  const hint = status === 'fail' ? `less than ${CA_FAIL_MS / DAY} d left` : `less than ${CA_WARN_MS / DAY} d left`;
  return { name: 'root-expiry', status, message: `${some(bad)} (${hint}): rotate the root (lockgate ca rotate start)`, details: bad };
}

function intermediateCheck(input: CheckInput): CheckResult {
  const i = input.ca.intermediate;
  const left = i.notAfter - input.now;
  const id = `intermediate ${i.fingerprint.slice(0, 23)}…`;
  if (i.revoked) return { name: 'intermediate-expiry', status: 'fail', message: `${id} is revoked: nothing can be issued or renewed; run lockgate ca renew-intermediate` };
  const status = expiryStatus(left);
  if (status === 'ok') return { name: 'intermediate-expiry', status, message: `${id} ${expiryText(left)}` };
  return { name: 'intermediate-expiry', status, message: `${id} ${expiryText(left)}: automatic renewal is not working; run lockgate ca renew-intermediate` };
}

/** The share of a certificate's life used (from issuance, not from the backdated notBefore). */
function lifeUsed(issuedAt: number, notAfter: number, now: number): number {
  return notAfter <= issuedAt ? 1 : (now - issuedAt) / (notAfter - issuedAt);
}

function leafFinding(who: string, issuedAt: number | undefined, notAfter: number, now: number): { status: CheckStatus; text: string } {
  if (notAfter <= now) return { status: 'fail', text: `${who}: certificate expired ${duration(now - notAfter)} ago` };
  const used = issuedAt === undefined ? 0 : lifeUsed(issuedAt, notAfter, now);
  if (used > LEAF_WARN_FRACTION) return { status: 'warn', text: `${who}: certificate ${Math.round(used * 100)} % through its life (renewal is due at 50 %)` };
  return { status: 'ok', text: `${who}: ${expiryText(notAfter - now)}` };
}

function controlPlaneCertCheck(input: CheckInput): CheckResult {
  const cp = input.ca.controlPlane;
  if (!cp) return { name: 'control-plane-certificate', status: 'warn', message: 'the control plane did not report its own certificate' };
  const f = leafFinding('the control plane', cp.issuedAt, cp.notAfter, input.now);
  return { name: 'control-plane-certificate', status: f.status, message: f.text };
}

function nodeCertificateCheck(input: CheckInput, nodes: readonly NodeReport[]): CheckResult {
  const findings = nodes.filter((n) => n.certificateNotAfter !== undefined).map((n) => leafFinding(n.id, n.certificateIssuedAt, n.certificateNotAfter!, input.now));
  const bad = findings.filter((f) => f.status !== 'ok');
  const status = worst(bad.map((f) => f.status));
  if (status === 'ok') return { name: 'node-certificates', status, message: findings.length === 0 ? 'no live node with a recorded certificate' : `${findings.length} live node${findings.length === 1 ? '' : 's'}, every certificate renewed in time` };
  const texts = [...bad.filter((f) => f.status === 'fail'), ...bad.filter((f) => f.status === 'warn')].map((f) => f.text);
  return { name: 'node-certificates', status, message: some(texts), details: texts };
}

function nodeVersionCheck(input: CheckInput, nodes: readonly NodeReport[]): CheckResult {
  const fails: string[] = [];
  const warns: string[] = [];
  for (const n of nodes) {
    const a = n.lastAnswer;
    if (a && !a.ok && a.version >= (n.ackedVersion ?? Number.NEGATIVE_INFINITY)) {
      const reason = String(a.reason ?? 'no reason given').split('\n')[0].slice(0, 200);
      fails.push(`${n.id} rejected version ${a.version}: ${reason}`);
    } else if (n.connected && n.sentVersion !== undefined && (n.ackedVersion ?? Number.NEGATIVE_INFINITY) < n.sentVersion && n.sentAt !== undefined && input.now - n.sentAt > STALE_VERSION_MS) {
      warns.push(`${n.id} runs version ${n.ackedVersion ?? 'none'}, was sent ${n.sentVersion} ${duration(input.now - n.sentAt)} ago`);
    }
  }
  const texts = [...fails, ...warns];
  const status: CheckStatus = fails.length > 0 ? 'fail' : warns.length > 0 ? 'warn' : 'ok';
  if (status === 'ok') return { name: 'node-versions', status, message: `${nodes.filter((n) => n.connected).length} connected node(s) on the version they were sent` };
  return { name: 'node-versions', status, message: some(texts), details: texts };
}

function nodeBundleCheck(input: CheckInput, nodes: readonly NodeReport[]): CheckResult {
  const fails: string[] = [];
  const warns: string[] = [];
  for (const n of nodes) {
    if (n.bundleFingerprint === undefined || n.bundleFingerprint === input.ca.bundleFingerprint) continue;
    (n.connected ? fails : warns).push(`${n.id} has trust bundle ${n.bundleFingerprint.slice(0, 12)}…${n.connected ? '' : ' (disconnected)'}`);
  }
  const texts = [...fails, ...warns];
  const status: CheckStatus = fails.length > 0 ? 'fail' : warns.length > 0 ? 'warn' : 'ok';
  if (status === 'ok') return { name: 'node-bundles', status, message: `every live node has the current trust bundle (${input.ca.bundleFingerprint.slice(0, 12)}…, ${input.ca.roots.length} root${input.ca.roots.length === 1 ? '' : 's'})` };
  return { name: 'node-bundles', status, message: `${some(texts)}; current is ${input.ca.bundleFingerprint.slice(0, 12)}…`, details: texts };
}

function appExposureCheck(input: CheckInput, nodes: readonly NodeReport[]): CheckResult {
  const fails: string[] = [];
  const warns: string[] = [];
  let unix = 0;
  for (const n of nodes) {
    if (!n.app) continue;
    if (n.app.transport === 'unix') {
      unix++;
      continue;
    }
    const where = `${n.id}: app on TCP ${n.app.address}`;
    if (isLoopback(hostOf(n.app.address))) warns.push(where);
    else if (input.reachable?.[n.app.address] === true) fails.push(`${where} accepts connections from this host, bypassing the sidecar's mTLS and authorization`);
    else warns.push(`${where}${input.reachable?.[n.app.address] === false ? ' (not reachable from this host)' : ''}`);
  }
  if (fails.length > 0) return { name: 'app-exposure', status: 'fail', message: `${some(fails)}; bind the app to a Unix socket or loopback`, details: [...fails, ...warns] };
  if (warns.length > 0) return { name: 'app-exposure', status: 'warn', message: `${some(warns)}: other local processes can reach the app without mTLS; run it on a Unix socket`, details: warns };
  if (unix === 0) return { name: 'app-exposure', status: 'ok', message: 'no live sidecar reported where its app listens' };
  return { name: 'app-exposure', status: 'ok', message: `${unix} app${unix === 1 ? '' : 's'} behind a Unix socket` };
}

function metricCheck(input: CheckInput): CheckResult | undefined {
  if (input.metrics === undefined) return undefined;
  if (input.metrics === null) return { name: 'expiry-metric', status: 'warn', message: 'could not read the control plane\'s /metrics' };
  const missing = ['root', 'intermediate', 'control-plane'].filter((k) => !input.metrics!.includes(`${EXPIRY_METRIC}{kind="${k}"`));
  if (missing.length > 0) return { name: 'expiry-metric', status: 'warn', message: `/metrics lacks ${EXPIRY_METRIC} for ${missing.join(', ')}` };
  return { name: 'expiry-metric', status: 'ok', message: `/metrics exports ${EXPIRY_METRIC} for the roots, the intermediate and the control plane` };
}

/** Every check, in a fixed order. */
export function evaluateChecks(input: CheckInput): CheckResult[] {
  const nodes = input.nodes.filter((n) => live(n, input.now));
  const results = [
    clockCheck(input),
    rootCheck(input),
    intermediateCheck(input),
    controlPlaneCertCheck(input),
    nodeCertificateCheck(input, nodes),
    nodeVersionCheck(input, nodes),
    nodeBundleCheck(input, nodes),
    appExposureCheck(input, nodes),
  ];
  const metric = metricCheck(input);
  if (metric) results.push(metric);
  return results;
}

/** 0 when nothing failed (warnings included), 1 otherwise. */
export function checkExitCode(results: readonly CheckResult[]): 0 | 1 {
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}

export function formatChecks(results: readonly CheckResult[]): string {
  const w = Math.max(...results.map((r) => r.name.length));
  return results.map((r) => `${r.status.padEnd(4)}  ${r.name.padEnd(w)}  ${r.message}\n`).join('');
}
