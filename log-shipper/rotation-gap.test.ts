import { appendFileSync, renameSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Lab, waitFor } from '../test/lab/index.ts';
import {
  fakeContainer,
  fileSinkModule,
  readRecords,
  startRun,
  writeLines,
} from '../test/support/log-shipper/harness.ts';

/**
 * The kubelet renames 0.log and only then asks the runtime to reopen it: for that moment the
 * /var/log/containers link points at nothing, and the runtime still writes to the renamed file.
 * Seen on containerd's CRI (test/e2e/logs.test.ts): a watch reported the link as removed, the
 * path's chain of files was forgotten, and the rotation read next was taken for one from before
 * the module's time and skipped. The rescan is set to an hour here, so it cannot repair anything.
 */

const lab = new Lab();
afterEach(() => lab.cleanup());

const setup = () => fileSinkModule(lab, 'logs-gap', { rescanInterval: '1h' });

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** rename, lines still written to the renamed file, a gap, then the reopened 0.log. */
async function rotateWithGap(file: string, stamp: string, late: () => void, gapMs: number) {
  renameSync(file, `${file}.${stamp}`);
  late();
  await sleep(gapMs);
  appendFileSync(file, '');
}

describe('log shipper: the moment between the kubelet renaming a log and the runtime reopening it', () => {
  it('keeps following the link, reads every file in order, and skips no rotation', async () => {
    const { root, pods, out, module } = await setup();
    const c = fakeContainer(root, pods, 'shop', 'web-1', 'app');
    const run = startRun(module, lab);
    await run.ready;
    writeLines(c.file, 'a', 0, 20);
    await waitFor(() => readRecords(out).length >= 20, { what: 'the first lines' });

    let n = 20;
    for (let r = 1; r <= 3; r++) {
      const stamp = `20260101-00000${r}`;
      await rotateWithGap(c.file, stamp, () => writeLines(`${c.file}.${stamp}`, 'a', n, n + 10), 400);
      n += 10;
      writeLines(c.file, 'a', n, n + 20);
      n += 20;
      // Caught up before the next rotation: the chain runs empty between two files.
      await waitFor(() => readRecords(out).length >= n, { what: `${n} lines`, timeoutMs: 10_000 });
    }
    await sleep(300);
    await run.stop();
    expect(readRecords(out).map((r) => r.message)).toEqual(range('a', 0, n));
  });

  it('reads the rotations a container already has when its link is found while running', async () => {
    const { root, pods, out, module } = await setup();
    const run = startRun(module, lab);
    await run.ready;
    // Rotated before the watch reported the link: a new container, every line is its own.
    const c = fakeContainer(root, pods, 'shop', 'web-2', 'app');
    writeLines(c.file, 'b', 0, 10);
    renameSync(c.file, `${c.file}.20260101-000001`);
    writeLines(c.file, 'b', 10, 20);
    await waitFor(() => readRecords(out).length >= 20, { what: '20 lines', timeoutMs: 10_000 });
    await sleep(300);
    await run.stop();
    expect(readRecords(out).map((r) => r.message)).toEqual(range('b', 0, 20));
  });
});
