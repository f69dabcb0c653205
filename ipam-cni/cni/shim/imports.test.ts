import { resolve } from 'node:path';
import { build } from 'esbuild';
import { expect, it } from 'vitest';

/** The shim starts on every pod ADD: its import graph must hold no dependency at all (etcd3, zod…). */
it('the shim entry imports only our own small files and node: builtins', async () => {
  const out = await build({
    entryPoints: [resolve(import.meta.dirname, 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.keys(out.metafile.inputs);
  expect(inputs.filter((f) => f.includes('node_modules'))).toEqual([]);
  expect(inputs.length).toBeLessThanOrEqual(8);
  expect(out.outputFiles[0]!.contents.length).toBeLessThan(64 * 1024);
});
