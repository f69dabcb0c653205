import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { appendJournal, pendingEntries, replayJournal } from './journal.ts';
import type { CniRequest } from './protocol.ts';

const dir = mkdtempSync(join(tmpdir(), 'nodeward-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const req = (containerID: string): CniRequest => ({
  v: 1,
  command: 'DEL',
  containerID,
  netns: '',
  ifName: 'eth0',
  args: '',
  path: '/opt/cni/bin',
  config: '{}',
});

it('replays in order, keeps entries whose DEL failed, moves unreadable ones aside', async () => {
  appendJournal(dir, req('a'), new Date(1000));
  appendJournal(dir, req('b'), new Date(2000));
  appendJournal(dir, req('c'), new Date(3000));
  writeFileSync(join(dir, 'del-000000000004000-ffff.json'), 'not json');
  expect(await pendingEntries(dir)).toHaveLength(4);
  const seen: string[] = [];
  const errors: string[] = [];
  const outcome = await replayJournal(
    dir,
    async (r) => {
      seen.push(r.containerID);
      if (r.containerID === 'b') throw new Error('store down');
    },
    (name) => errors.push(name),
  );
  expect(seen).toEqual(['a', 'b', 'c']);
  expect(outcome).toEqual({ replayed: 2, failed: 2 });
  expect(errors).toHaveLength(2);
  expect(await pendingEntries(dir)).toHaveLength(1);
  expect(readdirSync(dir).filter((n) => n.startsWith('bad-'))).toEqual(['bad-del-000000000004000-ffff.json']);
  // The next replay finishes the one that failed.
  expect(
    await replayJournal(
      dir,
      async () => {},
      () => {},
    ),
  ).toEqual({ replayed: 1, failed: 0 });
  expect(await pendingEntries(join(dir, 'missing'))).toEqual([]);
});
