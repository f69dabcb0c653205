import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { CniRequest } from './protocol.ts';

/**
 * The DEL journal. The spec wants DEL to succeed even when the plugin's daemon is down, or the
 * runtime leaks the sandbox; so the shim records a DEL it cannot hand to the agent here (one file
 * per DEL, written tmp + fsync + rename, so a crash leaves a whole entry or none), and the agent
 * records every DEL it answers here before tearing it down in the background (../teardown.ts).
 * Entries are replayed in name order (time first).
 */

export interface JournalEntry {
  readonly v: 1;
  readonly at: string;
  readonly request: CniRequest;
}

const ENTRY = /^del-\d+-[0-9a-f]+\.json$/;

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Records a DEL durably (synchronous: the shim has nothing else to do meanwhile). */
export function appendJournal(dir: string, request: CniRequest, now = new Date()): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const name = `del-${String(now.getTime()).padStart(15, '0')}-${randomBytes(6).toString('hex')}.json`;
  const tmp = join(dir, `.${name}.tmp`);
  const entry: JournalEntry = { v: 1, at: now.toISOString(), request };
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, JSON.stringify(entry));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
  fsyncDir(dir);
  return name;
}

/** Entry file names waiting for replay (oldest first). */
export async function pendingEntries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => ENTRY.test(n)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export interface ReplayOutcome {
  readonly replayed: number;
  readonly failed: number;
}

/**
 * Replays each entry with `del`; an entry is removed only after its DEL succeeded, so a failure
 * (the store still down) leaves it for the next replay. Unreadable entries are moved aside.
 */
export async function replayJournal(
  dir: string,
  del: (request: CniRequest) => Promise<void>,
  onError: (name: string, err: unknown) => void,
): Promise<ReplayOutcome> {
  let replayed = 0;
  let failed = 0;
  for (const name of await pendingEntries(dir)) {
    const file = join(dir, name);
    let entry: JournalEntry;
    try {
      entry = JSON.parse(await readFile(file, 'utf8')) as JournalEntry;
      if (entry.v !== 1 || entry.request?.command !== 'DEL') throw new Error('not a v1 DEL entry');
    } catch (err) {
      onError(name, err);
      renameSync(file, join(dir, `bad-${name}`));
      failed++;
      continue;
    }
    try {
      await del(entry.request);
      await unlink(file);
      replayed++;
    } catch (err) {
      onError(name, err);
      failed++;
    }
  }
  return { replayed, failed };
}
