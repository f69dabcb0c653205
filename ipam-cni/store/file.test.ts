import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileStore } from './file.ts';

/**
 * What the conformance suite cannot show for the file store: several processes on one node, and
 * processes killed in the middle of a commit.
 */

const storeModule = join(import.meta.dirname, 'file.ts');

/** A child process that CAS-increments key "n" (forever when count is 0), printing each acknowledged value. */
function incrementer(dir: string, count: number): ChildProcess {
  const code = `
    const { FileStore } = await import(${JSON.stringify(storeModule)});
    const s = await FileStore.open(${JSON.stringify(dir)});
    for (let i = 0; ${count} === 0 || i < ${count}; i++) {
      for (;;) {
        const cur = (await s.get(['n'])).get('n');
        const next = Number(cur?.value ?? '0') + 1;
        const r = await s.commit({
          conditions: [cur ? { key: 'n', modRevision: cur.modRevision } : { key: 'n', absent: true }],
          writes: [{ key: 'n', value: String(next) }],
        });
        if (r.ok) { process.stdout.write(next + '\\n'); break; }
      }
    }
  `;
  return spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

function collect(child: ChildProcess): {
  child: ChildProcess;
  lines: string[];
  done: Promise<number | null>;
} {
  const lines: string[] = [];
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  return { child, lines, done: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

describe('file store across processes', () => {
  const dirs: string[] = [];
  const tempDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'nodeward-filestore-'));
    dirs.push(d);
    return d;
  };
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it('loses no update when four processes compare-and-swap the same key', async () => {
    const dir = await tempDir();
    const runs = Array.from({ length: 4 }, () => collect(incrementer(dir, 40)));
    expect(await Promise.all(runs.map((r) => r.done))).toEqual([0, 0, 0, 0]);
    const values = runs.flatMap((r) => r.lines.map(Number));
    expect(new Set(values).size).toBe(160); // every acknowledged value is unique
    const store = await FileStore.open(dir);
    expect((await store.get(['n'])).get('n')?.value).toBe('160');
    await store.close();
  });

  it('keeps every acknowledged commit when processes are SIGKILLed mid-write', async () => {
    const dir = await tempDir();
    let acknowledged = 0;
    for (let round = 0; round < 5; round++) {
      const run = collect(incrementer(dir, 0));
      // Kill only once it is committing in a loop, at a moment it does not choose.
      while (run.lines.length < 20) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 30 + 17 * round));
      run.child.kill('SIGKILL');
      await run.done;
      const last = Number(run.lines.at(-1));
      expect(last).toBeGreaterThan(acknowledged);
      // A leftover temporary file of the dead process must not confuse the next open.
      await writeFile(join(dir, `.state.json.tmp-${run.child.pid}-abcdef`), '{"trunc');
      const store = await FileStore.open(dir);
      const value = Number((await store.get(['n'])).get('n')?.value);
      // Everything acknowledged is there; at most the one commit in flight landed unacknowledged.
      expect(value === last || value === last + 1).toBe(true);
      expect(await readdir(dir)).toEqual(['state.json']);
      await store.close();
      acknowledged = value;
    }
  });
});
