import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { runOk } from '../../test/lab/exec.ts';
import { type Etcd, type Lab, startEtcd, tempDir } from '../../test/lab/index.ts';
import { EtcdStore } from '../store/etcd.ts';
import type { CniRequest } from './protocol.ts';

/**
 * A runtime-like driver for tests and the bench: runs the shim as its own process with the CNI_*
 * environment and the network config on stdin, as libcni does.
 */

export const SHIM_SOURCE = resolve(import.meta.dirname, 'shim/main.ts');

export interface ShimRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly json: Record<string, unknown> | undefined;
  readonly ms: number;
}

export interface ShimCall {
  readonly command: string;
  readonly containerID?: string;
  readonly netns?: string;
  readonly ifName?: string;
  readonly args?: string;
  readonly path?: string;
  readonly conf: unknown;
  /** argv of the plugin; default: the TypeScript source run by this Node. */
  readonly argv?: readonly string[];
  readonly env?: Record<string, string>;
}

export function runPlugin(call: ShimCall): Promise<ShimRun> {
  const argv = call.argv ?? [process.execPath, SHIM_SOURCE];
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    CNI_COMMAND: call.command,
    CNI_PATH: call.path ?? '/usr/lib/cni',
    ...(call.containerID === undefined ? {} : { CNI_CONTAINERID: call.containerID }),
    ...(call.netns === undefined ? {} : { CNI_NETNS: call.netns }),
    ...(call.ifName === undefined ? {} : { CNI_IFNAME: call.ifName }),
    ...(call.args === undefined ? {} : { CNI_ARGS: call.args }),
    ...call.env,
  };
  const started = performance.now();
  return new Promise((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', fail);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8');
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      done({
        code,
        stdout,
        stderr: Buffer.concat(err).toString('utf8'),
        json,
        ms: performance.now() - started,
      });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(typeof call.conf === 'string' ? call.conf : JSON.stringify(call.conf));
  });
}

/**
 * Requests as a runtime sends them for Kubernetes pods of one namespace, on one network and pool:
 * `(command, containerID, netns, pod, annotations)` → the request (CNI_ARGS name the pod).
 */
export function podRequests(on: { namespace: string; network: string; pool: string }) {
  return (
    command: 'ADD' | 'DEL',
    containerID: string,
    netns: string,
    pod: string,
    annotations: Record<string, string> = {},
  ): CniRequest => ({
    v: 1,
    command,
    containerID,
    netns,
    ifName: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${on.namespace};K8S_POD_NAME=${pod}`,
    path: '/opt/cni/bin',
    config: JSON.stringify({
      cniVersion: '1.0.0',
      name: on.network,
      type: 'nodeward',
      ipam: { type: 'nodeward', pool: on.pool },
      runtimeConfig: { 'io.kubernetes.cri.pod-annotations': annotations },
    }),
  });
}

/** A new named network namespace (/run/netns/<name>, as runtimes make them), recorded in `created` for cleanup. */
export async function newNetns(name: string, created: string[]): Promise<string> {
  created.push(name);
  await runOk('ip', ['netns', 'add', name]);
  return `/run/netns/${name}`;
}

/**
 * What the handler tests stand on: a temp dir, a real etcd, the IPAM store on it under `prefix`,
 * and the "host" netns (named `hostNs`) where bridges and host veth ends go.
 */
export async function startCniTestbed(
  lab: Lab,
  name: string,
  prefix: string,
  hostNs: string,
): Promise<{ dir: string; etcd: Etcd; store: EtcdStore }> {
  const dir = await tempDir(name, lab);
  const etcd = await startEtcd({ lab });
  const store = await EtcdStore.open({
    endpoints: etcd.endpoints,
    prefix,
    dialTimeoutMs: 1000,
    requestTimeoutMs: 3000,
  });
  await runOk('ip', ['netns', 'add', hostNs]);
  return { dir, etcd, store };
}
