import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

/**
 * What the VMs run, as JavaScript bundled by esbuild on the host: the guest daemon, the agent
 * process and the CNI shim. Node's own TypeScript stripping compiles a WebAssembly module at every
 * process start, which under TCG (no KVM: JIT-made code is translated again) costs seconds per
 * process; the shim is in production a bundle of the same main.ts (deploy/build-cni.ts). npm
 * packages stay external: loaded from node_modules over 9p, which is why the bundles sit in
 * node_modules/.cache/nodeward-vm/js-<hash>/ (keyed by their content: rebuilt only when the
 * code changes).
 */

export interface VmBundles {
  /** node_modules/.cache/nodeward-vm: the VM lab's cache. */
  readonly cache: string;
  readonly dir: string;
  /** The guest daemon (guest.ts), ESM. */
  readonly guest: string;
  /** The agent process (guest-agent.ts), ESM. */
  readonly agent: string;
  /** The shim (ipam-cni/cni/shim/main.ts), CommonJS as deploy/build-cni.ts bundles it. */
  readonly shim: string;
  /** The bundle of each extra entry, by name (`<name>.mjs`). */
  readonly extra: Readonly<Record<string, string>>;
}

const ROOT = resolve(import.meta.dirname, '../../..');
const CACHE = join(ROOT, 'node_modules/.cache/nodeward-vm');

/** `extra`: more ESM entries to run in a VM, name → source path (e.g. a test's scenario). */
export async function vmBundles(extra: Readonly<Record<string, string>> = {}): Promise<VmBundles> {
  const common = {
    bundle: true,
    platform: 'node',
    target: 'node24',
    write: false,
    logLevel: 'warning',
  } as const;
  const [esm, cjs] = await Promise.all([
    build({
      ...common,
      entryPoints: {
        guest: join(ROOT, 'test/lab/vm/guest.ts'),
        'guest-agent': join(ROOT, 'test/lab/vm/guest-agent.ts'),
        ...extra,
      },
      outdir: '/out',
      outExtension: { '.js': '.mjs' },
      format: 'esm',
      packages: 'external',
    }),
    build({
      ...common,
      entryPoints: [join(ROOT, 'ipam-cni/cni/shim/main.ts')],
      outfile: '/out/nodeward-cni.cjs',
      format: 'cjs',
    }),
  ]);
  const files = [...esm.outputFiles, ...cjs.outputFiles].map((f) => ({
    name: f.path.slice('/out/'.length),
    contents: f.contents,
  }));
  const hash = createHash('sha256');
  for (const f of files) hash.update(f.name).update(f.contents);
  const dir = join(CACHE, `js-${hash.digest('hex').slice(0, 12)}`);
  if (!existsSync(dir)) {
    // Bundles of older code (a few hundred KB each): gone after a day unused.
    for (const old of (await readdir(CACHE).catch(() => [])).filter((d) => d.startsWith('js-'))) {
      const at = await stat(join(CACHE, old)).catch(() => undefined);
      if (at && Date.now() - at.mtimeMs > 86_400_000)
        await rm(join(CACHE, old), { recursive: true, force: true });
    }
    const tmp = `${dir}.${process.pid}`;
    await mkdir(tmp, { recursive: true });
    for (const f of files) await writeFile(join(tmp, f.name), f.contents);
    await rename(tmp, dir).catch((err: NodeJS.ErrnoException) => {
      if (!existsSync(dir)) throw err;
    });
  }
  return {
    cache: CACHE,
    dir,
    guest: join(dir, 'guest.mjs'),
    agent: join(dir, 'guest-agent.mjs'),
    shim: join(dir, 'nodeward-cni.cjs'),
    extra: Object.fromEntries(Object.keys(extra).map((name) => [name, join(dir, `${name}.mjs`)])),
  };
}
