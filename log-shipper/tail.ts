import { fstatSync, statSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { FINGERPRINT_BYTES, type Fingerprint, fingerprint, type PositionalReader } from './identity.ts';
import type { InflightBudget } from './inflight.ts';
import { utf8Boundary } from './parse.ts';

/**
 * The tail stage: reads one file from an offset, splits it into physical lines on the Buffer (no
 * string is made here), and notices what happens to the file: truncation (copytruncate), its path
 * naming another file (rename rotation) or none (deletion). A file that lost its path is read to
 * its end before it is closed; a renamed one is kept open until it stopped growing for rotateWait,
 * since the runtime may write a last line before it reopens.
 */

const NEWLINE = 0x0a;

export interface TailOutput {
  /**
   * One piece of a physical line: buf[s, e) without the newline, at [startOff, endOff) in the
   * file; valid only during the call. `cont`: it continues the previous piece's line; `more`: the
   * line goes on in the next piece (it was longer than maxLineBytes).
   */
  piece(
    buf: Buffer,
    s: number,
    e: number,
    startOff: number,
    endOff: number,
    cont: boolean,
    more: boolean,
  ): void;
  /** After each split: bytes newly read (0 when resuming lines left in the buffer). */
  read(bytes: number): void;
  /** The file was truncated: reading starts over at 0; `fp` fingerprints the new content. */
  truncated(fp: Fingerprint): void;
  /** The first bytes were fingerprinted again, because the file was shorter than the fingerprint. */
  fingerprinted(fp: Fingerprint): void;
  /** The watched path names another file now, or none. Called once; reading goes on. */
  unfollowed(deleted: boolean): void;
  /** Read to its end after unfollowed(): every byte up to `final` went through piece(). */
  drained(final: number): void;
}

export interface TailOptions {
  maxLineBytes: number;
  pollInterval: number;
  rotateWait: number;
}

/** Read buffers, reused across files: idle files hold none. */
export class BufferPool {
  readonly size: number;
  private readonly free: Buffer[] = [];

  constructor(maxLineBytes: number) {
    // A carried-over partial line is at most maxLineBytes; leave room for a useful read after it.
    this.size = Math.max(256 * 1024, maxLineBytes + 64 * 1024);
  }

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  give(buf: Buffer): void {
    if (this.free.length < 8) this.free.push(buf);
  }
}

/** What a tailer reads: an open file, or a rotated `.gz` decompressed as it is read (rotated-files.ts). */
export interface TailFile extends PositionalReader {
  /** Synchronous: on a local file system an fstat takes microseconds, the thread pool far more. */
  stat(): { size: number; nlink: number };
  close(): Promise<void>;
}

export function openFile(fh: FileHandle): TailFile {
  return {
    read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
    stat: () => fstatSync(fh.fd),
    close: () => fh.close(),
  };
}

export interface TailerInit {
  fh: TailFile;
  /** The watched path, checked for rotation while following. */
  path: string;
  dev: bigint;
  ino: bigint;
  /** Offset to start at: the start of a line. */
  start: number;
  size: number;
  fp: Fingerprint;
  /** False for a rotated file found again after a restart: drain it, do not follow its old path. */
  following: boolean;
}

export class Tailer {
  readonly fh: TailFile;
  readonly path: string;
  readonly dev: bigint;
  readonly ino: bigint;
  /** Next byte to read; bytes before it either went through piece() or are in the carry. */
  position: number;
  /** Largest size seen, for the checkpoint lag. */
  size: number;
  following: boolean;
  /**
   * A newer file of the same path waits behind this one: the runtime reopened its log, so once
   * renamed this file cannot grow any more and is closed at its end without waiting rotateWait.
   */
  successor = false;
  private fp: Fingerprint;
  private readonly options: TailOptions;
  private readonly pool: BufferPool;
  private readonly budget: InflightBudget;
  private readonly out: TailOutput;
  /** Holds file bytes [position - bufEnd, position); those before `scan` went through piece(). */
  private buf: Buffer | undefined;
  private bufEnd = 0;
  private scan = 0;
  /** Where the newline search resumes: [scan, searchFrom) holds none. */
  private searchFrom = 0;
  private cont = false;
  private stopped = false;
  private lastGrowth = Date.now();
  /** After a poll's sleep: check the first bytes before reading on (copytruncate regrown past the offset). */
  private verify = false;
  private wakeUp: (() => void) | undefined;

  constructor(
    init: TailerInit,
    options: TailOptions,
    pool: BufferPool,
    budget: InflightBudget,
    out: TailOutput,
  ) {
    this.fh = init.fh;
    this.path = init.path;
    this.dev = init.dev;
    this.ino = init.ino;
    this.position = init.start;
    this.size = Math.max(init.size, init.start);
    this.fp = init.fp;
    this.following = init.following;
    this.options = options;
    this.pool = pool;
    this.budget = budget;
    this.out = out;
  }

  /** Reads until stop(), or until the file is drained after losing its path. */
  async run(): Promise<void> {
    try {
      while (!this.stopped) {
        const room = this.budget.room();
        if (room !== undefined) {
          await room;
          continue;
        }
        if (this.searchFrom < this.bufEnd) {
          // Lines left in the buffer when the budget ran out.
          this.split();
          this.out.read(0);
          continue;
        }
        // Idle files cost two stat calls per poll, made synchronously: on a local file system
        // they take microseconds, a round trip through the libuv thread pool costs far more.
        const st = this.fh.stat();
        if (st.size > this.size) this.size = st.size;
        if (this.verify) {
          this.verify = false;
          if (this.following && st.size >= this.position && (await this.replaced())) continue;
        }
        if (st.size > this.position) {
          if ((await this.readOnce()) > 0) {
            this.lastGrowth = Date.now();
            if (this.fp.len < FINGERPRINT_BYTES && this.position > this.fp.len) await this.refingerprint();
            continue;
          }
        }
        if (this.stopped) break;
        if (this.following) {
          // Truncated or renamed: read again at once (lines may have come just before a rename).
          if (await this.checkFollowed(st.size, st.nlink)) continue;
        } else if (
          st.nlink === 0 ||
          this.successor ||
          Date.now() - this.lastGrowth >= this.options.rotateWait
        ) {
          // Deleted: nobody can write to it by name any more. Renamed: the writer may, until it
          // reopens (a newer file at the path says it did), so it is kept until it has not grown
          // for rotateWait.
          this.finish();
          return;
        }
        this.releaseBuffer();
        await this.sleep();
        this.verify = true;
      }
    } finally {
      if (this.buf !== undefined) this.pool.give(this.buf);
      this.buf = undefined;
    }
  }

  /** A watch event: check now rather than at the next poll. */
  wake(): void {
    this.wakeUp?.();
  }

  stop(): void {
    this.stopped = true;
    this.wakeUp?.();
  }

  /** An idle file holds no read buffer, unless it ends in an unfinished line. */
  private releaseBuffer(): void {
    if (this.buf === undefined || this.scan < this.bufEnd) return;
    this.pool.give(this.buf);
    this.buf = undefined;
    this.bufEnd = 0;
    this.scan = 0;
    this.searchFrom = 0;
  }

  private async readOnce(): Promise<number> {
    let buf = this.buf;
    if (buf === undefined) {
      buf = this.pool.take();
      this.buf = buf;
    } else if (this.scan > 0) {
      // Keep only the unfinished line, at the start.
      buf.copy(buf, 0, this.scan, this.bufEnd);
      this.bufEnd -= this.scan;
      this.searchFrom -= this.scan;
      this.scan = 0;
    }
    const { bytesRead } = await this.fh.read(buf, this.bufEnd, buf.length - this.bufEnd, this.position);
    if (bytesRead === 0) return 0;
    this.position += bytesRead;
    if (this.position > this.size) this.size = this.position;
    this.bufEnd += bytesRead;
    this.split();
    this.out.read(bytesRead);
    return bytesRead;
  }

  /**
   * Hands complete lines to the output until the buffer holds none or the in-flight budget is
   * spent: then the rest waits in the buffer, so memory stays at the cap whatever the lines' size.
   */
  private split(): void {
    const buf = this.buf!;
    const max = this.options.maxLineBytes;
    const base = this.position - this.bufEnd;
    const end = this.bufEnd;
    // Bounded view: indexOf must not find newlines of an earlier read beyond `end`.
    const view = buf.subarray(0, end);
    let s = this.scan;
    let nl = view.indexOf(NEWLINE, this.searchFrom);
    while (nl !== -1) {
      while (nl - s > max) s = this.cut(view, s, base, max);
      this.out.piece(view, s, nl, base + s, base + nl + 1, this.cont, false);
      this.cont = false;
      s = nl + 1;
      if (this.budget.full) {
        this.scan = s;
        this.searchFrom = s;
        return;
      }
      nl = view.indexOf(NEWLINE, s);
    }
    while (end - s > max) s = this.cut(view, s, base, max);
    this.scan = s;
    this.searchFrom = end;
  }

  /** Emits the first maxLineBytes of a line (on a UTF-8 boundary); returns where the rest starts. */
  private cut(view: Buffer, s: number, base: number, max: number): number {
    const at = utf8Boundary(view, s + max);
    const cut = at > s ? at : s + max;
    this.out.piece(view, s, cut, base + s, base + cut, this.cont, true);
    this.cont = true;
    return cut;
  }

  /** At the end of the data: truncated? does the path still name this file? */
  private async checkFollowed(size: number, nlink: number): Promise<boolean> {
    if (size < this.position) {
      await this.startOver(size);
      return true;
    }
    const named = statSync(this.path, { bigint: true, throwIfNoEntry: false });
    if (named === undefined || named.dev !== this.dev || named.ino !== this.ino) {
      this.following = false;
      // A renamed file may still get the runtime's last lines, however long it was idle before.
      this.lastGrowth = Date.now();
      this.out.unfollowed(nlink === 0);
      return true;
    }
    return false;
  }

  /**
   * Truncated and written again past the offset between two polls (copytruncate under load): the
   * size alone does not tell, the first bytes do. One read of at most 256 bytes per poll, and only
   * after an idle poll: a file read at full speed never sleeps.
   */
  private async replaced(): Promise<boolean> {
    if (this.fp.len === 0 || this.position === 0) return false;
    const now = await fingerprint(this.fh, this.fp.len);
    if (now.len === this.fp.len && now.hash === this.fp.hash) return false;
    await this.startOver(this.fh.stat().size);
    return true;
  }

  /** The file was truncated (copytruncate): reading starts over at 0. */
  private async startOver(size: number): Promise<void> {
    this.position = 0;
    this.size = size;
    this.bufEnd = 0;
    this.scan = 0;
    this.searchFrom = 0;
    this.cont = false;
    this.fp = await fingerprint(this.fh, Math.min(size, FINGERPRINT_BYTES));
    this.out.truncated(this.fp);
  }

  private finish(): void {
    if (this.buf !== undefined && this.scan < this.bufEnd) {
      // The last line never got its newline: ship it rather than lose it.
      const base = this.position - this.bufEnd;
      this.out.piece(this.buf, this.scan, this.bufEnd, base + this.scan, this.position, this.cont, false);
      this.scan = this.bufEnd;
      this.cont = false;
    }
    this.out.drained(this.position);
  }

  private async refingerprint(): Promise<void> {
    this.fp = await fingerprint(this.fh, Math.min(this.position, FINGERPRINT_BYTES));
    this.out.fingerprinted(this.fp);
  }

  private sleep(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.options.pollInterval);
      this.wakeUp = done;
    });
  }
}
