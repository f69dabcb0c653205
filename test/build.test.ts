import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');

describe('npm run build (the bundle the image runs)', () => {
  it('bundles the CLI into build/nodeward.mjs, which runs without the sources', async () => {
    const built = await run(process.execPath, [resolve(ROOT, 'deploy/build.ts')], { cwd: ROOT });
    expect(built.stdout).toMatch(/^build\/nodeward\.mjs: [\d.]+ MiB\n$/);
    const check = await run(
      process.execPath,
      [resolve(ROOT, 'build/nodeward.mjs'), 'config', 'check', 'deploy/config.production.yaml'],
      {
        cwd: ROOT,
      },
    );
    expect(check.stdout).toBe('deploy/config.production.yaml: ok\n');
  });
});
