import { type FileHandle, open, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { Counter } from 'prom-client';
import type { Logger } from '../shared/logger.ts';
import type { Batcher, BatchOwner, Slot } from './batch.ts';
import type { CheckpointEntry, CheckpointStore } from './checkpoint.ts';
import type { Enricher, Enrichment } from './enrich.ts';
import { FINGERPRINT_BYTES, type Fingerprint, fingerprint, identityKey } from './identity.ts';
import type { InflightBudget } from './inflight.ts';
import type { LogsMetrics } from './metrics.ts';
import { MultilineGrouper } from './multiline.ts';
import { FLAG_PARSE_ERROR, FLAG_TRUNCATED, LineParser, type ParseOutput, type Stream } from './parse.ts';
import { createEncoder, type Encoder } from './record.ts';
import type { FilePolicy, Route, RoutePolicy, Router } from './route.ts';
import {
  type BufferPool,
  memoryFile,
  openFile,
  Tailer,
  type TailFile,
  type TailOptions,
  type TailOutput,
} from './tail.ts';

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
  policy: RoutePolicy;
  /** How long an open multi-line record waits for its next line (ms). */
  multilineTimeout: number;
  metrics: LogsMetrics;
  log: Logger;
}

interface PerNamespace {
  linesRead: ReturnType<Counter<'namespace'>['labels']>;
  bytesRead: ReturnType<Counter<'namespace'>['labels']>;
  parseErrors: ReturnType<Counter<'namespace'>['labels']>;
  linesSplit: ReturnType<Counter<'namespace'>['labels']>;
  rateLimited: ReturnType<Counter<'namespace' | 'reason'>['labels']>;
  excluded: ReturnType<Counter<'namespace' | 'reason'>['labels']>;
  unlabelled: ReturnType<Counter<'namespace'>['labels']>;
}

/** One open file and its way through the stages. */
class Source implements TailOutput, ParseOutput, BatchOwner {
  readonly entry: CheckpointEntry;
  readonly namespace: string;
  slot: Slot | undefined;
  tailer!: Tailer;
  private parser: LineParser;
  private encode!: Encoder;
  private route!: Route;
  private policy!: FilePolicy;
  /** Where parsed lines go: the multi-line grouper when the pod asks for one, else shipped. */
  private next: ParseOutput = this;
  private grouper: MultilineGrouper | undefined;
  private groupTimer: NodeJS.Timeout | undefined;
  /** A pod source is configured but did not know the pod: asked again whenever its cache changed. */
  private unlabelled = false;
  /** The pod source's generation this file's labels were taken at. */
  private labelledAt = 0;
  closed = false;
  private readonly owner: Sources;
  private readonly deps: SourcesDeps;
  private readonly counters: PerNamespace;
  private readonly shipped: ParseOutput;
  private lines = 0;
  private parseErrors = 0;
  private splits = 0;
  private dropped = 0;
  private skipped = 0;
  private bare = 0;

  constructor(owner: Sources, deps: SourcesDeps, entry: CheckpointEntry, enrichment: Enrichment) {
    this.owner = owner;
    this.deps = deps;
    this.entry = entry;
    this.namespace = enrichment.labels.namespace ?? '';
    this.parser = new LineParser(deps.options.maxLineBytes, this);
    const m = deps.metrics;
    this.counters = {
      linesRead: m.linesRead.labels(this.namespace),
      bytesRead: m.bytesRead.labels(this.namespace),
      parseErrors: m.parseErrors.labels(this.namespace),
      linesSplit: m.linesSplit.labels(this.namespace),
      rateLimited: m.linesDropped.labels(this.namespace, 'rate_limit'),
      excluded: m.linesDropped.labels(this.namespace, 'excluded'),
      unlabelled: m.linesUnlabelled.labels(this.namespace),
    };
    this.shipped = { line: (...a) => this.ship(...a), skip: (end) => this.advanceTo(end) };
    this.apply(enrichment);
  }

  /** The pod source learned something since: maybe this pod (a cache lookup, once per refresh). */
  private relabel(): void {
    const e = this.deps.enricher.labels(this.entry);
    if (e.missing) this.labelledAt = this.deps.enricher.generation();
    else this.apply(e);
  }

  /** Labels, route and policy of the file; again when the pod's metadata arrives late. */
  private apply(e: Enrichment): void {
    this.unlabelled = e.missing;
    this.labelledAt = this.deps.enricher.generation();
    this.encode = createEncoder(e.labels, this.entry.realPath);
    this.route = this.deps.router(e.labels, this.entry.realPath);
    this.policy = this.deps.policy.forFile(e.labels, e.pod?.annotations);
    if (this.policy.badPattern !== undefined)
      this.deps.log.warn(
        {
          file: this.entry.realPath,
          pod: e.labels.pod,
          namespace: e.labels.namespace,
          err: this.policy.badPattern,
        },
        'multi-line start pattern of the pod does not compile; lines are shipped one by one',
      );
    const pattern = this.policy.multiline;
    if (pattern !== undefined && this.grouper === undefined) {
      this.grouper = new MultilineGrouper(pattern, this.deps.options.maxLineBytes, this.shipped);
      this.next = this.grouper;
    }
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
    if (this.grouper?.open && this.groupTimer === undefined) this.armGroupTimer(this.deps.multilineTimeout);
  }

  private armGroupTimer(ms: number): void {
    this.groupTimer = setTimeout(() => {
      this.groupTimer = undefined;
      const g = this.grouper;
      if (g === undefined || !g.open || this.closed) return;
      const idle = Date.now() - g.touched;
      if (idle >= this.deps.multilineTimeout) {
        g.flush();
        this.countLines();
      } else this.armGroupTimer(this.deps.multilineTimeout - idle);
    }, ms);
    this.groupTimer.unref();
  }

  stopGrouping(): void {
    this.closed = true;
    clearTimeout(this.groupTimer);
    this.groupTimer = undefined;
  }

  truncated(fp: Fingerprint): void {
    this.deps.checkpoints.truncated(this.entry, fp);
    this.parser = new LineParser(this.deps.options.maxLineBytes, this, this.parser.format);
    if (this.grouper !== undefined && this.policy.multiline !== undefined) {
      this.grouper = new MultilineGrouper(
        this.policy.multiline,
        this.deps.options.maxLineBytes,
        this.shipped,
      );
      this.next = this.grouper;
    }
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
    this.grouper?.flush();
    this.stopGrouping();
    this.countLines();
    this.deps.batcher.advance(this, this.entry.gen, final);
    this.deps.checkpoints.closed(this.entry, final);
  }

  // parse → (multi-line) → enrich (labels, once per file) → route → batch
  line(time: string, stream: Stream, message: string, flags: number, start: number, end: number): void {
    this.lines++;
    if (flags !== 0) {
      if (flags & FLAG_PARSE_ERROR) this.parseErrors++;
      if (flags & FLAG_TRUNCATED) this.splits++;
    }
    if (this.next === this) this.ship(time, stream, message, flags, start, end);
    else this.next.line(time, stream, message, flags, start, end);
  }

  skip(end: number): void {
    if (this.next === this) this.advanceTo(end);
    else this.next.skip(end);
  }

  private ship(
    time: string,
    stream: Stream,
    message: string,
    flags: number,
    start: number,
    end: number,
  ): void {
    if (this.unlabelled && this.labelledAt !== this.deps.enricher.generation()) this.relabel();
    const policy = this.policy;
    if (policy.excluded) {
      this.skipped++;
      this.advanceTo(end);
      return;
    }
    if (policy.limiter !== undefined && !policy.limiter.take()) {
      this.dropped++;
      this.advanceTo(end);
      return;
    }
    if (this.unlabelled) this.bare++;
    const value = this.encode(time, stream, message, flags, start);
    this.deps.batcher.add(
      this,
      { topic: this.route.topic, key: this.route.key, value },
      value.length,
      this.entry.gen,
      end,
    );
  }

  private advanceTo(end: number): void {
    this.deps.batcher.advance(this, this.entry.gen, end);
  }

  /** Metrics are counted per read, not per line: a labelled counter costs a map lookup. */
  private countLines(): void {
    if (this.lines > 0) this.counters.linesRead.inc(this.lines);
    if (this.parseErrors > 0) this.counters.parseErrors.inc(this.parseErrors);
    if (this.splits > 0) this.counters.linesSplit.inc(this.splits);
    if (this.dropped > 0) this.counters.rateLimited.inc(this.dropped);
    if (this.skipped > 0) this.counters.excluded.inc(this.skipped);
    if (this.bare > 0) this.counters.unlabelled.inc(this.bare);
    this.dropped = 0;
    this.skipped = 0;
    this.bare = 0;
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
  /** Rotated files being checked by drainNewerRotations(). */
  private readonly siblings = new Set<string>();
  /** Checkpoint keys being looked for by recoverEntry(). */
  private readonly recovering = new Set<string>();
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
    for (const entry of [...this.deps.checkpoints.all()]) await this.recoverEntry(entry);
  }

  private async recoverEntry(entry: CheckpointEntry): Promise<void> {
    if (this.open.has(entry.key) || this.recovering.has(entry.key)) return;
    this.recovering.add(entry.key);
    try {
      if (!(await this.recoverOne(entry))) this.deps.checkpoints.drop(entry);
    } finally {
      this.recovering.delete(entry.key);
    }
  }

  /** Stops every tailer; their unacknowledged lines are read again from the checkpoints next time. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.open.values()) {
      s.tailer.stop();
      s.stopGrouping();
    }
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
      const enrichment = await this.deps.enricher.resolve({ path, realPath });
      if (this.stopped) return;
      const entry = this.deps.checkpoints.track(key, `${st.dev}`, `${st.ino}`, fp, start, path, realPath);
      const source = new Source(this, this.deps, entry, enrichment);
      this.start(source, {
        fh: openFile(fh),
        path,
        dev: st.dev,
        ino: st.ino,
        start,
        size,
        fp,
        following: true,
      });
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
        'inode reused by another file; its checkpoint does not apply (the old file is looked for, rotated or gzipped)',
      );
      // Not awaited: the new file is followed meanwhile.
      void this.recoverEntry(this.deps.checkpoints.detach(entry));
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
        // The inode holds another file now; the old one may still be there, compressed.
        await fh.close();
        if (this.stopped) return true;
        continue;
      }
      this.deps.log.info(
        { file: candidate, offset: entry.offset },
        'draining a log file rotated while stopped',
      );
      const enrichment = await this.deps.enricher.resolve(entry);
      if (this.stopped) {
        // Keep the entry: the next start drains it.
        await fh.close();
        return true;
      }
      this.start(new Source(this, this.deps, entry, enrichment), {
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
   * The kubelet gzips a rotated file (`0.log.<ts>` → `0.log.<ts>.gz`, the original removed) once
   * a newer rotation exists. A new file has a new inode, so the checkpoint's file is recognized by
   * the fingerprint of its first bytes, decompressed; it is read from the checkpoint to its end.
   * In memory: rotated files are containerLogMaxSize (10 MiB by default).
   */
  private async recoverCompressed(entry: CheckpointEntry, dir: string, names: string[]): Promise<boolean> {
    const base = basename(entry.realPath);
    if (entry.fp.len === 0) return false;
    for (const name of names) {
      if (!name.startsWith(`${base}.`) || !name.endsWith('.gz')) continue;
      const candidate = join(dir, name);
      let content: Buffer;
      try {
        content = await gunzipAsync(await readFile(candidate), { maxOutputLength: MAX_GZ_BYTES });
      } catch (err) {
        this.deps.log.warn({ err, file: candidate, code: 'IO' }, 'cannot decompress a rotated log file');
        continue;
      }
      const file = memoryFile(content);
      const fp = await fingerprint(file, entry.fp.len);
      if (fp.hash !== entry.fp.hash || fp.len !== entry.fp.len || entry.offset > content.length) continue;
      if (this.stopped) return true;
      this.deps.log.info(
        { file: candidate, offset: entry.offset, bytes: content.length },
        'draining a log file rotated and compressed while stopped',
      );
      const enrichment = await this.deps.enricher.resolve(entry);
      if (this.stopped) return true;
      this.start(new Source(this, this.deps, entry, enrichment), {
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
      if (stamp === undefined || stamp <= after || this.stopped) continue;
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
      const content = await gunzipAsync(await readFile(path), { maxOutputLength: MAX_GZ_BYTES });
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
    let known = this.open.has(key) || this.deps.checkpoints.get(key) !== undefined || fp.len === 0;
    for (const e of this.deps.checkpoints.all()) {
      if (known) break;
      if (e.realPath !== entry.realPath || e.fp.len === 0) continue;
      const mine = await fingerprint(file, e.fp.len);
      known = mine.len === e.fp.len && mine.hash === e.fp.hash;
    }
    if (known || this.stopped) {
      await file.close();
      return;
    }
    this.deps.log.info(
      { file: path, bytes: size },
      'draining a log file rotated away while stopped, never read',
    );
    const tracked = this.deps.checkpoints.track(key, dev, ino, fp, 0, entry.path, entry.realPath);
    const enrichment = await this.deps.enricher.resolve(tracked);
    this.start(new Source(this, this.deps, tracked, enrichment), {
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

const gunzipAsync = promisify(gunzip);

/** The kubelet's rotation stamp of `<base>.<YYYYMMDD-hhmmss>[.gz]`; undefined for anything else. */
function rotationStamp(base: string, name: string): string | undefined {
  if (!name.startsWith(`${base}.`)) return undefined;
  let rest = name.slice(base.length + 1);
  if (rest.endsWith('.gz')) rest = rest.slice(0, -3);
  return /^\d{8}-\d{6}$/.test(rest) ? rest : undefined;
}
/** Decompressed rotated files larger than this are not read (the kubelet's default is 10 MiB). */
const MAX_GZ_BYTES = 1024 * 1024 * 1024;

/** Where the last complete line ends, so that reading from the end does not start mid-line. */
async function lastLineEnd(fh: FileHandle, size: number): Promise<number> {
  const len = Math.min(size, 64 * 1024);
  if (len === 0) return 0;
  const buf = Buffer.allocUnsafe(len);
  const { bytesRead } = await fh.read(buf, 0, len, size - len);
  const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
  return nl === -1 ? size : size - len + nl + 1;
}
