// The contract suite every ConfigStore backend runs (config-store.test.ts runs it for memory and SQLite; etcd later).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigStoreError, type ConfigStore, type WatchEvent } from './config-store.ts';

export interface ConfigStoreFixture {
  /** A fresh, empty store. */
  store: ConfigStore;
  /** Opens another store on the same data (another connection or process); absent when the backend keeps nothing. */
  openPeer?: () => Promise<ConfigStore>;
  /** Closes whatever is still open and removes the data. */
  dispose(): Promise<void>;
}

export type ConfigStoreFactory = () => Promise<ConfigStoreFixture>;

async function withFixture(factory: ConfigStoreFactory, fn: (f: ConfigStoreFixture) => Promise<void>): Promise<void> {
  const f = await factory();
  try {
    await fn(f);
  } finally {
    await f.dispose();
  }
}

/** The next `n` events, or a failure after `ms`. */
async function take(it: AsyncIterator<WatchEvent>, n: number, ms = 3000): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`watch: got ${out.length} of ${n} events within ${ms} ms`)), ms);
  });
  try {
    while (out.length < n) {
      const r = await Promise.race([it.next(), deadline]);
      if (r.done === true) throw new Error(`watch ended after ${out.length} of ${n} events`);
      out.push(r.value);
    }
    return out;
  } finally {
    clearTimeout(timer);
  }
}

const brief = (events: WatchEvent[]): string[] =>
  events.map((e) => (e.type === 'COMPACTED' ? `COMPACTED@${e.compactRevision}` : `${e.type} ${e.key}=${e.value ?? ''}@${e.modRevision}`));

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConfigStoreError, String(err));
    return err.code;
  }
  assert.fail('expected a ConfigStoreError');
}

/** `persistent`: the backend can be opened again on the same data (restart, a second writer); only such backends get those tests. */
export function configStoreContract(name: string, factory: ConfigStoreFactory, opts: { persistent: boolean } = { persistent: true }): void {
  const run = (fn: (f: ConfigStoreFixture) => Promise<void>) => () => withFixture(factory, fn);

  describe(`ConfigStore contract: ${name}`, () => {
    test('revisions start at 0 and grow by one per write; keys carry create/mod revision and version', run(async ({ store }) => {
      assert.equal(await store.revision(), 0);
      assert.deepEqual(await store.put('a', '1'), { ok: true, revision: 1, changed: 1 });
      assert.deepEqual(await store.put('b', '1'), { ok: true, revision: 2, changed: 1 });
      assert.deepEqual(await store.put('a', '2'), { ok: true, revision: 3, changed: 1 });
      assert.deepEqual(await store.get('a'), { key: 'a', value: '2', createRevision: 1, modRevision: 3, version: 2 });
      assert.equal(await store.revision(), 3);
      assert.deepEqual(await store.delete('a'), { ok: true, revision: 4, changed: 1 });
      assert.equal(await store.get('a'), undefined);
      await store.put('a', '3'); // a new life: createRevision and version start again
      assert.deepEqual(await store.get('a'), { key: 'a', value: '3', createRevision: 5, modRevision: 5, version: 1 });
      assert.equal(await errorCode(store.put('', 'x')), 'invalid');
      assert.equal(await errorCode(store.put('k', 42 as unknown as string)), 'invalid');
    }));

    test('compare-and-swap: a matching modRevision writes, a stale one is a conflict that writes nothing', run(async ({ store }) => {
      await store.put('k', 'v1');
      const ok = await store.put('k', 'v2', { ifModRevision: 1 });
      assert.deepEqual(ok, { ok: true, revision: 2, changed: 1 });
      const stale = await store.put('k', 'v3', { ifModRevision: 1 });
      assert.deepEqual(stale, { ok: false, revision: 2, conflicts: [{ key: 'k', expected: 1, actual: 2 }] });
      assert.equal((await store.get('k'))?.value, 'v2');
      assert.equal(await store.revision(), 2);
      // Compare against an absent key: its modRevision is 0.
      assert.deepEqual(await store.put('nope', 'x', { ifModRevision: 5 }), { ok: false, revision: 2, conflicts: [{ key: 'nope', expected: 5, actual: 0 }] });
    }));

    test('create-only: ifModRevision 0 writes an absent key and refuses an existing one', run(async ({ store }) => {
      assert.equal((await store.put('new', 'x', { ifModRevision: 0 })).ok, true);
      const again = await store.put('new', 'y', { ifModRevision: 0 });
      assert.equal(again.ok, false);
      assert.deepEqual(!again.ok && again.conflicts, [{ key: 'new', expected: 0, actual: 1 }]);
      assert.equal((await store.get('new'))?.value, 'x');
    }));

    test('putMany is atomic: one revision for all, and a failing compare writes nothing', run(async ({ store }) => {
      await store.put('cfg/a', 'a0');
      await store.put('cfg/gone', 'g0');
      const ok = await store.putMany([
        { key: 'cfg/a', value: 'a1', ifModRevision: 1 },
        { key: 'cfg/b', value: 'b1', ifModRevision: 0 },
        { key: 'cfg/gone', delete: true },
      ]);
      assert.deepEqual(ok, { ok: true, revision: 3, changed: 3 });
      assert.deepEqual((await store.range('cfg/')).kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`), ['cfg/a=a1@3', 'cfg/b=b1@3']);
      const bad = await store.putMany([
        { key: 'cfg/a', value: 'a2', ifModRevision: 3 },
        { key: 'cfg/c', value: 'c2' },
        { key: 'cfg/b', value: 'b2', ifModRevision: 1 },
        { key: 'cfg/d', value: 'd2', ifModRevision: 7 },
      ]);
      assert.deepEqual(bad, { ok: false, revision: 3, conflicts: [{ key: 'cfg/b', expected: 1, actual: 3 }, { key: 'cfg/d', expected: 7, actual: 0 }] });
      assert.equal(await store.revision(), 3);
      assert.equal((await store.get('cfg/a'))?.value, 'a1');
      assert.equal(await store.get('cfg/c'), undefined);
      assert.equal(await errorCode(store.putMany([{ key: 'x', value: '1' }, { key: 'x', value: '2' }])), 'invalid');
      assert.deepEqual(await store.putMany([]), { ok: true, revision: 3, changed: 0 });
    }));

    test('delete: an absent key changes nothing; a compare guards it like a put', run(async ({ store }) => {
      assert.deepEqual(await store.delete('absent'), { ok: true, revision: 0, changed: 0 });
      await store.put('k', 'v');
      assert.deepEqual(await store.delete('k', { ifModRevision: 9 }), { ok: false, revision: 1, conflicts: [{ key: 'k', expected: 9, actual: 1 }] });
      assert.equal((await store.get('k'))?.value, 'v');
      assert.deepEqual(await store.delete('k', { ifModRevision: 1 }), { ok: true, revision: 2, changed: 1 });
      assert.equal(await store.get('k'), undefined);
    }));

    test('range: by prefix, in code-point order, with limit, and at past revisions', run(async ({ store }) => {
      for (const k of ['a/2', 'a/1', 'a0', 'a', 'b/1', 'a/\u{1F600}', 'a/\uffff']) await store.put(k, k);
      const all = await store.range('a/');
      // Code-point order puts U+FFFF before U+1F600 (UTF-16 order would not).
      assert.deepEqual(all.kvs.map((kv) => kv.key), ['a/1', 'a/2', 'a/\uffff', 'a/\u{1F600}']);
      assert.equal(all.revision, 7);
      assert.equal(all.more, false);
      const page = await store.range('a/', { limit: 2 });
      assert.deepEqual(page.kvs.map((kv) => kv.key), ['a/1', 'a/2']);
      assert.equal(page.more, true);
      assert.equal((await store.range('')).kvs.length, 7);
      assert.equal((await store.range('zzz')).kvs.length, 0);
      await store.put('a/1', 'changed');
      await store.delete('a/2');
      const past = await store.range('a/', { revision: 2 });
      assert.deepEqual(past.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`), ['a/1=a/1@2', 'a/2=a/2@1']);
      assert.equal(past.revision, 2);
      assert.deepEqual((await store.range('a/', { revision: 2, limit: 1 })).more, true);
      assert.equal(await errorCode(store.range('a/', { revision: 99 })), 'future_revision');
    }));

    test('watch from a past revision replays history, then streams live changes under the prefix only', run(async ({ store }) => {
      await store.put('w/a', '1');
      await store.put('other', 'x');
      await store.put('w/b', '1');
      const ac = new AbortController();
      const it = store.watch('w/', 1, ac.signal)[Symbol.asyncIterator]();
      assert.deepEqual(brief(await take(it, 2)), ['PUT w/a=1@1', 'PUT w/b=1@3']);
      const pending = take(it, 3);
      await store.put('other', 'y');
      await store.putMany([{ key: 'w/a', value: '2' }, { key: 'w/c', value: '1' }]);
      await store.delete('w/b');
      assert.deepEqual(brief(await pending), ['PUT w/a=2@5', 'PUT w/c=1@5', 'DELETE w/b=@6']);
      ac.abort();
      assert.deepEqual(await it.next(), { done: true, value: undefined });
    }));

    test('watch from 0 starts at the next change', run(async ({ store }) => {
      await store.put('k', 'old');
      const ac = new AbortController();
      const it = store.watch('', 0, ac.signal)[Symbol.asyncIterator]();
      const pending = take(it, 1);
      await store.put('k', 'new');
      assert.deepEqual(brief(await pending), ['PUT k=new@2']);
      ac.abort();
    }));

    test('a watch ends when its signal aborts, even while waiting, and leaves no timer behind', run(async ({ store }) => {
      const before = timers();
      const ac = new AbortController();
      const it = store.watch('', 1, ac.signal)[Symbol.asyncIterator]();
      const waiting = it.next();
      await new Promise((r) => setImmediate(r));
      ac.abort();
      assert.deepEqual(await waiting, { done: true, value: undefined });
      assert.equal(timers(), before);
      // An already-aborted signal yields nothing.
      const none = store.watch('', 1, AbortSignal.abort())[Symbol.asyncIterator]();
      assert.deepEqual(await none.next(), { done: true, value: undefined });
      assert.equal(timers(), before);
    }));

    test('compaction: older reads fail, watches from before it are told so, later ones still replay', run(async ({ store }) => {
      await store.put('c/a', '1');
      await store.put('c/b', '1');
      await store.put('c/a', '2');
      await store.delete('c/b');
      await store.put('c/c', '1');
      await store.compact(4);
      assert.equal(await store.compactRevision(), 4);
      assert.equal(await errorCode(store.range('c/', { revision: 3 })), 'compacted');
      assert.deepEqual((await store.range('c/', { revision: 4 })).kvs.map((kv) => `${kv.key}=${kv.value}`), ['c/a=2']);
      const ac = new AbortController();
      const old = store.watch('c/', 2, ac.signal)[Symbol.asyncIterator]();
      assert.deepEqual(brief(await take(old, 1)), ['COMPACTED@4']);
      assert.equal((await old.next()).done, true);
      const fresh = store.watch('c/', 5, ac.signal)[Symbol.asyncIterator]();
      assert.deepEqual(brief(await take(fresh, 1)), ['PUT c/c=1@5']);
      ac.abort();
      await store.compact(2); // older than the compaction: nothing to do
      assert.equal(await store.compactRevision(), 4);
      assert.equal(await errorCode(store.compact(6)), 'future_revision');
    }));

    test('a watcher on a quiet prefix is not reported compacted by changes elsewhere', run(async ({ store }) => {
      const ac = new AbortController();
      const it = store.watch('quiet/', 1, ac.signal)[Symbol.asyncIterator]();
      const pending = take(it, 1);
      for (let i = 0; i < 3; i++) await store.put('busy', String(i));
      await new Promise((r) => setTimeout(r, 20));
      await store.compact(3);
      await store.put('quiet/x', '1');
      assert.deepEqual(brief(await pending), ['PUT quiet/x=1@4']);
      ac.abort();
    }));

    test('concurrent CAS writers never lose an update', run(async ({ store, openPeer }) => {
      const peer = openPeer === undefined ? store : await openPeer();
      try {
        const increments = async (s: ConfigStore, n: number): Promise<number> => {
          let conflicts = 0;
          for (let done = 0; done < n;) {
            const cur = await s.get('counter');
            await new Promise((r) => setImmediate(r)); // let the other writer in between the read and the write
            const next = String(Number(cur?.value ?? '0') + 1);
            const r = await s.put('counter', next, { ifModRevision: cur?.modRevision ?? 0 });
            if (r.ok) done++;
            else conflicts++;
          }
          return conflicts;
        };
        const conflicts = await Promise.all([increments(store, 25), increments(peer, 25), increments(store, 25)]);
        assert.equal((await store.get('counter'))?.value, '75');
        assert.equal((await peer.get('counter'))?.version, 75);
        assert.ok(conflicts.reduce((a, b) => a + b) > 0, 'the writers did interleave');
      } finally {
        if (peer !== store) await peer.close();
      }
    }));

    test('a closed store refuses operations and ends its watches; an aborted signal refuses too', run(async ({ store }) => {
      await assert.rejects(store.get('k', { signal: AbortSignal.abort() }), { name: 'AbortError' });
      const it = store.watch('', 1, new AbortController().signal)[Symbol.asyncIterator]();
      const waiting = it.next();
      await new Promise((r) => setImmediate(r));
      await store.close();
      assert.deepEqual(await waiting, { done: true, value: undefined });
      assert.equal(await errorCode(store.get('k')), 'closed');
      await store.close(); // idempotent
    }));

    if (opts.persistent) test('restart keeps data, revisions and compaction', () => withFixture(factory, async ({ store, openPeer }) => {
      if (openPeer === undefined) throw new Error('a persistent backend must give openPeer');
      await store.put('r/a', '1');
      await store.put('r/b', '1');
      await store.put('r/a', '2');
      await store.compact(2);
      await store.close();
      const again = await openPeer();
      try {
        assert.equal(await again.revision(), 3);
        assert.equal(await again.compactRevision(), 2);
        assert.deepEqual(await again.get('r/a'), { key: 'r/a', value: '2', createRevision: 1, modRevision: 3, version: 2 });
        assert.deepEqual((await again.put('r/c', '1')).revision, 4);
        const ac = new AbortController();
        assert.deepEqual(brief(await take(again.watch('r/', 3, ac.signal)[Symbol.asyncIterator](), 2)), ['PUT r/a=2@3', 'PUT r/c=1@4']);
        ac.abort();
      } finally {
        await again.close();
      }
    }));

    if (opts.persistent) test('a watch sees changes committed through another store on the same data', () => withFixture(factory, async ({ store, openPeer }) => {
      if (openPeer === undefined) throw new Error('a persistent backend must give openPeer');
      const peer = await openPeer();
      try {
        const ac = new AbortController();
        const it = store.watch('x/', 1, ac.signal)[Symbol.asyncIterator]();
        const pending = take(it, 2);
        await peer.put('x/1', 'a');
        await peer.putMany([{ key: 'x/1', delete: true }]);
        assert.deepEqual(brief(await pending), ['PUT x/1=a@1', 'DELETE x/1=@2']);
        ac.abort();
      } finally {
        await peer.close();
      }
    }));
  });
}
