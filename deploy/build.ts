/**
 * `npm run build`: bundles the nodeward CLI and agent into build/nodeward.mjs, what the image runs.
 * Running the TypeScript sources directly costs ~17 MiB of RSS for Node's type-stripping compiler and
 * more for thousands of small module records; one bundle keeps the idle agent under its memory goal.
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const outdir = resolve(root, 'build');

// Only this build's outputs: build/ also holds the CNI shim (npm run build:cni).
for (const f of ['nodeward.mjs', 'nodeward.mjs.LEGAL.txt']) rmSync(resolve(outdir, f), { force: true });
const result = await build({
  entryPoints: { nodeward: resolve(root, 'agent/bin/nodeward.ts') },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  // CommonJS dependencies call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __nwRequire } from 'node:module'; const require = __nwRequire(import.meta.url);",
  },
  // Left in node_modules, loaded from there when first used: native optional add-ons; etcd3,
  // dockerode (via ssh2) and @platformatic/kafka (its wasm helper), which read files relative to
  // their own directory; a node whose sink is not Kafka never parses the 1.7 MB of the latter.
  external: ['cpu-features', '*.node', 'etcd3', 'dockerode', '@platformatic/kafka'],
  legalComments: 'linked',
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stdout.write(`build/nodeward.mjs: ${(bytes / 2 ** 20).toFixed(1)} MiB\n`);
