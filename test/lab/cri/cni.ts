import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from '../exec.ts';
import { onLastResort } from '../lastresort.ts';
import type { Lab } from '../scope.ts';
import { tempDir } from '../tmp.ts';

/**
 * A CNI setup for the lab's containerd from the reference plugins: a conflist with `bridge` +
 * `host-local` on a random private /24 behind a random bridge name, `portmap` (capabilities
 * portMappings), and last a spy plugin of the lab that records every call and can fail ADDs with
 * CNI error 11 ("try again later"). The bin dir links the reference plugins in beside the spy, so
 * a test may add its own plugin there.
 */

export const REFERENCE_PLUGINS = '/usr/lib/cni';

export interface CniCall {
  command: string;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as key=value pairs. */
  args: Record<string, string>;
  /** runtimeConfig as the runtime sent it (only the declared capabilities). */
  runtimeConfig?: Record<string, unknown>;
  hasPrevResult: boolean;
}

export interface LabCniNetwork {
  /** The network's name (libcni caches results as /var/lib/cni/results/<name>-<id>-<ifname>). */
  readonly name: string;
  readonly bridge: string;
  /** e.g. 10.213.7.0/24; the bridge (gateway) holds .1. */
  readonly subnet: string;
  readonly gateway: string;
  readonly binDir: string;
  readonly confDir: string;
  readonly conflistPath: string;
  /** The spy's record of calls, oldest first. */
  calls(): CniCall[];
  /** Makes the next n ADDs fail with code 11 (after bridge and portmap succeeded: the runtime DELs). */
  failNextAdds(n: number): Promise<void>;
}

export interface LabCniOptions {
  lab: Lab;
  /** Where the reference plugins are. */
  pluginDir?: string;
}

const SPY = 'nodeward-lab-spy';

export async function startLabCniNetwork(opts: LabCniOptions): Promise<LabCniNetwork> {
  const { lab } = opts;
  const dir = await tempDir('cni', lab);
  const binDir = join(dir, 'bin');
  const confDir = join(dir, 'net.d');
  await Promise.all([binDir, confDir].map((d) => mkdir(d)));
  const pluginDir = opts.pluginDir ?? REFERENCE_PLUGINS;
  for (const plugin of readdirSync(pluginDir)) await symlink(join(pluginDir, plugin), join(binDir, plugin));
  const callsFile = join(dir, 'calls.jsonl');
  const failFile = join(dir, 'fail-adds');
  await writeFile(join(binDir, SPY), spyPlugin(callsFile, failFile), { mode: 0o755 });

  const suffix = randomBytes(3).toString('hex');
  const name = `lab-${suffix}`;
  const bridge = `crib${suffix}`;
  const base = await freeSubnet();
  const subnet = `${base}.0/24`;
  const gateway = `${base}.1`;
  // The bridge plugin never deletes its bridge; libcni's cache entries stay when no DEL came.
  const removeNow = () => {
    spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
    const results = '/var/lib/cni/results';
    if (!existsSync(results)) return;
    for (const f of readdirSync(results))
      if (f.startsWith(`${name}-`)) rmSync(join(results, f), { force: true });
  };
  const forget = onLastResort(removeNow, 'cleanup');
  lab.defer(`bridge ${bridge}`, () => {
    removeNow();
    forget();
  });
  const conflistPath = join(confDir, '10-lab.conflist');
  await writeFile(
    conflistPath,
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name,
        plugins: [
          {
            type: 'bridge',
            bridge,
            isGateway: true,
            ipMasq: false,
            ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet, gateway }]] },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
          { type: SPY, capabilities: { portMappings: true, 'io.kubernetes.cri.pod-annotations': true } },
        ],
      },
      null,
      2,
    ),
  );

  return {
    name,
    bridge,
    subnet,
    gateway,
    binDir,
    confDir,
    conflistPath,
    calls: () =>
      existsSync(callsFile)
        ? readFileSync(callsFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as CniCall)
        : [],
    failNextAdds: (n) => writeFile(failFile, String(n)),
  };
}

/** A random 10.x.y (as the first three octets) whose /24 no route of this host covers. */
async function freeSubnet(): Promise<string> {
  const routes = (await runOk('ip', ['-4', '-o', 'route', 'show', 'table', 'all']))
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((p) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(p));
  const toInt = (ip: string) => ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  for (;;) {
    const [a, b] = randomBytes(2);
    const base = `10.${128 + (a! % 127)}.${b}`;
    const lo = toInt(`${base}.0`);
    const hi = lo + 255;
    const clash = routes.some((r) => {
      const [ip = '', bits = '32'] = r.split('/');
      const size = 2 ** (32 - Number(bits));
      const start = toInt(ip) - (toInt(ip) % size);
      return start <= hi && start + size - 1 >= lo;
    });
    if (!clash) return base;
  }
}

/**
 * The spy: a chained plugin in Node (the interpreter running the tests). ADD passes prevResult
 * through, or fails with code 11 while the fail file counts down; DEL and CHECK succeed.
 */
function spyPlugin(callsFile: string, failFile: string): string {
  return `#!${process.execPath}
const fs = require('node:fs');
const env = process.env;
const raw = fs.readFileSync(0, 'utf8');
const conf = raw ? JSON.parse(raw) : {};
const out = (o) => process.stdout.write(JSON.stringify(o));
const command = env.CNI_COMMAND || '';
if (command === 'VERSION') {
  out({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
  process.exit(0);
}
const args = Object.fromEntries((env.CNI_ARGS || '').split(';').filter(Boolean).map((kv) => {
  const i = kv.indexOf('=');
  return [kv.slice(0, i), kv.slice(i + 1)];
}));
fs.appendFileSync(${JSON.stringify(callsFile)}, JSON.stringify({
  command, containerId: env.CNI_CONTAINERID || '', netns: env.CNI_NETNS || '', ifname: env.CNI_IFNAME || '',
  args, ...(conf.runtimeConfig ? { runtimeConfig: conf.runtimeConfig } : {}), hasPrevResult: 'prevResult' in conf,
}) + '\\n');
if (command === 'ADD') {
  let left = 0;
  try { left = Number(fs.readFileSync(${JSON.stringify(failFile)}, 'utf8')) || 0; } catch {}
  if (left > 0) {
    fs.writeFileSync(${JSON.stringify(failFile)}, String(left - 1));
    out({ cniVersion: conf.cniVersion, code: 11, msg: 'lab spy: try again later', details: 'failNextAdds' });
    process.exit(1);
  }
  out(conf.prevResult || { cniVersion: conf.cniVersion });
}
`;
}
