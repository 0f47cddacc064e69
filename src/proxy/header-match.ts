// Header conditions of a route, compiled once and tested against Node's rawHeaders without allocating.
import type { HeaderMatch } from '../model/types.ts';

export interface CompiledHeader {
  /** Lower-case. */
  name: string;
  kind: 'exact' | 'prefix' | 'present' | 'absent';
  value: string;
}

// Shared by every route without conditions: one hot object instead of thousands of cold ones.
const NO_HEADERS: CompiledHeader[] = Object.freeze([]) as unknown as CompiledHeader[];

/** `exact` wins over `prefix`; neither → presence, and `present: false` means the header must be absent. A string result is a problem. */
export function compileHeaderMatches(matches: HeaderMatch[]): CompiledHeader[] | string {
  if (matches.length === 0) return NO_HEADERS;
  const out: CompiledHeader[] = [];
  for (const m of matches) {
    if (typeof m.name !== 'string' || m.name.length === 0) return 'header match without a name';
    const name = m.name.toLowerCase();
    if (m.exact !== undefined) out.push({ name, kind: 'exact', value: m.exact });
    else if (m.prefix !== undefined) out.push({ name, kind: 'prefix', value: m.prefix });
    else out.push({ name, kind: m.present === false ? 'absent' : 'present', value: '' });
  }
  return out;
}

/** True when every condition holds (an empty list always holds). */
export function headersMatch(headers: CompiledHeader[], raw: string[]): boolean {
  for (let i = 0; i < headers.length; i++) if (!headerMatches(headers[i], raw)) return false;
  return true;
}

/** Any occurrence of the header may satisfy the condition (repeated headers stay separate in rawHeaders). */
function headerMatches(h: CompiledHeader, raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    if (!sameName(raw[i], h.name)) continue;
    switch (h.kind) {
      case 'present': return true;
      case 'absent': return false;
      case 'exact': if (raw[i + 1] === h.value) return true; break;
      case 'prefix': if (raw[i + 1].startsWith(h.value)) return true; break;
    }
  }
  return h.kind === 'absent';
}

/** ASCII case-insensitive compare against a lower-case name, without allocating a lower-cased copy. */
function sameName(raw: string, lower: string): boolean {
  if (raw.length !== lower.length) return false;
  for (let i = 0; i < raw.length; i++) {
    let c = raw.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}
