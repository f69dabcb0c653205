import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { which } from '../bin.ts';
import { runOk } from '../exec.ts';

/**
 * Container images without a registry: a docker-archive tarball (`docker save` format) built here
 * from the host's static busybox, for `ctr images import`. Uncompressed layers (/bin/busybox and
 * its applet links; an image's extra files); per image a config whose rootfs.diff_ids are the
 * layers' sha256 and a manifest.json entry naming its tag.
 */

export interface LabImage {
  /** Fully qualified, so no runtime prefixes docker.io/library/: `nodeward.lab/x:1`. */
  tag: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  /** Extra files by absolute path in the image (mode 0755: scripts). */
  files?: Record<string, string>;
  /** Directories whose contents become layers of their own, in order (an image's root filesystem). */
  trees?: string[];
  /** Default /. */
  workingDir?: string;
}

/** The sandbox ("pause") image: busybox sleeping until killed. */
export const PAUSE_IMAGE: LabImage = {
  tag: 'nodeward.lab/pause:1',
  entrypoint: ['/bin/sleep', 'infinity'],
};

export const LOG_WRITER = '/usr/local/bin/log-writer';

/**
 * Numbered lines on stdout and stderr, at a rate and length of the caller's choosing. Environment:
 * - LINES: lines per stream (0: until stopped; default 10)
 * - RATE: lines per second per stream (0: no pause; default 10)
 * - LENGTH: bytes per line, newline excluded (default 80; the header below is never cut)
 * - LONG_EVERY, LONG_LENGTH: every LONG_EVERY-th line is LONG_LENGTH bytes instead (default 0:
 *   none; 40000). Over max_container_log_line_size (16 KiB) containerd writes it as P parts + F.
 * - STREAMS: "stdout stderr" (default), or one of them
 * - PREFIX: first word of every line (default "line")
 * - THEN: "sleep" (default: stay up until stopped) or "exit"
 * A line reads `<PREFIX> <stream> <seq, 6 digits> xxxx…`; seq counts from 1 per stream. No
 * subshells per line: a fork costs ≈ 10 ms on the lab machines, so only RATE's sleep forks.
 */
export const LOG_WRITER_SCRIPT = `#!/bin/sh
lines=\${LINES:-10}
rate=\${RATE:-10}
length=\${LENGTH:-80}
long_every=\${LONG_EVERY:-0}
long_length=\${LONG_LENGTH:-40000}
streams=\${STREAMS:-stdout stderr}
prefix=\${PREFIX:-line}
trap 'exit 0' TERM INT
max=$length
[ "$long_every" -gt 0 ] && [ "$long_length" -gt "$max" ] && max=$long_length
fill=$(head -c "$max" /dev/zero | tr '\\0' x)
pause=$(awk -v r="$rate" 'BEGIN { if (r > 0) printf "%.4f", 1 / r; else print 0 }')
i=1
while [ "$lines" -eq 0 ] || [ "$i" -le "$lines" ]; do
  n=$length
  seq=00000$i
  [ "$long_every" -gt 0 ] && [ $((i % long_every)) -eq 0 ] && n=$long_length
  for s in $streams; do
    head="$prefix $s \${seq:$((\${#seq} - 6))} "
    [ "$n" -lt \${#head} ] && n=\${#head}
    line="$head$fill"
    line=\${line:0:$n}
    if [ "$s" = stderr ]; then printf '%s\\n' "$line" >&2; else printf '%s\\n' "$line"; fi
  done
  i=$((i + 1))
  [ "$pause" != 0 ] && sleep "$pause"
done
[ "\${THEN:-sleep}" = exit ] && exit 0
sleep infinity &
wait
`;

/** The workload image: busybox with the log writer as entrypoint (env as above). */
export const WORKLOAD_IMAGE: LabImage = {
  tag: 'nodeward.lab/workload:1',
  entrypoint: ['/bin/sh', LOG_WRITER],
  files: { [LOG_WRITER]: LOG_WRITER_SCRIPT },
};

/**
 * Builds one docker-archive tarball holding the images (`docker save` of several) in a fresh dir
 * under `dir`; returns its path. The busybox layer is shared: each image is that layer, plus one
 * of its own files if it has any. ≈ 0.2 s here, about half of it the busybox layer.
 */
export async function imageArchive(images: readonly LabImage[], dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, 'images-'));
  const archive = join(work, 'archive');
  await mkdir(archive);
  const base = join(work, 'busybox');
  await busyboxRootfs(base);
  await mkdir(join(base, 'tmp'), { mode: 0o1777 });
  const baseLayer = await addLayer(archive, base);
  const manifest = [];
  for (const [i, image] of images.entries()) {
    const layers = [baseLayer];
    for (const tree of image.trees ?? []) layers.push(await addLayer(archive, tree));
    if (image.files) {
      const tree = join(work, `files-${i}`);
      for (const [path, content] of Object.entries(image.files)) {
        const file = join(tree, path);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, content, { mode: 0o755 });
      }
      layers.push(await addLayer(archive, tree));
    }
    const config = Buffer.from(
      JSON.stringify({
        architecture: goArch(),
        os: 'linux',
        created: new Date(0).toISOString(),
        config: {
          Env: image.env ?? ['PATH=/usr/local/bin:/bin'],
          ...(image.entrypoint ? { Entrypoint: image.entrypoint } : {}),
          ...(image.cmd ? { Cmd: image.cmd } : {}),
          WorkingDir: image.workingDir ?? '/',
        },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${l}`) },
      }),
    );
    const configName = `${sha256(config)}.json`;
    await writeFile(join(archive, configName), config);
    manifest.push({ Config: configName, RepoTags: [image.tag], Layers: layers.map((l) => `${l}/layer.tar`) });
  }
  await writeFile(join(archive, 'manifest.json'), JSON.stringify(manifest));
  const tarball = join(work, 'images.tar');
  await runOk('tar', ['--create', '--file', tarball, '--directory', archive, '.']);
  return tarball;
}

/** Tars tree as an uncompressed layer into <archive>/<sha256>/layer.tar; returns the sha256 (diff_id). */
async function addLayer(archive: string, tree: string): Promise<string> {
  const layer = join(archive, 'layer.tar');
  // biome-ignore format: one flag and its value per line
  await runOk('tar', [
    '--create', '--file', layer, '--directory', tree,
    '--numeric-owner', '--owner=0', '--group=0', '--sort=name', '.',
  ]);
  // Streamed: an agent image's layer is a few hundred MiB.
  const hash = createHash('sha256');
  await pipeline(createReadStream(layer), hash);
  const digest = hash.digest('hex');
  await mkdir(join(archive, digest), { recursive: true });
  await rename(layer, join(archive, digest, 'layer.tar'));
  return digest;
}

/** A root filesystem of the host's static busybox and its applet links in rootfs/bin. */
export async function busyboxRootfs(rootfs: string): Promise<void> {
  const busybox = which('busybox');
  if (!busybox) throw new Error('busybox not found: install busybox-static');
  const binary = await readFile(busybox);
  // A dynamic busybox would need the host's libc inside the image; busybox-static does not.
  if (binary.subarray(0, 4096).includes('ld-linux')) throw new Error(`${busybox} is dynamically linked`);
  const bin = join(rootfs, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'busybox'), binary, { mode: 0o755 });
  const applets = (await runOk(busybox, ['--list'])).split('\n').filter(Boolean);
  // The busybox applet itself would be a link replacing the binary.
  await Promise.all(applets.filter((a) => a !== 'busybox').map((a) => symlink('busybox', join(bin, a))));
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The OCI/Go name of this machine's architecture: an image for another one is not imported. */
function goArch(): string {
  const names: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    s390x: 's390x',
    ppc64: 'ppc64le',
  };
  return names[process.arch] ?? process.arch;
}
