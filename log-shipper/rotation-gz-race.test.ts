import { existsSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lab } from '../test/lab/index.ts';
import {
  gzipAway,
  messages,
  restartFor,
  shippedThenStopped,
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
let afterRecoveryStats: ((path: string) => void) | undefined;
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  // Only the restart recovery's calls (their stack), as the races need.
  const byRecovery = () => new Error().stack?.includes('restart-recovery') === true;
  const readdir = async (...args: Parameters<typeof fs.readdir>) => {
    const names = await fs.readdir(...args);
    if (afterRecoveryLists && byRecovery()) afterRecoveryLists(String(args[0]));
    return names;
  };
  const stat = async (...args: Parameters<typeof fs.stat>) => {
    const st = await fs.stat(...args);
    if (afterRecoveryStats && byRecovery()) afterRecoveryStats(String(args[0]));
    return st;
  };
  return { ...fs, readdir, stat, default: { ...fs, readdir, stat } };
});

const lab = new Lab();
afterEach(() => {
  afterRecoveryLists = undefined;
  afterRecoveryStats = undefined;
  return lab.cleanup();
});

describe('log shipper: a rotated file compressed while the restart recovery reads the directory', () => {
  it('reads it from its .gz: every line once', async () => {
    const { out, module, container: a } = await shippedThenStopped(lab, 'logs-gz-race', 'web-1');

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
    const got = await restartFor(module, lab, out, 400);
    afterRecoveryLists = undefined;

    expect(compressed).toBe(true);
    expect(messages(0, 400).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(0, 400));
  });

  it("reads the checkpoint's own file from its .gz when it is compressed between recovery's stat and open", async () => {
    const { out, module, container: a } = await shippedThenStopped(lab, 'logs-gz-race-own', 'web-2');

    // While stopped: the checkpoint's file grows and is rotated; a new one is live.
    writeLines(a.file, 'a', 100, 200);
    const rotated = `${a.file}.20261204-100001`;
    renameSync(a.file, rotated);
    writeLines(a.file, 'a', 200, 300);

    let compressed = false;
    afterRecoveryStats = (path) => {
      if (path !== rotated || !existsSync(rotated)) return;
      gzipAway(rotated);
      compressed = true;
    };
    const got = await restartFor(module, lab, out, 300);

    expect(compressed).toBe(true);
    expect(messages(0, 300).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(0, 300));
  });
});
