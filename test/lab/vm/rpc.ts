import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/**
 * JSON lines both ways, one request per line `{id, op, args}`, one answer per line
 * `{id, ok, value | error}`: between the host and a VM's guest daemon (over a virtio-serial port)
 * and between the guest daemon and the agent process it runs (over the agent's stdio).
 */

export type Handler = (args: never) => unknown;
export type Handlers = Record<string, Handler>;

interface Request {
  id: number;
  op: string;
  args?: unknown;
}

interface Answer {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** Answers requests read from input; each runs concurrently with the others. */
export function serveLines(input: Readable, write: (line: string) => void, handlers: Handlers): void {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch {
      return;
    }
    const handler = handlers[req.op];
    void (async () => {
      try {
        if (!handler) throw new Error(`unknown op ${req.op}`);
        const value = await (handler as (args: unknown) => unknown)(req.args);
        write(`${JSON.stringify({ id: req.id, ok: true, value } satisfies Answer)}\n`);
      } catch (err) {
        const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
        write(`${JSON.stringify({ id: req.id, ok: false, error } satisfies Answer)}\n`);
      }
    })();
  });
}

export class RpcError extends Error {
  override readonly name = 'RpcError';
}

/** The calling side: call(op, args) resolves with the value or rejects with the remote error. */
export class LineClient {
  readonly #write: (line: string) => void;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #what: string;
  #next = 1;
  #closed: Error | undefined;
  /** Lines that are not answers (e.g. the guest's hello), in order. */
  readonly notices: unknown[] = [];
  #onNotice: (() => void) | undefined;

  constructor(input: Readable, write: (line: string) => void, what: string) {
    this.#write = write;
    this.#what = what;
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    lines.on('line', (line) => {
      let msg: Partial<Answer>;
      try {
        msg = JSON.parse(line) as Partial<Answer>;
      } catch {
        return;
      }
      const p = typeof msg.id === 'number' ? this.#pending.get(msg.id) : undefined;
      if (!p) {
        this.notices.push(msg);
        this.#onNotice?.();
        return;
      }
      this.#pending.delete(msg.id!);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new RpcError(`${this.#what}: ${msg.error}`));
    });
    lines.on('close', () => this.close(new RpcError(`${this.#what}: connection closed`)));
  }

  call<T = unknown>(op: string, args?: unknown, timeoutMs = 60_000): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RpcError(`${this.#what}: ${op} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#write(`${JSON.stringify({ id, op, args } satisfies Request)}\n`);
    });
  }

  /** Resolves with the first notice that matches, waiting for it if need be. */
  async notice<T>(
    match: (n: unknown) => n is T,
    timeoutMs: number,
    abort?: () => string | undefined,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.notices.find(match);
      if (found) return found;
      if (this.#closed) throw this.#closed;
      const why = abort?.();
      if (why) throw new RpcError(`${this.#what}: ${why}`);
      if (Date.now() > deadline) throw new RpcError(`${this.#what}: no notice within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.#onNotice = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  close(err = new RpcError(`${this.#what}: closed`)): void {
    this.#closed ??= err;
    for (const p of this.#pending.values()) p.reject(this.#closed);
    this.#pending.clear();
  }
}
