/**
 * Compiles nodeward-timex.c, the adjtimex(2) helper of the timex collector:
 * `node agent/metrics/timex/build.ts <out>` (`npm run build:timex` → build/bin/nodeward-timex, which
 * the image copies to /opt/nodeward/bin/). Needs a C compiler and libc headers (Debian: gcc
 * libc6-dev). Static, so the binary runs whatever libc the host or image has; without a static libc
 * (libc.a) it falls back to a dynamic one.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const TIMEX_HELPER_SOURCE = resolve(import.meta.dirname, 'nodeward-timex.c');

/** Builds the helper at `out`; says whether it is linked statically. */
export function buildTimexHelper(out: string, cc = process.env.CC ?? 'cc'): { static: boolean } {
  mkdirSync(dirname(out), { recursive: true });
  const compile = (flags: string[]) =>
    execFileSync(cc, ['-O2', ...flags, '-o', out, TIMEX_HELPER_SOURCE], { stdio: 'pipe', encoding: 'utf8' });
  try {
    compile(['-static']);
    return { static: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(`${cc} not found: install a C compiler (Debian: apt-get install gcc libc6-dev)`);
    const why = String((err as { stderr?: string }).stderr ?? err);
    // Only a missing static libc earns the fallback; any other error is the source's or the system's.
    if (!/cannot find -lc\b|libc\.a/.test(why))
      throw new Error(`${cc} ${TIMEX_HELPER_SOURCE}: ${why.trim()}`);
  }
  compile([]);
  return { static: false };
}

if (import.meta.main) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: node agent/metrics/timex/build.ts <output path>\n');
    process.exit(2);
  }
  const target = resolve(out);
  const { static: linked } = buildTimexHelper(target);
  process.stdout.write(`${target}: ${linked ? 'static' : 'dynamic (no static libc found)'}\n`);
}
