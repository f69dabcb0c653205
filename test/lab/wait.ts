import type { Service } from './proc.ts';
import { messageOf } from './scope.ts';

export interface WaitOptions {
  /** What is awaited, for the error message. */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Services whose exit aborts the wait at once and whose log tails go into the error. */
  services?: readonly Service[];
}

type Ready<T> = Exclude<T, false | null | undefined>;

/**
 * Polls probe until it returns something other than false/null/undefined without throwing.
 * Fails early when one of the services exits, and with the services' log tails on timeout.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, opts: WaitOptions): Promise<Ready<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const dead = opts.services?.find((s) => !s.running);
    if (dead) {
      const status = dead.exitStatus?.signal ?? `code ${dead.exitStatus?.code}`;
      throw new Error(`${dead.name} exited (${status}) while waiting for ${opts.what}${tails([dead])}`);
    }
    try {
      const value = await withDeadline(probe(), deadline);
      if (value !== false && value !== null && value !== undefined) return value as Ready<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError === undefined ? '' : `; last error: ${messageOf(lastError)}`;
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${opts.what}${last}${tails(opts.services)}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

// A probe that hangs (a connect to a port nobody answers) must not outlive the deadline.
async function withDeadline<T>(value: T | Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error('probe did not answer before the deadline')),
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    return await Promise.race([value, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function tails(services: readonly Service[] | undefined): string {
  return (services ?? []).map((s) => `\n--- tail of ${s.logPath} ---\n${s.logTail()}`).join('');
}
