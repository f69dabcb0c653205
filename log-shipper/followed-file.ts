import type { Batcher, BatchOwner, Slot } from './batch.ts';
import type { CheckpointEntry, CheckpointStore } from './checkpoint.ts';
import type { Enrichment } from './enrich.ts';
import { FileLabels, type FileLabelsDeps } from './file-labels.ts';
import type { Fingerprint } from './identity.ts';
import { LineCounts } from './line-counts.ts';
import type { LogsMetrics } from './metrics.ts';
import {
  FLAG_PARSE_ERROR,
  FLAG_TRUNCATED,
  LineParser,
  type OpenPartials,
  type ParseOutput,
  type Stream,
} from './parse.ts';
import type { Tailer, TailOptions, TailOutput } from './tail.ts';
import { TimedMultiline } from './timed-multiline.ts';

export interface FollowedFileDeps extends FileLabelsDeps {
  options: Pick<TailOptions, 'maxLineBytes'>;
  checkpoints: CheckpointStore;
  batcher: Batcher;
  /** How long an open multi-line record waits for its next line (ms). */
  multilineTimeout: number;
  metrics: LogsMetrics;
}

/** Told when a file's path names another file: the path is followed anew, this file drained. */
export interface FileOwner {
  unfollowed(file: FollowedFile): void;
  /** The file read after this one on the same path (the next rotation), if one waits already. */
  nextOf(file: FollowedFile): FollowedFile | undefined;
}

/**
 * One open file on its way through the stages: tail → parse → (multi-line) → pod rules → route →
 * batch. Acknowledgements come back through its checkpoint entry.
 */
export class FollowedFile implements TailOutput, ParseOutput, BatchOwner {
  readonly entry: CheckpointEntry;
  /** Of the labels it was opened with: its counters keep it. */
  readonly namespace: string;
  slot: Slot | undefined;
  tailer!: Tailer;
  /** The watched path names this file (it is the newest of its path). */
  live = false;
  /** Opened under the watched path in this run (not found rotated): newer than what restart recovery finds. */
  followed = false;
  /** When it was opened: a file of an unknown pod waits for the pod's metadata from then on. */
  readonly openedAt = Date.now();
  /** Its kubelet rotation stamp once it is known to be rotated (`0.log.<stamp>`), for ordering. */
  stamp: string | undefined;
  /** Partials of the previous file were handed over: that file's end is acknowledged with them. */
  private carriedFrom: { file: FollowedFile; final: number } | undefined;
  private parser: LineParser;
  private readonly labels: FileLabels;
  /** Only when the pod asks for multi-line grouping; lines go straight to ship() otherwise. */
  private multiline: TimedMultiline | undefined;
  private closed = false;
  private readonly owner: FileOwner;
  private readonly deps: FollowedFileDeps;
  private readonly counts: LineCounts;
  /** The end of the stages, for the multi-line grouper to hand its records to. */
  private readonly shipped: ParseOutput;

  constructor(owner: FileOwner, deps: FollowedFileDeps, entry: CheckpointEntry, enrichment: Enrichment) {
    this.owner = owner;
    this.deps = deps;
    this.entry = entry;
    this.namespace = enrichment.labels.namespace ?? '';
    this.parser = new LineParser(deps.options.maxLineBytes, this);
    this.counts = new LineCounts(deps.metrics, this.namespace);
    this.shipped = { line: (...a) => this.ship(...a), skip: (end) => this.advanceTo(end) };
    this.labels = new FileLabels(deps, entry, enrichment);
    this.groupIfAsked();
  }

  /** Grouping starts once the rules ask for it, and is not undone by a later relabelling. */
  private groupIfAsked(): void {
    const pattern = this.labels.rules.multiline;
    if (pattern !== undefined && this.multiline === undefined)
      this.multiline = new TimedMultiline(
        pattern,
        this.deps.options.maxLineBytes,
        this.shipped,
        this.deps.multilineTimeout,
        () => this.counts.flush(),
      );
  }

  /** Pod metadata is configured but does not know this file's pod (looked up again in its cache). */
  podUnknown(): boolean {
    if (this.labels.refresh()) this.groupIfAsked();
    return this.labels.podUnknown;
  }

  /** Shutting down: no record leaves on a timer any more; the unacknowledged ones are read again. */
  stop(): void {
    this.closed = true;
    this.multiline?.stop();
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
    if (this.tailer.size > this.entry.size) this.entry.size = this.tailer.size;
    this.parser.readTime = undefined;
    this.counts.bytesRead(bytes);
    this.counts.flush();
    if (!this.closed) this.multiline?.armIfOpen();
  }

  truncated(fp: Fingerprint): void {
    this.deps.checkpoints.truncated(this.entry, fp);
    this.parser = new LineParser(this.deps.options.maxLineBytes, this, this.parser.format);
    const pattern = this.labels.rules.multiline;
    if (pattern !== undefined) this.multiline?.restart(pattern);
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
    // A P chain cut by the rotation goes on in the next file of the path: joined there, not
    // shipped as two broken records.
    const next = this.owner.nextOf(this);
    const hold = this.parser.resumable(final);
    const open = next === undefined ? undefined : this.parser.takeOpen();
    if (open === undefined) this.parser.flush(final);
    this.multiline?.grouper.flush();
    this.stop();
    this.counts.flush();
    this.deps.batcher.advance(this, this.entry.gen, open === undefined ? final : hold);
    this.deps.checkpoints.closed(this.entry, final);
    if (open !== undefined) next!.adopt(open, this, final);
  }

  /** The previous file of the path ended inside partials: they continue here. */
  adopt(open: OpenPartials, previous: FollowedFile, final: number): void {
    this.parser.adoptOpen(open);
    this.carriedFrom = { file: previous, final };
  }

  /** Once this file's checkpoint moves past 0, the carried partials are complete: so is the previous file. */
  private releasePrevious(end: number): void {
    const carried = this.carriedFrom;
    if (carried === undefined || end <= 0) return;
    this.carriedFrom = undefined;
    this.deps.batcher.advance(carried.file, carried.file.entry.gen, carried.final);
  }

  // parse → (multi-line) → ship
  line(time: string, stream: Stream, message: string, flags: number, start: number, end: number): void {
    this.counts.lines++;
    if (flags !== 0) {
      if (flags & FLAG_PARSE_ERROR) this.counts.parseErrors++;
      if (flags & FLAG_TRUNCATED) this.counts.splits++;
    }
    if (this.multiline === undefined) this.ship(time, stream, message, flags, start, end);
    else this.multiline.grouper.line(time, stream, message, flags, start, end);
  }

  skip(end: number): void {
    if (this.multiline === undefined) this.advanceTo(end);
    else this.multiline.grouper.skip(end);
  }

  // pod rules → route → batch
  private ship(
    time: string,
    stream: Stream,
    message: string,
    flags: number,
    start: number,
    end: number,
  ): void {
    if (this.carriedFrom !== undefined) this.releasePrevious(end);
    const labels = this.labels;
    if (labels.refresh()) this.groupIfAsked();
    const rules = labels.rules;
    if (rules.excluded) {
      this.counts.excluded++;
      this.advanceTo(end);
      return;
    }
    if (rules.limiter !== undefined && !rules.limiter.take()) {
      this.counts.rateLimited++;
      this.advanceTo(end);
      return;
    }
    if (labels.podUnknown) this.counts.unlabelled++;
    const value = labels.encode(time, stream, message, flags, start);
    this.deps.batcher.add(
      this,
      { topic: labels.route.topic, key: labels.route.key, value },
      value.length,
      this.entry.gen,
      end,
    );
  }

  private advanceTo(end: number): void {
    if (this.carriedFrom !== undefined) this.releasePrevious(end);
    this.deps.batcher.advance(this, this.entry.gen, end);
  }
}
