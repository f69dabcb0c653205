/**
 * `npm run build:cni`: the CNI shim as one executable, build/nodeward-cni.
 *
 * 1. esbuild bundles ipam-cni/cni/shim/main.ts into build/cni/nodeward-cni.cjs (CommonJS: what a
 *    Node single-executable application runs). The shim imports no etcd, Kafka or zod code; the
 *    bundle is a few KiB.
 * 2. Node's SEA: `node --experimental-sea-config` makes a blob, postject injects it into a copy of
 *    the node binary that runs this script (Node 24). Without postject, build/nodeward-cni is a
 *    `#!/usr/bin/env node` launcher of the bundle instead.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const outdir = resolve(root, 'build/cni');
const bundle = join(outdir, 'nodeward-cni.cjs');
const target = resolve(root, 'build/nodeward-cni');

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: [resolve(root, 'ipam-cni/cni/shim/main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});

function postjectCli(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('postject/dist/cli.js');
  } catch {
    return undefined;
  }
}

const postject = postjectCli();
rmSync(target, { force: true });
if (postject) {
  const blob = join(outdir, 'sea.blob');
  const seaConfig = join(outdir, 'sea-config.json');
  writeFileSync(
    seaConfig,
    JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });
  copyFileSync(process.execPath, target);
  chmodSync(target, 0o755);
  // Strip before injecting (stripping after would cut the injected note); strip is optional.
  try {
    execFileSync('strip', [target], { stdio: 'ignore' });
  } catch {
    // binutils not installed: the binary works as it is, only larger
  }
  execFileSync(
    process.execPath,
    [
      postject,
      target,
      'NODE_SEA_BLOB',
      blob,
      '--sentinel-fuse',
      'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
} else {
  writeFileSync(target, `#!/usr/bin/env node\nrequire(${JSON.stringify(bundle)});\n`);
  chmodSync(target, 0o755);
}
if (!existsSync(target)) throw new Error(`${target} was not made`);
process.stdout.write(
  `build/nodeward-cni: ${postject ? 'SEA' : 'launcher'}, ${(statSync(target).size / 2 ** 20).toFixed(1)} MiB; bundle ${(statSync(bundle).size / 1024).toFixed(1)} KiB\n`,
);
