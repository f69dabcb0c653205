import { type FileHandle, open, realpath } from 'node:fs/promises';
import type { CheckpointEntry } from './checkpoint.ts';
import type { Enrichment } from './enrich.ts';
import { type FileOwner, FollowedFile, type FollowedFileDeps } from './followed-file.ts';
import { FINGERPRINT_BYTES, fingerprint, identityKey } from './identity.ts';
import type { InflightBudget } from './inflight.ts';
import { type Drains, RestartRecovery } from './restart-recovery.ts';
import { type BufferPool, openFile, Tailer, type TailerInit, type TailOptions } from './tail.ts';

/**
 * The files being shipped, each a FollowedFile with its checkpoint entry. Discovery says which
 * paths exist; this decides what to open, where to start, and what to do when a path starts
 * naming another file.
 */

export interface FollowedFilesOptions extends TailOptions {
  readFrom: 'beginning' | 'end';
  /** How long a path that failed to open (other than by vanishing) waits before the next try. */
  rescanInterval: number;
}

export interface FollowedFilesDeps extends FollowedFileDeps {
  options: FollowedFilesOptions;
  budget: InflightBudget;
  pool: BufferPool;
}

export class FollowedFiles implements FileOwner, Drains {
  private readonly deps: FollowedFilesDeps;
  private readonly recovery: RestartRecovery;
  /** Watched path → the file it names, being read. */
  private readonly following = new Map<string, FollowedFile>();
  /** Identity → every open file (following or draining). */
  private readonly open = new Map<string, FollowedFile>();
  private readonly runs = new Set<Promise<void>>();
  private readonly opening = new Set<string>();
  /** Paths discovery reports; tick() retries those that could not be opened yet. */
  private readonly known = new Set<string>();
  /** Paths that failed to open, and when: retried after rescanInterval, not on every event. */
  private readonly failed = new Map<string, number>();
  private stopRequested = false;

  constructor(deps: FollowedFilesDeps) {
    this.deps = deps;
    this.recovery = new RestartRecovery(deps, this);
  }

  get count(): number {
    return this.open.size;
  }

  get stopped(): boolean {
    return this.stopRequested;
  }

  isOpen(key: string): boolean {
    return this.open.has(key);
  }

  lagBytes(): number {
    let lag = 0;
    for (const f of this.open.values()) lag += Math.max(0, f.tailer.size - f.entry.offset);
    return lag;
  }

  /** Discovery found a path; `initial`: it was there when the module started. */
  async added(path: string, initial = false): Promise<void> {
    this.known.add(path);
    await this.follow(path, initial);
  }

  removed(path: string): void {
    this.known.delete(path);
    this.failed.delete(path);
    this.following.get(path)?.tailer.wake();
  }

  changed(path: string): void {
    const file = this.following.get(path);
    if (file !== undefined) file.tailer.wake();
    else if (this.known.has(path)) void this.follow(path, false);
  }

  /** Periodic: paths whose file could not be opened yet (between a rename and the new file). */
  tick(): void {
    for (const path of this.known) if (!this.following.has(path)) void this.follow(path, false);
  }

  /** After the files present at the start are followed: those rotated while the module was down. */
  recover(): Promise<void> {
    return this.recovery.recoverAll();
  }

  /** Stops every tailer; their unacknowledged lines are read again from the checkpoints next time. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    for (const f of this.open.values()) {
      f.tailer.stop();
      f.stop();
    }
    this.deps.budget.wakeAll();
    await Promise.allSettled([...this.runs]);
  }

  unfollowed(file: FollowedFile): void {
    const path = file.tailer.path;
    if (this.following.get(path) === file) this.following.delete(path);
    this.deps.log.debug(
      { path, file: file.entry.realPath },
      'log path names another file; draining the old one',
    );
    if (this.known.has(path)) void this.follow(path, false);
  }

  private async follow(path: string, initial: boolean): Promise<void> {
    if (this.stopRequested || this.following.has(path) || this.opening.has(path)) return;
    const failedAt = this.failed.get(path);
    if (failedAt !== undefined && Date.now() - failedAt < this.deps.options.rescanInterval) return;
    this.opening.add(path);
    let fh: FileHandle | undefined;
    try {
      const realPath = await realpath(path);
      fh = await open(realPath, 'r');
      const st = await fh.stat({ bigint: true });
      const key = identityKey(st.dev, st.ino);
      if (!st.isFile() || this.open.has(key) || this.stopRequested) return;
      const size = Number(st.size);
      let start = await this.resumeAt(fh, key, size);
      if (start === undefined) {
        start = initial && this.deps.options.readFrom === 'end' ? await lastLineEnd(fh, size) : 0;
      }
      const fp = await fingerprint(fh, Math.min(size, FINGERPRINT_BYTES));
      const enrichment = await this.deps.enricher.resolve({ path, realPath });
      if (this.stopRequested) return;
      const entry = this.deps.checkpoints.track(key, `${st.dev}`, `${st.ino}`, fp, start, path, realPath);
      const file = this.start(entry, enrichment, {
        fh: openFile(fh),
        path,
        dev: st.dev,
        ino: st.ino,
        start,
        size,
        fp,
        following: true,
      });
      this.following.set(path, file);
      this.failed.delete(path);
      fh = undefined;
    } catch (err) {
      // Gone between the event and the open: the next event or tick() tries again.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.failed.set(path, Date.now());
        this.deps.log.warn({ err, path, code: 'IO' }, 'cannot open log file; trying again later');
      }
    } finally {
      this.opening.delete(path);
      await fh?.close();
    }
  }

  /** Offset to resume at from a checkpoint of this very file, if there is one. */
  private async resumeAt(fh: FileHandle, key: string, size: number): Promise<number | undefined> {
    const entry = this.deps.checkpoints.get(key);
    if (entry === undefined) return undefined;
    const fp = await fingerprint(fh, entry.fp.len);
    if (fp.len !== entry.fp.len || fp.hash !== entry.fp.hash) {
      this.deps.log.info(
        { file: entry.realPath, key },
        'inode reused by another file; its checkpoint does not apply (the old file is looked for, rotated or gzipped)',
      );
      // Not awaited: the new file is followed meanwhile.
      void this.recovery.recover(this.deps.checkpoints.detach(entry));
      return 0;
    }
    if (entry.offset > size) {
      this.deps.log.info(
        { file: entry.realPath },
        'log file shorter than its checkpoint (truncated); reading from the start',
      );
      return 0;
    }
    return entry.offset;
  }

  /** Also for the files recovery finds: every open file is counted, stopped and never opened twice. */
  start(entry: CheckpointEntry, enrichment: Enrichment, init: TailerInit): FollowedFile {
    const d = this.deps;
    const file = new FollowedFile(this, d, entry, enrichment);
    file.tailer = new Tailer(init, d.options, d.pool, d.budget, file);
    const key = entry.key;
    this.open.set(key, file);
    const run = file.tailer
      .run()
      .catch((err: unknown) => {
        this.failed.set(file.tailer.path, Date.now());
        d.log.error(
          { err, file: file.entry.realPath, code: 'IO' },
          'reading a log file failed; it is reopened later',
        );
      })
      .finally(async () => {
        this.open.delete(key);
        const path = file.tailer.path;
        if (this.following.get(path) === file) this.following.delete(path);
        this.runs.delete(run);
        await init.fh.close().catch(() => {});
      });
    this.runs.add(run);
    return file;
  }
}

/** Where the last complete line ends, so that reading from the end does not start mid-line. */
async function lastLineEnd(fh: FileHandle, size: number): Promise<number> {
  const len = Math.min(size, 64 * 1024);
  if (len === 0) return 0;
  const buf = Buffer.allocUnsafe(len);
  const { bytesRead } = await fh.read(buf, 0, len, size - len);
  const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
  return nl === -1 ? size : size - len + nl + 1;
}
