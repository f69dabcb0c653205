import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { NodewardError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Fingerprint } from './identity.ts';

/**
 * Checkpoints: per file identity, the offset up to which every line was acknowledged by the sink
 * (Fluent Bit's "last resumable offset", not the last read position). Written as a versioned JSON
 * file through tmp + fsync + rename, so a crash leaves either the old or the new one.
 */

export const CHECKPOINT_VERSION = 1;

export interface CheckpointEntry {
  /** dev:ino (changed only by detach()) */
  key: string;
  readonly dev: string;
  ino: string;
  fp: Fingerprint;
  /** Every byte before it was acknowledged by the sink (or held no line). */
  offset: number;
  /** The watched path the file was found under: its name carries the labels. */
  readonly path: string;
  /** The file the watched path resolved to when it was opened. */
  readonly realPath: string;
  /** The largest size seen of the file: what a file deleted before it was read to its end had left. */
  size: number;
  /** In memory only: bumped on truncation so that acks for the old content are ignored. */
  gen: number;
  /** Set once the file is closed after `final` bytes; the entry goes when they are acknowledged. */
  final?: number;
  /**
   * The newest rotation of its path when the file was opened there ('' for none; absent: not
   * known, as in checkpoints written before it was kept). A rotation stamped later came after the
   * file was created: how a file checkpointed while empty, whose fingerprint matches any file, is
   * told from a new file on its reused inode.
   */
  bornAfter?: string;
}

/** An entry as written to the checkpoint file. */
export interface StoredEntry {
  dev: string;
  ino: string;
  fpLen: number;
  fpHash: string;
  offset: number;
  path: string;
  realPath: string;
  /** Absent in files written before it was kept. */
  size?: number;
  /** Absent in files written before it was kept. */
  bornAfter?: string;
}

interface StoredFile {
  version: number;
  files: StoredEntry[];
}

function isStoredEntry(v: unknown): v is StoredEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e['dev'] === 'string' &&
    typeof e['ino'] === 'string' &&
    Number.isSafeInteger(e['fpLen']) &&
    typeof e['fpHash'] === 'string' &&
    Number.isSafeInteger(e['offset']) &&
    typeof e['path'] === 'string' &&
    typeof e['realPath'] === 'string'
  );
}

export class CheckpointStore {
  readonly file: string;
  private readonly log: Logger;
  private readonly entries = new Map<string, CheckpointEntry>();
  private dirty = false;
  /** No checkpoint file existed at load: the module's very first start on this node. */
  fresh = false;
  /** When the checkpoints loaded were written (epoch ms): what was written to the files after it was never read. */
  savedAt: number | undefined;
  private writing: Promise<void> = Promise.resolve();

  private constructor(file: string, log: Logger) {
    this.file = file;
    this.log = log;
  }

  static async load(file: string, log: Logger): Promise<CheckpointStore> {
    const store = new CheckpointStore(file, log);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
      store.savedAt = (await stat(file)).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        store.fresh = true;
        return store;
      }
      throw new NodewardError('IO', `cannot read log checkpoints ${file}: ${(err as Error).message}`, {
        cause: err,
        details: { file },
      });
    }
    let stored: StoredFile | undefined;
    try {
      const parsed = JSON.parse(text) as StoredFile;
      if (parsed.version === CHECKPOINT_VERSION && Array.isArray(parsed.files)) stored = parsed;
    } catch {
      stored = undefined;
    }
    if (stored === undefined) {
      // Unreadable or from another version: start over rather than guess offsets. Lines may be
      // shipped twice; none is lost. The old file stays for inspection.
      const aside = `${file}.unusable-${Date.now()}`;
      await rename(file, aside);
      log.error(
        { file, aside, code: 'LOG_CHECKPOINT_UNUSABLE' },
        'log checkpoints unusable, moved aside; files are read again',
      );
      return store;
    }
    for (const e of stored.files) {
      if (!isStoredEntry(e)) continue;
      const key = `${e.dev}:${e.ino}`;
      store.entries.set(key, {
        key,
        dev: e.dev,
        ino: e.ino,
        fp: { len: e.fpLen, hash: e.fpHash },
        offset: e.offset,
        path: e.path,
        realPath: e.realPath,
        size: Number.isSafeInteger(e.size) ? Math.max(e.size!, e.offset) : e.offset,
        gen: 0,
        ...(typeof e.bornAfter === 'string' ? { bornAfter: e.bornAfter } : {}),
      });
    }
    return store;
  }

  get(key: string): CheckpointEntry | undefined {
    return this.entries.get(key);
  }

  all(): IterableIterator<CheckpointEntry> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }

  /** A file opened at `offset` (acknowledged so far): its entry, replacing any for a reused inode. */
  track(
    key: string,
    dev: string,
    ino: string,
    fp: Fingerprint,
    offset: number,
    path: string,
    realPath: string,
  ): CheckpointEntry {
    const entry: CheckpointEntry = { key, dev, ino, fp, offset, path, realPath, size: offset, gen: 0 };
    this.entries.set(key, entry);
    this.dirty = true;
    return entry;
  }

  /** The sink acknowledged every line of `entry` before `offset`. */
  ack(entry: CheckpointEntry, gen: number, offset: number): void {
    if (entry.gen !== gen || entry.offset === offset) return;
    entry.offset = offset;
    this.dirty = true;
    if (entry.final !== undefined && offset >= entry.final) this.drop(entry);
  }

  /** The file was truncated: its old content is gone, acknowledgements for it no longer count. */
  truncated(entry: CheckpointEntry, fp: Fingerprint): void {
    entry.gen++;
    entry.fp = fp;
    entry.offset = 0;
    entry.size = 0;
    this.dirty = true;
  }

  fingerprinted(entry: CheckpointEntry, fp: Fingerprint): void {
    entry.fp = fp;
    this.dirty = true;
  }

  /** The newest rotation of the file's path when it was opened there ('' for none). */
  born(entry: CheckpointEntry, after: string): void {
    if (entry.bornAfter === after) return;
    entry.bornAfter = after;
    this.dirty = true;
  }

  /** The file was read to its end and closed: keep the entry only until `final` is acknowledged. */
  closed(entry: CheckpointEntry, final: number): void {
    entry.final = final;
    if (entry.offset >= final) this.drop(entry);
  }

  /**
   * The entry's inode now holds another file (inode reuse): the entry moves to a key of its own
   * (`dev:ino~fingerprint`, never an identity of a live file), so the new file can be tracked
   * while the old one is still looked for (gzipped after rotation) and drained.
   */
  detach(entry: CheckpointEntry): CheckpointEntry {
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    // The same object: acknowledgements still in flight for it keep moving it.
    entry.ino = `${entry.ino}~${entry.fp.hash}`;
    entry.key = `${entry.dev}:${entry.ino}`;
    this.entries.set(entry.key, entry);
    this.dirty = true;
    return entry;
  }

  drop(entry: CheckpointEntry): void {
    if (this.entries.get(entry.key) === entry) {
      this.entries.delete(entry.key);
      this.dirty = true;
    }
  }

  /** Writes the checkpoints if they changed; concurrent calls are serialized. */
  persist(): Promise<void> {
    const next = this.writing.then(() => this.write());
    this.writing = next.catch(() => {});
    return next;
  }

  private async write(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const files: StoredEntry[] = [];
    for (const e of this.entries.values()) {
      files.push({
        dev: e.dev,
        ino: e.ino,
        fpLen: e.fp.len,
        fpHash: e.fp.hash,
        offset: e.offset,
        path: e.path,
        realPath: e.realPath,
        size: Math.max(e.size, e.offset),
        ...(e.bornAfter === undefined ? {} : { bornAfter: e.bornAfter }),
      });
    }
    const body = `${JSON.stringify({ version: CHECKPOINT_VERSION, files } satisfies StoredFile)}\n`;
    const dir = dirname(this.file);
    const tmp = `${this.file}.tmp`;
    try {
      await mkdir(dir, { recursive: true });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
      // The rename itself must survive a power loss too.
      const dh = await open(dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (err) {
      this.dirty = true;
      throw new NodewardError('IO', `cannot write log checkpoints ${this.file}: ${(err as Error).message}`, {
        cause: err,
        details: { file: this.file },
      });
    }
    this.log.trace({ file: this.file, files: files.length }, 'log checkpoints written');
  }
}
