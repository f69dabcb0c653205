import { readFileSync } from 'node:fs';
import { run } from './exec.ts';

export interface MountEntry {
  root: string;
  mountPoint: string;
  fstype: string;
  superOptions: string[];
}

/** Parsed /proc/self/mountinfo (see proc(5)). */
export function mountTable(): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0) continue;
    entries.push({
      root: unescapeOctal(fields[3] ?? ''),
      mountPoint: unescapeOctal(fields[4] ?? ''),
      fstype: fields[sep + 1] ?? '',
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return entries;
}

function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Mount points at or below dir, deepest first so they can be unmounted in order. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return mountTable()
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

/**
 * Unmounts everything under dir. dockerd leaves overlay, nsfs and a bind of its data-root there
 * when it dies uncleanly; a lazy unmount is the fallback for a mount that is still busy.
 */
export async function unmountUnder(dir: string): Promise<void> {
  // Stacked mounts on one point need one umount each, hence the rounds.
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const point of points) {
      const res = await run('umount', [point]);
      if (res.code !== 0) await run('umount', ['-l', point]);
    }
  }
}
