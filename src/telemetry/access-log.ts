// The JSON access log: one line per request, formatted on the channel and written in batches off the request path.
import fs from 'node:fs';
import type { Exchange } from '../proxy/exchange.ts';
import { accessDecision, policyLog, requestEnd, type AccessDecisionEvent, type PolicyLogEvent } from './channels.ts';
import { q } from './json-line.ts';

/** Whole microseconds between two performance.now() stamps (integers format much faster than toFixed). */
function us(a: number, b: number): number {
  return a > 0 && b > a ? Math.round((b - a) * 1000) : 0;
}

const MILLIS = Array.from({ length: 1000 }, (_, i) => `.${String(i).padStart(3, '0')}Z`);
let lastSecond = -1;
let secondPrefix = '';
/** ISO 8601 UTC time: the date part is formatted once per second, milliseconds come from a table. */
function isoTime(epochMs: number): string {
  const ms = Math.floor(epochMs);
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 19);
  }
  return secondPrefix + MILLIS[ms - second * 1000];
}

/**
 * Formats one line. Field names are the same at every tier (DESIGN §7). Values that validation or
 * generation already restricts to safe characters (ids, config names, method, host) are not re-escaped.
 */
export function formatAccessLine(ex: Exchange): string {
  // Safe without escaping: ids are generated hex or validated ([A-Za-z0-9._:-]), names are DNS labels, the
  // method is a token (the parsers accept nothing else), subscription names are validated like config names, the host passed strict-request's character check, error
  // codes and the version are ours. Only the path, which may hold any printable ASCII, goes through q().
  return `{"time":"${isoTime(ex.wallStart)}","requestId":"${ex.requestId}","traceId":"${ex.traceId}","spanId":"${ex.spanId}",` +
    `"listener":"${ex.listener}","clientIp":"${ex.clientIp}","method":"${ex.method}","host":"${ex.host}","path":${q(ex.path)},` +
    `"api":"${ex.api}","operation":"${ex.operation}","backend":"${ex.backend}","endpoint":"${ex.endpoint}",` +
    `"status":${ex.status},"bytesIn":${ex.bytesIn},"bytesOut":${ex.bytesOut},"attempts":${ex.attempts},` +
    `"error":"${ex.errorCode}","subscription":"${ex.subscription}","configVersion":"${ex.configVersion}",` +
    // A SPIFFE ID's characters are [a-zA-Z0-9.-_:/] (checked at the handshake); a decision is `<hex id>:<outcome>`.
    `"peer":"${ex.peerId}","decision":"${ex.decision}",` +
    `"durationsUs":{"routing":${us(ex.tStart, ex.tDispatch || ex.tEnd)},"upstreamConnect":${us(ex.tDispatch, ex.tUpstreamStart)},` +
    `"upstreamResponse":${us(ex.tUpstreamStart, ex.tResponseStart)},"total":${us(ex.tStart, ex.tEnd)}}}\n`;
}

/** JSON text with every non-ASCII character escaped (they can only stand inside strings), so the line stays ASCII. */
function asciiOnly(json: string): string {
  return /[\u007f-\uffff]/.test(json) ? json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : json;
}

/** A log-to policy's event as one line: `"type":"policy"` tells it apart from request lines. */
export function formatPolicyLogLine(e: PolicyLogEvent, epochMs = Date.now()): string {
  return `{"time":"${isoTime(epochMs)}","type":"policy","logger":${q(e.logger)},"requestId":"${e.requestId}","traceId":"${e.traceId}",` +
    `"api":"${e.api}","operation":"${e.operation}","event":${asciiOnly(e.eventJson)}}\n`;
}

/** A denied (or, in audit mode, would-be-denied) mesh call as one line with its reasons: `"type":"access"`. */
export function formatAccessDecisionLine(e: AccessDecisionEvent, epochMs = Date.now()): string {
  return `{"time":"${isoTime(epochMs)}","type":"access","requestId":"${e.requestId}","traceId":"${e.traceId}","decision":"${e.decision}",` +
    `"outcome":"${e.outcome}","policy":${q(e.policy)},"source":${q(e.sourceId)},"service":${q(e.service)},"reasons":${asciiOnly(JSON.stringify(e.reasons))},` +
    // What `lockgate explain --decision ID --log FILE` replays against the config of the day.
    `"input":${asciiOnly(JSON.stringify({ method: e.method, path: e.path, port: e.port, api: e.api, operation: e.operation, sourceIp: e.sourceIp, user: e.user, at: e.at }))}}\n`;
}

const FLUSH_INTERVAL_MS = 50;

/**
 * Lines are copied into one of two preallocated buffers (they are ASCII by construction, so latin1 is
 * exact) and written with one outstanding fs.write at a time. Bounded: when the active buffer is full
 * while the other is still being written, lines are dropped and counted, never queued without limit.
 */
export class AccessLog {
  readonly #path: string;
  #fd = -1;
  #active: Buffer;
  #spare: Buffer;
  #len = 0;
  #writing = false;
  #scheduled = false;
  #closed = false;
  dropped = 0;
  written = 0;
  readonly #onEnd = (ex: unknown): void => this.push(formatAccessLine(ex as Exchange));
  readonly #onPolicyLog = (e: unknown): void => this.push(formatPolicyLogLine(e as PolicyLogEvent));
  readonly #onAccess = (e: unknown): void => this.push(formatAccessDecisionLine(e as AccessDecisionEvent));

  /** `bufferLines` sizes each of the two buffers (at 512 bytes a line, at least 64 KiB). */
  constructor(path: string, bufferLines: number) {
    this.#path = path;
    const bytes = Math.max(64 * 1024, bufferLines * 512);
    this.#active = Buffer.allocUnsafe(bytes);
    this.#spare = Buffer.allocUnsafe(bytes);
    this.#open();
    requestEnd.subscribe(this.#onEnd);
    policyLog.subscribe(this.#onPolicyLog);
    accessDecision.subscribe(this.#onAccess);
  }

  #open(): void {
    if (this.#path === 'stdout') this.#fd = 1;
    else if (this.#path === 'stderr') this.#fd = 2;
    else if (this.#path === 'off') this.#fd = -1;
    else this.#fd = fs.openSync(this.#path, 'a');
  }

  push(line: string): void {
    if (this.#closed || this.#fd < 0) return;
    if (this.#len + line.length > this.#active.length) {
      if (!this.#writing) this.#flush();
      if (this.#len + line.length > this.#active.length) {
        this.dropped++;
        return;
      }
    }
    this.#len += this.#active.write(line, this.#len, 'latin1');
    // One write per interval: each fs.write costs microseconds of main-thread time whatever its size.
    if (!this.#scheduled && !this.#writing) {
      this.#scheduled = true;
      setTimeout(this.#flush, FLUSH_INTERVAL_MS).unref();
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#writing || this.#len === 0 || this.#fd < 0) return;
    const buf = this.#active;
    const len = this.#len;
    this.#active = this.#spare;
    this.#spare = buf;
    this.#len = 0;
    this.#writing = true;
    fs.write(this.#fd, buf, 0, len, null, (err, n) => {
      this.#writing = false;
      if (err || n < len) this.dropped++;
      else this.written += len;
      if (this.#len > 0 && !this.#closed && !this.#scheduled) {
        this.#scheduled = true;
        setTimeout(this.#flush, FLUSH_INTERVAL_MS).unref();
      }
    });
  };

  /** SIGUSR1: reopen the file (log rotation moved it away). */
  reopen(): void {
    if (this.#fd > 2) {
      const old = this.#fd;
      this.#open();
      // Close after the in-flight write finishes with the old descriptor.
      setTimeout(() => fs.close(old, () => {}), 1000).unref();
    }
  }

  /** Writes what is buffered synchronously and stops. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    requestEnd.unsubscribe(this.#onEnd);
    policyLog.unsubscribe(this.#onPolicyLog);
    accessDecision.unsubscribe(this.#onAccess);
    if (this.#len > 0 && this.#fd >= 0) {
      try {
        fs.writeSync(this.#fd, this.#active, 0, this.#len);
      } catch {
        this.dropped++;
      }
      this.#len = 0;
    }
    if (this.#fd > 2) {
      const fd = this.#fd;
      // A write may still be in flight on this descriptor: close after it.
      setTimeout(() => fs.close(fd, () => {}), 200).unref();
    }
    this.#fd = -1;
  }
}
