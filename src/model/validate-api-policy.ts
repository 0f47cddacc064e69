// ApiPolicy checks within one document: scope shape, which policy may sit in which section, `base` placement, and where expressions are.
import { childPath, positionOf, report } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';
import { POLICIES } from './policy-catalog.ts';
import { didYouMean } from './suggest.ts';
import type { ApiPolicySpec, ExpressionSite, PolicyEntry, PolicyFragmentResource, PolicyFragmentSpec, PolicySection } from './types.ts';

export const SECTIONS: readonly PolicySection[] = ['inbound', 'backend', 'outbound', 'onError'];

/**
 * `@(expr)` → `expr`; undefined when the string is a literal. Trailing whitespace is not part of the value's shape
 * (a `|` block scalar ends with a newline), so `@(expr)` written as a block is an expression too.
 */
export function expressionText(value: string): string | undefined {
  const v = value.length > 0 && value.charCodeAt(value.length - 1) <= 32 ? value.trimEnd() : value;
  return v.length >= 3 && v.startsWith('@(') && v.endsWith(')') ? v.slice(2, -1) : undefined;
}

function site(cx: DocContext, path: string, source: string, offset: number): ExpressionSite {
  const { line, col } = positionOf(cx, path);
  const indent = cx.blockIndent?.get(path);
  return { source, file: cx.file, line, col: col + offset, path, ...(indent !== undefined ? { indent } : {}) };
}

/** Every `@(…)` string inside a decoded value (JSON templates, header lists, …). */
function collectMarked(value: unknown, cx: DocContext, path: string, out: ExpressionSite[]): void {
  if (typeof value === 'string') {
    const e = expressionText(value);
    if (e !== undefined) out.push(site(cx, path, e, 2));
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => collectMarked(v, cx, childPath(path, i), out));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) collectMarked(v, cx, childPath(path, k), out);
  }
}

/** Values at a pattern such as `when[].condition` inside attrs, with their paths. */
function atPattern(attrs: unknown, pattern: string, path: string): Array<{ value: unknown; path: string }> {
  const [head, ...rest] = pattern.split('.');
  const many = head.endsWith('[]');
  const key = many ? head.slice(0, -2) : head;
  const v = (attrs as Record<string, unknown> | undefined)?.[key];
  if (v === undefined) return [];
  const p = childPath(path, key);
  const items = many && Array.isArray(v) ? v.map((x, i) => ({ value: x, path: childPath(p, i) })) : [{ value: v, path: p }];
  if (rest.length === 0) return items;
  return items.flatMap((it) => atPattern(it.value, rest.join('.'), it.path));
}

/**
 * Turns a decoded policy list into PolicyEntry[] (recursively for choose/retry), checking placement and
 * collecting expressions. `top` is false inside a policy: `base` belongs to a section only. A fragment's
 * list has no section (null: checked where it is included) and may hold neither `base` nor include-fragment.
 */
function entries(
  raw: unknown,
  section: PolicySection | null,
  cx: DocContext,
  path: string,
  top: boolean,
  out: ExpressionSite[],
  fragment = false,
  scope?: PolicyEntry['scope'],
): PolicyEntry[] {
  if (!Array.isArray(raw)) return [];
  const list: PolicyEntry[] = [];
  let bases = 0;
  raw.forEach((item, i) => {
    const p = childPath(path, i);
    if (item === undefined || item === null || typeof item !== 'object') return;
    const names = Object.keys(item as object);
    if (names.length !== 1) return; // the decoder reported it
    const name = names[0];
    const def = POLICIES[name];
    const attrs = (item as Record<string, Record<string, unknown>>)[name];
    const ap = childPath(p, name);
    const { line, col } = positionOf(cx, ap, 'key');
    if (fragment && (name === 'base' || name === 'include-fragment')) {
      report(cx, ap, name === 'base' ? 'a PolicyFragment has no parent section: "base" is not allowed in it' : 'a PolicyFragment cannot include another fragment (fragments do not nest)', 'key');
    } else if (name === 'base') {
      bases++;
      if (!top) report(cx, ap, '"base" belongs directly in a section, not inside another policy', 'key');
      else if (bases === 2) report(cx, ap, '"base" may appear once per section', 'key');
    }
    if (section !== null && !def.sections.includes(section)) {
      report(cx, ap, `${name} is not allowed in ${section} (allowed in ${def.sections.join(', ')})`, 'key');
    }
    // Nested policy lists become entries; everything else is scanned for @(…) expressions.
    const nested = new Set(def.nested ?? []);
    const converted: Record<string, unknown> = { ...attrs };
    for (const pattern of nested) {
      for (const { path: np } of atPattern(attrs, pattern, ap)) {
        setAt(converted, np.slice(ap.length), entries(getAt(attrs, np.slice(ap.length)), section, cx, np, false, out, fragment, scope));
      }
    }
    const always = new Set(def.expressions ?? []);
    for (const pattern of always) {
      for (const { value, path: ep } of atPattern(attrs, pattern, ap)) {
        if (typeof value !== 'string') continue;
        const e = expressionText(value);
        out.push(site(cx, ep, e ?? value, e === undefined ? 0 : 2));
      }
    }
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if ([...nested, ...always].some((pat) => pat.split(/[.[]/)[0] === k)) {
        // Mixed attrs (choose.when: condition + policies) were handled above; scan nothing else there.
        continue;
      }
      collectMarked(v, cx, childPath(ap, k), out);
    }
    list.push({ name, attrs: converted, file: cx.file, line, col, path: p, ...(scope ? { scope } : {}) });
  });
  return list;
}

/** `.when[1].policies` style suffix → get/set inside a plain object tree. */
function steps(suffix: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const m of suffix.matchAll(/\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/g)) {
    out.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : JSON.parse(`"${m[3]}"`)));
  }
  return out;
}

function getAt(root: unknown, suffix: string): unknown {
  let v = root;
  for (const s of steps(suffix)) v = (v as Record<string | number, unknown> | undefined)?.[s];
  return v;
}

function setAt(root: Record<string, unknown>, suffix: string, value: unknown): void {
  const path = steps(suffix);
  let v: Record<string | number, unknown> = root;
  for (let i = 0; i < path.length - 1; i++) {
    // Copy on the way down, so the decoded attributes are never shared with the converted ones.
    const next = v[path[i]];
    const copy = Array.isArray(next) ? [...next] : { ...(next as object) };
    v[path[i]] = copy;
    v = copy as Record<string | number, unknown>;
  }
  v[path[path.length - 1]] = value;
}

export function finishApiPolicy(spec: ApiPolicySpec, cx: DocContext): void {
  const s = spec.scope;
  const given = [s.global === true && 'global', s.product !== undefined && 'product', s.api !== undefined && 'api'].filter(Boolean);
  if (given.length !== 1) {
    report(cx, 'spec.scope', `scope needs exactly one of global: true, product or api${given.length ? ` (got ${given.join(' and ')})` : ''}`);
  }
  if (s.operation !== undefined && s.api === undefined) report(cx, 'spec.scope.operation', 'an operation scope needs `api` too');
  const expressions: ExpressionSite[] = [];
  for (const section of SECTIONS) {
    if (spec[section] === undefined) continue;
    const scope = s.global === true ? 'global' : s.product !== undefined ? 'product' : s.operation !== undefined ? 'operation' : 'api';
    spec[section] = entries(spec[section], section, cx, childPath('spec', section), true, expressions, false, scope);
  }
  spec.expressions = expressions;
}

export function finishPolicyFragment(spec: PolicyFragmentSpec, cx: DocContext): void {
  const expressions: ExpressionSite[] = [];
  spec.policies = entries(spec.policies, null, cx, 'spec.policies', true, expressions, true);
  spec.expressions = expressions;
}

/** Every entry of a list and of the policy lists nested in it, with the top-level section it runs in. */
function walkEntries(list: readonly PolicyEntry[], visit: (e: PolicyEntry) => void): void {
  for (const e of list) {
    visit(e);
    for (const pattern of POLICIES[e.name]?.nested ?? []) {
      for (const { value } of atPattern(e.attrs, pattern, '')) if (Array.isArray(value)) walkEntries(value as PolicyEntry[], visit);
    }
  }
}

function qualify(ref: string, namespace: string): string {
  return ref.includes('/') ? ref : `${namespace}/${ref}`;
}

/**
 * Resolves include-fragment across documents: each one names an existing PolicyFragment (else a problem at its
 * fragmentId, with file:line:col), every policy of the fragment must be allowed in the including section, and the
 * fragment's entries are put into the include's attributes (`policies`) for the pipeline compiler.
 */
export function resolveFragmentIncludes(
  policies: ReadonlyArray<{ spec: ApiPolicySpec; namespace: string; cx: DocContext }>,
  fragments: ReadonlyArray<{ resource: PolicyFragmentResource; cx: DocContext }>,
): void {
  const byKey = new Map(fragments.map((f) => [`${f.resource.metadata.namespace}/${f.resource.metadata.name}`, f]));
  for (const { spec, namespace, cx } of policies) {
    for (const section of SECTIONS) {
      const list = spec[section];
      if (list === undefined) continue;
      walkEntries(list, (e) => {
        if (e.name !== 'include-fragment' || typeof e.attrs.fragmentId !== 'string') return;
        const at = childPath(childPath(e.path, 'include-fragment'), 'fragmentId');
        const key = qualify(e.attrs.fragmentId, namespace);
        const found = byKey.get(key);
        if (found === undefined) {
          const [ns, name] = key.split('/');
          const sameNs = fragments.filter((f) => f.resource.metadata.namespace === ns).map((f) => f.resource.metadata.name);
          report(cx, at, `PolicyFragment ${JSON.stringify(name)} not found in namespace ${JSON.stringify(ns)}${didYouMean(name, sameNs)}`);
          return;
        }
        const fragPolicies = found.resource.spec?.policies ?? [];
        walkEntries(fragPolicies, (fe) => {
          const def = POLICIES[fe.name];
          if (def !== undefined && !def.sections.includes(section)) {
            report(cx, at, `PolicyFragment "${key}": ${fe.name} (${fe.file}:${fe.line}:${fe.col}) is not allowed in ${section} (allowed in ${def.sections.join(', ')})`);
          }
        });
        e.attrs = { ...e.attrs, policies: fragPolicies };
      });
    }
  }
}
