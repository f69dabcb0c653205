import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../shared/config/index.ts';
import { sharedKube } from '../../shared/kube/index.ts';
import { type FakeApiServer, tempFakeApiServer } from '../../test/support/pods/fake-apiserver.ts';
import { Ipam } from '../ipam/ipam.ts';
import { handlesPrefix } from '../ipam/keys.ts';
import { addPool } from '../ipam/pools.ts';
import { MemoryStore } from '../store/memory.ts';
import { ClusterGc } from './cluster.ts';

/**
 * The cluster GC decides node death with the API server (test/support/pods/fake-apiserver.ts,
 * shaped like kube-apiserver): a node whose liveness lease is gone keeps the addresses of the pods
 * the API server still binds to it while its Node exists. A memory store holds no liveness keys —
 * every other node's lease is gone — which is all these tests need from the store; the lease
 * itself is tested against etcd in gc.etcd.test.ts.
 */

const GRACE = 15 * 60_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const api = await tempFakeApiServer((c) => cleanups.push(c));
  const kube = sharedKube(configSchema.parse({ pods: api.podsConfig() }).pods, 'leader')!;
  cleanups.push(() => kube.stop());
  const store = new MemoryStore();
  await addPool(store, { name: 'p', cidr: '10.70.0.0/24', blockSize: 28 });
  const ipam = new Ipam({ store });
  const clock = { t: 1_000_000 };
  const gc = new ClusterGc({
    store,
    node: 'leader',
    graceMs: GRACE,
    now: () => clock.t,
    nodes: { placement: (node) => kube.placement(node) },
  });
  const handles = async () => (await store.list(handlesPrefix)).entries.map((e) => e.key.split('/')[1]);
  return { api, store, ipam, clock, gc, handles };
}

/** A pod the API server binds to `node`, and its address allocated there (the ADD records its uid). */
async function running(api: FakeApiServer, ipam: Ipam, node: string, name: string) {
  const pod = api.add({ namespace: 'shop', name, node });
  await ipam.allocate({
    containerID: name,
    ifName: 'eth0',
    pod: name,
    namespace: 'shop',
    node,
    podUid: pod.metadata!.uid,
    pool: 'p',
  });
  return pod;
}

describe('cluster GC: node death decided with the API server, not the lease alone', () => {
  it('lease gone, Node present, its pods still listed: nothing is freed; a pod gone from the API server is', async () => {
    const { api, ipam, clock, gc, handles } = await setup();
    api.addNode({ name: 'crashloop' });
    const web = await running(api, ipam, 'crashloop', 'web-0');
    await running(api, ipam, 'crashloop', 'db-0');
    const job = await running(api, ipam, 'crashloop', 'job-1');

    expect(await gc.round()).toMatchObject({ missing: ['crashloop'], collected: [] });
    clock.t += GRACE * 4;
    const late = await gc.round();
    expect(late).toMatchObject({ collected: ['crashloop'], released: [], blocksReleased: [] });
    expect(late.kept).toHaveLength(3);
    expect(await handles()).toEqual(['db-0', 'job-1', 'web-0']);

    // The Job's pod is deleted (its DEL went to a journal no agent replays): only its address goes.
    api.remove(job.metadata!.uid!);
    // A pod re-created under the same name has another uid: the address recorded for the old one goes.
    api.remove(web.metadata!.uid!);
    api.add({ namespace: 'shop', name: 'web-0', node: 'crashloop' });
    const next = await gc.round();
    expect(next.released.map((k) => k.split('/')[1]).sort()).toEqual(['job-1', 'web-0']);
    expect(await handles()).toEqual(['db-0']);
  });

  it('Node deleted: its addresses are freed once the grace has passed, pods still bound to it or not', async () => {
    const { api, ipam, clock, gc, handles } = await setup();
    api.addNode({ name: 'gone' });
    for (const name of ['a-0', 'b-0']) await running(api, ipam, 'gone', name);
    await gc.round();
    clock.t += GRACE;
    expect((await gc.round()).released).toEqual([]); // the Node still exists, with its pods

    // The node is deleted; its pods are still bound to it until the pod GC removes them.
    api.removeNode('gone');
    const freed = await gc.round();
    expect(freed).toMatchObject({ collected: ['gone'], kept: [] });
    expect(freed.released).toHaveLength(2);
    expect(freed.blocksReleased).toHaveLength(1);
    expect(await handles()).toEqual([]);
  });

  it('a Node deleted within the grace waits for the grace', async () => {
    const { api, ipam, clock, gc, handles } = await setup();
    await running(api, ipam, 'never-registered', 'x-0');
    expect((await gc.round()).released).toEqual([]);
    clock.t += GRACE - 1;
    expect((await gc.round()).released).toEqual([]);
    // The API server is asked only once the grace has passed, at the moment of the decision.
    expect(api.requestsOf('nodes').list).toBe(0);
    clock.t += 1;
    expect((await gc.round()).released).toHaveLength(1);
    expect(api.requestsOf('nodes')).toMatchObject({ list: 1, selectors: ['metadata.name=never-registered'] });
    expect(await handles()).toEqual([]);
  });

  it('API server down, or none to ask: nothing is freed, and the first answer decides', async () => {
    const { api, store, ipam, clock, gc, handles } = await setup();
    await running(api, ipam, 'gone', 'a-0');
    await gc.round();
    clock.t += GRACE;
    api.mode = 'down';
    expect(await gc.round()).toMatchObject({ unconfirmed: ['gone'], collected: [], released: [] });
    api.mode = 'unauthorized';
    expect(await gc.round()).toMatchObject({ unconfirmed: ['gone'], released: [] });
    expect(await handles()).toEqual(['a-0']);

    const blind = new ClusterGc({ store, node: 'leader', graceMs: 0 });
    await blind.round();
    expect(await blind.round()).toMatchObject({ unconfirmed: ['gone'], released: [] });
    expect(await handles()).toEqual(['a-0']);

    api.mode = 'ok';
    expect((await gc.round()).released).toHaveLength(1);
    expect(await handles()).toEqual([]);
  });
});
