/**
 * Backpressure: bytes read from files and not yet acknowledged by the sink. At the cap, tailers
 * wait before their next read, so a slow or absent sink leaves the lines on disk, not in memory.
 */
export class InflightBudget {
  readonly cap: number;
  private used = 0;
  private waiters: (() => void)[] = [];

  constructor(cap: number) {
    this.cap = cap;
  }

  get bytes(): number {
    return this.used;
  }

  get full(): boolean {
    return this.used >= this.cap;
  }

  add(bytes: number): void {
    this.used += bytes;
  }

  release(bytes: number): void {
    this.used -= bytes;
    if (this.used < this.cap && this.waiters.length > 0) this.wakeAll();
  }

  /** Undefined when there is room (the common case costs no promise), else resolves when there is. */
  room(): Promise<void> | undefined {
    if (this.used < this.cap) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Lets every waiter go, for shutdown. */
  wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
