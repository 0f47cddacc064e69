// Parses and formats the human durations (`250ms`, `1m30s`, `PT0.5S`) and sizes (`64KiB`) used in config files.

const NUM = String.raw`\d+(?:\.\d+)?`;
const SIMPLE = String.raw`(?:${NUM}(?:ms|s|m|h|d))+`;
// The lookaheads refuse a bare `P` or `PT`; years and months are refused because their length varies.
const ISO = String.raw`P(?=\d|T\d)(?:${NUM}D)?(?:T(?=\d)(?:${NUM}H)?(?:${NUM}M)?(?:${NUM}S)?)?`;

/** JSON-Schema (ECMA-262) pattern for a duration string; numbers are milliseconds. */
export const DURATION_PATTERN = `^(?:0|${SIMPLE}|${ISO})$`;
/** JSON-Schema pattern for a size string; a plain integer is bytes. */
export const SIZE_PATTERN = String.raw`^\d+(?:\.\d+)?(?:B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`;

const DURATION_RE = new RegExp(DURATION_PATTERN);
const SIZE_RE = new RegExp(SIZE_PATTERN);
const SIMPLE_PART = new RegExp(`(${NUM})(ms|s|m|h|d)`, 'y');
const ISO_PART = new RegExp(`(${NUM})([DHMS])`, 'g');

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const ISO_DATE_MS: Record<string, number> = { D: 86_400_000 };
const ISO_TIME_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000 };
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

// Decimal fractions (`1.1s`) multiply into float noise; 15 significant digits is what a double holds exactly.
function tidy(n: number): number {
  return Number(n.toPrecision(15));
}

/**
 * A duration in milliseconds, or undefined when the input is not one.
 * Numbers are taken as milliseconds; strings need a unit (`0` excepted) so that `10` is never read as seconds.
 */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  if (typeof input !== 'string' || !DURATION_RE.test(input)) return undefined;
  if (input === '0') return 0;
  let total = 0;
  if (input.startsWith('P')) {
    const t = input.indexOf('T');
    for (const m of input.matchAll(ISO_PART)) {
      const table = t >= 0 && (m.index ?? 0) > t ? ISO_TIME_MS : ISO_DATE_MS;
      total += Number(m[1]) * table[m[2]];
    }
  } else {
    SIMPLE_PART.lastIndex = 0;
    for (let m = SIMPLE_PART.exec(input); m; m = SIMPLE_PART.exec(input)) {
      total += Number(m[1]) * UNIT_MS[m[2]];
    }
  }
  total = tidy(total);
  return Number.isSafeInteger(Math.ceil(total)) ? total : undefined;
}

/** A size in bytes (always an integer), or undefined. `KB`/`MB` are 1000-based, `KiB`/`MiB` 1024-based. */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  if (typeof input !== 'string' || !SIZE_RE.test(input)) return undefined;
  const m = /^([\d.]+)(\D*)$/.exec(input);
  if (!m) return undefined;
  const bytes = tidy(Number(m[1]) * SIZE_UNITS[m[2] || 'B']);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** The shortest readable form that parseDuration reads back to the same number: `1m30s`, `1.5s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return String(ms);
  if (ms === 0) return '0s';
  if (ms < 1000) return `${tidy(ms)}ms`;
  let rest = ms;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = tidy(rest / 1000);
  let out = '';
  if (h) out += `${h}h`;
  if (m) out += `${m}m`;
  if (s) out += `${s}s`;
  return out;
}

/** The largest binary unit that divides the size exactly: `16KiB`, `10MiB`, `512B`. */
export function formatSize(bytes: number): string {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB']) {
    const n = SIZE_UNITS[unit];
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes}B`;
}
