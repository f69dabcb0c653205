import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Absolute path of an executable on PATH, or undefined. */
export function which(name: string): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why a lab test cannot run here, or undefined when it can. Tests pass this to `it.skipIf` and
 * print it, so a missing service shows up in the output instead of as a silent skip.
 */
export function skipReason(needs: { binaries?: readonly string[]; root?: boolean }): string | undefined {
  const reasons: string[] = [];
  if (needs.root && process.getuid?.() !== 0) reasons.push('needs root');
  const missing = (needs.binaries ?? []).filter((b) => which(b) === undefined);
  if (missing.length > 0) reasons.push(`missing on PATH: ${missing.join(', ')}`);
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}
