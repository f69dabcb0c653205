import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onLastResort } from './lastresort.ts';
import { mountsUnder, unmountUnder } from './mounts.ts';
import type { Lab } from './scope.ts';

/** A fresh directory under os.tmpdir() with a random name, removed when the lab is cleaned up. */
export async function tempDir(prefix: string, lab: Lab): Promise<string> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), `nodeward-${prefix}-`)));
  const forget = onLastResort(() => removeTreeSync(dir), 'cleanup');
  lab.defer(`temp dir ${dir}`, async () => {
    await removeTree(dir);
    forget();
  });
  return dir;
}

/** Deletes dir, unmounting anything below it first; refuses to recurse through a mount. */
export async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  await unmountUnder(dir);
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`refusing to delete ${dir}: still mounted: ${left.join(', ')}`);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** removeTree for the exit handler: lazy unmounts, since the services were SIGKILLed a moment ago. */
function removeTreeSync(dir: string): void {
  if (!existsSync(dir)) return;
  for (const point of mountsUnder(dir)) spawnSync('umount', ['-l', point]);
  if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
}
