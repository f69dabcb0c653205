import { existsSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lab, waitFor } from '../test/lab/index.ts';
import {
  fakeContainer,
  fileSinkModule,
  gzipAway,
  messages,
  readRecords,
  restartFor,
  shippedThenStopped,
  startRun,
  writeLines,
} from '../test/support/log-shipper/harness.ts';

/**
 * The kubelet compresses a rotated file while the shipper looks at it (it writes `<name>.gz`,
 * then removes `<name>`): the shipper listed `0.log.<stamp>`, and by the time it stats or opens it
 * there is only `0.log.<stamp>.gz`. Seen in test/logs-rotation-crash.test.ts under load after a
 * restart, where a whole rotation (30–372 lines) never arrived. The interleavings are forced here:
 * right after the restart recovery's or the catch-up's listing or stat, the plain file is
 * compressed away.
 */

type Caller = 'recovery' | 'catchUp';
let afterList: ((dir: string, caller: Caller) => void) | undefined;
let afterStat: ((path: string, caller: Caller) => void) | undefined;
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  // Only the calls of the restart recovery or of a path's catch-up (their stack), as the races need.
  const callerOf = (): Caller | undefined => {
    const stack = new Error().stack ?? '';
    if (stack.includes('restart-recovery')) return 'recovery';
    return stack.includes('catchUp') ? 'catchUp' : undefined;
  };
  const readdir = async (...args: Parameters<typeof fs.readdir>) => {
    const caller = callerOf();
    const names = await fs.readdir(...args);
    if (afterList && caller) afterList(String(args[0]), caller);
    return names;
  };
  const stat = async (...args: Parameters<typeof fs.stat>) => {
    const caller = callerOf();
    const st = await fs.stat(...args);
    if (afterStat && caller) afterStat(String(args[0]), caller);
    return st;
  };
  return { ...fs, readdir, stat, default: { ...fs, readdir, stat } };
});

const lab = new Lab();
afterEach(() => {
  afterList = undefined;
  afterStat = undefined;
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
    afterList = (dir, caller) => {
      if (caller !== 'recovery' || dir !== dirname(a.file) || !existsSync(second)) return;
      gzipAway(second);
      compressed = true;
    };
    const got = await restartFor(module, lab, out, 400);

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
    afterStat = (path, caller) => {
      if (caller !== 'recovery' || path !== rotated || !existsSync(rotated)) return;
      gzipAway(rotated);
      compressed = true;
    };
    const got = await restartFor(module, lab, out, 300);

    expect(compressed).toBe(true);
    expect(messages(0, 300).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(0, 300));
  });
});

describe('log shipper: a rotation missed between two looks, compressed while the catch-up reads the directory', () => {
  for (const when of ['list', 'stat'] as const)
    it(`reads it from its .gz when compressed right after the catch-up's ${when}`, async () => {
      const { out, module, root, pods } = await fileSinkModule(lab, `logs-gz-race-${when}`);
      const a = fakeContainer(root, pods, 'shop', 'web-3', 'app');
      writeLines(a.file, 'a', 0, 50);
      const run = startRun(module, lab);
      await run.ready;
      await waitFor(() => readRecords(out).length >= 50, { what: 'the first 50 lines' });

      // At once (the shipper runs in this process and cannot look in between): two rotations;
      // the file between them lived under 0.log too briefly to be followed.
      renameSync(a.file, `${a.file}.20261204-100001`);
      writeLines(a.file, 'a', 50, 100);
      const brief = `${a.file}.20261204-100002`;
      renameSync(a.file, brief);
      writeLines(a.file, 'a', 100, 150);
      let compressed = false;
      const compress = (caller: Caller) => {
        if (caller !== 'catchUp' || !existsSync(brief)) return;
        gzipAway(brief);
        compressed = true;
      };
      if (when === 'list') afterList = (dir, caller) => dir === dirname(a.file) && compress(caller);
      else afterStat = (path, caller) => path === brief && compress(caller);

      await waitFor(() => readRecords(out).length >= 150, { what: '150 lines', timeoutMs: 10_000 }).catch(
        () => {},
      );
      await new Promise((r) => setTimeout(r, 300));
      await run.stop();
      expect(compressed).toBe(true);
      const got = readRecords(out).map((r) => r.message);
      expect(messages(0, 150).filter((m) => !got.includes(m))).toEqual([]);
      expect(got).toEqual(messages(0, 150));
    });
});
