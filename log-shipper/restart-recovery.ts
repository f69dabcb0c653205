import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../shared/logger.ts';
import type { CheckpointEntry, CheckpointStore } from './checkpoint.ts';
import type { Enricher, Enrichment } from './enrich.ts';
import { FINGERPRINT_BYTES, fingerprint, identityKey } from './identity.ts';
import { readGzipped, rotationStamp } from './rotated-files.ts';
import { memoryFile, openFile, type TailerInit, type TailFile } from './tail.ts';

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
  /** Reads a file to its end; `init.following` is false: its old path names another file now. */
  start(entry: CheckpointEntry, enrichment: Enrichment, init: TailerInit): void;
}

/**
 * Checkpointed files no path names any more were rotated or removed while the module was down:
 * those still found beside their old name (0.log → 0.log.<timestamp>, or gzipped) are drained,
 * the rest forgotten.
 */
export class RestartRecovery {
  private readonly deps: RestartRecoveryDeps;
  private readonly files: Drains;
  /** Checkpoint keys being looked for by recover(). */
  private readonly recovering = new Set<string>();
  /** Rotated files being checked by drainNewerRotations(). */
  private readonly siblings = new Set<string>();

  constructor(deps: RestartRecoveryDeps, files: Drains) {
    this.deps = deps;
    this.files = files;
  }

  async recoverAll(): Promise<void> {
    for (const entry of [...this.deps.checkpoints.all()]) await this.recover(entry);
  }

  async recover(entry: CheckpointEntry): Promise<void> {
    if (this.files.isOpen(entry.key) || this.recovering.has(entry.key)) return;
    this.recovering.add(entry.key);
    try {
      if (!(await this.recoverRotated(entry))) this.deps.checkpoints.drop(entry);
    } finally {
      this.recovering.delete(entry.key);
    }
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
    const candidates = names
      .filter((n) => n === base || (n.startsWith(`${base}.`) && !n.endsWith('.gz')))
      .map((n) => join(dir, n));
    for (const candidate of candidates) {
      const st = await stat(candidate, { bigint: true }).catch(() => undefined);
      if (st === undefined || identityKey(st.dev, st.ino) !== entry.key) continue;
      const fh = await open(candidate, 'r');
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
      this.files.start(entry, enrichment, {
        fh: openFile(fh),
        path: entry.path,
        dev: st.dev,
        ino: st.ino,
        start: entry.offset,
        size,
        fp: entry.fp,
        following: false,
      });
      await this.drainNewerRotations(entry, dir, names, basename(candidate));
      return true;
    }
    return this.recoverCompressed(entry, dir, names);
  }

  /**
   * A gzipped file has a new inode, so the checkpoint's file is recognized by the fingerprint of
   * its first bytes, decompressed; it is read from the checkpoint to its end.
   */
  private async recoverCompressed(entry: CheckpointEntry, dir: string, names: string[]): Promise<boolean> {
    const base = basename(entry.realPath);
    if (entry.fp.len === 0) return false;
    for (const name of names) {
      if (!name.startsWith(`${base}.`) || !name.endsWith('.gz')) continue;
      const candidate = join(dir, name);
      let content: Buffer;
      try {
        content = await readGzipped(candidate);
      } catch (err) {
        this.deps.log.warn({ err, file: candidate, code: 'IO' }, 'cannot decompress a rotated log file');
        continue;
      }
      const file = memoryFile(content);
      const fp = await fingerprint(file, entry.fp.len);
      if (fp.hash !== entry.fp.hash || fp.len !== entry.fp.len || entry.offset > content.length) continue;
      if (this.files.stopped) return true;
      this.deps.log.info(
        { file: candidate, offset: entry.offset, bytes: content.length },
        'draining a log file rotated and compressed while stopped',
      );
      const enrichment = await this.deps.enricher.resolve(entry);
      if (this.files.stopped) return true;
      this.files.start(entry, enrichment, {
        fh: file,
        path: entry.path,
        // Not followed: the identity is never compared.
        dev: 0n,
        ino: 0n,
        start: entry.offset,
        size: content.length,
        fp: entry.fp,
        following: false,
      });
      await this.drainNewerRotations(entry, dir, names, name);
      return true;
    }
    return false;
  }

  /**
   * A checkpoint's file was found rotated (`found`): the rotations after it happened while the
   * module was down (the path moved on from this file), so those no checkpoint knows were never
   * read: each is read from its start. One read before the stop and finished (its checkpoint
   * dropped) while this older one was still draining is read again: duplicates, not loss.
   */
  private async drainNewerRotations(
    entry: CheckpointEntry,
    dir: string,
    names: string[],
    found: string,
  ): Promise<void> {
    const base = basename(entry.realPath);
    const after = rotationStamp(base, found);
    if (after === undefined) return;
    for (const name of [...names].sort()) {
      const stamp = rotationStamp(base, name);
      if (stamp === undefined || stamp <= after || this.files.stopped) continue;
      const path = join(dir, name);
      if (this.siblings.has(path)) continue;
      this.siblings.add(path);
      try {
        await this.drainUnknown(entry, path);
      } catch (err) {
        this.deps.log.warn({ err, file: path, code: 'IO' }, 'cannot read a rotated log file');
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
      const content = await readGzipped(path);
      file = memoryFile(content);
      size = content.length;
      const whole = await fingerprint(file, Math.min(size, FINGERPRINT_BYTES));
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
    const fp = await fingerprint(file, Math.min(size, FINGERPRINT_BYTES));
    let known = this.files.isOpen(key) || this.deps.checkpoints.get(key) !== undefined || fp.len === 0;
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
    const tracked = this.deps.checkpoints.track(key, dev, ino, fp, 0, entry.path, entry.realPath);
    const enrichment = await this.deps.enricher.resolve(tracked);
    this.files.start(tracked, enrichment, {
      fh: file,
      path: entry.path,
      dev: st.dev,
      ino: st.ino,
      start: 0,
      size,
      fp,
      following: false,
    });
  }
}
