import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildTimexHelper } from '../../agent/metrics/timex/build.ts';
import { IMAGE_HOME, imageCommand, layout } from '../../deploy/layout.ts';
import { which } from '../lab/bin.ts';
import { imageArchive } from '../lab/cri/images.ts';
import { runOk } from '../lab/exec.ts';
import { ensureShim, ROOT } from './node.ts';

/**
 * The agent's image for the node lab, without a registry: /opt/nodeward laid out by the same step
 * as deploy/Dockerfile (deploy/layout.ts, from this checkout's build), plus what the Dockerfile's
 * runtime base gives it, taken from this machine: Node 24 (the one running the tests) and the tools
 * the network module calls (ip, nsenter, sysctl) with the shared libraries they load. ENTRYPOINT
 * and CMD are read from deploy/Dockerfile. Built as a docker-archive for `ctr images import`.
 */

/** The tools the image's Debian packages provide (iproute2, util-linux, procps), at their paths there. */
const TOOLS: Record<string, string> = {
  ip: '/usr/sbin/ip',
  nsenter: '/usr/bin/nsenter',
  sysctl: '/usr/sbin/sysctl',
};

/** Builds what the layout needs (bundle, shim, timex helper); the shim only when stale. */
export async function buildAgent(): Promise<void> {
  await ensureShim();
  execFileSync(process.execPath, [join(ROOT, 'deploy/build.ts')], { stdio: 'ignore' });
  buildTimexHelper(join(ROOT, 'build/bin/nodeward-timex'));
}

/**
 * Lays out the image's trees under dir and returns a docker-archive of `tag` (build first with
 * buildAgent). ≈ 250 MiB uncompressed, most of it two Node binaries (node and the SEA shim).
 */
export async function agentImageArchive(tag: string, dir: string): Promise<string> {
  const work = await mkdtemp(join(dir, 'agent-image-'));
  const app = join(work, 'app');
  layout(app);
  const base = join(work, 'base');
  const put = (from: string, to: string) => {
    mkdirSync(dirname(join(base, to)), { recursive: true });
    copyFileSync(from, join(base, to));
  };
  const binaries: [string, string][] = [[process.execPath, '/usr/local/bin/node']];
  for (const [tool, path] of Object.entries(TOOLS)) {
    const found = which(tool) ?? which(`/usr/sbin/${tool}`) ?? which(`/sbin/${tool}`);
    if (!found) throw new Error(`agent image: ${tool} not found on this machine`);
    binaries.push([found, path]);
  }
  const libs = new Set<string>();
  for (const [from, to] of binaries) {
    put(from, to);
    for (const lib of await sharedLibraries(from)) libs.add(lib);
  }
  // Copied to the path the loader asks for (content, not the symlink).
  for (const lib of libs) put(lib, lib);
  // Debian's base-files: /var/run is /run (the runtime hands CNI_NETNS=/var/run/netns/…, the
  // DaemonSet mounts /run/netns).
  mkdirSync(join(base, 'run'), { recursive: true });
  mkdirSync(join(base, 'var'), { recursive: true });
  symlinkSync('../run', join(base, 'var/run'));
  // Debug info is most of the test runner's Node binary; the image's has none.
  if (which('strip')) spawnSync('strip', [join(base, 'usr/local/bin/node')]);
  const { entrypoint, cmd, env } = imageCommand();
  return imageArchive(
    [
      {
        tag,
        entrypoint,
        cmd,
        env: [
          'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        ],
        trees: [base, app],
        workingDir: IMAGE_HOME,
      },
    ],
    work,
  );
}

/** The shared objects ldd says a binary loads, and its program interpreter. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await runOk('ldd', [binary]).catch(() => '');
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}
