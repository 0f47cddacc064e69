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

test('an idle loop is not sampled finely, and is never overloaded', async () => {
  const changes: boolean[] = [];
  const shedder = new LoadShedder(() => 30, (on) => changes.push(on), 20);
  try {
    await sleep(200);
    assert.equal(shedder.sampling, false);
    assert.deepEqual(changes, []);
  } finally {
    shedder.close();
  }
});

test('sustained delay above the limit sheds, and shedding stops when the loop is idle again', async () => {
  const changes: boolean[] = [];
  const shedder = new LoadShedder(() => 30, (on) => changes.push(on), 20);
  try {
    // 80 ms blocking steps: every timer is ~80 ms late, well over the 30 ms limit, for many intervals in a row.
    await busyFor(800, 80);
    assert.equal(shedder.sampling, true, 'a busy loop is sampled');
    assert.deepEqual(changes, [true]);
    await sleep(300);
    assert.deepEqual(changes, [true, false]);
    assert.equal(shedder.sampling, false, 'sampling stops once the loop is idle');
  } finally {
    shedder.close();
  }
});

test('a busy loop whose delays stay under the limit does not shed', async () => {
  const changes: boolean[] = [];
  const shedder = new LoadShedder(() => 200, (on) => changes.push(on), 20);
  try {
    await busyFor(500, 5);
    assert.equal(shedder.sampling, true);
    assert.deepEqual(changes, []);
  } finally {
    shedder.close();
  }
});

test('one long stall is not overload', async () => {
  const changes: boolean[] = [];
  const shedder = new LoadShedder(() => 30, (on) => changes.push(on), 20);
  try {
    await sleep(60);
    await busyFor(150, 150);
    await sleep(150);
    assert.deepEqual(changes, []);
  } finally {
    shedder.close();
  }
});
