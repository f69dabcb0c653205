import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../shared/logger.ts';
import type { CheckpointEntry, CheckpointStore } from './checkpoint.ts';
import type { Enricher, Enrichment } from './enrich.ts';
import { FINGERPRINT_BYTES, fingerprint, identityKey } from './identity.ts';
import { listRotations, openGzipped, rotationStamp, writeRate } from './rotated-files.ts';
import { openFile, type TailerInit, type TailFile } from './tail.ts';

export interface RestartRecoveryDeps {
  checkpoints: CheckpointStore;
  enricher: Enricher;
  log: Logger;
}

/** Where recovered files are read: the followed files, which this must not import (they use it). */
export interface Drains {
  readonly stopped: boolean;
  /** A file of this identity is open already (followed, or draining). */
  isOpen(key: string): boolean;
  /**
   * Reads a file to its end, in its path's order (`stamp`: its rotation stamp); `init.following`
   * is false: its old path names another file now.
   */
  start(entry: CheckpointEntry, enrichment: Enrichment, init: TailerInit, stamp?: string): void;
  /** Lines lost for good (the file was deleted before it was read to its end): counted and logged. */
  lost(
    file: { path: string; realPath: string },
    reason: 'deleted_while_stopped',
    bytes: number,
    range: { file: string; from: number; to: number },
  ): Promise<void>;
}

/**
 * Checkpointed files no path names any more were rotated or removed while the module was down:
 * those still found beside their old name (0.log → 0.log.<timestamp>, or gzipped) are drained in
 * their path's order, one at a time (a .gz decompressed as it is read); the rest were deleted by
 * the kubelet before they were read to their end: counted as lost, then forgotten.
 */
export class RestartRecovery {
  private readonly deps: RestartRecoveryDeps;
  private readonly files: Drains;
  /**
   * Entries being looked for by recover(), and whether their file was found: by entry, not by key
   * (an entry detached meanwhile changes its key).
   */
  private readonly recovering = new Map<CheckpointEntry, Promise<boolean>>();
  /** Entries looked for already, and whether their file was found. */
  private readonly outcomes = new Map<CheckpointEntry, boolean>();
  /** Rotated files being checked by drainNewerRotations(). */
  private readonly siblings = new Set<string>();

  constructor(deps: RestartRecoveryDeps, files: Drains) {
    this.deps = deps;
    this.files = files;
  }

  async recoverAll(): Promise<void> {
    const found = new Set<string>();
    const gone = new Map<string, CheckpointEntry>();
    const looked = new Set<CheckpointEntry>();
    // Until no entry is left unlooked at: one detached meanwhile (a path discovery reported
    // during the recovery names a file on its inode) is looked for too.
    for (let next = this.unlooked(looked); next.length > 0; next = this.unlooked(looked)) {
      for (const entry of next) {
        looked.add(entry);
        // Open already: a live file resumed from its checkpoint, not one rotated meanwhile.
        if (this.files.isOpen(entry.key)) continue;
        if (await this.recover(entry)) found.add(entry.realPath);
        else if (!gone.has(entry.realPath)) gone.set(entry.realPath, entry);
      }
    }
    // Every file a path's checkpoints knew is gone: the rotations still there all came after them
    // (the kubelet deletes the oldest first), and were never read.
    for (const [realPath, entry] of gone) {
      if (found.has(realPath) || this.files.stopped) continue;
      let names: string[];
      try {
        names = await readdir(dirname(realPath));
      } catch {
        continue;
      }
      await this.countGap(entry);
      await this.drainNewerRotations(entry, dirname(realPath), names, '');
    }
  }

  private unlooked(looked: ReadonlySet<CheckpointEntry>): CheckpointEntry[] {
    return [...this.deps.checkpoints.all()].filter((e) => !looked.has(e));
  }

  /**
   * Files rotated and deleted while the module was down, never known here: what was written from
   * the last checkpoint write to the first line of the oldest rotation left, estimated from that
   * rotation's own write rate (its CRI timestamps).
   */
  private async countGap(entry: CheckpointEntry): Promise<void> {
    const savedAt = this.deps.checkpoints.savedAt;
    if (savedAt === undefined) return;
    const rotations = await listRotations(dirname(entry.realPath), basename(entry.realPath));
    const oldest = rotations[0] && (await writeRate(rotations[0]));
    if (oldest === undefined || oldest.start <= savedAt) return;
    // The rate of the oldest rotations written over a second at least (one cut short by a
    // restart of the container, or a line too long, says little).
    let bytesPerMs = oldest.bytesPerMs;
    for (const r of rotations.slice(1, 4)) {
      if (bytesPerMs !== undefined) break;
      bytesPerMs = (await writeRate(r))?.bytesPerMs;
    }
    if (bytesPerMs === undefined) return;
    const bytes = Math.round((oldest.start - savedAt) * bytesPerMs);
    await this.files.lost(entry, 'deleted_while_stopped', bytes, {
      file: `${entry.realPath}.*`,
      from: savedAt,
      to: oldest.start,
    });
  }

  /** False when the entry's file is gone; true when found (or open, or recovered already). */
  recover(entry: CheckpointEntry): Promise<boolean> {
    if (this.files.isOpen(entry.key)) return Promise.resolve(true);
    const running = this.recovering.get(entry);
    if (running !== undefined) return running;
    const known = this.outcomes.get(entry);
    if (known !== undefined) return Promise.resolve(known);
    // Recovered already: the entry is dropped once read.
    if (this.deps.checkpoints.get(entry.key) !== entry) return Promise.resolve(true);
    const work = this.lookFor(entry).then(
      (found) => {
        this.outcomes.set(entry, found);
        return found;
      },
      (err: unknown) => {
        throw err;
      },
    );
    work.finally(() => this.recovering.delete(entry)).catch(() => {});
    this.recovering.set(entry, work);
    return work;
  }

  private async lookFor(entry: CheckpointEntry): Promise<boolean> {
    const found = await this.recoverRotated(entry);
    if (!found) {
      // The last size seen: what was left of it when the module stopped (at least).
      await this.files.lost(entry, 'deleted_while_stopped', entry.size - entry.offset, {
        file: entry.realPath,
        from: entry.offset,
        to: entry.size,
      });
      this.deps.checkpoints.drop(entry);
    }
    return found;
  }

  /** True when the entry's file was found (or the module stopped meanwhile: the entry is kept). */
  private async recoverRotated(entry: CheckpointEntry): Promise<boolean> {
    const dir = dirname(entry.realPath);
    const base = basename(entry.realPath);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return false;
    }
    if (entry.fp.len === 0) return this.recoverEmpty(entry, dir, names);
    const candidates = names
      .filter((n) => n === base || (n.startsWith(`${base}.`) && !n.endsWith('.gz')))
      .map((n) => join(dir, n));
    for (const candidate of candidates) {
      const st = await stat(candidate, { bigint: true }).catch(() => undefined);
      if (st === undefined || identityKey(st.dev, st.ino) !== entry.key) continue;
      // Compressed (or deleted) since the stat: then it is looked for among the .gz files below.
      // Any other error fails the start, the entry kept for the next one.
      const fh = await open(candidate, 'r').catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      });
      if (fh === undefined) continue;
      const fp = await fingerprint(fh, entry.fp.len);
      const size = Number(st.size);
      if (fp.hash !== entry.fp.hash || fp.len !== entry.fp.len || entry.offset > size || this.files.stopped) {
        // The inode holds another file now; the old one may still be there, compressed.
        await fh.close();
        if (this.files.stopped) return true;
        continue;
      }
      this.deps.log.info(
        { file: candidate, offset: entry.offset },
        'draining a log file rotated while stopped',
      );
      const enrichment = await this.deps.enricher.resolve(entry);
      if (this.files.stopped) {
        // Keep the entry: the next start drains it.
        await fh.close();
        return true;
      }
      const stamp = rotationStamp(base, basename(candidate));
      this.files.start(
        entry,
        enrichment,
        {
          fh: openFile(fh),
          path: entry.path,
          dev: st.dev,
          ino: st.ino,
          start: entry.offset,
          size,
          fp: entry.fp,
          following: false,
        },
        stamp,
      );
      if (stamp !== undefined) await this.drainNewerRotations(entry, dir, names, stamp);
      return true;
    }
    // Listed again: the kubelet may have compressed the file since the listing above.
    return this.recoverCompressed(entry, dir, await readdir(dir).catch(() => names));
  }

  /**
   * A file checkpointed while empty cannot be recognized by its first bytes (its inode may hold
   * another file now), but it is the first rotation of its path after the one it was born after:
   * that one and every later one are read from their start (those another checkpoint knows are
   * left to it). Without that stamp (an older checkpoint file) it counts as gone.
   */
  private async recoverEmpty(entry: CheckpointEntry, dir: string, names: string[]): Promise<boolean> {
    const bornAfter = entry.bornAfter;
    if (bornAfter === undefined) return false;
    if (this.files.stopped) return true;
    // The kubelet deletes the oldest first: with an older rotation still there, nothing of it was
    // deleted. Otherwise it may have been, with files after it: estimated as for a path whose
    // checkpointed files are all gone (its inode cannot tell: ext4 gives it to newer files).
    const base = basename(entry.realPath);
    const older = names.some((n) => {
      const stamp = rotationStamp(base, n);
      return stamp !== undefined && stamp <= bornAfter;
    });
    if (!older) await this.countGap(entry);
    await this.drainNewerRotations(entry, dir, names, bornAfter);
    // Kept should the module stop meanwhile: the next start drains what is left.
    if (!this.files.stopped) this.deps.checkpoints.drop(entry);
    return true;
  }

  /**
   * A gzipped file has a new inode, so the checkpoint's file is recognized by the fingerprint of
   * its first bytes (decompressing only those); it is read from the checkpoint to its end, streamed.
   */
  private async recoverCompressed(entry: CheckpointEntry, dir: string, names: string[]): Promise<boolean> {
    const base = basename(entry.realPath);
    if (entry.fp.len === 0) return false;
    for (const name of names) {
      if (!name.startsWith(`${base}.`) || !name.endsWith('.gz')) continue;
      const candidate = join(dir, name);
      let file: TailFile | undefined;
      try {
        file = await openGzipped(candidate);
        const fp = await fingerprint(file, entry.fp.len);
        if (fp.hash !== entry.fp.hash || fp.len !== entry.fp.len) continue;
        if (this.files.stopped) return true;
        this.deps.log.info(
          { file: candidate, offset: entry.offset },
          'draining a log file rotated and compressed while stopped',
        );
        const enrichment = await this.deps.enricher.resolve(entry);
        if (this.files.stopped) return true;
        // Its old inode is free now (ext4 gives it to newer files): its entry, and so the file
        // read, must not stand for that inode, or a rotation on it would count as open already.
        if (!entry.ino.includes('~')) this.deps.checkpoints.detach(entry);
        this.files.start(
          entry,
          enrichment,
          {
            fh: file,
            path: entry.path,
            // Not followed: the identity is never compared.
            dev: 0n,
            ino: 0n,
            start: entry.offset,
            size: entry.offset,
            fp: entry.fp,
            following: false,
          },
          rotationStamp(base, name),
        );
        file = undefined;
        const stamp = rotationStamp(base, name);
        if (stamp !== undefined) await this.drainNewerRotations(entry, dir, names, stamp);
        return true;
      } catch (err) {
        this.deps.log.warn({ err, file: candidate, code: 'IO' }, 'cannot decompress a rotated log file');
      } finally {
        await file?.close().catch(() => {});
      }
    }
    return false;
  }

  /**
   * A checkpoint's file was found rotated (stamped `after`; '' for every rotation): the rotations
   * after it happened while the module was down (the path moved on from this file), so those no
   * checkpoint knows were never read: each is read from its start. One read before the stop and
   * finished (its checkpoint dropped) while this older one was still draining is read again:
   * duplicates, not loss.
   */
  private async drainNewerRotations(
    entry: CheckpointEntry,
    dir: string,
    names: string[],
    after: string,
  ): Promise<void> {
    const base = basename(entry.realPath);
    for (const name of [...names].sort()) {
      const stamp = rotationStamp(base, name);
      if (stamp === undefined || stamp <= after || this.files.stopped) continue;
      // Both the plain file and its .gz (being written): the plain one.
      if (name.endsWith('.gz') && names.includes(name.slice(0, -3))) continue;
      const path = join(dir, name);
      if (this.siblings.has(path)) continue;
      this.siblings.add(path);
      try {
        await this.drainUnknown(entry, path);
      } catch (err) {
        // Compressed since the directory was listed: the kubelet wrote <name>.gz and removed the
        // plain file, so the same lines are in the .gz (giving up here lost whole rotations).
        const compressed = !path.endsWith('.gz') && (err as NodeJS.ErrnoException).code === 'ENOENT';
        try {
          if (!compressed) throw err;
          await this.drainUnknown(entry, `${path}.gz`);
        } catch (why) {
          this.deps.log.warn({ err: why, file: path, code: 'IO' }, 'cannot read a rotated log file');
        }
      } finally {
        this.siblings.delete(path);
      }
    }
  }

  private async drainUnknown(entry: CheckpointEntry, path: string): Promise<void> {
    let file: TailFile;
    let dev: string;
    let ino: string;
    let size: number;
    let st: { dev: bigint; ino: bigint } = { dev: 0n, ino: 0n };
    if (path.endsWith('.gz')) {
      file = await openGzipped(path);
      size = 0;
      const whole = await fingerprint(file, FINGERPRINT_BYTES);
      dev = '0';
      ino = `gz~${whole.hash}`;
    } else {
      const fh = await open(path, 'r');
      const s = await fh.stat({ bigint: true });
      st = s;
      file = openFile(fh);
      size = Number(s.size);
      dev = `${s.dev}`;
      ino = `${s.ino}`;
    }
    const key = identityKey(dev, ino);
    const fp = await fingerprint(file, FINGERPRINT_BYTES);
    // Another checkpoint on this inode is this file only if it starts the same (below): its own
    // file may have been deleted while the module was down and the inode given to this one (ext4
    // does so at once). One of this path checkpointed while empty cannot tell, and reads the
    // rotations after its own birth itself (recoverEmpty), unless it is the entry this drain is for.
    const checkpointed = this.deps.checkpoints.get(key);
    let known =
      this.files.isOpen(key) ||
      fp.len === 0 ||
      (checkpointed !== undefined &&
        checkpointed !== entry &&
        checkpointed.realPath === entry.realPath &&
        checkpointed.fp.len === 0 &&
        checkpointed.bornAfter !== undefined);
    for (const e of this.deps.checkpoints.all()) {
      if (known) break;
      if (e.realPath !== entry.realPath || e.fp.len === 0) continue;
      const mine = await fingerprint(file, e.fp.len);
      known = mine.len === e.fp.len && mine.hash === e.fp.hash;
    }
    if (known || this.files.stopped) {
      await file.close();
      return;
    }
    this.deps.log.info(
      { file: path, bytes: size },
      'draining a log file rotated away while stopped, never read',
    );
    // The other checkpoint on this inode moves aside, still to be looked for (and counted if gone).
    if (checkpointed !== undefined && checkpointed !== entry) this.deps.checkpoints.detach(checkpointed);
    const tracked = this.deps.checkpoints.track(key, dev, ino, fp, 0, entry.path, entry.realPath);
    tracked.size = size;
    const enrichment = await this.deps.enricher.resolve(tracked);
    this.files.start(
      tracked,
      enrichment,
      { fh: file, path: entry.path, dev: st.dev, ino: st.ino, start: 0, size, fp, following: false },
      rotationStamp(basename(entry.realPath), basename(path)),
    );
  }
}
