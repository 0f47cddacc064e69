// Fast JSON string quoting for log lines: plain strings are copied, anything needing escapes goes through JSON.stringify.

export function q(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return asciiJson(s);
  }
  return `"${s}"`;
}

/** JSON with every non-ASCII character escaped, so log lines are pure ASCII (one byte per character when written). */
function asciiJson(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
