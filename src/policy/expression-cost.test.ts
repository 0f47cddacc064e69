// Tests for the static cost estimate: sizes from the context shape, comprehensions multiply, matches costs its input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from '@marcbachmann/cel-js';
import { CAPS, CONTEXT_SHAPE } from './expression-context.ts';
import { estimateCost, sizeOfShape } from './expression-cost.ts';

const vars = new Map([['context', sizeOfShape(CONTEXT_SHAPE)]]);
const cost = (src: string): number => estimateCost(parse(src).ast, vars).cost;
const H = 'context.Request.Headers';

test('the context size follows the caps', () => {
  const s = sizeOfShape(CONTEXT_SHAPE);
  const headers = s.fields?.Request.fields?.Headers;
  assert.equal(headers?.count, CAPS.headerCount);
  assert.equal(headers?.elem?.str, CAPS.headerValue);
  assert.equal(headers?.key?.str, CAPS.headerName);
  assert.equal(s.fields?.Request.fields?.Body.str, CAPS.body);
  const claim = s.fields?.Claims.elem;
  assert.equal(claim?.str, CAPS.claims.string);
  assert.equal(claim?.elem, claim, 'dyn values nest without end');
});

test('literals are free; member access costs one per step', () => {
  assert.equal(cost('1'), 0);
  assert.equal(cost('context.Subscription.Id'), 3);
  assert.equal(cost(`${H}["x"]`), 4);
});

test('string functions scale with the length they scan', () => {
  const h = `${H}["x"]`;
  // contains scans the receiver (8192 / 10); startsWith only the prefix.
  assert.equal(cost(`${h}.contains("a")`), 4 + 1 + Math.ceil(CAPS.headerValue / 10));
  assert.equal(cost(`${h}.startsWith("abc")`), 4 + 1 + 1);
  // matches costs one per input character.
  assert.equal(cost(`${h}.matches("a")`), 4 + 1 + CAPS.headerValue);
  assert.ok(cost('context.Request.Body.matches("a")') > CAPS.body);
  // Comparing with a short literal costs the literal's length, not the header's.
  assert.equal(cost(`${h} == "abc"`), 4 + 1);
});

test('comprehensions multiply by the size of their range; nesting multiplies again', () => {
  const one = cost(`${H}.exists(k, k.startsWith("x-"))`);
  assert.equal(one, 3 + CAPS.headerCount * (1 + 1 + 1 + 1));
  const nested = cost(`${H}.all(a, ${H}.all(b, a != b))`);
  assert.ok(nested > CAPS.headerCount * CAPS.headerCount * 10, String(nested));
  const values = cost(`${H}.exists(k, ${H}[k].matches("evil"))`);
  assert.ok(values >= CAPS.headerCount * CAPS.headerValue, String(values));
  // A literal list of three costs three iterations.
  assert.equal(cost('[1, 2, 3].all(x, x > 0)'), 10 + 3 * (1 + 1 + 1));
});

test('a ternary costs its condition and its dearer branch; && and || both sides', () => {
  const dear = `${H}["x"].matches("a")`;
  assert.equal(cost(`true ? ${dear} : false`), 1 + cost(dear));
  assert.equal(cost(`false && ${dear}`), 1 + cost(dear));
});

test('cel.bind gives its variable the size of its value', () => {
  assert.equal(cost(`cel.bind(v, context.Request.Body, v.matches("a"))`), 1 + 3 + (1 + 1 + CAPS.body));
});

test('the hotspot names the deepest part that carries at least half the cost', () => {
  const src = `context.Request.Method == "GET" && ${H}.exists(k, ${H}[k].matches("evil"))`;
  const { hotspot, cost: total } = estimateCost(parse(src).ast, vars);
  assert.equal(src.slice(hotspot.start, hotspot.end), `${H}[k].matches("evil")`);
  assert.ok(hotspot.cost * 2 >= total);
});
