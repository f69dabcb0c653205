import { appendFileSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentModule } from '../shared/module.ts';
import { Lab, waitFor } from '../test/lab/index.ts';
import {
  briefRotationOnInode,
  fakeContainer,
  fileSinkModule,
  gzipAway,
  messages,
  readRecords,
  restartFor,
  startRun,
  writeLines,
} from '../test/support/log-shipper/harness.ts';
import type { StoredEntry } from './checkpoint.ts';
import { FINGERPRINT_BYTES, fingerprint } from './identity.ts';
import { checkpointPath } from './pipeline.ts';

/**
 * A checkpoint taken while the live `0.log` was still empty (a fingerprint of length 0, which any
 * file matches). While the shipper is down the file fills, is rotated and gzipped, and on ext4 a
 * later `0.log` may get its inode. Seen in test/logs-rotation-crash.test.ts under load: the new
 * file was taken for the checkpointed one, and the rotations in between (whole files) were never
 * read. The inode reuse, which the filesystem decides, is made here by writing the checkpoint as
 * the shipper would have on such a filesystem: the empty file's entry under the new file's inode.
 */

const lab = new Lab();
afterEach(() => lab.cleanup());

function readCheckpoints(dataDir: string): StoredEntry[] {
  try {
    return (JSON.parse(readFileSync(checkpointPath(dataDir), 'utf8')) as { files: StoredEntry[] }).files;
  } catch {
    return [];
  }
}

function writeCheckpoints(dataDir: string, files: StoredEntry[]): void {
  writeFileSync(checkpointPath(dataDir), `${JSON.stringify({ version: 1, files })}\n`);
}

/**
 * A first run that checkpoints the container's empty live file, then stops: the file's entry,
 * once stored with the rotation it came after (`bornAfter`). `before` writes what is on disk first.
 */
async function emptyCheckpointed(
  prefix: string,
  pod: string,
  bornAfter: string,
  before?: (file: string) => void,
) {
  const node = await fileSinkModule(lab, prefix);
  const a = fakeContainer(node.root, node.pods, 'shop', pod, 'app');
  before?.(a.file);
  const run = startRun(node.module, lab);
  await run.ready;
  const ino = `${statSync(a.file).ino}`;
  const empty = await waitFor(
    () =>
      readCheckpoints(node.config.dataDir).find(
        (e) => e.ino === ino && e.fpLen === 0 && e.bornAfter === bornAfter,
      ),
    { what: "the empty file's checkpoint, with the rotation it came after" },
  );
  await run.stop();
  return { ...node, a, empty };
}

/**
 * Lines a-0…a-99 into `file`, rotated to `.20261204-100001`; a-100…a-199, rotated to
 * `.20261204-100002` (returned); a-200…a-299 live.
 */
function rotateTwice(file: string): string {
  writeLines(file, 'a', 0, 100);
  renameSync(file, `${file}.20261204-100001`);
  writeLines(file, 'a', 100, 200);
  const second = `${file}.20261204-100002`;
  renameSync(file, second);
  writeLines(file, 'a', 200, 300);
  return second;
}

/** Where line `n` (from 0) of a text starts. */
function offsetOfLine(text: string, n: number): number {
  let at = 0;
  for (let i = 0; i < n; i++) at = text.indexOf('\n', at) + 1;
  return at;
}

/** nodeward_logs_lost_lines_total, summed over its labels. */
async function linesLost(module: AgentModule): Promise<number> {
  const lost = (await module.registry.getSingleMetric('nodeward_logs_lost_lines_total')?.get())?.values ?? [];
  return lost.reduce((sum, v) => sum + v.value, 0);
}

describe('log shipper: a checkpoint of an empty file, and the inode given to a new file', () => {
  it('reads the rotations made while stopped, not only the new file on that inode', async () => {
    const { out, module, config, a, empty } = await emptyCheckpointed('logs-ino-reuse', 'web-1', '');

    // While stopped: it fills and is rotated and gzipped; so is the next; the third is live.
    writeLines(a.file, 'a', 0, 100);
    renameSync(a.file, `${a.file}.20261204-100001`);
    writeLines(a.file, 'a', 100, 200);
    renameSync(a.file, `${a.file}.20261204-100002`);
    writeLines(a.file, 'a', 200, 300);
    gzipAway(`${a.file}.20261204-100001`);
    // ext4 gave the freed inode to the new 0.log.
    const reused = `${statSync(a.file).ino}`;
    writeCheckpoints(config.dataDir, [{ ...empty, ino: reused }]);

    const got = await restartFor(module, lab, out, 300);

    expect(messages(0, 300).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(0, 300));
  });

  it('reads the empty file renamed while stopped when another checkpoint of its path is found first', async () => {
    // A rotation from before the first start: not read (rotated before the shipper knew the path).
    const { out, module, config, a, empty } = await emptyCheckpointed(
      'logs-empty-renamed',
      'web-2',
      '20261204-100000',
      (file) => writeLines(`${file}.20261204-100000`, 'a', 0, 100),
    );
    const older = `${a.file}.20261204-100000`;

    // As if stopped half-way through the older rotation (a slow sink): its checkpoint at line 50,
    // listed before the empty file's, so that recovery finds it first.
    const fh = await open(older, 'r');
    const fp = await fingerprint(fh, FINGERPRINT_BYTES);
    await fh.close();
    const half = offsetOfLine(readFileSync(older, 'utf8'), 50);
    const st = statSync(older);
    writeCheckpoints(config.dataDir, [
      {
        dev: `${st.dev}`,
        ino: `${st.ino}`,
        fpLen: fp.len,
        fpHash: fp.hash,
        offset: half,
        path: empty.path,
        realPath: empty.realPath,
        size: st.size,
      },
      empty,
    ]);
    // While stopped: the empty file fills and is rotated (still plain); a new one is live.
    writeLines(a.file, 'a', 100, 200);
    renameSync(a.file, `${a.file}.20261204-100001`);
    writeLines(a.file, 'a', 200, 300);

    const got = await restartFor(module, lab, out, 250);

    expect(messages(50, 300).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(50, 300));
  });

  it('reads a rotation on the inode of a checkpointed file the kubelet deleted while stopped', async () => {
    const { out, module, config, a, empty } = await emptyCheckpointed('logs-deleted-reuse', 'web-6', '');

    // While stopped: the empty file fills and is rotated, so is the next; the third is live.
    const second = rotateTwice(a.file);
    // The second rotation got the inode of another checkpointed file of the path, which the kubelet
    // deleted meanwhile (a file the shipper had not finished: its entry, other first bytes).
    const deleted: StoredEntry = {
      ...empty,
      ino: `${statSync(second).ino}`,
      fpLen: 40,
      fpHash: 'AAAAAAAAAAAAAAAAAAAAAA',
      offset: 0,
      size: 4000,
    };
    writeCheckpoints(config.dataDir, [empty, deleted]);

    const got = await restartFor(module, lab, out, 300);
    expect(messages(0, 300).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(0, 300));
    // And the deleted file still counts: what was left of it (4,000 bytes of ≈ 50-byte lines).
    expect(await linesLost(module)).toBeGreaterThan(50);
  });

  it('reads a rotation on the inode a checkpointed file had before it was gzipped', async () => {
    const { out, module, config, a, empty } = await emptyCheckpointed('logs-gz-old-inode', 'web-8', '');
    // While stopped: the file fills and is rotated; half of it was shipped (as if stopped while
    // behind: its checkpoint at line 50). It is gzipped, freeing its inode, which the next
    // rotation gets; the third file is live.
    writeLines(a.file, 'a', 0, 100);
    const first = `${a.file}.20261204-100001`;
    renameSync(a.file, first);
    const fh = await open(first, 'r');
    const fp = await fingerprint(fh, FINGERPRINT_BYTES);
    await fh.close();
    const half = offsetOfLine(readFileSync(first, 'utf8'), 50);
    gzipAway(first);
    writeLines(a.file, 'a', 100, 200);
    const second = `${a.file}.20261204-100002`;
    renameSync(a.file, second);
    writeLines(a.file, 'a', 200, 300);
    const st = statSync(second);
    writeCheckpoints(config.dataDir, [
      { ...empty, ino: `${st.ino}`, fpLen: fp.len, fpHash: fp.hash, offset: half, size: half },
    ]);

    const got = await restartFor(module, lab, out, 250);
    expect(messages(50, 300).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(50, 300));
  });

  it("reads a rotation on the inode of another container's empty checkpoint", async () => {
    const { out, module, config, a, empty, root, pods } = await emptyCheckpointed(
      'logs-other-empty',
      'web-9',
      '',
    );
    // While stopped: the empty file fills and is rotated, so is the next; the third is live.
    const second = rotateTwice(a.file);
    // The second rotation got the inode of a quiet container's empty file, whose pod was deleted
    // meanwhile (its checkpoint listed after this one).
    const gone: StoredEntry = {
      ...empty,
      ino: `${statSync(second).ino}`,
      path: join(root, 'gone_shop_app-0.log'),
      realPath: join(pods, 'shop_gone_0', 'app', '0.log'),
    };
    writeCheckpoints(config.dataDir, [empty, gone]);

    const got = await restartFor(module, lab, out, 300);
    expect(messages(0, 300).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(0, 300));
  });

  it('resumes a quiet container: an empty file still live is not taken for a rotated one', async () => {
    // Read and rotated before: its rotations must not be shipped again on every restart. Its entry
    // stored with the rotation it came after: the check of the path's rotations runs at restart.
    const { out, module, a } = await emptyCheckpointed(
      'logs-empty-quiet',
      'web-3',
      '20261204-100000',
      (file) => writeLines(`${file}.20261204-100000`, 'old', 0, 50),
    );

    writeLines(a.file, 'a', 0, 20);
    const got = await restartFor(module, lab, out, 20);

    expect(got).toEqual(messages(0, 20));
  });

  it('reads a rotation that came and went between two looks on the inode of a file read already', async (ctx) => {
    const { out, module, root, pods } = await fileSinkModule(lab, 'logs-done-reuse');
    const a = fakeContainer(root, pods, 'shop', 'web-4', 'app');
    writeLines(a.file, 'a', 0, 50);
    const run = startRun(module, lab);
    lab.defer('stop the run', () => run.stop().catch(() => {}));
    await run.ready;
    const readIno = statSync(a.file).ino;
    const first = `${a.file}.20261204-100001`;
    renameSync(a.file, first);
    writeLines(a.file, 'a', 50, 100);
    // Read to its end, past the wait for more lines, and closed: a file of the path read already.
    await waitFor(() => readRecords(out).length >= 100, { what: 'the first 100 lines' });
    await new Promise((r) => setTimeout(r, 1000));

    // The kubelet gzips the first rotation, freeing its inode, and rotates twice; the file that
    // lived under 0.log between the two rotations gets that inode.
    if (!briefRotationOnInode(a.file, first, readIno, [100, 150, 200])) ctx.skip();

    await waitFor(() => readRecords(out).length >= 200, { what: '200 lines', timeoutMs: 10_000 }).catch(
      () => {},
    );
    await new Promise((r) => setTimeout(r, 300));
    await run.stop();
    const got = readRecords(out).map((r) => r.message);
    expect(messages(0, 200).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(0, 200));
  });

  it('counts as lost what the kubelet deleted of the empty file and the files after it while stopped', async () => {
    const { out, module, config, a } = await emptyCheckpointed('logs-empty-deleted', 'web-5', '');

    // While stopped, 50 lines a second (CRI timestamps: the rate the estimate uses): the empty
    // file fills and is rotated, then the next; the kubelet deletes the first (its file count).
    const savedAt = statSync(checkpointPath(config.dataDir)).mtimeMs;
    const timed = (file: string, from: number, to: number, startMs: number) =>
      appendFileSync(
        file,
        messages(from, to)
          .map((m, i) => `${new Date(startMs + i * 20).toISOString()} stdout F ${m}\n`)
          .join(''),
      );
    timed(a.file, 0, 100, savedAt + 100);
    renameSync(a.file, `${a.file}.20261204-100001`);
    timed(a.file, 100, 200, savedAt + 2100);
    renameSync(a.file, `${a.file}.20261204-100002`);
    timed(a.file, 200, 250, savedAt + 4100);
    unlinkSync(`${a.file}.20261204-100001`);

    const got = await restartFor(module, lab, out, 150);
    expect(got).toEqual(messages(100, 250));
    const counted = await linesLost(module);
    // An estimate from the checkpoint's write to the oldest rotation left: 100 lines, and the
    // 0.1 s before the first.
    expect(counted).toBeGreaterThanOrEqual(100);
    expect(counted).toBeLessThanOrEqual(110);
  });
});
