import { existsSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lab, waitFor } from '../test/lab/index.ts';
import {
  fakeContainer,
  fileSinkModule,
  gzipAway,
  readRecords,
  startRun,
  writeLines,
} from '../test/support/log-shipper/harness.ts';

/**
 * The kubelet compresses a rotated file while the restarted shipper is recovering: the recovery
 * listed `0.log.<stamp>`, and by the time it opens it there is only `0.log.<stamp>.gz`. Seen in
 * test/logs-rotation-crash.test.ts under load, where a whole rotation (30–372 lines) never arrived.
 * The interleaving is forced here: right after the recovery lists the container's directory, the
 * plain file is compressed away (the kubelet's order: write .gz, remove the plain file).
 */

let afterRecoveryLists: ((dir: string) => void) | undefined;
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const readdir = async (...args: Parameters<typeof fs.readdir>) => {
    const names = await fs.readdir(...args);
    // Only the restart recovery's listing (its stack), as the race needs.
    if (afterRecoveryLists && new Error().stack?.includes('restart-recovery'))
      afterRecoveryLists(String(args[0]));
    return names;
  };
  return { ...fs, readdir, default: { ...fs, readdir } };
});

const lab = new Lab();
afterEach(() => lab.cleanup());

describe('log shipper: a rotated file compressed while the restart recovery reads the directory', () => {
  it('reads it from its .gz: every line once', async () => {
    const { root, pods, out, module } = await fileSinkModule(lab, 'logs-gz-race');
    const a = fakeContainer(root, pods, 'shop', 'web-1', 'app');
    writeLines(a.file, 'a', 0, 100);
    const run1 = startRun(module, lab);
    await run1.ready;
    await waitFor(() => readRecords(out).length >= 100, { what: 'the first 100 lines' });
    await run1.stop();

    // While stopped: the checkpoint's file is rotated, then the next one too (still plain).
    writeLines(a.file, 'a', 100, 200);
    const first = `${a.file}.20261204-100001`;
    renameSync(a.file, first);
    writeLines(a.file, 'a', 200, 300);
    const second = `${a.file}.20261204-100002`;
    renameSync(a.file, second);
    writeLines(a.file, 'a', 300, 400);

    let compressed = false;
    afterRecoveryLists = (dir) => {
      if (dir !== dirname(a.file) || !existsSync(second)) return;
      gzipAway(second);
      compressed = true;
    };
    const run2 = startRun(module, lab);
    await run2.ready;
    await waitFor(() => readRecords(out).length >= 400, { what: '400 lines', timeoutMs: 10_000 }).catch(
      () => {},
    );
    await new Promise((r) => setTimeout(r, 500));
    await run2.stop();
    afterRecoveryLists = undefined;

    expect(compressed).toBe(true);
    const got = readRecords(out).map((r) => r.message);
    const expected = Array.from({ length: 400 }, (_, i) => `a-${i}`);
    expect(expected.filter((m) => !got.includes(m)).length).toBe(0);
    expect(got.length).toBe(400);
  });
});
