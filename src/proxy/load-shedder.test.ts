import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LoadShedder } from './load-shedder.ts';

/** Keeps the event loop busy for `ms` in steps of `stepMs` blocking work, yielding to I/O and timers between steps. */
async function busyFor(ms: number, stepMs: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const stepEnd = performance.now() + stepMs;
    while (performance.now() < stepEnd) {
      // blocking work
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A shedder with a `limitMs` delay limit checked every 20 ms, the state changes it reported, closed after `run`. */
async function withShedder(limitMs: number, run: (shedder: LoadShedder, changes: boolean[]) => Promise<void>): Promise<void> {
  const changes: boolean[] = [];
  const shedder = new LoadShedder(() => limitMs, (on) => changes.push(on), 20);
  try {
    await run(shedder, changes);
  } finally {
    shedder.close();
  }
}

test('an idle loop is not sampled finely, and is never overloaded', () =>
  withShedder(100, async (shedder, changes) => {
    await sleep(200);
    assert.equal(shedder.sampling, false);
    assert.deepEqual(changes, []);
  }));

test('sustained delay above the limit sheds, and shedding stops when the loop is idle again', () =>
  withShedder(100, async (shedder, changes) => {
    // 250 ms blocking steps: every timer is ~250 ms late, well over the 100 ms limit (and over any scheduling noise of a
    // loaded CI machine), for several intervals in a row.
    await busyFor(1500, 250);
    assert.equal(shedder.sampling, true, 'a busy loop is sampled');
    assert.deepEqual(changes, [true]);
    await sleep(400);
    assert.deepEqual(changes, [true, false]);
    assert.equal(shedder.sampling, false, 'sampling stops once the loop is idle');
  }));

test('a busy loop whose delays stay under the limit does not shed', () =>
  withShedder(500, async (shedder, changes) => {
    await busyFor(500, 5);
    assert.equal(shedder.sampling, true);
    assert.deepEqual(changes, []);
  }));

test('one long stall is not overload', () =>
  withShedder(100, async (_shedder, changes) => {
    await sleep(60);
    await busyFor(400, 400);
    await sleep(200);
    assert.deepEqual(changes, []);
  }));
