// The nodes' long-lived NDJSON streams: a snapshot at once, a new one when what the node gets changes, heartbeats.
import type { ServerResponse } from 'node:http';
import type { NodeIdentity, Snapshot } from '../model/snapshot.ts';
import { configDocuments, snapshotDelta, type SnapshotDelta } from '../model/snapshot-delta.ts';
import type { ControlResponse } from './control-routes.ts';

/** One line of the stream. A node ignores line types it does not know (minor additions stay compatible). */
export type StreamLine =
  | { type: 'snapshot'; snapshot: Snapshot }
  /** To nodes that asked for deltas (`delta=1`): the next snapshot against the one sent before it on this stream. */
  | { type: 'delta'; delta: SnapshotDelta }
  | { type: 'heartbeat'; at: number }
  | { type: 'error'; message: string };

export interface NodeStreamsOptions {
  compiler: { compile(identity: NodeIdentity): Snapshot; onChange(listener: () => void): () => void };
  registry: { onChange(listener: () => void): () => void; nodeConnected(id: string): void; nodeDisconnected(id: string): void };
  tracker: { connected(id: string, schema: string | undefined): void; disconnected(id: string): void; sent(id: string, version: number, endpointsVersion: number): void; seen(id: string): void };
  /** A heartbeat line this often, so both ends notice a dead connection (default 15 s). */
  heartbeatMs?: number;
  /** Bursts of changes are coalesced: at most one push per stream per this interval (default 50 ms). */
  minPushIntervalMs?: number;
  now?: () => number;
  onError?: (err: unknown) => void;
}

interface Subscriber {
  id: string;
  identity: NodeIdentity;
  res: ControlResponse;
  /** The node reads delta lines. */
  delta: boolean;
  last: Snapshot | undefined;
  lastPushAt: number;
  timer: NodeJS.Timeout | undefined;
  draining: boolean;
  /** A change arrived while the socket was full: push once it drains. */
  dirty: boolean;
  end: () => void;
}

/**
 * Serialized and encoded once per snapshot: nodes of one service share the object, so they share the bytes (a
 * string written to each of 20 streams was encoded to UTF-8 20 times: ~1.5 ms each for a 10,000-route snapshot).
 */
const lines = new WeakMap<Snapshot, Buffer>();

function snapshotLine(s: Snapshot): Buffer {
  let line = lines.get(s);
  if (line === undefined) {
    line = Buffer.from(`{"type":"snapshot","snapshot":${JSON.stringify(s)}}\n`);
    lines.set(s, line);
  }
  return line;
}

/** A snapshot's config documents (configDocuments), cut once. */
const documents = new WeakMap<Snapshot, string[]>();
function docsOf(s: Snapshot): string[] {
  let d = documents.get(s);
  if (d === undefined) {
    d = configDocuments(s.config);
    documents.set(s, d);
  }
  return d;
}

/** The delta line from a base to the next snapshot (nodes of one service share both, so they share the line); null: send it whole. */
const deltas = new WeakMap<Snapshot, { next: Snapshot; line: Buffer | null }>();
function deltaLine(base: Snapshot, next: Snapshot): Buffer | null {
  const hit = deltas.get(base);
  if (hit?.next === next) return hit.line;
  const d = snapshotDelta(base, docsOf(base), next, docsOf(next));
  const line = d === undefined ? null : Buffer.from(`${JSON.stringify({ type: 'delta', delta: d } satisfies StreamLine)}\n`);
  deltas.set(base, { next, line });
  return line;
}

export class NodeStreams {
  readonly #o: NodeStreamsOptions;
  readonly #now: () => number;
  readonly #minInterval: number;
  readonly #subs = new Set<Subscriber>();
  readonly #unsubscribe: Array<() => void>;
  readonly #heartbeat: NodeJS.Timeout;
  #scheduled = false;

  constructor(o: NodeStreamsOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#minInterval = o.minPushIntervalMs ?? 50;
    const changed = (): void => this.#schedule();
    this.#unsubscribe = [o.compiler.onChange(changed), o.registry.onChange(changed)];
    this.#heartbeat = setInterval(() => this.#beat(), o.heartbeatMs ?? 15_000);
    this.#heartbeat.unref();
  }

  /** Open streams. */
  get size(): number {
    return this.#subs.size;
  }

  /** Streams snapshots to one node until `signal` aborts (the client left or the server closes). */
  serve(node: { id: string; identity: NodeIdentity; schema?: string; delta?: boolean }, res: ControlResponse, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      (res as ServerResponse).writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      const sub: Subscriber = {
        id: node.id, identity: node.identity, res, delta: node.delta === true, last: undefined, lastPushAt: -Infinity, timer: undefined, draining: false, dirty: false,
        end: () => {
          if (!this.#subs.delete(sub)) return;
          clearTimeout(sub.timer);
          signal.removeEventListener('abort', sub.end);
          this.#o.tracker.disconnected(node.id);
          this.#o.registry.nodeDisconnected(node.id);
          if (!res.writableEnded) res.end();
          resolve();
        },
      };
      this.#subs.add(sub);
      this.#o.tracker.connected(node.id, node.schema);
      this.#o.registry.nodeConnected(node.id);
      signal.addEventListener('abort', sub.end, { once: true });
      res.once('close', sub.end);
      this.#push(sub);
    });
  }

  /** Ends every stream (nodes reconnect to whoever serves next). */
  close(): void {
    clearInterval(this.#heartbeat);
    for (const u of this.#unsubscribe) u();
    for (const sub of [...this.#subs]) sub.end();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // One pass after the current burst of synchronous notifications.
    setImmediate(() => {
      this.#scheduled = false;
      for (const sub of this.#subs) this.#push(sub);
    });
  }

  #push(sub: Subscriber): void {
    if (!this.#subs.has(sub)) return;
    if (sub.draining) {
      sub.dirty = true;
      return;
    }
    const wait = sub.lastPushAt + this.#minInterval - this.#now();
    if (wait > 0) {
      sub.timer ??= setTimeout(() => {
        sub.timer = undefined;
        this.#push(sub);
      }, wait);
      return;
    }
    let snapshot: Snapshot;
    try {
      snapshot = this.#o.compiler.compile(sub.identity);
    } catch (err) {
      this.#o.onError?.(err);
      this.#write(sub, `${JSON.stringify({ type: 'error', message: 'the control plane could not compile a snapshot' } satisfies StreamLine)}\n`);
      sub.end();
      return;
    }
    if (snapshot === sub.last) return;
    const base = sub.last;
    sub.last = snapshot;
    sub.lastPushAt = this.#now();
    this.#o.tracker.sent(sub.id, snapshot.version, snapshot.endpointsVersion);
    // The node has received `base` (lines arrive in order, and a stream's first line is always a whole snapshot).
    this.#write(sub, (sub.delta && base !== undefined ? deltaLine(base, snapshot) : null) ?? snapshotLine(snapshot));
  }

  #write(sub: Subscriber, line: string | Buffer): void {
    const res = sub.res as ServerResponse; // the union of both response types' write overloads is not callable
    if (res.writableEnded || res.destroyed) return;
    if (res.write(line)) return;
    // Backpressure: never queue a second snapshot behind one the node has not read; send the newest once it drains.
    sub.draining = true;
    res.once('drain', () => {
      sub.draining = false;
      if (sub.dirty) {
        sub.dirty = false;
        this.#push(sub);
      }
    });
  }

  #beat(): void {
    const line = `${JSON.stringify({ type: 'heartbeat', at: this.#now() } satisfies StreamLine)}\n`;
    for (const sub of this.#subs) {
      this.#o.tracker.seen(sub.id);
      if (!sub.draining) this.#write(sub, line);
    }
  }
}
