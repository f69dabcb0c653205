import { readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CNI, NodewardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { appendJournal, type JournalEntry, pendingEntries } from './journal.ts';
import type { CniRequest } from './protocol.ts';
import { CniError, parseCniArgs } from './spec.ts';

/**
 * DEL answered early, torn down in the background. The runtime waits for DEL on the pod's way out
 * (and the kernel takes 17–28 ms to delete a veth here), so the agent answers once the DEL is
 * durably in the journal (tmp + fsync + rename: ≈ 0.5 ms on this disk) and removes the host veth
 * and releases the address afterwards; the entry goes when both are done. The same journal holds
 * what the shim recorded while the agent was away, so one queue drains both.
 *
 * Invariants: an ADD of the same attachment (containerID/ifName), or of the same pod (its sticky
 * address), waits for that teardown (`settle`); a teardown that fails (store down) keeps its entry
 * and is retried (`retry`, every agent tick, and by an ADD that waits for it); an agent that dies
 * meanwhile finds the entry at its next start (`load` + `drain` before the socket opens).
 */

export interface TeardownOptions {
  readonly journalDir: string;
  /** The work of one DEL (links, then the address). Throws to keep the entry for a retry. */
  readonly run: (request: CniRequest) => Promise<void>;
  readonly log?: Logger | undefined;
  /** Teardowns running at once (each spawns `ip` and talks to the store); default 4. */
  readonly concurrency?: number | undefined;
  /** Pending teardowns changed (the journal depth). */
  readonly onDepth?: ((depth: number) => void) | undefined;
  /** One teardown attempt ended. */
  readonly onAttempt?: ((seconds: number, ok: boolean) => void) | undefined;
}

interface Pending {
  /** The journal entry's file name. */
  readonly name: string;
  readonly request: CniRequest;
  readonly key: string;
  /** namespace/name from CNI_ARGS, when the runtime gave them. */
  readonly pod: string | undefined;
  /** Order of recording: an ADD waits only for DELs recorded before it arrived. */
  readonly seq: number;
  /** The attempt in flight, if any. */
  running: Promise<boolean> | undefined;
  /** What the first attempt waits for. */
  after: Promise<unknown> | undefined;
  failures: number;
  lastError: unknown;
}

export const attachmentKey = (containerID: string, ifName: string) => `${containerID}/${ifName}`;

/** "namespace/name" of a request's pod, or undefined when CNI_ARGS does not name one. */
export function podKeyOf(args: string): string | undefined {
  try {
    const a = parseCniArgs(args);
    const pod = a.get('K8S_POD_NAME');
    return pod ? `${a.get('K8S_POD_NAMESPACE') || 'default'}/${pod}` : undefined;
  } catch {
    return undefined;
  }
}

export class Teardowns {
  readonly #o: TeardownOptions;
  /** By journal entry name. */
  readonly #pending = new Map<string, Pending>();
  readonly #waiting: (() => void)[] = [];
  #running = 0;
  #seq = 0;

  constructor(options: TeardownOptions) {
    this.#o = options;
  }

  get depth(): number {
    return this.#pending.size;
  }

  /**
   * The current position in the record order, taken by an ADD when it arrives: `settle` then
   * waits only for DELs recorded before it. A DEL recorded after it (the runtime gave up on that
   * ADD) waits for the ADD itself; waiting for it here would be a cycle.
   */
  mark(): number {
    return this.#seq;
  }

  /**
   * Records a DEL durably (synchronously: the answer waits for this, and only this) and starts
   * its teardown once `after` settles (the ADD of the same attachment still in flight). Resolves
   * when the teardown is done (true) or failed and stays pending (false).
   */
  record(request: CniRequest, after?: Promise<unknown>): Promise<boolean> {
    const name = appendJournal(this.#o.journalDir, { ...request, command: 'DEL' });
    this.#add(name, request, after);
    return this.#start(this.#pending.get(name)!);
  }

  /** Picks up entries written by someone else (the shim, while the agent was away); not started. */
  async load(): Promise<number> {
    let loaded = 0;
    for (const name of await pendingEntries(this.#o.journalDir)) {
      if (this.#pending.has(name)) continue;
      const file = join(this.#o.journalDir, name);
      let entry: JournalEntry;
      try {
        entry = JSON.parse(await readFile(file, 'utf8')) as JournalEntry;
        if (entry.v !== 1 || entry.request?.command !== 'DEL') throw new Error('not a v1 DEL entry');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // finished meanwhile
        this.#o.log?.warn({ err, entry: name }, 'cni: unreadable journal entry moved aside');
        await rename(file, join(this.#o.journalDir, `bad-${name}`)).catch(() => {});
        continue;
      }
      this.#add(name, entry.request);
      loaded++;
    }
    return loaded;
  }

  /** Starts every teardown not running (queued, or failed before) and waits for them. */
  async retry(): Promise<{ done: number; failed: number }> {
    const attempts = [...this.#pending.values()].map((p) => this.#start(p));
    const results = await Promise.all(attempts);
    const done = results.filter(Boolean).length;
    return { done, failed: results.length - done };
  }

  /**
   * Waits until no teardown of this attachment (or of this pod) is pending; one that failed is
   * tried again now. Still failing → 11 (try again later): the runtime retries the ADD, and the
   * address is not handed out twice meanwhile.
   */
  async settle(containerID: string, ifName: string, pod: string | undefined, before: number): Promise<void> {
    const key = attachmentKey(containerID, ifName);
    const mine = [...this.#pending.values()].filter(
      (p) => p.seq < before && (p.key === key || (pod !== undefined && p.pod === pod)),
    );
    for (const p of mine) {
      // First in the queue: a pod waits on it, unlike the tick's background retries.
      if (await this.#start(p, true)) continue;
      throw new CniError(
        CNI.tryAgainLater,
        `the teardown of an earlier DEL of ${p.key}${p.pod ? ` (pod ${p.pod})` : ''} is still pending: ${(p.lastError as Error)?.message ?? p.lastError}`,
      );
    }
  }

  /** Whether a DEL of this attachment waits for its teardown. */
  has(containerID: string, ifName: string): boolean {
    const key = attachmentKey(containerID, ifName);
    for (const p of this.#pending.values()) if (p.key === key) return true;
    return false;
  }

  /** Resolves when no attempt is in flight (pending ones that failed stay pending). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.#pending.values()].flatMap((p) => (p.running ? [p.running] : []));
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  #add(name: string, request: CniRequest, after?: Promise<unknown>): void {
    this.#pending.set(name, {
      after,
      seq: this.#seq++,
      name,
      request,
      key: attachmentKey(request.containerID, request.ifName),
      pod: podKeyOf(request.args),
      running: undefined,
      failures: 0,
      lastError: undefined,
    });
    this.#o.onDepth?.(this.#pending.size);
  }

  /** The attempt in flight, or a new one; resolves true when the entry is gone. */
  #start(p: Pending, urgent = false): Promise<boolean> {
    if (!this.#pending.has(p.name)) return Promise.resolve(true);
    p.running ??= this.#attempt(p, urgent).finally(() => {
      p.running = undefined;
    });
    return p.running;
  }

  async #attempt(p: Pending, urgent: boolean): Promise<boolean> {
    if (p.after) {
      await p.after.catch(() => {});
      p.after = undefined;
    }
    await this.#slot(urgent);
    const started = performance.now();
    try {
      await this.#o.run(p.request);
      await unlink(join(this.#o.journalDir, p.name)).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      });
      this.#pending.delete(p.name);
      this.#o.onDepth?.(this.#pending.size);
      this.#o.onAttempt?.((performance.now() - started) / 1000, true);
      return true;
    } catch (err) {
      p.failures++;
      p.lastError = err;
      this.#o.onAttempt?.((performance.now() - started) / 1000, false);
      if (err instanceof NodewardError && !err.retriable) {
        // Retrying cannot help (a corrupt record, an invalid request): kept aside for the operator,
        // not retried forever while every ADD of the pod answers 11.
        this.#o.log?.error(
          { err, code: err.code, entry: p.name, containerID: p.request.containerID },
          'cni: DEL teardown cannot succeed; journal entry moved aside as bad-*, see `nodeward ipam check`',
        );
        await rename(join(this.#o.journalDir, p.name), join(this.#o.journalDir, `bad-${p.name}`)).catch(
          () => {},
        );
        this.#pending.delete(p.name);
        this.#o.onDepth?.(this.#pending.size);
        return true;
      }
      this.#o.log?.warn(
        { err, entry: p.name, containerID: p.request.containerID, failures: p.failures },
        'cni: DEL teardown failed; kept in the journal, retried',
      );
      return false;
    } finally {
      this.#release();
    }
  }

  async #slot(urgent: boolean): Promise<void> {
    if (this.#running < (this.#o.concurrency ?? 4)) {
      this.#running++;
      return;
    }
    await new Promise<void>((resolve) =>
      urgent ? this.#waiting.unshift(resolve) : this.#waiting.push(resolve),
    );
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#running--;
  }
}
