import { type FileHandle, open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Counter } from 'prom-client';
import type { Logger } from '../shared/logger.ts';
import type { Batcher, BatchOwner, Slot } from './batch.ts';
import type { CheckpointEntry, CheckpointStore } from './checkpoint.ts';
import type { Enricher } from './enrich.ts';
import { FINGERPRINT_BYTES, type Fingerprint, fingerprint, identityKey } from './identity.ts';
import type { InflightBudget } from './inflight.ts';
import type { LogsMetrics } from './metrics.ts';
import { FLAG_PARSE_ERROR, FLAG_TRUNCATED, LineParser, type ParseOutput, type Stream } from './parse.ts';
import { createEncoder, type Encoder } from './record.ts';
import type { Route, Router } from './route.ts';
import { type BufferPool, Tailer, type TailOptions, type TailOutput } from './tail.ts';

/**
 * The files being shipped: for each, one Source wiring tail → parse → enrich → route → batch, and
 * its checkpoint entry. Discovery says which paths exist; this decides what to open, where to
 * start, and what to do when a path starts naming another file.
 */

export interface SourcesOptions extends TailOptions {
  readFrom: 'beginning' | 'end';
  /** How long a path that failed to open (other than by vanishing) waits before the next try. */
  rescanInterval: number;
}

export interface SourcesDeps {
  options: SourcesOptions;
  checkpoints: CheckpointStore;
  batcher: Batcher;
  budget: InflightBudget;
  pool: BufferPool;
  enricher: Enricher;
  router: Router;
  metrics: LogsMetrics;
  log: Logger;
}

interface PerNamespace {
  linesRead: ReturnType<Counter<'namespace'>['labels']>;
  bytesRead: ReturnType<Counter<'namespace'>['labels']>;
  parseErrors: ReturnType<Counter<'namespace'>['labels']>;
  linesSplit: ReturnType<Counter<'namespace'>['labels']>;
}

/** One open file and its way through the stages. */
class Source implements TailOutput, ParseOutput, BatchOwner {
  readonly entry: CheckpointEntry;
  readonly namespace: string;
  slot: Slot | undefined;
  tailer!: Tailer;
  private parser: LineParser;
  private readonly encode: Encoder;
  private readonly route: Route;
  private readonly owner: Sources;
  private readonly deps: SourcesDeps;
  private readonly counters: PerNamespace;
  private lines = 0;
  private parseErrors = 0;
  private splits = 0;

  constructor(owner: Sources, deps: SourcesDeps, entry: CheckpointEntry) {
    this.owner = owner;
    this.deps = deps;
    this.entry = entry;
    const labels = deps.enricher.labels(entry);
    this.namespace = labels.namespace ?? '';
    this.encode = createEncoder(labels, entry.realPath);
    this.route = deps.router(labels, entry.realPath);
    this.parser = new LineParser(deps.options.maxLineBytes, this);
    const m = deps.metrics;
    this.counters = {
      linesRead: m.linesRead.labels(this.namespace),
      bytesRead: m.bytesRead.labels(this.namespace),
      parseErrors: m.parseErrors.labels(this.namespace),
      linesSplit: m.linesSplit.labels(this.namespace),
    };
  }

  // tail → parse
  piece(
    buf: Buffer,
    s: number,
    e: number,
    startOff: number,
    endOff: number,
    cont: boolean,
    more: boolean,
  ): void {
    this.parser.push(buf, s, e, startOff, endOff, cont, more);
  }

  read(bytes: number): void {
    this.parser.readTime = undefined;
    if (bytes > 0) this.counters.bytesRead.inc(bytes);
    this.countLines();
  }

  truncated(fp: Fingerprint): void {
    this.deps.checkpoints.truncated(this.entry, fp);
    this.parser = new LineParser(this.deps.options.maxLineBytes, this, this.parser.format);
    this.deps.metrics.rotations.inc({ kind: 'truncate' });
    this.deps.log.info({ file: this.entry.realPath }, 'log file truncated; reading it from the start');
  }

  fingerprinted(fp: Fingerprint): void {
    this.deps.checkpoints.fingerprinted(this.entry, fp);
  }

  unfollowed(deleted: boolean): void {
    this.deps.metrics.rotations.inc({ kind: deleted ? 'delete' : 'rename' });
    this.owner.unfollowed(this);
  }

  drained(final: number): void {
    this.parser.flush(final);
    this.countLines();
    this.deps.batcher.advance(this, this.entry.gen, final);
    this.deps.checkpoints.closed(this.entry, final);
  }

  // parse → enrich (labels, once per file) → route → batch
  line(time: string, stream: Stream, message: string, flags: number, start: number, end: number): void {
    const value = this.encode(time, stream, message, flags, start);
    this.lines++;
    if (flags !== 0) {
      if (flags & FLAG_PARSE_ERROR) this.parseErrors++;
      if (flags & FLAG_TRUNCATED) this.splits++;
    }
    this.deps.batcher.add(
      this,
      { topic: this.route.topic, key: this.route.key, value },
      Buffer.byteLength(value),
      this.entry.gen,
      end,
    );
  }

  skip(end: number): void {
    this.deps.batcher.advance(this, this.entry.gen, end);
  }

  /** Metrics are counted per read, not per line: a labelled counter costs a map lookup. */
  private countLines(): void {
    if (this.lines > 0) this.counters.linesRead.inc(this.lines);
    if (this.parseErrors > 0) this.counters.parseErrors.inc(this.parseErrors);
    if (this.splits > 0) this.counters.linesSplit.inc(this.splits);
    this.lines = 0;
    this.parseErrors = 0;
    this.splits = 0;
  }
}

export class Sources {
  private readonly deps: SourcesDeps;
  /** Watched path → the source reading the file it names. */
  private readonly following = new Map<string, Source>();
  /** Identity → every open source (following or draining). */
  private readonly open = new Map<string, Source>();
  private readonly runs = new Set<Promise<void>>();
  private readonly opening = new Set<string>();
  /** Paths discovery reports; tick() retries those that could not be opened yet. */
  private readonly known = new Set<string>();
  /** Paths that failed to open, and when: retried after rescanInterval, not on every event. */
  private readonly failed = new Map<string, number>();
  private stopped = false;

  constructor(deps: SourcesDeps) {
    this.deps = deps;
  }

  get count(): number {
    return this.open.size;
  }

  lagBytes(): number {
    let lag = 0;
    for (const s of this.open.values()) lag += Math.max(0, s.tailer.size - s.entry.offset);
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
    const source = this.following.get(path);
    if (source !== undefined) source.tailer.wake();
    else if (this.known.has(path)) void this.follow(path, false);
  }

  /** Periodic: paths whose file could not be opened yet (between a rename and the new file). */
  tick(): void {
    for (const path of this.known) if (!this.following.has(path)) void this.follow(path, false);
  }

  /**
   * Checkpointed files no path names any more were rotated or removed while the module was down:
   * drain those still found beside their old name (0.log → 0.log.<timestamp>), forget the rest.
   */
  async recover(): Promise<void> {
    for (const entry of [...this.deps.checkpoints.all()]) {
      if (this.open.has(entry.key)) continue;
      if (!(await this.recoverOne(entry))) this.deps.checkpoints.drop(entry);
    }
  }

  /** Stops every tailer; their unacknowledged lines are read again from the checkpoints next time. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.open.values()) s.tailer.stop();
    this.deps.budget.wakeAll();
    await Promise.allSettled([...this.runs]);
  }

  unfollowed(source: Source): void {
    const path = source.tailer.path;
    if (this.following.get(path) === source) this.following.delete(path);
    this.deps.log.debug(
      { path, file: source.entry.realPath },
      'log path names another file; draining the old one',
    );
    if (this.known.has(path)) void this.follow(path, false);
  }

  private async follow(path: string, initial: boolean): Promise<void> {
    if (this.stopped || this.following.has(path) || this.opening.has(path)) return;
    const failedAt = this.failed.get(path);
    if (failedAt !== undefined && Date.now() - failedAt < this.deps.options.rescanInterval) return;
    this.opening.add(path);
    let fh: FileHandle | undefined;
    try {
      const realPath = await realpath(path);
      fh = await open(realPath, 'r');
      const st = await fh.stat({ bigint: true });
      const key = identityKey(st.dev, st.ino);
      if (!st.isFile() || this.open.has(key) || this.stopped) return;
      const size = Number(st.size);
      let start = await this.resumeAt(fh, key, size);
      if (start === undefined) {
        start = initial && this.deps.options.readFrom === 'end' ? await lastLineEnd(fh, size) : 0;
      }
      const fp = await fingerprint(fh, Math.min(size, FINGERPRINT_BYTES));
      const entry = this.deps.checkpoints.track(key, `${st.dev}`, `${st.ino}`, fp, start, path, realPath);
      const source = new Source(this, this.deps, entry);
      this.start(source, { fh, path, dev: st.dev, ino: st.ino, start, size, fp, following: true });
      this.following.set(path, source);
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
        'inode reused by another file; its checkpoint does not apply',
      );
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

  private async recoverOne(entry: CheckpointEntry): Promise<boolean> {
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
      if (fp.hash !== entry.fp.hash || fp.len !== entry.fp.len || entry.offset > size || this.stopped) {
        await fh.close();
        return false;
      }
      this.deps.log.info(
        { file: candidate, offset: entry.offset },
        'draining a log file rotated while stopped',
      );
      this.start(new Source(this, this.deps, entry), {
        fh,
        path: entry.path,
        dev: st.dev,
        ino: st.ino,
        start: entry.offset,
        size,
        fp: entry.fp,
        following: false,
      });
      return true;
    }
    return false;
  }

  private start(source: Source, init: ConstructorParameters<typeof Tailer>[0]): void {
    const d = this.deps;
    source.tailer = new Tailer(init, d.options, d.pool, d.budget, source);
    const key = source.entry.key;
    this.open.set(key, source);
    const run = source.tailer
      .run()
      .catch((err: unknown) => {
        this.failed.set(source.tailer.path, Date.now());
        d.log.error(
          { err, file: source.entry.realPath, code: 'IO' },
          'reading a log file failed; it is reopened later',
        );
      })
      .finally(async () => {
        this.open.delete(key);
        const path = source.tailer.path;
        if (this.following.get(path) === source) this.following.delete(path);
        this.runs.delete(run);
        await init.fh.close().catch(() => {});
      });
    this.runs.add(run);
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
