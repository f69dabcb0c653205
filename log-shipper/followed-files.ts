import { statSync } from 'node:fs';
import { type FileHandle, open, realpath } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { CheckpointEntry } from './checkpoint.ts';
import type { Enrichment } from './enrich.ts';
import { type FileOwner, FollowedFile, type FollowedFileDeps } from './followed-file.ts';
import { FINGERPRINT_BYTES, type Fingerprint, fingerprint, identityKey, startsWith } from './identity.ts';
import type { InflightBudget } from './inflight.ts';
import { type Drains, RestartRecovery } from './restart-recovery.ts';
import { gzippedSize, listRotations, openGzipped, openRotated, type Rotation } from './rotated-files.ts';
import {
  type BufferPool,
  openFile,
  Tailer,
  type TailerInit,
  type TailFile,
  type TailOptions,
} from './tail.ts';

/**
 * The files being shipped, each a FollowedFile with its checkpoint entry. Discovery says which
 * paths exist; this decides what to open, where to start, and in which order.
 *
 * A path's files are read one at a time, oldest first (its chain): the kubelet renames `0.log` to
 * `0.log.<stamp>`, gzips it later and deletes the oldest beyond containerLogMaxFiles, while the
 * reader may be rotations behind (a slow or absent sink, a restart). Each newer file is opened as
 * soon as the path is seen naming it and waits with its descriptor held, so neither compression
 * nor deletion takes it away; rotations that came and went between two looks are found among the
 * rotated names, plain or gzipped, and read in their place. Partial lines cut by a rotation are
 * joined across it, since the next file's parser goes on with them.
 */

export interface FollowedFilesOptions extends TailOptions {
  readFrom: 'beginning' | 'end';
  /** How long a path that failed to open (other than by vanishing) waits before the next try. */
  rescanInterval: number;
  /** How long a file of a pod the pod metadata does not know yet waits unread for it. */
  unknownPodWait: number;
}

export interface FollowedFilesDeps extends FollowedFileDeps {
  options: FollowedFilesOptions;
  budget: InflightBudget;
  pool: BufferPool;
}

export type LossReason = 'deleted_while_stopped' | 'deleted_before_open';

/** Files read to their end, remembered so that their rotated names are not taken for missed rotations. */
interface DoneFile {
  dev: bigint;
  ino: bigint;
  fp: Fingerprint;
}

interface PathChain {
  readonly path: string;
  /** Oldest first: the first is being read, the others wait with their file open. */
  readonly members: FollowedFile[];
  /** The newest rotation stamp accounted for: a rotation after it that no member holds was missed. */
  highWater: string | undefined;
  running: boolean;
  readonly done: DoneFile[];
  /** A file was followed at the path (not only files restart recovery found). */
  hadLive: boolean;
  /** When the chain ran out of files while discovery no longer reported its path. */
  emptySince?: number;
}

const DONE_KEPT = 16;
/**
 * How long an empty chain of a path discovery dropped is remembered: should the path come back
 * (a watch that saw the link's target renamed away, a symlink recreated), its rotations already
 * read or skipped are not taken for older ones, nor its new ones for rotations before its time.
 */
const FORGET_AFTER_MS = 10 * 60_000;

export class FollowedFiles implements FileOwner, Drains {
  private readonly deps: FollowedFilesDeps;
  private readonly recovery: RestartRecovery;
  /** Watched path → its files, oldest first. */
  private readonly chains = new Map<string, PathChain>();
  /** Identity → every open file (being read, or waiting its turn). */
  private readonly open = new Map<string, FollowedFile>();
  private readonly runs = new Set<Promise<void>>();
  private readonly opening = new Set<string>();
  /** Paths discovery reports; tick() retries those that could not be opened yet. */
  private readonly known = new Set<string>();
  /** Paths present when the module started: their older rotations are restart recovery's. */
  private readonly initialPaths = new Set<string>();
  /** Paths that failed to open, and when: retried after rescanInterval, not on every event. */
  private readonly failed = new Map<string, number>();
  private stopRequested = false;
  /** Nothing is read until restart recovery has put the files rotated meanwhile before the live ones. */
  private holding = true;

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
    if (initial) this.initialPaths.add(path);
    await this.follow(path, initial);
  }

  removed(path: string): void {
    this.known.delete(path);
    this.initialPaths.delete(path);
    this.failed.delete(path);
    for (const f of this.chains.get(path)?.members ?? []) f.tailer.wake();
  }

  changed(path: string): void {
    const chain = this.chains.get(path);
    chain?.members[0]?.tailer.wake();
    if (this.known.has(path)) void this.follow(path, false);
  }

  /**
   * Periodic: paths whose file could not be opened yet (between a rename and the new file), and
   * paths that name a newer file while an older one is still being read (one stat each).
   */
  tick(): void {
    for (const path of this.known) void this.follow(path, false);
    const now = Date.now();
    for (const [path, chain] of this.chains) {
      if (chain.emptySince !== undefined && now - chain.emptySince > FORGET_AFTER_MS) {
        if (chain.members.length === 0 && !this.known.has(path)) this.chains.delete(path);
        else chain.emptySince = undefined;
        continue;
      }
      for (const m of chain.members) {
        if (m.entry.fp.len >= FINGERPRINT_BYTES || this.isReading(m)) continue;
        // Waiting with a short fingerprint (opened nearly empty): take it again from the held
        // descriptor, so that a restart can still recognize the file once renamed or gzipped.
        const size = m.tailer.fh.stat().size;
        if (size > m.entry.size) m.entry.size = size;
        void this.refingerprint(m).catch(() => {});
      }
    }
  }

  /** After the files present at the start are followed: those rotated while the module was down. */
  async recover(): Promise<void> {
    try {
      await this.recovery.recoverAll();
    } finally {
      this.holding = false;
      for (const chain of [...this.chains.values()]) this.runHead(chain);
    }
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
    // Files waiting their turn: their checkpoints hold them for the next start.
    for (const f of [...this.open.values()]) await f.tailer.fh.close().catch(() => {});
    this.open.clear();
  }

  unfollowed(file: FollowedFile): void {
    const path = file.tailer.path;
    this.deps.log.debug(
      { path, file: file.entry.realPath },
      'log path names another file; draining the old one',
    );
    if (this.known.has(path)) void this.follow(path, false);
  }

  nextOf(file: FollowedFile): FollowedFile | undefined {
    const members = this.chains.get(file.tailer.path)?.members;
    if (members === undefined) return undefined;
    const i = members.indexOf(file);
    return i === -1 ? undefined : members[i + 1];
  }

  private async follow(path: string, initial: boolean): Promise<void> {
    if (this.stopRequested || this.opening.has(path)) return;
    const last = this.chains.get(path)?.members.at(-1);
    if (last?.live) {
      // The common case, once per poll: the path still names the newest file.
      const named = statSync(path, { bigint: true, throwIfNoEntry: false });
      if (named === undefined || (named.dev === last.tailer.dev && named.ino === last.tailer.ino)) {
        if (named !== undefined && Number(named.size) > last.entry.size) {
          last.entry.size = Number(named.size);
          if (!this.isReading(last)) await this.refingerprint(last);
        }
        return;
      }
    }
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
        // Only at the very first start: a pod that came while the module was down is read whole.
        const fromEnd = initial && this.deps.options.readFrom === 'end' && this.deps.checkpoints.fresh;
        start = fromEnd ? await lastLineEnd(fh, size) : 0;
      }
      const fp = await fingerprint(fh, Math.min(size, FINGERPRINT_BYTES));
      const enrichment = await this.deps.enricher.resolve({ path, realPath });
      if (this.stopRequested) return;
      const entry = this.deps.checkpoints.track(key, `${st.dev}`, `${st.ino}`, fp, start, path, realPath);
      entry.size = Math.max(size, start);
      const file = this.create(entry, enrichment, {
        fh: openFile(fh),
        path,
        dev: st.dev,
        ino: st.ino,
        start,
        size,
        fp,
        following: true,
      });
      fh = undefined;
      file.live = true;
      file.followed = true;
      await this.append(path, file, realPath, this.initialPaths.has(path));
      this.failed.delete(path);
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

  /** The path names a new file: it goes last in the path's chain, after any rotation missed meanwhile. */
  private async append(path: string, file: FollowedFile, realPath: string, initial: boolean): Promise<void> {
    let chain = this.chains.get(path);
    if (chain === undefined) {
      chain = { path, members: [], highWater: undefined, running: false, done: [], hadLive: false };
      this.chains.set(path, chain);
    }
    let rotations: Rotation[];
    if (chain.hadLive || !initial) {
      // A path that appeared while the module ran: its container is new, and any rotation it
      // already has (discovery was slower than the kubelet) is read first.
      rotations = await this.catchUp(chain, realPath);
      chain.hadLive = true;
    } else {
      // Present at the start: rotations already there are older. Restart recovery reads those a
      // checkpoint knows; the others were rotated before the module read the path.
      rotations = await listRotations(dirname(realPath), basename(realPath));
      const newest = rotations.at(-1)?.stamp;
      if (newest !== undefined && (chain.highWater === undefined || newest > chain.highWater))
        chain.highWater = newest;
      chain.hadLive = true;
    }
    // The rotation the file came after; one it was renamed to already is its own, not before it.
    const own = rotations.find((r) => !r.gz && r.dev === file.tailer.dev && r.ino === file.tailer.ino);
    const before = rotations.filter((r) => own === undefined || r.stamp < own.stamp).at(-1);
    this.deps.checkpoints.born(file.entry, before?.stamp ?? '');
    chain.members.push(file);
    this.relink(chain);
    this.runHead(chain);
  }

  /**
   * The path moved on from its newest file: that file is drained rather than followed, and every
   * rotation after the last one accounted for that no file here holds (it came and went between
   * two looks at the path) is opened now, in stamp order, to be read before the new file.
   */
  private async catchUp(chain: PathChain, realPath: string): Promise<Rotation[]> {
    for (const m of chain.members) {
      if (!m.live) continue;
      m.live = false;
      if (m.tailer.following) {
        m.tailer.following = false;
        this.deps.metrics.rotations.inc({ kind: 'rename' });
      }
    }
    const rotations = await listRotations(dirname(realPath), basename(realPath));
    for (const r of rotations) {
      if (chain.highWater !== undefined && r.stamp <= chain.highWater) {
        // Accounted for already (an earlier listing saw it while its member was still taken for
        // the live file): that member still needs its stamp, for the order of files found later.
        const member = memberOn(chain, r);
        if (member !== undefined) member.stamp ??= r.stamp;
        continue;
      }
      if (await this.isHeld(chain, r)) continue;
      const missed = await this.openRotation(chain.path, realPath, r);
      // Newer than every file of the chain (they are accounted for), older than the new live one.
      if (missed !== undefined) {
        chain.members.push(missed);
        this.relink(chain);
      }
    }
    const newest = rotations.at(-1)?.stamp;
    if (newest !== undefined && (chain.highWater === undefined || newest > chain.highWater))
      chain.highWater = newest;
    return rotations;
  }

  /** Whether a rotated file is one of the chain's (waiting, being read, or read already). */
  private async isHeld(chain: PathChain, r: Rotation): Promise<boolean> {
    if (!r.gz) {
      const member = memberOn(chain, r);
      if (member !== undefined) {
        member.stamp ??= r.stamp;
        // Its final size: what is lost if the kubelet deletes it while the module is down.
        if (r.size > member.entry.size) {
          member.entry.size = r.size;
          if (!this.isReading(member)) await this.refingerprint(member);
        }
      }
      if (member !== undefined) return true;
      // A file read already is closed, so its inode may hold a newer file now (the kubelet gzipped
      // the old one): the same only if it starts with the same bytes.
      for (const d of chain.done)
        if (d.dev === r.dev && d.ino === r.ino && (await startsLike(r.path, d.fp))) return true;
      return false;
    }
    // Compressed: a new inode; recognized by its first bytes.
    const fps = [
      ...chain.members.filter((m) => m.stamp === undefined || m.stamp === r.stamp).map((m) => m.entry.fp),
      ...chain.done.map((d) => d.fp),
    ].filter((fp) => fp.len > 0);
    if (fps.length === 0) return false;
    let file: TailFile | undefined;
    try {
      file = await openGzipped(r.path);
      for (const fp of fps) {
        const mine = await fingerprint(file, fp.len);
        if (mine.len === fp.len && mine.hash === fp.hash) {
          const member = chain.members.find((m) => m.entry.fp === fp);
          if (member !== undefined) {
            member.stamp ??= r.stamp;
            const size = await gzippedSize(r.path);
            if (size !== undefined && size > member.entry.size) member.entry.size = size;
          }
          return true;
        }
      }
      return false;
    } catch {
      // Gone, or not gzip (yet): nothing to read there.
      return true;
    } finally {
      await file?.close().catch(() => {});
    }
  }

  /** A rotation the reader never saw under the live name: opened now, read from its start in turn. */
  private async openRotation(path: string, realPath: string, r: Rotation): Promise<FollowedFile | undefined> {
    let file: TailFile | undefined;
    try {
      let gz = r.gz;
      if (gz) file = await openGzipped(r.path);
      else ({ file, gz } = await openRotated(r.path));
      const fp = await fingerprint(file, FINGERPRINT_BYTES);
      const dev = gz ? '0' : `${r.dev}`;
      const ino = gz ? `gz~${fp.hash}` : `${r.ino}`;
      const key = identityKey(dev, ino);
      // A checkpoint on this inode is this file only if it starts the same: a file read and closed
      // (its last lines in flight) frees its inode once gzipped, and ext4 gives it to newer files.
      const checkpointed = this.deps.checkpoints.get(key);
      const known = checkpointed !== undefined && (gz || (await startsWith(file, checkpointed.fp)));
      if (fp.len === 0 || this.open.has(key) || known || this.stopRequested) return undefined;
      this.deps.log.info(
        { file: r.path, bytes: r.size },
        'reading a rotated log file the reader had not reached before it was rotated again',
      );
      // The other checkpoint on this inode moves aside: kept until its last lines are acknowledged.
      if (checkpointed !== undefined) this.deps.checkpoints.detach(checkpointed);
      const entry = this.deps.checkpoints.track(key, dev, ino, fp, 0, path, realPath);
      entry.size = gz ? 0 : r.size;
      const enrichment = await this.deps.enricher.resolve(entry);
      const f = this.create(entry, enrichment, {
        fh: file,
        path,
        dev: gz ? 0n : r.dev,
        ino: gz ? 0n : r.ino,
        start: 0,
        size: gz ? 0 : r.size,
        fp,
        following: false,
      });
      file = undefined;
      f.stamp = r.stamp;
      return f;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // Deleted by the kubelet (containerLogMaxFiles) between the listing and the open, plain
        // and compressed.
        await this.lost({ path, realPath }, 'deleted_before_open', r.size, {
          file: r.path,
          from: 0,
          to: r.size,
        });
      } else {
        this.deps.log.warn({ err, file: r.path, code: 'IO' }, 'cannot read a rotated log file');
      }
      return undefined;
    } finally {
      await file?.close().catch(() => {});
    }
  }

  private isReading(file: FollowedFile): boolean {
    const chain = this.chains.get(file.tailer.path);
    return chain?.running === true && chain.members[0] === file;
  }

  /**
   * A waiting file opened while shorter than the fingerprint (a new `0.log` is empty) is
   * fingerprinted again as it grows, so that its checkpoint can find it after a restart, gzipped.
   */
  private async refingerprint(file: FollowedFile): Promise<void> {
    if (file.entry.fp.len >= FINGERPRINT_BYTES || file.entry.size <= file.entry.fp.len) return;
    const fp = await fingerprint(file.tailer.fh, Math.min(file.entry.size, FINGERPRINT_BYTES));
    if (fp.len > file.entry.fp.len) this.deps.checkpoints.fingerprinted(file.entry, fp);
  }

  /** Offset to resume at from a checkpoint of this very file, if there is one. */
  private async resumeAt(fh: FileHandle, key: string, size: number): Promise<number | undefined> {
    const entry = this.deps.checkpoints.get(key);
    if (entry === undefined) return undefined;
    if (!(await isCheckpointedFile(fh, entry))) {
      if (entry.final !== undefined) {
        // Read to its end here, its last lines still in flight: nothing to look for.
        this.deps.checkpoints.detach(entry);
        return undefined;
      }
      this.deps.log.info(
        { file: entry.realPath, key },
        'inode reused by another file; its checkpoint does not apply (the old file is looked for, rotated or gzipped)',
      );
      const old = this.deps.checkpoints.detach(entry);
      // At the start, restart recovery looks for it with the other checkpoints, and reads the
      // rotations after it should it be gone; later, now, while the new file is followed.
      if (!this.holding) void this.recovery.recover(old);
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

  /**
   * A file restart recovery found (rotated while the module was down): placed in its path's chain
   * before the live file, by rotation stamp. Found while the live file is being read already (a
   * reused inode noticed at run time), it is read beside it rather than after it.
   */
  start(entry: CheckpointEntry, enrichment: Enrichment, init: TailerInit, stamp?: string): void {
    const file = this.create(entry, enrichment, init);
    file.stamp = stamp;
    let chain = this.chains.get(init.path);
    if (chain?.running && chain.members[0]?.live) {
      const side = `${init.path}\0${entry.key}`;
      chain = { path: side, members: [], highWater: undefined, running: false, done: [], hadLive: false };
      this.chains.set(side, chain);
    } else if (chain === undefined) {
      chain = {
        path: init.path,
        members: [],
        highWater: undefined,
        running: false,
        done: [],
        hadLive: false,
      };
      this.chains.set(init.path, chain);
    }
    this.insert(chain, file);
    this.runHead(chain);
  }

  /** Lines lost for good: counted, estimated in lines from the path's current file, and logged with the pod. */
  async lost(
    file: { path: string; realPath: string },
    reason: LossReason,
    bytes: number,
    range: { file: string; from: number; to: number },
  ): Promise<void> {
    if (bytes <= 0) return;
    const { labels } = this.deps.enricher.labels(file);
    const namespace = labels.namespace ?? '';
    const lines = Math.max(1, Math.round(bytes / (await averageLineBytes(file.realPath))));
    this.deps.metrics.linesLost.inc({ namespace, reason }, lines);
    this.deps.metrics.bytesLost.inc({ namespace, reason }, bytes);
    this.deps.log.warn(
      {
        namespace,
        pod: labels.pod,
        container: labels.container,
        ...range,
        bytes,
        lines,
        reason,
        code: 'IO',
      },
      'log lines lost: the file was deleted (log rotation) before it was read to its end',
    );
  }

  private create(entry: CheckpointEntry, enrichment: Enrichment, init: TailerInit): FollowedFile {
    const d = this.deps;
    const file = new FollowedFile(this, d, entry, enrichment);
    file.tailer = new Tailer(init, d.options, d.pool, d.budget, file);
    this.open.set(entry.key, file);
    return file;
  }

  /**
   * A file restart recovery found: by stamp among the rotated files, before the live one; never
   * before the file being read. Before a former live file whose rotation stamp is not known yet
   * too: that one was followed in this run, so it is newer than any file recovery finds. (Files
   * rotated by another scheme, docker's `-json.log.1`, have no stamp: they keep the order found.)
   */
  private insert(chain: PathChain, file: FollowedFile): void {
    const m = chain.members;
    let i = chain.running ? 1 : 0;
    for (; i < m.length; i++) {
      const other = m[i]!;
      if (other.live || (other.followed && other.stamp === undefined)) break;
      if (file.stamp !== undefined && other.stamp !== undefined && other.stamp > file.stamp) break;
    }
    m.splice(i, 0, file);
    this.relink(chain);
  }

  /** Every file but the newest has a successor: once renamed it cannot grow, it is closed at its end. */
  private relink(chain: PathChain): void {
    const m = chain.members;
    for (let i = 0; i < m.length - 1; i++) {
      if (!m[i]!.tailer.successor) {
        m[i]!.tailer.successor = true;
        m[i]!.tailer.wake();
      }
    }
  }

  /**
   * A file whose pod the metadata does not know yet (the pod is younger than the last fetch, or
   * the watch lags) is not read until it does, for at most unknownPodWait from its opening: its
   * lines wait on disk, so an excluded pod ships none and every record gets its workload labels.
   * Not while the source fails (the kubelet down): then lines go at once with the file-name labels.
   */
  private async awaitPod(file: FollowedFile): Promise<void> {
    const { unknownPodWait, pollInterval } = this.deps.options;
    const deadline = file.openedAt + unknownPodWait;
    const enricher = this.deps.enricher;
    while (!this.stopRequested && Date.now() < deadline && file.podUnknown() && !enricher.sourceFailing()) {
      // A lookup of a pod not known yet makes the source fetch (rate limited) or wait for its watch.
      await enricher.resolve(file.entry);
      if (!file.podUnknown()) return;
      await new Promise((r) => setTimeout(r, Math.min(pollInterval, Math.max(0, deadline - Date.now()))));
    }
    if (!this.stopRequested && Date.now() >= deadline && file.podUnknown() && unknownPodWait > 0)
      this.deps.log.info(
        { file: file.entry.realPath, waitedMs: unknownPodWait },
        'pod metadata does not know the pod of this log file; shipping its lines with the labels of its file name',
      );
  }

  /** Reads the chain's oldest file; when it is done, the next. */
  private runHead(chain: PathChain): void {
    if (this.holding || chain.running || this.stopRequested) return;
    const head = chain.members[0];
    if (head === undefined) {
      if (!this.known.has(chain.path)) chain.emptySince = Date.now();
      return;
    }
    chain.emptySince = undefined;
    chain.running = true;
    const d = this.deps;
    const run = this.awaitPod(head)
      .then(() => head.tailer.run())
      .catch((err: unknown) => {
        if (head.live) this.failed.set(chain.path, Date.now());
        d.log.error(
          { err, file: head.entry.realPath, code: 'IO' },
          'reading a log file failed; it is reopened later',
        );
      })
      .finally(async () => {
        const i = chain.members.indexOf(head);
        if (i !== -1) chain.members.splice(i, 1);
        if (this.open.get(head.entry.key) === head) this.open.delete(head.entry.key);
        chain.done.push({ dev: head.tailer.dev, ino: head.tailer.ino, fp: head.entry.fp });
        if (chain.done.length > DONE_KEPT) chain.done.shift();
        chain.running = false;
        this.runs.delete(run);
        await head.tailer.fh.close().catch(() => {});
        this.runHead(chain);
      });
    this.runs.add(run);
  }
}

/** The chain's file a plain rotation is (held open: its inode cannot be another file's); none for a .gz. */
function memberOn(chain: PathChain, r: Rotation): FollowedFile | undefined {
  return r.gz ? undefined : chain.members.find((m) => m.tailer.dev === r.dev && m.tailer.ino === r.ino);
}

/**
 * Whether the file on a checkpoint's inode is the checkpointed one: its first bytes, and for a file
 * checkpointed while empty (whose fingerprint any file matches), no rotation of its path since it
 * was created. Otherwise the inode was freed (the file rotated, gzipped) and given to a new file.
 */
async function isCheckpointedFile(fh: FileHandle, entry: CheckpointEntry): Promise<boolean> {
  const fp = await fingerprint(fh, entry.fp.len);
  if (fp.len !== entry.fp.len || fp.hash !== entry.fp.hash) return false;
  const bornAfter = entry.bornAfter;
  if (entry.fp.len > 0 || bornAfter === undefined) return true;
  const rotations = await listRotations(dirname(entry.realPath), basename(entry.realPath));
  return !rotations.some((r) => r.stamp > bornAfter);
}

/**
 * Whether a plain rotation (or its .gz, compressed since the listing) starts with the bytes of a
 * fingerprint; an empty file's tell nothing. False when it cannot be read: the caller opens it to
 * read it, and counts it lost if it is gone.
 */
async function startsLike(path: string, fp: Fingerprint): Promise<boolean> {
  if (fp.len === 0) return false;
  let file: TailFile | undefined;
  try {
    file = (await openRotated(path)).file;
    return await startsWith(file, fp);
  } catch {
    return false;
  } finally {
    await file?.close().catch(() => {});
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

/**
 * Bytes per line of a path's files (the first 64 KiB of the current one, else of its newest plain
 * rotation), to estimate lost lines from lost bytes.
 */
async function averageLineBytes(path: string): Promise<number> {
  const here = await lineBytes(path);
  if (here !== undefined) return here;
  const plain = (await listRotations(dirname(path), basename(path))).filter((r) => !r.gz).at(-1);
  return (plain && (await lineBytes(plain.path))) ?? 200;
}

async function lineBytes(path: string): Promise<number | undefined> {
  const fallback = undefined;
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    const buf = Buffer.allocUnsafe(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    let lines = 0;
    let last = -1;
    for (let i = buf.indexOf(0x0a); i !== -1 && i < bytesRead; i = buf.indexOf(0x0a, i + 1)) {
      lines++;
      last = i;
    }
    return lines === 0 ? fallback : (last + 1) / lines;
  } catch {
    return fallback;
  } finally {
    await fh?.close();
  }
}
