// Regular expressions from config, OpenAPI `pattern`s and CEL `matches`, compiled on RE2 (re2js): matching time is linear in the input.
import { RE2JS } from 're2js';
import { toRe2Syntax } from '../model/linear-regexp.ts';

/** Longer patterns are rejected: RE2's program size, and so matching time per character, grows with the pattern. */
export const MAX_PATTERN_LENGTH = 4096;

export interface RegexMatch {
  /** Offset of the match in the input (UTF-16 code units). */
  index: number;
  /** `[0]` is the whole match; unmatched groups are null. */
  groups: (string | null)[];
  /** Named groups (`(?<name>…)` or `(?P<name>…)`). */
  named: Record<string, string | null>;
}

export interface LinearRegex {
  /** True when the pattern matches anywhere in `s` (not anchored, like `RegExp.prototype.test`). */
  test(s: string): boolean;
  /** The first match, or null. */
  exec(s: string): RegexMatch | null;
  readonly source: string;
}

export type CompileRegexResult = { ok: true; regex: LinearRegex } | { ok: false; message: string };

const FLAG_BITS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, u: 0 };

/**
 * Compiles an ECMAScript-style pattern (config values, OpenAPI `pattern`) on RE2.
 * Flags: `i`, `m`, `s` as in JavaScript; `u` is accepted (RE2 is always Unicode-aware).
 * Backreferences, lookahead and lookbehind are rejected: they have no linear-time implementation.
 */
export function compileRegex(pattern: string, flags = ''): CompileRegexResult {
  let bits = 0;
  for (const f of flags) {
    const bit = FLAG_BITS[f];
    if (bit === undefined) return { ok: false, message: `regular expression flag "${f}" is not supported (use i, m, s or u)` };
    bits |= bit;
  }
  return compileWith(pattern, toRe2Syntax(pattern), bits);
}

/** Compiles a pattern already written in RE2 syntax (CEL `matches`). */
export function compileRe2(pattern: string): CompileRegexResult {
  return compileWith(pattern, pattern, 0);
}

function compileWith(original: string, re2Source: string, bits: number): CompileRegexResult {
  if (original.length > MAX_PATTERN_LENGTH) {
    return { ok: false, message: `regular expression is ${original.length} characters long, over the limit of ${MAX_PATTERN_LENGTH}` };
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(re2Source, bits);
  } catch (err) {
    return { ok: false, message: `regular expression ${JSON.stringify(original)} is not supported by the linear-time engine (RE2): ${(err as Error).message}` };
  }
  const names = Object.entries(re.namedGroups());
  return {
    ok: true,
    regex: {
      source: original,
      test: (s) => re.test(s),
      exec(s) {
        const m = re.matcher(s);
        if (!m.find()) return null;
        const groups: (string | null)[] = [];
        for (let i = 0; i <= m.groupCount(); i++) groups.push(m.group(i));
        const named: Record<string, string | null> = {};
        for (const [name, i] of names) named[name] = groups[i] ?? null;
        return { index: m.start(), groups, named };
      },
    },
  };
}
