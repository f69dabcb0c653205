import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KubeletPodSource,
  type PodInfo,
  type PodMetadataSource,
  type PodRef,
} from '../../shared/pods/index.ts';
import { type Etcd, Lab, run, skipReason } from '../../test/lab/index.ts';
import { newNetns, podRequests, startCniTestbed } from '../../test/support/ipam-cni/testbed.ts';
import { startFakeKubelet } from '../../test/support/pods/fake-kubelet.ts';
import { Ipam } from '../ipam/ipam.ts';
import { addPool } from '../ipam/pools.ts';
import { netnsRunner } from '../net/exec.ts';
import { Segments } from '../net/segment.ts';
import type { EtcdStore } from '../store/etcd.ts';
import { CniHandlers } from './server/handlers.ts';
import type { CniResult } from './server/result.ts';
import { STICKY_ANNOTATION } from './server/sticky.ts';

/**
 * Sticky addresses on the CNI path, through the handlers: real etcd, a "host" netns for the
 * bridge and host veth ends, a netns per pod. A pod deleted and made again with the same
 * namespace/name (a new container ID, as a StatefulSet does) gets its address back.
 */

const reason =
  skipReason({ binaries: ['etcd', 'etcdctl', 'ip', 'bridge', 'nsenter'] }) ??
  (process.getuid?.() === 0 ? undefined : 'needs root (network namespaces)');
if (reason) console.warn(`[lab] CNI sticky tests skipped: ${reason}`);

const lab = new Lab();
const suffix = randomBytes(3).toString('hex');
const hostNs = `nw-sthost-${suffix}`;
const netns: string[] = [];
const prefix = `/nodeward-sticky-${suffix}/ipam/v1/`;
let etcd: Etcd;
let store: EtcdStore;
let handlers: CniHandlers;
let dir: string;
let makeHandlers: (podMetadata: PodMetadataSource | undefined) => CniHandlers;
/** Pods the fake kubelet says a StatefulSet owns. */
const statefulSetPods = new Set<string>();

const metadata: PodMetadataSource = {
  generation: 0,
  get: () => undefined,
  async resolve(ref: PodRef): Promise<PodInfo | undefined> {
    const sts = statefulSetPods.has(`${ref.namespace}/${ref.name}`);
    return {
      uid: ref.uid ?? 'u',
      namespace: ref.namespace,
      name: ref.name,
      labels: {},
      annotations: {},
      owners: sts ? { statefulset: 'db' } : { replicaset: 'web-123', deployment: 'web' },
      containers: [],
    };
  },
};

afterAll(async () => {
  await store?.close().catch(() => {});
  await run('ip', ['-force', '-batch', '-'], {
    input: [hostNs, ...netns].map((n) => `netns del ${n}\n`).join(''),
  });
  await lab.cleanup();
});

let containers = 0;
const podNetns = () => newNetns(`nw-stp${++containers}-${suffix}`, netns);

const request = podRequests({ namespace: 'db', network: 'stickynet', pool: 'sticky' });

/** ADD for a fresh container of `pod`; its address. */
async function add(
  pod: string,
  annotations: Record<string, string> = {},
): Promise<{ id: string; ip: string }> {
  const id = `c${++containers}-${suffix}`;
  const path = await podNetns();
  const r = (await handlers.add(request('ADD', id, path, pod, annotations))) as CniResult;
  const ip = r.ips[0]!.address.split('/')[0]!;
  ids.set(id, path);
  return { id, ip };
}
const ids = new Map<string, string>();
/** DEL, and its teardown (answered first, done in the background) finished. */
const del = async (id: string, pod: string) => {
  await handlers.del(request('DEL', id, ids.get(id)!, pod));
  await handlers.teardowns.idle();
};

describe.skipIf(reason)('sticky addresses through the CNI handlers', () => {
  beforeAll(async () => {
    ({ dir, etcd, store } = await startCniTestbed(lab, 'cni-sticky', prefix, hostNs));
    await addPool(store, {
      name: 'sticky',
      cidr: '10.77.0.0/24',
      gateway: '10.77.0.1',
      ranges: [{ start: '10.77.0.10', end: '10.77.0.20' }],
    });
    const host = netnsRunner(`/run/netns/${hostNs}`);
    makeHandlers = (podMetadata) =>
      new CniHandlers({
        ipam: new Ipam({ store }),
        store,
        segments: new Segments({
          host,
          store,
          node: 'n1',
          master: 'eth0',
          localAddress: undefined,
          vxlanPort: 4789,
          mtu: undefined,
        }),
        host,
        node: 'n1',
        journalDir: dir,
        podMetadata,
      });
    handlers = makeHandlers(metadata);
  });

  it('the annotation: deleted and made again with the same namespace/name, the same address', async () => {
    const first = await add('db-0', { [STICKY_ANNOTATION]: 'true' });
    await del(first.id, 'db-0');
    // The lowest free address would be first.ip again were it not kept: another pod must not get it.
    const other = await add('web-x');
    expect(other.ip).not.toBe(first.ip);
    const again = await add('db-0', { [STICKY_ANNOTATION]: 'true' });
    expect(again.id).not.toBe(first.id);
    expect(again.ip).toBe(first.ip);
    const kept = await etcd.etcdctl(['get', '--print-value-only', `${prefix}sticky/db/db-0/eth0`]);
    expect(JSON.parse(kept).ip).toBe(first.ip);
  });

  it('a StatefulSet owner from the pod-metadata source makes it sticky without the annotation', async () => {
    statefulSetPods.add('db/db-1');
    const first = await add('db-1');
    await del(first.id, 'db-1');
    const other = await add('web-y');
    expect(other.ip).not.toBe(first.ip);
    const again = await add('db-1');
    expect(again.ip).toBe(first.ip);
  });

  it('not sticky: a Deployment pod, or a StatefulSet pod annotated "false", frees its address on DEL', async () => {
    const web = await add('web-z');
    await del(web.id, 'web-z');
    const reuse = await add('web-w');
    expect(reuse.ip).toBe(web.ip);
    statefulSetPods.add('db/db-2');
    const optOut = await add('db-2', { [STICKY_ANNOTATION]: 'false' });
    await del(optOut.id, 'db-2');
    const out = await etcd.etcdctl(['get', '--prefix', '--keys-only', `${prefix}sticky/db/db-2/`]);
    expect(out.trim()).toBe('');
  });

  it("the kubelet's /pods (KubeletPodSource): a StatefulSet-owned pod is sticky", async () => {
    const kubelet = await startFakeKubelet(dir);
    const source = new KubeletPodSource({
      url: kubelet.url,
      tokenFile: kubelet.tokenFile,
      caFile: kubelet.caFile,
      insecureSkipVerify: false,
      timeout: 2000,
      pollInterval: 60_000,
      refreshMinInterval: 0,
      deletedGrace: 60_000,
    });
    const saved = handlers;
    try {
      await source.start();
      handlers = makeHandlers(source);
      // Not listed at the first fetch: the ADD's lookup fetches again.
      kubelet.add({ namespace: 'db', name: 'db-5', owner: { kind: 'StatefulSet', name: 'db' } });
      kubelet.add({ namespace: 'db', name: 'web-5', owner: { kind: 'ReplicaSet', name: 'web-5d4f' } });
      const first = await add('db-5');
      await del(first.id, 'db-5');
      const other = await add('web-5');
      expect(other.ip).not.toBe(first.ip);
      const again = await add('db-5');
      expect(again.ip).toBe(first.ip);
    } finally {
      handlers = saved;
      source.stop();
      await kubelet.close();
    }
  });
});
