import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Lab, waitFor } from '../test/lab/index.ts';
import {
  criLine,
  fakeContainer,
  fileSinkModule,
  gzipAway,
  readRecords,
  startRun,
  writeLines,
} from '../test/support/log-shipper/harness.ts';
import type { LogRecord } from './record.ts';

/**
 * Kubelet rotation with compression: `0.log` is renamed `0.log.<YYYYMMDD-hhmmss>`, a new `0.log`
 * is opened, and the rotated file before the newest is gzipped (written as `.gz`, the original
 * removed). Every line must arrive exactly once.
 */

const lab = new Lab();
afterEach(() => lab.cleanup());

const setup = () => fileSinkModule(lab, 'logs-gz');

let clock = Date.UTC(2026, 10, 22, 3, 0, 0);
/** The kubelet's rotated name: `<file>.<YYYYMMDD-hhmmss>`, one second apart. */
function rotatedName(file: string): string {
  clock += 1000;
  const t = new Date(clock).toISOString();
  return `${file}.${t.slice(0, 10).replaceAll('-', '')}-${t.slice(11, 19).replaceAll(':', '')}`;
}

function expectExactlyOnce(records: LogRecord[], expected: string[]): void {
  const seen = new Map<string, number>();
  for (const r of records) seen.set(r.message, (seen.get(r.message) ?? 0) + 1);
  const missing = expected.filter((m) => !seen.has(m));
  const dupes = [...seen].filter(([, n]) => n > 1).map(([m]) => m);
  expect({ missing: missing.slice(0, 10), missingCount: missing.length, dupes: dupes.slice(0, 10) }).toEqual({
    missing: [],
    missingCount: 0,
    dupes: [],
  });
  expect(records.length).toBe(expected.length);
}

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

describe('log shipper: kubelet rotation with gzip', () => {
  it('reads a file rotated and gzipped while stopped from its checkpoint, and the rotations after it from their start, once', async () => {
    const { root, pods, out, module } = await setup();
    const a = fakeContainer(root, pods, 'shop', 'web-1', 'app');
    writeLines(a.file, 'a', 0, 100);
    const run1 = startRun(module, lab);
    await run1.ready;
    await waitFor(() => readRecords(out).length >= 100, { what: 'the first 100 lines' });
    await run1.stop();

    // While stopped: more lines, then two rotations; the older rotated file is compressed.
    writeLines(a.file, 'a', 100, 200);
    const first = rotatedName(a.file);
    renameSync(a.file, first);
    writeLines(a.file, 'a', 200, 300);
    const second = rotatedName(a.file);
    renameSync(a.file, second);
    gzipAway(first);
    writeLines(a.file, 'a', 300, 400);
    // A .gz of another file (no checkpoint) is not read.
    writeFileSync(`${a.file}.20200101-000000.gz`, gzipSync(criLine('old-rotated')));

    const run2 = startRun(module, lab);
    await run2.ready;
    // The first file is read from its checkpoint, compressed; the second was never opened, and is
    // newer than the first: read whole.
    await waitFor(() => readRecords(out).length >= 400, { what: '400 lines', timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 500));
    await run2.stop();
    const got = readRecords(out);
    expectExactlyOnce(got, range('a', 0, 400));
    const fromGz = got.filter((r) => r.message === 'a-150')[0];
    expect(fromGz?.labels).toMatchObject({ namespace: 'shop', pod: 'web-1', pod_uid: a.uid });
    expect(fromGz?.file).toBe(a.file);
  });

  it('ships every line once through rename + gzip rotation under load, draining each renamed file before it is compressed', async () => {
    const { root, pods, out, module } = await setup();
    const a = fakeContainer(root, pods, 'shop', 'web-2', 'app');
    const run = startRun(module, lab);
    await run.ready;
    const rotated: string[] = [];
    const line = 'x'.repeat(150);
    let n = 0;
    // ≈ 200 KiB per file, 12 rotations, writing in bursts as an application would.
    for (let r = 0; r < 12; r++) {
      for (let burst = 0; burst < 10; burst++) {
        let text = '';
        for (let i = 0; i < 100; i++) text += criLine(`b-${n++} ${line}`);
        appendFileSync(a.file, text);
        await new Promise((res) => setTimeout(res, 5));
      }
      const name = rotatedName(a.file);
      renameSync(a.file, name);
      writeFileSync(a.file, '');
      rotated.push(name);
      // The kubelet keeps the newest rotated file as it is and compresses the ones before.
      if (rotated.length >= 2) gzipAway(rotated[rotated.length - 2]!);
    }
    await waitFor(() => readRecords(out).length >= n, { what: `${n} lines`, timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 500));
    await run.stop();
    expectExactlyOnce(
      readRecords(out).map((r) => ({ ...r, message: r.message.split(' ')[0]! })),
      range('b', 0, n),
    );
  });
});
