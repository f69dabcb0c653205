import { MultilineGrouper } from './multiline.ts';
import type { ParseOutput } from './parse.ts';

/**
 * A file's multi-line grouper, and the timer that lets an open record leave after `timeout`
 * without a line: a file may stay quiet long after a stack trace's last frame.
 */
export class TimedMultiline {
  grouper: MultilineGrouper;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly maxLineBytes: number;
  private readonly out: ParseOutput;
  private readonly timeout: number;
  /** A record left on the timer, outside any read: its lines are counted now. */
  private readonly flushed: () => void;

  constructor(pattern: RegExp, maxLineBytes: number, out: ParseOutput, timeout: number, flushed: () => void) {
    this.maxLineBytes = maxLineBytes;
    this.out = out;
    this.timeout = timeout;
    this.flushed = flushed;
    this.grouper = new MultilineGrouper(pattern, maxLineBytes, out);
  }

  /** The file was truncated: records open in the old content are dropped with it. */
  restart(pattern: RegExp): void {
    this.grouper = new MultilineGrouper(pattern, this.maxLineBytes, this.out);
  }

  /** After a read: a record left open needs the timer. */
  armIfOpen(): void {
    if (this.grouper.open && this.timer === undefined) this.arm(this.timeout);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const g = this.grouper;
      if (!g.open || this.stopped) return;
      const idle = Date.now() - g.touched;
      if (idle >= this.timeout) {
        g.flush();
        this.flushed();
      } else this.arm(this.timeout - idle);
    }, ms);
    this.timer.unref();
  }
}
