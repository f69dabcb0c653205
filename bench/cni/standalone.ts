/**
 * The design the shim avoids: a CNI plugin that is the whole thing — it loads the etcd client,
 * connects, allocates, makes the links and exits, on every call. Same code as the agent's handlers;
 * only where it runs differs. Env as a runtime sets it; NODEWARD_BENCH_ETCD / _PREFIX say where
 * the store is. ADD only (what the bench times).
 */
import { readFileSync } from 'node:fs';
import { CniHandlers } from '../../ipam-cni/cni/server/handlers.ts';
import { Ipam } from '../../ipam-cni/ipam/ipam.ts';
import { netnsRunner } from '../../ipam-cni/net/exec.ts';
import { Segments } from '../../ipam-cni/net/segment.ts';
import { EtcdStore } from '../../ipam-cni/store/etcd.ts';

const env = (n: string) => process.env[n] ?? '';
const store = await EtcdStore.open({
  endpoints: [env('NODEWARD_BENCH_ETCD')],
  prefix: env('NODEWARD_BENCH_PREFIX'),
  dialTimeoutMs: 2000,
  requestTimeoutMs: 5000,
});
try {
  const host = netnsRunner(undefined);
  const node = env('NODEWARD_BENCH_NODE') || 'bench';
  const segments = new Segments({
    host,
    store,
    node,
    master: 'lo',
    localAddress: undefined,
    vxlanPort: 4789,
    mtu: undefined,
  });
  const handlers = new CniHandlers({
    ipam: new Ipam({ store }),
    store,
    segments,
    host,
    node,
    journalDir: '/tmp',
  });
  const result = await handlers.add({
    v: 1,
    command: 'ADD',
    containerID: env('CNI_CONTAINERID'),
    netns: env('CNI_NETNS'),
    ifName: env('CNI_IFNAME'),
    args: env('CNI_ARGS'),
    path: env('CNI_PATH'),
    config: readFileSync(0, 'utf8'),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await store.close();
}
