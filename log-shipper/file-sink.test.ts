import {
  appendFileSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/logger.ts';
import { Lab, tempDir, waitFor } from '../test/lab/index.ts';
import {
  criLine,
  dockerLine,
  fakeContainer,
  readRecords,
  startRun,
  testConfig,
  writeLines,
} from '../test/support/log-shipper/harness.ts';
import { createLogsModule } from './index.ts';
import { checkpointPath } from './pipeline.ts';
import type { LogRecord } from './record.ts';

const lab = new Lab();
afterEach(() => lab.cleanup());

async function setup() {
  const dir = await tempDir('logs-e2e', lab);
  const root = join(dir, 'containers');
  const pods = join(dir, 'pods');
  const out = join(dir, 'out.jsonl');
  const config = testConfig({
    node: { name: 'node-7' },
    dataDir: join(dir, 'data'),
    logs: {
      root,
      sink: 'file',
      file: { path: out },
      pollInterval: '50ms',
      rescanInterval: '1s',
      rotateWait: '300ms',
      checkpointInterval: '100ms',
      batch: { wait: '20ms' },
    },
  });
  const module = createLogsModule({ config, log: createLogger('silent') });
  return { dir, root, pods, out, config, module };
}

/** Messages seen, with how often: every expected one must be there exactly once. */
function tally(records: LogRecord[]): Map<string, number> {
  const seen = new Map<string, number>();
  for (const r of records) seen.set(r.message, (seen.get(r.message) ?? 0) + 1);
  return seen;
}

function expectExactlyOnce(records: LogRecord[], expected: string[]): void {
  const seen = tally(records);
  const missing = expected.filter((m) => !seen.has(m));
  const dupes = [...seen].filter(([, n]) => n > 1).map(([m]) => m);
  expect({ missing: missing.slice(0, 10), dupes: dupes.slice(0, 10) }).toEqual({ missing: [], dupes: [] });
  expect(records.length).toBe(expected.length);
}

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

describe('log shipper → file sink', () => {
  it('ships every line once, through rotation, truncation and deletion, and resumes after a restart', async () => {
    const { root, pods, out, config, module } = await setup();
    // The pods are there before the module starts.
    mkdirSync(root, { recursive: true });
    const a = fakeContainer(root, pods, 'shop', 'web-7d9f-abcde', 'nginx');
    const b = fakeContainer(root, pods, 'billing', 'worker-0', 'job');
    writeLines(a.file, 'a', 0, 50);
    // b is written by docker's json-file driver.
    appendFileSync(b.file, dockerLine('b-json-0'));

    const run1 = startRun(module, lab);
    await run1.ready;
    const expected = [...range('a', 0, 50), 'b-json-0'];

    // Lines written while running, including a CRI partial and a stderr line.
    writeLines(a.file, 'a', 50, 100);
    const c = fakeContainer(root, pods, 'shop', 'api-1', 'server');
    const cCreated = Date.now();
    appendFileSync(c.file, criLine('c-first'));
    expected.push(...range('a', 50, 100), 'c-first');
    const firstC = await waitFor(() => readRecords(out).find((r) => r.message === 'c-first'), {
      what: 'the first line of a new container',
    });
    expect(Date.now() - cCreated).toBeLessThan(1000);
    expect(firstC.labels).toEqual({
      node: 'node-7',
      namespace: 'shop',
      pod: 'api-1',
      pod_uid: c.uid,
      container: 'server',
      container_id: c.id,
    });
    expect(firstC.file).toBe(c.file);

    appendFileSync(
      c.file,
      criLine('c-part1 ', 'stdout', 'P') + criLine('c-err', 'stderr') + criLine('c-part2'),
    );
    expected.push('c-err', 'c-part1 c-part2');

    // Rename rotation (kubelet): the runtime writes a last line to the renamed file before it
    // reopens 0.log.
    renameSync(a.file, `${a.file}.20240501-100000`);
    writeLines(`${a.file}.20240501-100000`, 'a', 100, 105);
    writeLines(a.file, 'a', 105, 150);
    expected.push(...range('a', 100, 150));

    // copytruncate: shipped, truncated, written again (less than before, so only size tells).
    writeLines(b.file, 'b', 0, 40, 'docker');
    expected.push(...range('b', 0, 40));
    await waitFor(() => tally(readRecords(out)).has('b-39'), { what: 'b before truncation' });
    truncateSync(b.file, 0);
    writeLines(b.file, 'b', 40, 45, 'docker');
    expected.push(...range('b', 40, 45));

    // Deletion: lines written just before the container's files go are still shipped.
    const d = fakeContainer(root, pods, 'shop', 'batch-1', 'task');
    writeLines(d.file, 'd', 0, 10);
    await waitFor(() => tally(readRecords(out)).has('d-9'), { what: 'd to be open' });
    writeLines(d.file, 'd', 10, 30);
    rmSync(d.link);
    rmSync(d.file);
    expected.push(...range('d', 0, 30));

    await waitFor(() => readRecords(out).length >= expected.length, { what: 'all lines of run 1' });
    const records1 = readRecords(out);
    expectExactlyOnce(records1, expected);

    // Labels of each file, and offsets are where the line starts.
    for (const r of records1.filter((r) => r.message.startsWith('a-'))) {
      expect(r.labels).toEqual({
        node: 'node-7',
        namespace: 'shop',
        pod: 'web-7d9f-abcde',
        pod_uid: a.uid,
        container: 'nginx',
        container_id: a.id,
      });
      expect(r.stream).toBe('stdout');
    }
    const bJson = records1.find((r) => r.message === 'b-json-0')!;
    expect(bJson.labels.namespace).toBe('billing');
    expect(records1.find((r) => r.message === 'c-err')?.stream).toBe('stderr');
    const a60 = records1.find((r) => r.message === 'a-60')!;
    const aText = readFileSync(`${a.file}.20240501-100000`, 'utf8');
    expect(aText.slice(a60.offset).split('\n')[0]).toMatch(/^\S+ stdout F a-60$/);

    // The rotated and the deleted file are closed once drained: a, b, c remain.
    const metrics = await waitFor(
      async () => {
        const text = await module.registry.metrics();
        // A rotated file with a successor closes at its end: its last batch may still be in flight.
        return text.includes('nodeward_logs_files_watched 3') &&
          text.includes('nodeward_logs_inflight_bytes 0')
          ? text
          : undefined;
      },
      { what: 'rotated and deleted files to be closed, their lines acknowledged' },
    );
    expect(metrics).toContain(`nodeward_logs_lines_sent_total{namespace="shop"} ${expected.length - 46}`);
    expect(metrics).toMatch(/nodeward_logs_rotations_total\{kind="rename"\} 1/);
    expect(metrics).toMatch(/nodeward_logs_rotations_total\{kind="truncate"\} 1/);
    expect(metrics).toMatch(/nodeward_logs_rotations_total\{kind="delete"\} 1/);

    await run1.stop();
    const saved = JSON.parse(readFileSync(checkpointPath(config.dataDir), 'utf8')) as {
      version: number;
      files: { realPath: string; offset: number }[];
    };
    expect(saved.version).toBe(1);
    expect(saved.files.map((f) => f.realPath).sort()).toEqual([a.file, b.file, c.file].sort());
    for (const f of saved.files) expect(f.offset).toBe(readFileSync(f.realPath).length);

    // While stopped: more lines, and a rotation whose old file still has unread lines.
    writeLines(a.file, 'a', 150, 170);
    renameSync(a.file, `${a.file}.20240501-110000`);
    writeLines(a.file, 'a', 170, 180);
    writeLines(c.file, 'c', 0, 10);
    const e = fakeContainer(root, pods, 'other', 'new-pod', 'main');
    writeLines(e.file, 'e', 0, 10);
    expected.push(...range('a', 150, 180), ...range('c', 0, 10), ...range('e', 0, 10));

    const run2 = startRun(module, lab);
    await run2.ready;
    writeLines(a.file, 'a', 180, 200);
    expected.push(...range('a', 180, 200));
    await waitFor(() => readRecords(out).length >= expected.length, { what: 'all lines of run 2' });
    // A little longer: nothing may arrive twice.
    await new Promise((r) => setTimeout(r, 300));
    await run2.stop();
    expectExactlyOnce(readRecords(out), expected);
  });

  it('resumes mid-file at the checkpoint and does not inherit an offset through inode reuse', async () => {
    const { root, pods, out, config, module } = await setup();
    mkdirSync(root, { recursive: true });
    const a = fakeContainer(root, pods, 'ns', 'p', 'c');
    writeLines(a.file, 'x', 0, 20);
    const run1 = startRun(module, lab);
    await run1.ready;
    await waitFor(() => readRecords(out).length === 20, { what: 'first lines' });
    await run1.stop();

    // Same path, same inode (truncate + rewrite in place) but different content: a new file.
    writeFileSync(a.file, criLine('y-0') + criLine('y-1'));
    const run2 = startRun(module, lab);
    await run2.ready;
    await waitFor(() => readRecords(out).length === 22, { what: 'the rewritten file' });
    await run2.stop();
    expect(
      readRecords(out)
        .slice(20)
        .map((r) => r.message),
    ).toEqual(['y-0', 'y-1']);
    const saved = JSON.parse(readFileSync(checkpointPath(config.dataDir), 'utf8')) as {
      files: { offset: number }[];
    };
    expect(saved.files[0]?.offset).toBe(readFileSync(a.file).length);
  });

  it('splits lines longer than maxLineBytes and flags them, losing no byte', async () => {
    const { root, out, dir } = await setup();
    mkdirSync(root, { recursive: true });
    const config = testConfig({
      node: { name: 'n' },
      dataDir: join(dir, 'data2'),
      logs: {
        root,
        file: { path: out },
        maxLineBytes: '1KiB',
        pollInterval: '50ms',
        batch: { wait: '10ms' },
      },
    });
    const module = createLogsModule({ config, log: createLogger('silent') });
    const long = 'é'.repeat(2000); // 4000 bytes, 2-byte characters: cuts must respect them
    writeFileSync(join(root, 'plain.log'), `${long}\nshort\n`);
    const run = startRun(module, lab);
    await run.ready;
    await waitFor(() => readRecords(out).some((r) => r.message === 'short'), { what: 'the short line' });
    await run.stop();
    const records = readRecords(out);
    const pieces = records.filter((r) => r.message !== 'short');
    expect(pieces.map((p) => p.message).join('')).toBe(long);
    expect(pieces.slice(0, -1).every((p) => p.truncated === true && p.parse_error === true)).toBe(true);
    expect(pieces.at(-1)?.truncated).toBeUndefined();
    expect(pieces.every((p) => Buffer.byteLength(p.message) <= 1024)).toBe(true);
    expect(records.find((r) => r.message === 'short')?.labels).toEqual({ node: 'n' });
  });

  it('with readFrom end, starts files found at the first start at their end, and new files at 0', async () => {
    const { root, pods, out, dir } = await setup();
    mkdirSync(root, { recursive: true });
    const config = testConfig({
      node: { name: 'n' },
      dataDir: join(dir, 'data3'),
      logs: { root, file: { path: out }, readFrom: 'end', pollInterval: '50ms', batch: { wait: '10ms' } },
    });
    const module = createLogsModule({ config, log: createLogger('silent') });
    const old = fakeContainer(root, pods, 'ns', 'old');
    writeLines(old.file, 'old', 0, 10);
    appendFileSync(old.file, '2024-05-01T10:00:00Z stdout F half a li'); // no newline yet
    const run = startRun(module, lab);
    await run.ready;
    appendFileSync(old.file, 'ne\n');
    writeLines(old.file, 'old', 10, 12);
    const fresh = fakeContainer(root, pods, 'ns', 'fresh');
    writeLines(fresh.file, 'fresh', 0, 3);
    await waitFor(() => readRecords(out).length >= 5, { what: 'the new lines' });
    await new Promise((r) => setTimeout(r, 200));
    await run.stop();
    expect(readRecords(out).map((r) => [r.message, r.parse_error ?? false])).toEqual(
      expect.arrayContaining([
        ['old-10', false],
        ['old-11', false],
        ['fresh-0', false],
        ['fresh-1', false],
        ['fresh-2', false],
      ]),
    );
    // The line that was half written at the start is shipped whole rather than as a torn raw line.
    expect(
      readRecords(out)
        .map((r) => r.message)
        .sort(),
    ).toEqual(['half a line', 'old-10', 'old-11', 'fresh-0', 'fresh-1', 'fresh-2'].sort());
  });
});
