// The JSON access log: one line per request, formatted on the channel and written in batches off the request path.
import fs from 'node:fs';
import type { Exchange } from '../proxy/exchange.ts';
import { requestEnd } from './channels.ts';
import { q } from './json-line.ts';

function ms(a: number, b: number): string {
  return a > 0 && b > 0 ? (b - a).toFixed(3) : '0';
}

let lastMs = 0;
let lastIso = '';
/** ISO time, formatted at most once per millisecond. */
function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/**
 * Formats one line. Field names are the same at every tier (DESIGN §7). Values that validation or
 * generation already restricts to safe characters (ids, config names, method, host) are not re-escaped.
 */
export function formatAccessLine(ex: Exchange): string {
  return `{"time":"${isoTime(ex.wallStart)}","requestId":${q(ex.requestId)},"traceId":"${ex.traceId}","spanId":"${ex.spanId}",` +
    `"listener":"${ex.listener}","clientIp":"${ex.clientIp}","method":${q(ex.method)},"host":${q(ex.host)},"path":${q(ex.path)},` +
    `"api":"${ex.api}","operation":"${ex.operation}","backend":"${ex.backend}","endpoint":"${ex.endpoint}",` +
    `"status":${ex.status},"bytesIn":${ex.bytesIn},"bytesOut":${ex.bytesOut},"attempts":${ex.attempts},` +
    `"error":${q(ex.errorCode)},"configVersion":${q(ex.configVersion)},` +
    `"durations":{"routing":${ms(ex.tStart, ex.tDispatch || ex.tEnd)},"upstreamConnect":${ms(ex.tDispatch, ex.tUpstreamStart)},` +
    `"upstreamResponse":${ms(ex.tUpstreamStart, ex.tResponseStart)},"total":${ms(ex.tStart, ex.tEnd)}}}\n`;
}

/**
 * Buffers lines and writes them with one outstanding fs.write at a time. Bounded: past `maxLines`
 * waiting, lines are dropped and counted rather than growing memory or blocking requests.
 */
export class AccessLog {
  readonly #path: string;
  readonly #maxLines: number;
  #fd = -1;
  #pending: string[] = [];
  #writing = false;
  #scheduled = false;
  #closed = false;
  dropped = 0;
  written = 0;
  readonly #onEnd = (ex: unknown): void => this.push(formatAccessLine(ex as Exchange));

  constructor(path: string, maxLines: number) {
    this.#path = path;
    this.#maxLines = maxLines;
    this.#open();
    requestEnd.subscribe(this.#onEnd);
  }

  #open(): void {
    if (this.#path === 'stdout') this.#fd = 1;
    else if (this.#path === 'stderr') this.#fd = 2;
    else if (this.#path === 'off') this.#fd = -1;
    else this.#fd = fs.openSync(this.#path, 'a');
  }

  push(line: string): void {
    if (this.#closed || this.#fd < 0) return;
    if (this.#pending.length >= this.#maxLines) {
      this.dropped++;
      return;
    }
    this.#pending.push(line);
    if (!this.#scheduled && !this.#writing) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#writing || this.#pending.length === 0 || this.#fd < 0) return;
    const data = this.#pending.join('');
    const n = this.#pending.length;
    this.#pending = [];
    this.#writing = true;
    fs.write(this.#fd, data, (err) => {
      this.#writing = false;
      if (err) this.dropped += n;
      else this.written += n;
      if (this.#pending.length) this.#flush();
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
    if (this.#pending.length && this.#fd >= 0) {
      try {
        fs.writeSync(this.#fd, this.#pending.join(''));
      } catch {
        this.dropped += this.#pending.length;
      }
      this.#pending = [];
    }
    if (this.#fd > 2) fs.closeSync(this.#fd);
    this.#fd = -1;
  }
}
