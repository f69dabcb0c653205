import { afterEach, describe, expect, it } from 'vitest';
import { type Commit, type CommitResult, MAX_COMMIT_OPS, type Store } from '../../../ipam-cni/store/store.ts';
import { NodewardError } from '../../../shared/errors.ts';

/**
 * The one test suite every Store implementation passes: IPAM's correctness argument is made
 * against these semantics, so a store that differs from etcd here would break it silently.
 */

export interface StoreFixture {
  store: Store;
  cleanup?: () => Promise<void>;
}

const put = (key: string, value: string) => ({ key, value });
const absent = (key: string) => ({ key, absent: true as const });
const unchanged = (key: string, modRevision: number) => ({ key, modRevision });

function ok(r: CommitResult): number {
  if (!r.ok) throw new Error(`commit failed; current: ${JSON.stringify([...r.current.keys()])}`);
  return r.revision;
}

export function storeConformance(
  name: string,
  open: () => Promise<StoreFixture>,
  options: { skip?: string | false } = {},
): void {
  describe.skipIf(Boolean(options.skip))(`Store conformance: ${name}`, () => {
    const fixtures: StoreFixture[] = [];
    const fresh = async () => {
      const f = await open();
      fixtures.push(f);
      return f.store;
    };
    afterEach(async () => {
      for (const f of fixtures.splice(0)) {
        await f.store.close();
        await f.cleanup?.();
      }
    });

    it('reads nothing from an empty store', async () => {
      const s = await fresh();
      expect((await s.get(['a', 'b'])).size).toBe(0);
      expect((await s.get([])).size).toBe(0);
      expect((await s.list('')).entries).toEqual([]);
    });

    it('creates keys under an absent condition; all keys of a commit share its revision', async () => {
      const s = await fresh();
      const rev = ok(
        await s.commit({ conditions: [absent('a'), absent('b')], writes: [put('a', '1'), put('b', '2')] }),
      );
      const got = await s.get(['a', 'b', 'c']);
      expect([...got.keys()].sort()).toEqual(['a', 'b']);
      expect(got.get('a')).toEqual({ key: 'a', value: '1', createRevision: rev, modRevision: rev });
      expect(got.get('b')).toEqual({ key: 'b', value: '2', createRevision: rev, modRevision: rev });
    });

    it('refuses to create an existing key, writes nothing, and returns what is there', async () => {
      const s = await fresh();
      const rev = ok(await s.commit({ conditions: [], writes: [put('a', '1')] }));
      const r = await s.commit({
        conditions: [absent('x'), absent('a')],
        writes: [put('a', '2'), put('x', '3')],
      });
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect([...r.current.keys()]).toEqual(['a']); // x does not exist, so it is not in current
      expect(r.current.get('a')).toMatchObject({ value: '1', modRevision: rev });
      expect(r.revision).toBeGreaterThanOrEqual(rev);
      expect((await s.get(['a', 'x'])).get('a')?.value).toBe('1');
      expect((await s.get(['x'])).size).toBe(0);
    });

    it('updates under modRevision == seen, refuses a stale one, keeps createRevision', async () => {
      const s = await fresh();
      const r1 = ok(await s.commit({ conditions: [absent('k')], writes: [put('k', 'v1')] }));
      const r2 = ok(await s.commit({ conditions: [unchanged('k', r1)], writes: [put('k', 'v2')] }));
      expect(r2).toBeGreaterThan(r1);
      const stale = await s.commit({ conditions: [unchanged('k', r1)], writes: [put('k', 'v3')] });
      expect(stale.ok).toBe(false);
      if (!stale.ok)
        expect(stale.current.get('k')).toEqual({
          key: 'k',
          value: 'v2',
          createRevision: r1,
          modRevision: r2,
        });
      expect((await s.get(['k'])).get('k')?.value).toBe('v2');
      // A condition on a key that does not exist never holds.
      expect((await s.commit({ conditions: [unchanged('nope', r1)], writes: [put('z', '1')] })).ok).toBe(
        false,
      );
    });

    it('deletes; a deleted key is absent again and is re-created with a new createRevision', async () => {
      const s = await fresh();
      const r1 = ok(await s.commit({ conditions: [], writes: [put('k', 'v')] }));
      const r2 = ok(
        await s.commit({ conditions: [unchanged('k', r1)], writes: [{ key: 'k', delete: true }] }),
      );
      expect(r2).toBeGreaterThan(r1);
      expect((await s.get(['k'])).size).toBe(0);
      const r3 = ok(await s.commit({ conditions: [absent('k')], writes: [put('k', 'again')] }));
      expect((await s.get(['k'])).get('k')).toMatchObject({ createRevision: r3, modRevision: r3 });
    });

    it('is all or nothing: one failing condition among many stops every write', async () => {
      const s = await fresh();
      const base = ok(await s.commit({ conditions: [], writes: [put('held', 'x')] }));
      const writes = Array.from({ length: 50 }, (_, i) => put(`ips/${String(i).padStart(2, '0')}`, 'v'));
      const r = await s.commit({
        conditions: [...writes.map((w) => absent(w.key)), absent('held')],
        writes: [...writes, { key: 'held', delete: true }],
      });
      expect(r.ok).toBe(false);
      expect((await s.list('ips/')).entries).toEqual([]);
      expect((await s.get(['held'])).get('held')?.modRevision).toBe(base);
    });

    it('lists a prefix sorted by key, and nothing outside it', async () => {
      const s = await fresh();
      const keys = [
        'ips/p/10.0.0.0-26/10.0.0.9',
        'ips/p/10.0.0.0-26/10.0.0.10',
        'ips/p/fd00::-122/fd00::5',
        'ips/pq/x',
        'ips/p',
        'blocks/p/a',
      ];
      const rev = ok(await s.commit({ conditions: [], writes: keys.map((k) => put(k, k)) }));
      const listing = await s.list('ips/p/');
      expect(listing.entries.map((e) => e.key)).toEqual([
        'ips/p/10.0.0.0-26/10.0.0.10',
        'ips/p/10.0.0.0-26/10.0.0.9',
        'ips/p/fd00::-122/fd00::5',
      ]);
      expect(listing.entries[0]).toEqual({
        key: 'ips/p/10.0.0.0-26/10.0.0.10',
        value: 'ips/p/10.0.0.0-26/10.0.0.10',
        createRevision: rev,
        modRevision: rev,
      });
      expect(listing.revision).toBeGreaterThanOrEqual(rev);
      expect((await s.list('')).entries).toHaveLength(keys.length);
    });

    it('lists thousands of keys in one snapshot', async () => {
      const s = await fresh();
      const total = 2500;
      for (let i = 0; i < total; i += MAX_COMMIT_OPS) {
        const writes = Array.from({ length: Math.min(MAX_COMMIT_OPS, total - i) }, (_, j) =>
          put(`big/${String(i + j).padStart(5, '0')}`, 'x'.repeat(100)),
        );
        ok(await s.commit({ conditions: [], writes }));
      }
      const listing = await s.list('big/');
      expect(listing.entries).toHaveLength(total);
      expect(new Set(listing.entries.map((e) => e.key)).size).toBe(total);
      expect(listing.entries.at(-1)?.key).toBe('big/02499');
    });

    it('holds an empty-prefix condition only while no key starts with the prefix', async () => {
      const s = await fresh();
      const empty = (prefix: string) => ({ prefix, empty: true as const });
      ok(await s.commit({ conditions: [], writes: [put('ips/b1/x', '1'), put('ips/b10', '1')] }));
      // 'ips/b1/' is empty although 'ips/b10' shares its first characters.
      ok(await s.commit({ conditions: [empty('ips/b1x/'), empty('ips/b2/')], writes: [put('m', '1')] }));
      const r = await s.commit({ conditions: [empty('ips/b1/')], writes: [put('m', '2')] });
      expect(r.ok).toBe(false);
      expect((await s.get(['m'])).get('m')?.value).toBe('1');
      ok(await s.commit({ conditions: [], writes: [{ key: 'ips/b1/x', delete: true }] }));
      ok(await s.commit({ conditions: [empty('ips/b1/')], writes: [put('m', '3')] }));
    });

    it('a commit that changes nothing succeeds without a new revision', async () => {
      const s = await fresh();
      const r1 = ok(await s.commit({ conditions: [], writes: [put('k', 'v')] }));
      const r2 = ok(await s.commit({ conditions: [unchanged('k', r1)], writes: [] }));
      const r3 = ok(await s.commit({ conditions: [], writes: [{ key: 'missing', delete: true }] }));
      expect(r2).toBe(r1);
      expect(r3).toBe(r1);
      expect((await s.get(['k'])).get('k')?.modRevision).toBe(r1);
    });

    it('takes MAX_COMMIT_OPS conditions and writes, and refuses more or repeated keys', async () => {
      const s = await fresh();
      const keys = Array.from({ length: MAX_COMMIT_OPS }, (_, i) => `k/${i}`);
      ok(await s.commit({ conditions: keys.map(absent), writes: keys.map((k) => put(k, 'v')) }));
      const tooMany: Commit = { conditions: [], writes: [...keys, 'k/x'].map((k) => put(k, 'w')) };
      await expect(s.commit(tooMany)).rejects.toMatchObject({ code: 'INTERNAL' });
      await expect(
        s.commit({ conditions: [], writes: [put('d', '1'), put('d', '2')] }),
      ).rejects.toBeInstanceOf(NodewardError);
      expect((await s.get(['d'])).size).toBe(0);
    });

    it('lets exactly one of 20 concurrent creators win', async () => {
      const s = await fresh();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          s.commit({ conditions: [absent('lock')], writes: [put('lock', String(i))] }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
    });

    it('loses no update among concurrent compare-and-swap increments', async () => {
      const s = await fresh();
      const increment = async () => {
        for (;;) {
          const cur = (await s.get(['n'])).get('n');
          const next = String(Number(cur?.value ?? '0') + 1);
          const r = await s.commit({
            conditions: [cur ? unchanged('n', cur.modRevision) : absent('n')],
            writes: [put('n', next)],
          });
          if (r.ok) return;
        }
      };
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 10; i++) await increment();
        }),
      );
      expect((await s.get(['n'])).get('n')?.value).toBe('80');
    });

    it('revisions only grow', async () => {
      const s = await fresh();
      let last = 0;
      for (let i = 0; i < 10; i++) {
        const rev = ok(await s.commit({ conditions: [], writes: [put(`r/${i % 3}`, String(i))] }));
        expect(rev).toBeGreaterThan(last);
        last = rev;
      }
      expect((await s.list('r/')).revision).toBeGreaterThanOrEqual(last);
    });
  });
}
