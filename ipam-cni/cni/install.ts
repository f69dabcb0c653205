import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { CniConfig } from '../../shared/config/index.ts';
import { NodewardError } from '../../shared/errors.ts';
import { LATEST_VERSION, PLUGIN_TYPE, SUPPORTED_VERSIONS } from './spec.ts';

/**
 * `nodeward cni install`: what an install-cni init container does. Both files are written to a
 * temporary name beside the target, fsync'd, then renamed over it: a kubelet starting a pod at
 * that moment runs the old binary or the new one, never half of one. Idempotent: an identical
 * file is left as it is.
 */

export interface InstallOptions {
  readonly binary: string;
  readonly binDir: string;
  readonly confDir: string;
  readonly confName: string;
  readonly cni: CniConfig;
}

export interface InstallOutcome {
  readonly binary: { path: string; changed: boolean };
  readonly conflist: { path: string; changed: boolean };
  /** What the installed network cannot do on this node, and why (also in the conflist's `notes`). */
  readonly notes: readonly string[];
}

type ChainName = CniConfig['chain'][number];

/** A reference plugin found in the bin dir, with the CNI versions its VERSION command reports. */
export interface ChainedPlugin {
  readonly type: ChainName;
  readonly supportedVersions: readonly string[];
}

/** What each chained plugin serves, and the capabilities the runtime must hand it for that. */
const CHAIN: Record<ChainName, { serves: string; conf: Record<string, unknown> }> = {
  // snat: hostPort reached from the node itself (127.0.0.1 and the node's own addresses) works too.
  portmap: { serves: 'hostPort', conf: { capabilities: { portMappings: true }, snat: true } },
  bandwidth: {
    serves: 'the kubernetes.io/ingress-bandwidth and egress-bandwidth annotations',
    conf: { capabilities: { bandwidth: true } },
  },
};

/**
 * Runtimes (containerd, CRI-O) hand a plugin `runtimeConfig` only for the capabilities its conflist
 * declares: without these the pool, address and sticky annotations never reach the agent. `ips` is
 * the runtime's requested address (the same as the nodeward.io/ip annotation). `mac` is not
 * declared: pod interfaces keep the kernel's random MAC.
 */
const NODEWARD_CAPABILITIES = { 'io.kubernetes.cri.pod-annotations': true, ips: true };

const versionKey = (v: string) => v.split('.').reduce((n, part) => n * 1000 + Number(part), 0);

export interface ConflistPlan {
  readonly cniVersion: string;
  /** Every version nodeward and each chained plugin speak, from cniVersion up (libcni ≥ 1.2 picks the highest). */
  readonly cniVersions: readonly string[];
  readonly chained: readonly ChainedPlugin[];
  readonly notes: readonly string[];
}

/**
 * The versions and chain of the conflist, from the plugins present. Pure: `installCni` finds the
 * plugins. A chained plugin that cannot speak a version takes it off the list, since libcni hands
 * every plugin of a list the one version it picked.
 */
export function planConflist(
  cni: CniConfig,
  present: readonly ChainedPlugin[],
  binDir: string,
): ConflistPlan {
  const notes: string[] = [];
  for (const type of cni.chain) {
    if (!present.some((p) => p.type === type))
      notes.push(`${CHAIN[type].serves}: off (the ${type} plugin is not in ${binDir})`);
  }
  const chained = cni.chain.flatMap((type) => present.filter((p) => p.type === type));
  const common = SUPPORTED_VERSIONS.filter((v) => chained.every((p) => p.supportedVersions.includes(v)));
  const floor = common.filter((v) => versionKey(v) <= versionKey(cni.cniVersion)).at(-1);
  if (floor === undefined) {
    throw new NodewardError(
      'USAGE',
      `no CNI version at or below ${cni.cniVersion} is spoken by nodeward and ${chained.map((p) => p.type).join(', ')} alike: ` +
        `drop the plugin from network.cni.chain or install a newer one`,
    );
  }
  if (floor !== cni.cniVersion)
    notes.push(
      `cniVersion ${floor}, not ${cni.cniVersion}: a chained plugin does not speak ${cni.cniVersion}`,
    );
  const cniVersions = common.filter((v) => versionKey(v) >= versionKey(floor));
  if (!cniVersions.includes(LATEST_VERSION)) {
    const old = chained.filter((p) => !p.supportedVersions.includes(LATEST_VERSION)).map((p) => p.type);
    notes.push(
      `CNI GC and STATUS: off (${old.join(', ')} ${old.length > 1 ? 'speak' : 'speaks'} CNI only up to ${cniVersions.at(-1)})`,
    );
  }
  return { cniVersion: floor, cniVersions, chained, notes };
}

/** The .conflist for this node: nodeward first (the socket and journal the shim needs), then the chain. */
export function renderConflist(
  cni: CniConfig,
  plan: ConflistPlan = planConflist({ ...cni, chain: [] }, [], ''),
): string {
  const plugin = {
    type: PLUGIN_TYPE,
    socket: cni.socket,
    journalDir: cni.journalDir,
    timeoutMs: cni.timeout,
    capabilities: NODEWARD_CAPABILITIES,
    ...(cni.pool === undefined ? {} : { pool: cni.pool }),
    ...(cni.mtu === undefined ? {} : { mtu: cni.mtu }),
  };
  const conflist = {
    cniVersion: plan.cniVersion,
    cniVersions: plan.cniVersions,
    name: cni.networkName,
    plugins: [plugin, ...plan.chained.map((p) => ({ type: p.type, ...CHAIN[p.type].conf }))],
    ...(plan.notes.length ? { notes: plan.notes } : {}),
  };
  return `${JSON.stringify(conflist, null, 2)}\n`;
}

/**
 * The versions a plugin binary says it speaks (CNI VERSION). A binary that does not answer is
 * reported, not chained: a runtime would fail every pod on it.
 */
export function pluginVersions(path: string): string[] {
  const r = spawnSync(path, [], {
    input: JSON.stringify({ cniVersion: '1.0.0' }),
    env: { CNI_COMMAND: 'VERSION', PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    timeout: 10_000,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const fail = (why: string) => new NodewardError('USAGE', `${path} does not answer CNI VERSION: ${why}`);
  // EPIPE: the plugin answered without reading its stdin (the reference plugins do not need the
  // config for VERSION) and exited before the config was written; its answer is all that counts.
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'EPIPE') throw fail(r.error.message);
  if (r.status !== 0)
    throw fail(`exit ${r.status ?? r.signal}: ${r.stderr.toString().trim() || r.stdout.toString().trim()}`);
  let versions: unknown;
  try {
    versions = (JSON.parse(r.stdout.toString()) as { supportedVersions?: unknown }).supportedVersions;
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (!Array.isArray(versions) || !versions.every((v) => typeof v === 'string'))
    throw fail('no supportedVersions');
  return versions;
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function writeAtomic(path: string, data: Buffer, mode: number): boolean {
  if (existsSync(path) && digest(readFileSync(path)) === digest(data)) {
    chmodSync(path, mode);
    return false;
  }
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, path);
  return true;
}

export function installCni(o: InstallOptions): InstallOutcome {
  const binary = installShim(o.binary, o.binDir);
  const { path, changed, notes } = writeConflist(o);
  return { binary, conflist: { path, changed }, notes };
}

/** The shim executable into the CNI bin dir (atomic, idempotent). */
export function installShim(binary: string, binDir: string): { path: string; changed: boolean } {
  if (!existsSync(binary)) {
    throw new NodewardError(
      'USAGE',
      `the shim ${binary} does not exist: run \`npm run build:cni\` or pass --binary`,
    );
  }
  mkdirSync(binDir, { recursive: true });
  const path = join(binDir, PLUGIN_TYPE);
  return { path, changed: writeAtomic(path, readFileSync(binary), 0o755) };
}

export interface ConflistOptions {
  readonly binDir: string;
  readonly confDir: string;
  readonly confName: string;
  readonly cni: CniConfig;
}

export interface WrittenConflist {
  readonly path: string;
  readonly changed: boolean;
  readonly notes: readonly string[];
  /** The bytes written, to tell later whether the file is still this one. */
  readonly content: Buffer;
}

/** The .conflist for `cni`, with the chained plugins found in binDir (atomic, idempotent). */
export function writeConflist(o: ConflistOptions): WrittenConflist {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(o.confName)) {
    throw new NodewardError(
      'USAGE',
      `--conf-name must be a plain file name, got ${JSON.stringify(o.confName)}`,
    );
  }
  mkdirSync(o.confDir, { recursive: true });
  const path = join(o.confDir, o.confName.endsWith('.conflist') ? o.confName : `${o.confName}.conflist`);
  const present = o.cni.chain
    .filter((type) => existsSync(join(o.binDir, type)))
    .map((type) => ({ type, supportedVersions: pluginVersions(join(o.binDir, type)) }));
  const plan = planConflist(o.cni, present, o.binDir);
  const content = Buffer.from(renderConflist(o.cni, plan));
  return { path, changed: writeAtomic(path, content, 0o644), notes: plan.notes, content };
}

/**
 * Removes a conflist this process wrote, if the file is still that one (another writer's is left
 * alone); true when it was removed.
 */
export function removeConflist(written: WrittenConflist): boolean {
  let now: Buffer;
  try {
    now = readFileSync(written.path);
  } catch {
    return false;
  }
  if (!now.equals(written.content)) return false;
  rmSync(written.path, { force: true });
  return true;
}
