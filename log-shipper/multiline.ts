import type { ParseOutput, Stream } from './parse.ts';

/**
 * Multi-line grouping, per stream: a line matching the start pattern opens a record, and the lines
 * after it that do not match (a stack trace's frames) are joined to it with "\n". A record leaves
 * when the next one starts, when it would exceed maxBytes, or on flush() (the file's idle timeout,
 * its end). Lines before any start line leave one by one. While a record is open, no checkpoint
 * position handed on passes its first line, so a restart reads the whole record again.
 */

interface Group {
  time: string;
  stream: Stream;
  parts: string[];
  bytes: number;
  flags: number;
  start: number;
  end: number;
}

export class MultilineGrouper implements ParseOutput {
  private readonly pattern: RegExp;
  private readonly maxBytes: number;
  private readonly out: ParseOutput;
  private readonly groups: [Group | undefined, Group | undefined] = [undefined, undefined];
  /** Date.now() of the last line joined or opened, for the idle timeout. */
  touched = 0;

  constructor(pattern: RegExp, maxBytes: number, out: ParseOutput) {
    this.pattern = pattern;
    this.maxBytes = maxBytes;
    this.out = out;
  }

  get open(): boolean {
    return this.groups[0] !== undefined || this.groups[1] !== undefined;
  }

  line(time: string, stream: Stream, message: string, flags: number, start: number, end: number): void {
    const idx = stream === 'stderr' ? 1 : 0;
    const g = this.groups[idx];
    const starts = this.pattern.test(message);
    if (g !== undefined && !starts && g.bytes + 1 + message.length <= this.maxBytes) {
      g.parts.push(message);
      g.bytes += 1 + message.length;
      g.flags |= flags;
      g.end = end;
      this.touched = Date.now();
      return;
    }
    if (g !== undefined) this.emit(idx);
    if (starts) {
      this.groups[idx] = { time, stream, parts: [message], bytes: message.length, flags, start, end };
      this.touched = Date.now();
      return;
    }
    this.out.line(time, stream, message, flags, start, this.safe(end));
  }

  skip(end: number): void {
    this.out.skip(this.safe(end));
  }

  /** Ships the open records. */
  flush(): void {
    // The older record first, so the checkpoint handed on last is the furthest.
    const a = this.groups[0];
    const b = this.groups[1];
    if (a !== undefined && b !== undefined && b.start < a.start) {
      this.emit(1);
      this.emit(0);
    } else {
      this.emit(0);
      this.emit(1);
    }
  }

  private emit(idx: number): void {
    const g = this.groups[idx];
    if (g === undefined) return;
    this.groups[idx] = undefined;
    const message = g.parts.length === 1 ? g.parts[0]! : g.parts.join('\n');
    this.out.line(g.time, g.stream, message, g.flags, g.start, this.safe(g.end));
  }

  private safe(end: number): number {
    let pos = end;
    for (const g of this.groups) if (g !== undefined && g.start < pos) pos = g.start;
    return pos;
  }
}
