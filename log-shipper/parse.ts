/**
 * The parse stage: turns the physical lines of one file into log lines. Container runtimes write
 * either CRI (`<RFC3339Nano> <stdout|stderr> <P|F> <msg>`) or docker json-file
 * (`{"log":"...","stream":"...","time":"..."}`); the format is detected on the first line that is
 * one of them and kept for the file. Both split long lines into partials (CRI `P`, docker: a `log`
 * without its trailing newline) which are merged here, per stream, up to maxLineBytes.
 */

export const FLAG_PARTIAL = 1;
export const FLAG_PARSE_ERROR = 2;
export const FLAG_TRUNCATED = 4;

export type Stream = 'stdout' | 'stderr' | 'unknown';
export type Format = 'cri' | 'docker';

/** Where the parse stage hands its output: the next stage of the same file. */
export interface ParseOutput {
  /**
   * One log line. `start` is the file offset of its first physical line; `end` the offset a
   * checkpoint may move to once this line is acknowledged (never past a partial still held here).
   */
  line(time: string, stream: Stream, message: string, flags: number, start: number, end: number): void;
  /** Bytes consumed without a line (empty physical lines): the checkpoint may move to `end`. */
  skip(end: number): void;
}

/** Partials still open per stream (stdout, stderr) when a file ended: the next file of the path goes on with them. */
export type OpenPartials = readonly [Chain | undefined, Chain | undefined];

const SPACE = 0x20;
const LBRACE = 0x7b;

/** Partials of one stream waiting for their final part. */
export interface Chain {
  time: string;
  parts: Buffer[];
  /** File offset of the physical line each part came from: where a restart must re-read it. */
  partStarts: number[];
  bytes: number;
}

interface CriHeader {
  time: string;
  stream: 'stdout' | 'stderr';
  final: boolean;
  messageStart: number;
}

/**
 * Reads the CRI header of buf[s, e) by hand: the hot path of every line, so no regex and no string
 * until the fields are known to be well-formed.
 */
export function parseCriHeader(buf: Buffer, s: number, e: number): CriHeader | undefined {
  // The shortest CRI line: a 20-byte time, "stdout", a tag, three spaces.
  if (e - s < 29) return undefined;
  if (buf[s + 4] !== 0x2d || buf[s + 7] !== 0x2d || buf[s + 10] !== 0x54 || buf[s + 13] !== 0x3a)
    return undefined;
  // RFC3339 is 20 ("2006-01-02T15:04:05Z") to 35 bytes (nanoseconds and an offset): look no further.
  let sp = s + 19;
  const last = Math.min(s + 36, e);
  while (sp < last && buf[sp] !== SPACE) sp++;
  if (sp >= last || sp < s + 20) return undefined;
  const t = sp + 1;
  if (t + 7 >= e) return undefined;
  if (buf[t] !== 0x73 || buf[t + 1] !== 0x74 || buf[t + 2] !== 0x64 || buf[t + 6] !== SPACE) return undefined;
  let stream: 'stdout' | 'stderr';
  if (buf[t + 3] === 0x6f && buf[t + 4] === 0x75 && buf[t + 5] === 0x74) stream = 'stdout';
  else if (buf[t + 3] === 0x65 && buf[t + 4] === 0x72 && buf[t + 5] === 0x72) stream = 'stderr';
  else return undefined;
  const tag = buf[t + 7];
  if (tag !== 0x46 && tag !== 0x50) return undefined; // F, P
  let m = t + 8;
  if (m < e && buf[m] !== SPACE) {
    // The tag field may carry more tags after a ':'; the message starts after the next space.
    if (buf[m] !== 0x3a) return undefined;
    const next = buf.indexOf(SPACE, m);
    m = next === -1 || next > e ? e : next;
  }
  return {
    time: buf.toString('latin1', s, sp),
    stream,
    final: tag === 0x46,
    messageStart: m < e ? m + 1 : e,
  };
}

interface DockerLine {
  time: string;
  stream: 'stdout' | 'stderr';
  log: string;
}

export function parseDockerLine(buf: Buffer, s: number, e: number): DockerLine | undefined {
  if (buf[s] !== LBRACE || buf[e - 1] !== 0x7d) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(buf.toString('utf8', s, e));
  } catch {
    return undefined;
  }
  if (typeof obj !== 'object' || obj === null) return undefined;
  const { log, stream, time } = obj as Record<string, unknown>;
  if (typeof log !== 'string' || typeof time !== 'string' || (stream !== 'stdout' && stream !== 'stderr'))
    return undefined;
  return { time, stream, log };
}

/** Largest n' ≤ n that does not split a UTF-8 sequence of b. */
export function utf8Boundary(b: Buffer, n: number): number {
  let i = n;
  while (i > 0 && i > n - 4 && ((b[i] ?? 0) & 0xc0) === 0x80) i--;
  return i > 0 ? i : n;
}

export class LineParser {
  format: Format | undefined;
  /** Read time for lines that carry none (raw lines); set by the tailer per chunk, made on demand. */
  readTime: string | undefined;
  private readonly maxLineBytes: number;
  private readonly out: ParseOutput;
  private readonly chains: [Chain | undefined, Chain | undefined] = [undefined, undefined];
  /** The physical line the next continuation piece belongs to. */
  private lineMode: 'chain' | 'raw' = 'raw';
  private lineStream = 0;
  private lineFinal = true;
  private lineTime = '';
  private lineStart = 0;

  constructor(maxLineBytes: number, out: ParseOutput, format?: Format) {
    this.maxLineBytes = maxLineBytes;
    this.out = out;
    this.format = format;
  }

  /**
   * One piece of a physical line, buf[s, e) without its newline; [startOff, endOff) in the file.
   * `cont`: continues the previous piece's physical line; `more`: the physical line goes on in the
   * next piece (the tailer cut it at maxLineBytes).
   */
  push(
    buf: Buffer,
    s: number,
    e: number,
    startOff: number,
    endOff: number,
    cont: boolean,
    more: boolean,
  ): void {
    if (cont) {
      this.continuation(buf, s, e, endOff, more);
      return;
    }
    this.lineStart = startOff;
    if (s === e && !more) {
      this.out.skip(this.safe(endOff));
      return;
    }
    if (this.format !== 'docker') {
      const h = parseCriHeader(buf, s, e);
      if (h !== undefined) {
        this.format = 'cri';
        const idx = h.stream === 'stdout' ? 0 : 1;
        const chain = this.chains[idx];
        const len = e - h.messageStart;
        if (h.final && !more && chain === undefined && len <= this.maxLineBytes) {
          this.out.line(
            h.time,
            h.stream,
            buf.toString('utf8', h.messageStart, e),
            0,
            startOff,
            this.safe(endOff),
          );
          return;
        }
        this.lineMode = 'chain';
        this.lineStream = idx;
        this.lineFinal = h.final;
        this.lineTime = h.time;
        this.append(idx, h.time, buf.subarray(h.messageStart, e), startOff);
        if (!more && h.final) this.complete(idx, endOff);
        return;
      }
    }
    if (this.format !== 'cri' && !more) {
      const d = parseDockerLine(buf, s, e);
      if (d !== undefined) {
        this.format = 'docker';
        this.docker(d, startOff, endOff);
        return;
      }
    }
    this.lineMode = 'raw';
    this.raw(buf, s, e, startOff, endOff, more);
  }

  /** The file is done: what partials are still held leave flagged partial rather than not at all. */
  flush(end: number): void {
    for (let idx = 0; idx < 2; idx++) {
      const chain = this.chains[idx];
      if (chain === undefined) continue;
      this.chains[idx] = undefined;
      const message = Buffer.concat(chain.parts, chain.bytes).toString('utf8');
      this.out.line(
        chain.time,
        idx === 0 ? 'stdout' : 'stderr',
        message,
        FLAG_PARTIAL,
        chain.partStarts[0] ?? end,
        this.safe(end),
      );
    }
  }

  /**
   * The file is done and the next file of its path follows (a rotation): the partials still open
   * are handed over instead of shipped flagged partial; undefined when there are none.
   */
  takeOpen(): OpenPartials | undefined {
    const [a, b] = this.chains;
    if (a === undefined && b === undefined) return undefined;
    this.chains[0] = undefined;
    this.chains[1] = undefined;
    return [a, b];
  }

  /**
   * Partials the previous file of the path ended with: they go on in this file. Their parts are
   * placed at offset 0 here, so this file's checkpoint stays at 0 until they are complete (the
   * previous file's stays at their first part: a restart reads them again, from there).
   */
  adoptOpen(open: OpenPartials): void {
    for (let idx = 0; idx < 2; idx++) {
      const chain = open[idx];
      if (chain === undefined || this.chains[idx] !== undefined) continue;
      this.chains[idx] = { ...chain, partStarts: chain.partStarts.map(() => 0) };
    }
  }

  /** Where a checkpoint may be at `end`: never past the first part of an open partial. */
  resumable(end: number): number {
    return this.safe(end);
  }

  private continuation(buf: Buffer, s: number, e: number, endOff: number, more: boolean): void {
    if (this.lineMode === 'raw') {
      this.raw(buf, s, e, this.lineStart, endOff, more);
      return;
    }
    this.append(this.lineStream, this.lineTime, buf.subarray(s, e), this.lineStart);
    if (!more && this.lineFinal) this.complete(this.lineStream, endOff);
  }

  private raw(buf: Buffer, s: number, e: number, startOff: number, endOff: number, more: boolean): void {
    this.readTime ??= new Date().toISOString();
    const flags = FLAG_PARSE_ERROR | (more ? FLAG_TRUNCATED : 0);
    // A restart cannot resume inside a physical line: until its last piece, stay at its start.
    const end = more ? this.lineStart : endOff;
    this.out.line(this.readTime, 'unknown', buf.toString('utf8', s, e), flags, startOff, this.safe(end));
  }

  private docker(d: DockerLine, startOff: number, endOff: number): void {
    const idx = d.stream === 'stdout' ? 0 : 1;
    const final = d.log.endsWith('\n');
    const message = final ? d.log.slice(0, -1) : d.log;
    if (final && this.chains[idx] === undefined && message.length * 3 <= this.maxLineBytes) {
      this.out.line(d.time, d.stream, message, 0, startOff, this.safe(endOff));
      return;
    }
    this.append(idx, d.time, Buffer.from(message), startOff);
    if (final) this.complete(idx, endOff);
  }

  /** Adds a part to a stream's chain; whatever exceeds maxLineBytes leaves as truncated records. */
  private append(idx: number, time: string, part: Buffer, lineStart: number): void {
    let chain = this.chains[idx];
    if (chain === undefined) {
      chain = { time, parts: [], partStarts: [], bytes: 0 };
      this.chains[idx] = chain;
    }
    // The tailer reuses its read buffer: keep a copy.
    chain.parts.push(Buffer.from(part));
    chain.partStarts.push(lineStart);
    chain.bytes += part.length;
    while (chain.bytes > this.maxLineBytes) this.cut(idx, chain);
  }

  private cut(idx: number, chain: Chain): void {
    const all = Buffer.concat(chain.parts, chain.bytes);
    const n = utf8Boundary(all, this.maxLineBytes);
    const start = chain.partStarts[0] ?? this.lineStart;
    // Where the rest begins: the physical line holding byte n must be re-read after a restart.
    let acc = 0;
    let restStart = this.lineStart;
    for (let i = 0; i < chain.parts.length; i++) {
      const len = chain.parts[i]!.length;
      if (acc + len > n) {
        restStart = chain.partStarts[i]!;
        break;
      }
      acc += len;
    }
    const rest = all.subarray(n);
    chain.parts = [rest];
    chain.partStarts = [restStart];
    chain.bytes = rest.length;
    this.out.line(
      chain.time,
      idx === 0 ? 'stdout' : 'stderr',
      all.toString('utf8', 0, n),
      FLAG_TRUNCATED,
      start,
      this.safe(restStart),
    );
  }

  private complete(idx: number, endOff: number): void {
    const chain = this.chains[idx]!;
    this.chains[idx] = undefined;
    const message =
      chain.parts.length === 1
        ? chain.parts[0]!.toString('utf8')
        : Buffer.concat(chain.parts, chain.bytes).toString('utf8');
    this.out.line(
      chain.time,
      idx === 0 ? 'stdout' : 'stderr',
      message,
      0,
      chain.partStarts[0] ?? endOff,
      this.safe(endOff),
    );
  }

  /** A checkpoint position never passes the first part of a chain still open on either stream. */
  private safe(end: number): number {
    const a = this.chains[0]?.partStarts[0];
    const b = this.chains[1]?.partStarts[0];
    let pos = end;
    if (a !== undefined && a < pos) pos = a;
    if (b !== undefined && b < pos) pos = b;
    return pos;
  }
}
