import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { which } from '../bin.ts';
import { run, runOk } from '../exec.ts';
import { removeTree } from '../tmp.ts';

/**
 * A kernel with 802.1Q for the VM lab: Debian's stock kernel package, downloaded (never installed)
 * and unpacked, plus a tiny busybox initramfs that loads the modules the lab needs, mounts the
 * host's root read-only over 9p under a tmpfs overlay and runs the share's boot script in it.
 * Both are cached under node_modules/.cache/nodeward-vm/<package>_<version>-<init hash>/, so only
 * the first run pays for the download (≈ 70 MB) and the build (≈ 10 s).
 */

export interface VmKernel {
  /** The kernel release (`uname -r` inside the VM), e.g. 6.1.0-57-amd64. */
  readonly release: string;
  /** The Debian package and version it came from. */
  readonly deb: string;
  readonly vmlinuz: string;
  readonly initramfs: string;
}

/** Modules the lab loads (with their dependencies), all `=m` in Debian's config. */
export const VM_MODULES = [
  'virtio_pci',
  'virtio_net',
  'virtio_console',
  '9pnet_virtio',
  '9p',
  'overlay',
  '8021q',
  'bridge',
  'veth',
  'dummy',
] as const;

/**
 * PID 1 of the VM. The host's / arrives read-only as 9p tag `hostroot`; the VM writes to a tmpfs
 * overlay above it (and to a tmpfs /run: `ip netns` needs a writable /run). /tmp stays the
 * overlay's: a checkout under the host's /tmp (CI clones there) must be visible in the VM. The share (tag
 * `share`) is the VM's own writable host dir, mounted at /nw/share: boot.sh there is what the VM
 * runs; when it returns the VM powers off.
 */
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m; do insmod "/modules/$m" || echo "init: insmod $m failed"; done < /modules/order
P9="trans=virtio,version=9p2000.L,msize=262144"
mkdir -p /host /rw /newroot
mount -t 9p -o "$P9,ro,cache=loose" hostroot /host || { echo "init: no hostroot"; poweroff -f; }
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs -o mode=0755 run /newroot/run
mkdir -p /newroot/nw/share
mount -t 9p -o "$P9" share /newroot/nw/share || { echo "init: no share"; poweroff -f; }
echo "init: booted $(cat /proc/uptime)"
chroot /newroot /bin/sh /nw/share/boot.sh
echo "init: boot.sh exited $?"
poweroff -f
`;

const CACHE = resolve(import.meta.dirname, '../../../node_modules/.cache/nodeward-vm');

/** Why the VM lab cannot run here, or undefined. */
export function vmSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (9p export of the host root)';
  const missing = [
    'qemu-system-x86_64',
    'cpio',
    'busybox',
    'dpkg-deb',
    'depmod',
    'modprobe',
    'apt-get',
  ].filter((b) => which(b) === undefined);
  if (!existsSync('/bin/busybox')) missing.push('/bin/busybox (busybox-static)');
  return missing.length > 0
    ? `missing: ${missing.join(', ')} (apt-get install qemu-system-x86 cpio busybox-static)`
    : undefined;
}

/** The kernel package apt would install now, e.g. { name: linux-image-6.1.0-57-amd64, version: 6.1.192-3 }. */
async function candidate(): Promise<{ name: string; version: string } | undefined> {
  const deps = await run('apt-cache', ['depends', 'linux-image-amd64']);
  const name = /Depends:\s*(linux-image-\S+)/.exec(deps.stdout)?.[1];
  if (deps.code !== 0 || !name) return undefined;
  const show = await run('apt-cache', ['show', '--no-all-versions', name]);
  const version = /^Version:\s*(\S+)/m.exec(show.stdout)?.[1];
  return version ? { name, version } : undefined;
}

const initHash = createHash('sha256').update(INIT).update(VM_MODULES.join(',')).digest('hex').slice(0, 8);

/**
 * The cached kernel and initramfs for the current candidate of linux-image-amd64, built if
 * missing. Without apt's lists (no `apt-get update`), the newest cached build is used.
 */
export async function vmKernel(log: (line: string) => void = () => {}): Promise<VmKernel> {
  const want = await candidate();
  if (!want) {
    const cached = existsSync(CACHE)
      ? readdirSync(CACHE)
          .filter((d) => d.endsWith(`-${initHash}`) && existsSync(join(CACHE, d, 'kernel.json')))
          .sort()
      : [];
    const last = cached.at(-1);
    if (last) return JSON.parse(await readFile(join(CACHE, last, 'kernel.json'), 'utf8')) as VmKernel;
    throw new Error('apt knows no linux-image-amd64 and nothing is cached: run apt-get update');
  }
  const dir = join(CACHE, `${want.name}_${want.version}-${initHash}`);
  const meta = join(dir, 'kernel.json');
  if (existsSync(meta)) return JSON.parse(await readFile(meta, 'utf8')) as VmKernel;
  log(`[vm] building ${dir} (first run only)`);
  await mkdir(CACHE, { recursive: true });
  // Built beside the cache entry and renamed into place: a concurrent or interrupted build never
  // leaves a half-made entry.
  const work = join(CACHE, `.build-${randomBytes(4).toString('hex')}`);
  await mkdir(work);
  try {
    await runOk('apt-get', ['download', '-q', `${want.name}=${want.version}`], {
      cwd: work,
      timeoutMs: 300_000,
    });
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${want.name} left no .deb`);
    const root = join(work, 'root');
    await runOk('dpkg-deb', ['-x', join(work, deb), root], { timeoutMs: 120_000 });
    const release = want.name.replace(/^linux-image-/, '');
    await runOk('depmod', ['-b', root, release]);
    // insmod order: each module's dependencies first, every .ko once.
    const order: string[] = [];
    for (const m of VM_MODULES) {
      const out = await runOk('modprobe', ['-d', root, '-S', release, '--show-depends', m]);
      for (const line of out.split('\n')) {
        const ko = /^insmod (\S+\.ko)/.exec(line.trim())?.[1];
        if (ko && !order.includes(ko)) order.push(ko);
      }
    }
    const initrd = join(work, 'initrd');
    await mkdir(join(initrd, 'bin'), { recursive: true });
    await mkdir(join(initrd, 'modules'));
    for (const d of ['proc', 'sys', 'dev']) await mkdir(join(initrd, d));
    await copyFile('/bin/busybox', join(initrd, 'bin', 'busybox'));
    await symlink('busybox', join(initrd, 'bin', 'sh'));
    const names: string[] = [];
    for (const ko of order) {
      const name = ko.slice(ko.lastIndexOf('/') + 1);
      await copyFile(ko, join(initrd, 'modules', name));
      names.push(name);
    }
    await writeFile(join(initrd, 'modules', 'order'), `${names.join('\n')}\n`);
    await writeFile(join(initrd, 'init'), INIT);
    await chmod(join(initrd, 'init'), 0o755);
    const out = join(work, 'out');
    await mkdir(out);
    await runOk('sh', [
      '-c',
      `cd "${initrd}" && find . | cpio -o -H newc --quiet | gzip -1 > "${out}/initramfs.gz"`,
    ]);
    await copyFile(join(root, 'boot', `vmlinuz-${release}`), join(out, 'vmlinuz'));
    const kernel: VmKernel = {
      release,
      deb: `${want.name}_${want.version}`,
      vmlinuz: join(dir, 'vmlinuz'),
      initramfs: join(dir, 'initramfs.gz'),
    };
    await writeFile(join(out, 'kernel.json'), `${JSON.stringify(kernel, null, 2)}\n`);
    await rename(out, dir).catch((err: NodeJS.ErrnoException) => {
      // Another run finished the same build first: its entry is as good as ours.
      if (!existsSync(meta)) throw err;
    });
    // Builds of older packages or an older init: ≈ 20 MB each, never used again.
    for (const old of readdirSync(CACHE).filter(
      (d) => d.startsWith('linux-image-') && join(CACHE, d) !== dir,
    ))
      await removeTree(join(CACHE, old));
    return kernel;
  } finally {
    await removeTree(work);
  }
}
