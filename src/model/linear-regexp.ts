// JSON Schema `pattern`s (ECMA-262 syntax) compiled by RE2: linear-time matching, so no pattern can backtrack catastrophically.
import { RE2JS } from 're2js';

/** `\uXXXX` and `\u{X…}` (ECMA-262) → `\x{X…}` (RE2); everything else RE2 reads as JavaScript does, or rejects. */
export function toRe2Syntax(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = pattern[i + 1];
    if (next === 'u') {
      const braced = /^\{([0-9A-Fa-f]{1,6})\}/.exec(pattern.slice(i + 2));
      const plain = /^[0-9A-Fa-f]{4}/.exec(pattern.slice(i + 2));
      if (braced) {
        out += `\\x{${braced[1]}}`;
        i += 1 + braced[0].length;
        continue;
      }
      if (plain) {
        out += `\\x{${plain[0]}}`;
        i += 5;
        continue;
      }
    }
    // Keep the escape and the escaped character together so `\\u` stays a literal backslash and `u`.
    out += c + (next ?? '');
    i++;
  }
  return out;
}

export interface LinearRegExp {
  /** True when the pattern matches anywhere in `s` (JSON Schema patterns are not anchored). */
  test(s: string): boolean;
}

/** Compiles `pattern`; throws an Error naming the pattern when RE2 cannot run it (lookaround, backreferences…). */
export function compileLinear(pattern: string): LinearRegExp {
  let re: RE2JS;
  try {
    re = RE2JS.compile(toRe2Syntax(pattern));
  } catch (err) {
    throw new Error(
      `pattern ${JSON.stringify(pattern)} is not supported (patterns run in linear time: no lookaround or backreferences): ${(err as Error).message}`,
    );
  }
  return { test: (s: string) => re.test(s) };
}

/** A message when `pattern` cannot be compiled, else undefined. */
export function checkLinearPattern(pattern: string): string | undefined {
  try {
    compileLinear(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
