import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/lab/wait.ts';
import { type FakeApiServer, tempFakeApiServer } from '../../test/support/pods/fake-apiserver.ts';
import { configSchema } from '../config/index.ts';
import { type Kube, KubeError, type Lookup, nodePlacement, sharedKube } from './index.ts';
import { jittered } from './reflector.ts';

/**
 * Namespaces and Nodes from the API server against test/support/pods/fake-apiserver.ts, which
 * answers list and watch of core/v1 namespaces and nodes the way kube-apiserver does (there is
 * none in the lab): field selectors, resourceVersion, chunked watch events, bookmarks, 410.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const NODE = 'node-a';

const apiserver = () => tempFakeApiServer((c) => cleanups.push(c));

function kubeOf(api: FakeApiServer, extra: Record<string, unknown> = {}): Kube {
  const config = configSchema.parse({ pods: api.podsConfig({ resolveWait: '2s', ...extra }) });
  const kube = sharedKube(config.pods, NODE)!;
  cleanups.push(() => kube.stop());
  return kube;
}

const labelsOf = (l: Lookup) => (l.found ? l.labels : undefined);

describe('watched namespaces and this Node (list + watch, kube-apiserver-shaped)', () => {
  it('lists namespaces on the first lookup, not before, and follows their labels and annotations', async () => {
    const api = await apiserver();
    api.addNamespace({
      name: 'shop',
      labels: { team: 'a' },
      annotations: { 'nodeward.io/ipam-pool': 'shop-pool' },
    });
    const kube = kubeOf(api);
    await new Promise((r) => setTimeout(r, 50));
    expect(api.requestsOf('namespaces').list).toBe(0);

    expect(await kube.namespaces.lookup('shop')).toEqual({
      found: true,
      labels: { 'kubernetes.io/metadata.name': 'shop', team: 'a' },
      annotations: { 'nodeward.io/ipam-pool': 'shop-pool' },
    });
    // The Node is not watched until someone asks for node labels.
    expect(api.requestsOf('nodes').list).toBe(0);
    await waitFor(() => api.watchingOf('namespaces') === 1, { what: 'the namespace watch' });

    // A namespace created after the list: a lookup waits for the watch to bring it.
    const pending = kube.namespaces.lookup('late');
    api.addNamespace({ name: 'late', labels: { tier: 'x' } });
    expect(labelsOf(await pending)).toMatchObject({ tier: 'x' });

    api.updateNamespace('shop', (ns) => {
      ns.metadata!.labels = { ...ns.metadata!.labels, team: 'b' };
    });
    await waitFor(async () => labelsOf(await kube.namespaces.lookup('shop'))?.['team'] === 'b', {
      what: 'the MODIFIED labels',
    });
    api.removeNamespace('late');
    await waitFor(async () => !(await kube.namespaces.lookup('late')).found, {
      what: 'the DELETED namespace',
    });
    expect(await kube.namespaces.lookup('late')).toEqual({
      found: false,
      retriable: true,
      why: "namespace late is not in the API server's list of namespaces (yet)",
    });
    expect(api.requestsOf('namespaces').list).toBe(1);
  });

  it("watches only this node's Node, by a metadata.name field selector", async () => {
    const api = await apiserver();
    api.addNode({ name: NODE, labels: { zone: 'edge' } });
    api.addNode({ name: 'node-b', labels: { zone: 'core' } });
    const kube = kubeOf(api);
    expect(labelsOf(await kube.node.lookup(NODE))).toMatchObject({
      zone: 'edge',
      'kubernetes.io/hostname': NODE,
    });
    expect(api.requestsOf('nodes').selectors[0]).toBe(`metadata.name=${NODE}`);
    expect(kube.node.size).toBe(1);
    await waitFor(() => api.watchingOf('nodes') === 1, { what: 'the node watch' });
    api.updateNode('node-b', (n) => {
      n.metadata!.labels = { zone: 'edge' };
    });
    api.updateNode(NODE, (n) => {
      n.metadata!.labels = { ...n.metadata!.labels, zone: 'core' };
    });
    await waitFor(async () => labelsOf(await kube.node.lookup(NODE))?.['zone'] === 'core', {
      what: 'the relabelled node',
    });
    expect(kube.node.size).toBe(1);
  });

  it('says why and that retrying helps while the API server is away; keeps what it knew; relists on 410', async () => {
    const api = await apiserver();
    api.addNamespace({ name: 'shop', labels: { team: 'a' } });
    api.mode = 'down';
    const kube = kubeOf(api);
    const down = await kube.namespaces.lookup('shop');
    expect(down).toMatchObject({ found: false, retriable: true });
    expect(!down.found && down.why).toMatch(/^the API server cannot be asked for namespaces \(unreachable\)/);

    api.mode = 'ok';
    await waitFor(async () => (await kube.namespaces.lookup('shop')).found, { what: 'the retried list' });
    await waitFor(() => api.watchingOf('namespaces') === 1, { what: 'the namespace watch' });

    // Cut off: the labels known stay in use.
    api.mode = 'down';
    api.dropWatches();
    await new Promise((r) => setTimeout(r, 100));
    expect(labelsOf(await kube.namespaces.lookup('shop'))).toMatchObject({ team: 'a' });

    // Back, but its history compacted past our version: 410, then a consistent list.
    api.removeNamespace('shop');
    api.addNamespace({ name: 'fresh' });
    api.compact();
    api.mode = 'ok';
    await waitFor(async () => (await kube.namespaces.lookup('fresh')).found, {
      what: 'the relist after 410',
    });
    expect((await kube.namespaces.lookup('shop')).found).toBe(false);
    expect(api.requestsOf('namespaces').listFrom.at(-1)).toBe('');
  });
});

describe('node placement (fresh reads for the cluster GC)', () => {
  it('whether a Node exists and which pods are bound to it, static pods by their kubelet uid too', async () => {
    const api = await apiserver();
    api.addNode({ name: 'node-b' });
    const web = api.add({ namespace: 'shop', name: 'web-0', node: 'node-b' });
    api.add({ namespace: 'shop', name: 'elsewhere', node: 'node-c' });
    api.add({
      namespace: 'kube-system',
      name: 'etcd-node-b',
      node: 'node-b',
      annotations: { 'kubernetes.io/config.mirror': 'kubelet-uid' },
    });
    const kube = kubeOf(api);
    const placed = await kube.placement('node-b');
    expect(placed.exists).toBe(true);
    expect(placed.pods).toEqual([
      { namespace: 'shop', name: 'web-0', uids: [web.metadata!.uid] },
      { namespace: 'kube-system', name: 'etcd-node-b', uids: [expect.any(String), 'kubelet-uid'] },
    ]);
    // Consistent reads (no resourceVersion), narrowed by field selectors.
    expect(api.requestsOf('nodes').listFrom).toEqual(['']);
    expect(api.requestsOf('pods')).toMatchObject({ listFrom: [''], selectors: ['spec.nodeName=node-b'] });

    api.removeNode('node-b');
    expect(await kube.placement('node-b')).toEqual({ exists: false, pods: [] });
    expect(await kube.placement('never-was')).toEqual({ exists: false, pods: [] });

    // Not answered is never "gone".
    api.mode = 'unauthorized';
    await expect(kube.placement('node-b')).rejects.toBeInstanceOf(KubeError);
    api.mode = 'down';
    await expect(
      nodePlacement(
        {
          url: api.url,
          tokenFile: api.tokenFile,
          caFile: api.caFile,
          insecureSkipVerify: false,
          timeout: 1000,
        },
        'node-b',
      ),
    ).rejects.toMatchObject({ reason: 'unreachable' });
  });
});

describe('reconnect backoff', () => {
  it('spreads each delay over [d/2, 3d/2), so agents that lost the API server together do not come back together', () => {
    const draws = Array.from({ length: 200 }, () => jittered(1000));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...draws)).toBeLessThan(1500);
    // Spread, not one value: at least half of ten 100 ms buckets are hit.
    expect(new Set(draws.map((d) => Math.floor(d / 100))).size).toBeGreaterThanOrEqual(5);
  });
});
