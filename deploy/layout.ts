/**
 * `node deploy/layout.ts <root>`: lays out the image's /opt/nodeward under <root> from the build
 * outputs (npm run build, build:cni, build:timex). The one step both deploy/Dockerfile and the
 * node lab's image (test/lab/agent-image.ts) run, so the two cannot drift:
 *
 *   /opt/nodeward/nodeward.mjs, chunks/         the agent and CLI (ENTRYPOINT runs nodeward.mjs)
 *   /opt/nodeward/nodeward.mjs.LEGAL.txt        licences of what the bundle holds (when any)
 *   /opt/nodeward/nodeward-cni                  the CNI shim the init container installs
 *   /opt/nodeward/bin/nodeward-timex            the timex collector's adjtimex helper
 *   /opt/nodeward/node_modules/…                only the packages the bundle leaves external and
 *                                               their dependencies (see externals.ts)
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { EXTERNAL_PACKAGES } from './externals.ts';

export const IMAGE_HOME = '/opt/nodeward';

const ROOT = resolve(import.meta.dirname, '..');
const BUILD = join(ROOT, 'build');

/** Build outputs the image needs, by their path under build/ (and under /opt/nodeward). */
const BUILD_OUTPUTS = ['nodeward.mjs', 'chunks', 'nodeward-cni', 'bin/nodeward-timex'];
/** Written by esbuild only when the bundled code has legal comments. */
const OPTIONAL_OUTPUTS = ['nodeward.mjs.LEGAL.txt'];

interface PackageJson {
  name?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/**
 * The package directories (relative to the repo root, e.g. node_modules/etcd3 or
 * node_modules/etcd3/node_modules/@grpc/proto-loader) that `require(name)` from each external
 * package reaches, transitively, resolved as Node does: the nearest node_modules up the tree.
 */
export function runtimePackageDirs(root = ROOT, roots: readonly string[] = EXTERNAL_PACKAGES): string[] {
  const found = new Set<string>();
  const visit = (name: string, from: string, optional: boolean) => {
    let dir = from;
    for (;;) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) {
        if (found.has(candidate)) return;
        found.add(candidate);
        const pkg = JSON.parse(readFileSync(join(candidate, 'package.json'), 'utf8')) as PackageJson;
        for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, candidate, false);
        for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, candidate, true);
        for (const dep of Object.keys(pkg.peerDependencies ?? {}))
          visit(dep, candidate, pkg.peerDependenciesMeta?.[dep]?.optional === true);
        return;
      }
      if (dir === root || dir === dirname(dir)) break;
      dir = dirname(dir);
    }
    if (!optional)
      throw new Error(
        `layout: package ${name} (needed from ${relative(root, from) || '.'}) is not installed`,
      );
  };
  for (const name of roots) visit(name, root, false);
  return [...found].map((d) => relative(root, d)).sort();
}

/**
 * deploy/Dockerfile's ENTRYPOINT and CMD (exec form) and the ENV of its runtime stage: how the
 * image starts the agent, for whatever else starts it the same way (the node lab's image, the
 * benches' Node flags and environment).
 */
export function imageCommand(): { entrypoint: string[]; cmd: string[]; env: Record<string, string> } {
  const text = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  const form = (instruction: string) => {
    const m = new RegExp(`^${instruction}\\s+(\\[.*\\])\\s*$`, 'm').exec(text);
    if (!m) throw new Error(`deploy/Dockerfile has no ${instruction} [...] line`);
    return JSON.parse(m[1]!) as string[];
  };
  // `ENV KEY=value` lines after the last FROM (one pair per line, as the file writes them).
  const env: Record<string, string> = {};
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  for (const m of runtime.matchAll(/^ENV\s+(.*)$/gm)) {
    const pair = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(m[1]!.trim());
    if (!pair) throw new Error(`deploy/Dockerfile: write ENV as one KEY=value per line, not "${m[0]}"`);
    env[pair[1]!] = pair[2]!;
  }
  return { entrypoint: form('ENTRYPOINT'), cmd: form('CMD'), env };
}

/** Copies the build outputs and the runtime packages to <target>/opt/nodeward; returns its size. */
export function layout(target: string): { dir: string; bytes: number; packages: number } {
  const home = join(target, IMAGE_HOME);
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  for (const out of BUILD_OUTPUTS) {
    const from = join(BUILD, out);
    if (!existsSync(from))
      throw new Error(`layout: build/${out} is missing (run npm run build, build:cni and build:timex first)`);
    cpSync(from, join(home, out), { recursive: true });
  }
  for (const out of OPTIONAL_OUTPUTS)
    if (existsSync(join(BUILD, out))) cpSync(join(BUILD, out), join(home, out), { recursive: true });
  const packages = runtimePackageDirs();
  for (const dir of packages) {
    // A nested node_modules is copied as its own entry when something needs it.
    cpSync(join(ROOT, dir), join(home, dir), {
      recursive: true,
      filter: (src) => relative(join(ROOT, dir), src).split('/')[0] !== 'node_modules',
    });
  }
  return { dir: home, bytes: treeBytes(home), packages: packages.length };
}

function treeBytes(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const entry of readdirSync(path)) n += treeBytes(join(path, entry));
  return n;
}

if (import.meta.main) {
  const target = process.argv[2];
  if (!target) {
    process.stderr.write('usage: node deploy/layout.ts <root dir> (lays out <root>/opt/nodeward)\n');
    process.exit(2);
  }
  const { dir, bytes, packages } = layout(resolve(target));
  process.stdout.write(`${dir}: ${(bytes / 2 ** 20).toFixed(1)} MiB, ${packages} runtime packages\n`);
}
