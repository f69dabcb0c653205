/**
 * The lifecycle both watch-backed caches share: a loop started by its first user and stopped by
 * its last (reference counted), whose first attempt callers can wait for; and the wait of a lookup
 * for the cache to change, bounded by a deadline.
 */

export type LoopBody = (signal: AbortSignal, attempted: () => void) => Promise<void>;

export class SharedLoop {
  private readonly body: LoopBody;
  private users = 0;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private firstAttempt: Promise<void> | undefined;

  constructor(body: LoopBody) {
    this.body = body;
  }

  /** Started and not stopped since. */
  get running(): boolean {
    return this.abort !== undefined;
  }

  /** Starts it (reference counted); resolves after its first attempt, successful or not. */
  async start(): Promise<void> {
    this.users++;
    if (this.users === 1) {
      const abort = new AbortController();
      this.abort = abort;
      let attempted: () => void = () => {};
      this.firstAttempt = new Promise<void>((resolve) => {
        attempted = resolve;
      });
      this.loop = this.body(abort.signal, attempted);
    }
    await this.firstAttempt;
  }

  /** One user less; true when that was the last and the loop was told to end. */
  stop(): boolean {
    this.users = Math.max(0, this.users - 1);
    if (this.users > 0 || this.abort === undefined) return false;
    this.abort.abort();
    this.abort = undefined;
    return true;
  }

  /** Resolves once the loop has ended after the last stop(). */
  async stopped(): Promise<void> {
    await this.loop;
  }
}

/** Lookups waiting for a cache to change. */
export class Changes {
  private readonly waiters = new Set<() => void>();

  /** The cache changed (or stopped): every waiter looks again. */
  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /**
   * `look()` until it finds something, `giveUp()` says waiting is pointless, or `waitMs` passed;
   * then the last answer of `look()`.
   */
  async until<T>(waitMs: number, look: () => T | undefined, giveUp: () => boolean): Promise<T | undefined> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const found = look();
      const left = deadline - Date.now();
      if (found !== undefined || left <= 0 || giveUp()) return found;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        timer.unref();
        this.waiters.add(wake);
      });
    }
  }
}
