import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import type { RunResult } from '../exec.ts';
import { type Service, startService } from '../proc.ts';
import type { Lab } from '../scope.ts';
import { tempDir } from '../tmp.ts';
import { waitFor } from '../wait.ts';
import type { VmBundles } from './bundle.ts';
import type { VmKernel } from './kernel.ts';
import { LineClient } from './rpc.ts';

/**
 * One lab VM under qemu (TCG: no KVM here): Debian's kernel and the lab initramfs (kernel.ts), the
 * host's / read-only over 9p with a tmpfs overlay, a writable share dir, one virtio NIC on an L2
 * link to another VM over loopback TCP (`-netdev socket`), and the guest daemon (guest.ts) answering
 * over a virtio-serial port wired to a unix socket of the host. The qemu process is a lab Service:
 * its own process group, stopped at cleanup however the test ended, with the VM's console in its log.
 */

export const REPO = resolve(import.meta.dirname, '../../..');

export interface VmOptions {
  readonly lab: Lab;
  readonly kernel: VmKernel;
  readonly bundles: VmBundles;
  readonly name: string;
  /** One end of the L2 link: listen (first VM) or connect (second) on 127.0.0.1:port. */
  readonly link: { readonly role: 'listen' | 'connect'; readonly port: number; readonly mac: string };
  readonly memoryMb?: number;
  /** A host dir for Node's compile cache in this VM (one per VM: two never write one dir). */
  readonly compileCache?: string;
  /** How long to wait for the guest daemon's hello (boot + Node start). */
  readonly bootTimeoutMs?: number;
}

export interface Hello {
  readonly node: string;
  readonly uptime: string;
  readonly kernel: string;
}

export interface Vm {
  readonly name: string;
  /** Host dir seen by the guest as /nw/share (boot.sh, guest.log). */
  readonly share: string;
  readonly service: Service;
  readonly hello: Hello;
  call<T = unknown>(op: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** Runs argv in the guest; resolves with the status whatever it is. */
  exec(argv: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Like exec, but rejects on a non-zero status with the command and its stderr. */
  ok(argv: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** A human monitor command (e.g. `set_link n0 off`); resolves with its output. */
  monitor(command: string): Promise<string>;
  /** The console (kernel, init) and the guest daemon's log, for error messages. */
  logs(): string;
}

export async function startVm(o: VmOptions): Promise<Vm> {
  const dir = await tempDir(`vm-${o.name}`, o.lab);
  if (o.compileCache) await mkdir(o.compileCache, { recursive: true });
  const share = join(dir, 'share');
  await mkdir(share);
  // PATH: Node 24 from node_modules first (the shim runs as process.execPath anyway).
  await writeFile(
    join(share, 'boot.sh'),
    [
      `export PATH=${REPO}/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      'export HOME=/root UV_THREADPOOL_SIZE=8',
      // V8's code for the modules Node loads, kept across runs in a host dir of this VM's own
      // (9p, tag v8cache): JS runs ≈ 10× slower under TCG, and compiling etcd3 and zod is a part.
      ...(o.compileCache
        ? [
            'mkdir -p /nw/v8cache',
            'mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 v8cache /nw/v8cache',
            'export NODE_COMPILE_CACHE=/nw/v8cache',
          ]
        : ['export NODE_COMPILE_CACHE=/tmp/node-compile-cache']),
      `export NW_AGENT=${o.bundles.agent} NW_SHIM=${o.bundles.shim}`,
      `cd ${REPO}`,
      `hostname ${o.name}`,
      `exec node ${o.bundles.guest} nw.ctl /nw/share >/nw/share/guest.log 2>&1`,
      '',
    ].join('\n'),
  );
  const ctlPath = join(dir, 'ctl.sock');
  const monPath = join(dir, 'mon.sock');
  const server = createServer();
  const connected = new Promise<Socket>((r) => server.once('connection', r));
  await new Promise<void>((r, j) => server.listen(ctlPath, r).once('error', j));
  o.lab.defer(`vm ${o.name} control socket`, () => new Promise<void>((r) => server.close(() => r())));
  const netdev =
    o.link.role === 'listen'
      ? `socket,id=n0,listen=127.0.0.1:${o.link.port}`
      : `socket,id=n0,connect=127.0.0.1:${o.link.port}`;
  // biome-ignore format: one flag and its value per line
  const args = [
    '-machine', 'pc', '-accel', 'tcg', '-m', String(o.memoryMb ?? 512), '-smp', '1',
    '-nographic', '-nodefaults', '-no-user-config', '-serial', 'stdio', '-no-reboot',
    '-kernel', o.kernel.vmlinuz, '-initrd', o.kernel.initramfs,
    '-append', 'console=ttyS0 quiet panic=-1 loglevel=4',
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${share},mount_tag=share,security_model=none`,
    ...(o.compileCache ? ['-virtfs', `local,path=${o.compileCache},mount_tag=v8cache,security_model=none`] : []),
    '-netdev', netdev,
    '-device', `virtio-net-pci,netdev=n0,mac=${o.link.mac},romfile=`,
    '-device', 'virtio-serial-pci',
    '-chardev', `socket,id=ctl,path=${ctlPath}`,
    '-device', 'virtserialport,chardev=ctl,name=nw.ctl',
    '-monitor', `unix:${monPath},server=on,wait=off`,
  ];
  const service = startService({
    lab: o.lab,
    name: `qemu-${o.name}`,
    dir,
    command: 'qemu-system-x86_64',
    args,
  });
  const guestLog = join(share, 'guest.log');
  const logs = () =>
    `--- console (${service.logPath}) ---\n${service.logTail(40)}\n--- guest daemon (${guestLog}) ---\n${
      existsSync(guestLog) ? readFileSync(guestLog, 'utf8').slice(-4000) : '(none)'
    }`;
  const socket = await Promise.race([
    connected,
    service.exited.then((e) => {
      throw new Error(`qemu ${o.name} exited (${e.signal ?? e.code}) before connecting\n${logs()}`);
    }),
  ]);
  const rpc = new LineClient(socket, (l) => socket.write(l), `vm ${o.name}`);
  const hello = await rpc
    .notice(
      (n): n is { hello: Hello } => typeof n === 'object' && n !== null && 'hello' in n,
      o.bootTimeoutMs ?? 300_000,
      () => (service.running ? undefined : 'qemu exited'),
    )
    .catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
  o.lab.defer(`vm ${o.name} guest daemon`, async () => {
    // A clean end for the guest's processes; qemu itself is stopped by its Service step after.
    await rpc.call('shutdown', undefined, 5000).catch(() => {});
    rpc.close();
    socket.destroy();
  });

  const call = <T>(op: string, args?: unknown, timeoutMs?: number) => rpc.call<T>(op, args, timeoutMs);
  const exec = (argv: readonly string[], opts: { input?: string; timeoutMs?: number } = {}) =>
    call<RunResult>('exec', { argv, ...opts }, (opts.timeoutMs ?? 60_000) + 10_000);
  return {
    name: o.name,
    share,
    service,
    hello: hello.hello,
    call,
    exec,
    ok: async (argv, opts) => {
      const r = await exec(argv, opts);
      if (r.code !== 0)
        throw new Error(
          `[${o.name}] ${argv.join(' ')} failed (${r.signal ?? r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
        );
      return r.stdout;
    },
    monitor: (command) => monitor(monPath, command),
    logs,
  };
}

/** One HMP command over the monitor socket: everything qemu prints until its next prompt. */
async function monitor(path: string, command: string): Promise<string> {
  const s = createConnection(path);
  let buf = '';
  s.setEncoding('utf8');
  const prompt = async () => {
    await waitFor(() => buf.endsWith('(qemu) '), {
      what: 'the qemu monitor prompt',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const out = buf;
    buf = '';
    return out;
  };
  s.on('data', (d: string) => {
    buf += d;
  });
  try {
    await prompt();
    s.write(`${command}\n`);
    return (await prompt()).replace(/\r/g, '').replace('(qemu) ', '');
  } finally {
    s.destroy();
  }
}

/** Whether something listens on 127.0.0.1:port (the first VM's end of the link), from /proc. */
export function listening(port: number): boolean {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((l) => {
      const f = l.trim().split(/\s+/);
      return f[1] === hex && f[3] === '0A';
    });
}
