import type { CniRequest } from '../../../ipam-cni/cni/protocol.ts';
import { EtcdStore } from '../../../ipam-cni/store/etcd.ts';
import { type Etcd, type Lab, runOk, startEtcd, tempDir } from '../../lab/index.ts';

/** What the CNI handler tests stand on: pod requests, netns, a real etcd with the IPAM store. */

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
