import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { which } from './bin.ts';
import { type RunOptions, runOk } from './exec.ts';
import { onLastResort } from './lastresort.ts';
import { type Service, startService } from './proc.ts';
import { signal } from './procs.ts';
import type { Lab } from './scope.ts';
import { removeTree, tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

export interface DockerdOptions {
  lab: Lab;
}

export interface Dockerd {
  readonly socketPath: string;
  /** unix://<socketPath>, for DOCKER_HOST (dockerode takes `{ socketPath }`). */
  readonly host: string;
  readonly dir: string;
  readonly dataRoot: string;
  readonly service: Service;
  /** Runs the docker CLI against this daemon; resolves with stdout, rejects on failure. */
  docker(args: readonly string[], opts?: RunOptions): Promise<string>;
  /** Removes every container, stops the daemon; the lab's temp dir removal unmounts the rest. */
  stop(): Promise<void>;
}

/**
 * A private dockerd: own data-root, exec-root and socket in a temp dir, no iptables and no
 * bridge, so it touches nothing of the host's networking and can run beside another one.
 */
export async function startDockerd(opts: DockerdOptions): Promise<Dockerd> {
  const { lab } = opts;
  const dir = await tempDir('docker', lab);
  const socketPath = join(dir, 'docker.sock');
  const host = `unix://${socketPath}`;
  const dataRoot = join(dir, 'data');
  const config = join(dir, 'daemon.json');
  // An empty config keeps the host's /etc/docker/daemon.json out of the lab.
  await writeFile(config, '{}\n');
  const dockerdArgs = [
    '--data-root',
    dataRoot,
    '--exec-root',
    join(dir, 'exec'),
    '--host',
    host,
    '--pidfile',
    join(dir, 'docker.pid'),
    '--config-file',
    config,
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
  ];
  // containerd shims are double-forked orphans, and this machine's PID 1 reaps orphans only
  // seconds later: tini -s adopts and reaps them at once, so a stopped lab leaves no <defunct>
  // shims behind. -g forwards our SIGTERM to dockerd; should tini itself be killed, dockerd gets
  // a SIGTERM from the kernel and shuts its containers down.
  const tini = which('tini-static') ?? which('tini');
  const service = startService({
    lab,
    name: 'dockerd',
    dir,
    command: tini ?? 'dockerd',
    args: tini ? ['-s', '-g', '--', ...dieWithParent('TERM'), 'dockerd', ...dockerdArgs] : dockerdArgs,
    stopGraceMs: 15_000,
  });
  const unregister = onLastResort(() => killContainers(dataRoot));
  const docker = (args: readonly string[], runOpts?: RunOptions) => dockerCli(socketPath, dir, args, runOpts);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      try {
        if (service.running) {
          const ids = (await docker(['ps', '-aq'])).split(/\s+/).filter(Boolean);
          if (ids.length > 0) await docker(['rm', '--force', '--volumes', ...ids]);
        }
      } finally {
        await service.stop();
        killContainers(dataRoot);
        unregister();
      }
    })();
    return stopping;
  };
  lab.defer('dockerd containers', stop);

  await waitFor(() => ping(socketPath), {
    what: `dockerd to answer on ${socketPath}`,
    timeoutMs: 30_000,
    services: [service],
  });
  return { socketPath, host, dir, dataRoot, service, docker, stop };
}

/**
 * Imports a one-binary image made from the host's static busybox and its applet links, as the
 * machines have no registry access. Returns the image ID.
 */
export async function importBusybox(socketPath: string, tag = 'local/busybox'): Promise<string> {
  const busybox = which('busybox');
  if (!busybox) throw new Error('busybox not found: install busybox-static');
  const binary = await readFile(busybox);
  // A dynamic busybox would need the host's libc inside the image; busybox-static does not.
  if (binary.subarray(0, 4096).includes('ld-linux')) throw new Error(`${busybox} is dynamically linked`);
  const work = await mkdtemp(join(tmpdir(), 'nodeward-busybox-'));
  try {
    const bin = join(work, 'rootfs', 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'busybox'), binary, { mode: 0o755 });
    const applets = (await runOk(busybox, ['--list'])).split('\n').filter(Boolean);
    // The busybox applet itself would be a link replacing the binary.
    await Promise.all(applets.filter((a) => a !== 'busybox').map((a) => symlink('busybox', join(bin, a))));
    const tar = join(work, 'rootfs.tar');
    await runOk('tar', ['-C', join(work, 'rootfs'), '-cf', tar, '.']);
    const id = await dockerCli(socketPath, work, [
      'import',
      '--change',
      'CMD ["/bin/sh"]',
      '--change',
      'ENV PATH=/bin',
      tar,
      tag,
    ]);
    return id.trim();
  } finally {
    await removeTree(work);
  }
}

function dieWithParent(sig: string): string[] {
  const setpriv = which('setpriv');
  return setpriv ? [setpriv, '--pdeathsig', sig, '--'] : [];
}

// /usr/local/bin/docker here is a newer CLI than the Debian dockerd; the package's own client
// sits in /usr/bin. NODEWARD_DOCKER_CLI overrides both.
function dockerBinary(): string {
  return process.env['NODEWARD_DOCKER_CLI'] ?? which('/usr/bin/docker') ?? 'docker';
}

function dockerCli(socketPath: string, dir: string, args: readonly string[], opts?: RunOptions) {
  // DOCKER_CONFIG in the lab dir keeps the CLI from writing ~/.docker.
  const env = { ...process.env, DOCKER_CONFIG: join(dir, 'cli'), ...opts?.env };
  return runOk(dockerBinary(), ['--host', `unix://${socketPath}`, ...args], { ...opts, env });
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * SIGKILLs the init process of every container the daemon knows. Killing a PID namespace's init
 * kills the whole namespace, and it is what survives when dockerd and the shims are gone.
 */
function killContainers(dataRoot: string): void {
  let ids: string[];
  try {
    ids = readdirSync(join(dataRoot, 'containers'));
  } catch {
    return;
  }
  for (const id of ids) {
    try {
      const config = JSON.parse(readFileSync(join(dataRoot, 'containers', id, 'config.v2.json'), 'utf8')) as {
        State?: { Pid?: number; Running?: boolean };
      };
      const pid = config.State?.Pid ?? 0;
      if (config.State?.Running && pid > 0) signal(pid, 'SIGKILL');
    } catch {
      // No config yet, or removed meanwhile.
    }
  }
}
