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
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { CniConfig } from '../../shared/config/index.ts';
import { NodewardError } from '../../shared/errors.ts';
import { PLUGIN_TYPE } from './spec.ts';

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
}

/** The .conflist for this node: one nodeward plugin, with the socket and journal the shim needs. */
export function renderConflist(cni: CniConfig): string {
  const plugin = {
    type: PLUGIN_TYPE,
    socket: cni.socket,
    journalDir: cni.journalDir,
    timeoutMs: cni.timeout,
    ...(cni.pool === undefined ? {} : { pool: cni.pool }),
    ...(cni.mtu === undefined ? {} : { mtu: cni.mtu }),
  };
  return `${JSON.stringify({ cniVersion: cni.cniVersion, name: cni.networkName, plugins: [plugin] }, null, 2)}\n`;
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
  if (!existsSync(o.binary)) {
    throw new NodewardError(
      'USAGE',
      `the shim ${o.binary} does not exist: run \`npm run build:cni\` or pass --binary`,
    );
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(o.confName)) {
    throw new NodewardError(
      'USAGE',
      `--conf-name must be a plain file name, got ${JSON.stringify(o.confName)}`,
    );
  }
  mkdirSync(o.binDir, { recursive: true });
  mkdirSync(o.confDir, { recursive: true });
  const bin = join(o.binDir, PLUGIN_TYPE);
  const conf = join(o.confDir, o.confName.endsWith('.conflist') ? o.confName : `${o.confName}.conflist`);
  return {
    binary: { path: bin, changed: writeAtomic(bin, readFileSync(o.binary), 0o755) },
    conflist: { path: conf, changed: writeAtomic(conf, Buffer.from(renderConflist(o.cni)), 0o644) },
  };
}
