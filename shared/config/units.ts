import { z } from 'zod';

/**
 * Value types the config shares across sections. Each accepts the human form ("10s", "16MiB",
 * "host:port") and yields the machine form (ms, bytes, string), with an error message that says
 * what was expected and echoes what was given.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

export function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function parseWithUnits(value: string, units: Record<string, number>): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim());
  if (!m) return undefined;
  const factor = units[(m[2] ?? '').toLowerCase() || Object.keys(units)[0]!];
  return factor === undefined ? undefined : Math.round(Number(m[1]) * factor);
}

/** Milliseconds, from a number (ms) or a string like "500ms", "10s", "15m", "1h". */
export const duration = () =>
  z.unknown().transform((value, ctx) => {
    const ms =
      typeof value === 'number' && Number.isFinite(value) && value >= 0
        ? value
        : typeof value === 'string'
          ? parseWithUnits(value, DURATION_UNITS)
          : undefined;
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration like "500ms", "10s" or "15m", got ${shown(value)}`,
      });
      return z.NEVER;
    }
    return ms;
  });

/** Bytes, from a number or a string like "64KiB", "16MiB", "1GB". */
export const size = () =>
  z.unknown().transform((value, ctx) => {
    const bytes =
      typeof value === 'number' && Number.isInteger(value) && value >= 0
        ? value
        : typeof value === 'string'
          ? parseWithUnits(value, SIZE_UNITS)
          : undefined;
    if (bytes === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a size like "64KiB" or "16MiB", got ${shown(value)}`,
      });
      return z.NEVER;
    }
    return bytes;
  });

/** "host:port" or "[v6]:port" with a port in 1..65535 (or 0, "any free port", where a listener allows it). */
export const hostPort = (options: { anyPort?: boolean } = {}) =>
  z.unknown().transform((value, ctx) => {
    const m =
      typeof value === 'string' ? /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(value) : null;
    const port = m ? Number(m[2]) : 0;
    if (!m || port < (options.anyPort ? 0 : 1) || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `expected host:port, got ${shown(value)}` });
      return z.NEVER;
    }
    return value as string;
  });

/** An http(s) URL. */
export const url = () =>
  z.unknown().transform((value, ctx) => {
    if (typeof value === 'string' && URL.canParse(value) && /^https?:$/.test(new URL(value).protocol))
      return value;
    ctx.addIssue({ code: 'custom', message: `expected an http(s) URL, got ${shown(value)}` });
    return z.NEVER;
  });
