import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../shared/config/index.ts';
import { cniCodeOf, NodewardError } from '../../shared/errors.ts';
import { sharedKube } from '../../shared/kube/index.ts';
import { waitFor } from '../../test/lab/wait.ts';
import { type FakeApiServer, tempFakeApiServer } from '../../test/support/pods/fake-apiserver.ts';
import { MemoryStore } from '../store/memory.ts';
import { type AllocateRequest, Ipam } from './ipam.ts';
import { addPool } from './pools.ts';
import type { AdmissionMetadata } from './select.ts';

/**
 * Pool admission fed from the API server: namespace labels and annotations (the namespace default
 * pool) and this node's labels, from the watches of shared/kube against
 * test/support/pods/fake-apiserver.ts (shaped like kube-apiserver; there is none in the lab).
 * Real selectors, the real Ipam, a memory store: etcd adds nothing to admission.
 */

const NODE = 'node-a';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const POOLS = [
  { name: 'default', cidr: '10.0.0.0/24' },
  { name: 'team', cidr: '10.1.0.0/24', namespaceSelector: { matchLabels: { team: 'a' } } },
  {
    name: 'open',
    cidr: '10.2.0.0/24',
    namespaceSelector: {
      matchExpressions: [{ key: 'nodeward.io/isolated', operator: 'NotIn', values: ['true'] }],
    },
  },
  { name: 'tenant', cidr: '10.3.0.0/24' },
  { name: 'edge', cidr: '10.4.0.0/24', nodeSelector: { matchLabels: { zone: 'edge' } } },
];

async function cluster(): Promise<FakeApiServer> {
  const api = await tempFakeApiServer((c) => cleanups.push(c));
  api.addNamespace({ name: 'team-a', labels: { team: 'a' } });
  api.addNamespace({ name: 'team-b', labels: { team: 'b' } });
  api.addNamespace({ name: 'quarantine', labels: { 'nodeward.io/isolated': 'true' } });
  api.addNamespace({ name: 'acme', annotations: { 'nodeward.io/ipam-pool': 'tenant' } });
  api.addNode({ name: NODE, labels: { zone: 'edge' } });
  return api;
}

/** The Ipam as the network module builds it: metadata from the API server's watches. */
async function ipamOn(
  api: FakeApiServer | undefined,
  options: { pools?: readonly unknown[]; namespaceDefaults?: boolean } = {},
): Promise<Ipam> {
  const store = new MemoryStore();
  for (const p of options.pools ?? POOLS) await addPool(store, p);
  if (api === undefined) return new Ipam({ store });
  const config = configSchema.parse({ pods: api.podsConfig({ resolveWait: '2s' }) });
  const kube = sharedKube(config.pods, NODE)!;
  cleanups.push(() => kube.stop());
  const metadata: AdmissionMetadata = {
    namespace: (name) => kube.namespaces.lookup(name),
    node: (name) => kube.node.lookup(name),
    namespaceDefaults: options.namespaceDefaults,
  };
  return new Ipam({ store, metadata });
}

let n = 0;
/** A pod's ADD as add.ts passes it: the pod annotation's pool, the network's pool. */
const pod = (namespace: string, annotationPool?: string): AllocateRequest => ({
  containerID: `c${++n}`,
  ifName: 'eth0',
  pod: `p${n}`,
  namespace,
  node: NODE,
  selection: { annotationPool, networkPool: 'default' },
});

/** The error an allocation was refused with. */
const refused = (p: Promise<unknown>): Promise<NodewardError> =>
  p.then(
    () => Promise.reject(new Error('expected a refusal')),
    (err: unknown) => (err instanceof NodewardError ? err : Promise.reject(err)),
  );

describe('pool admission from the API server', () => {
  it("namespaceSelector matchLabels admits a labelled namespace's pod and refuses another's", async () => {
    const ipam = await ipamOn(await cluster());
    expect(await ipam.allocate(pod('team-a', 'team'))).toMatchObject({
      pool: 'team',
      ip: expect.stringMatching(/^10\.1\.0\./),
    });
    const err = await refused(ipam.allocate(pod('team-b', 'team')));
    expect(err.code).toBe('POOL_NOT_ALLOWED');
    expect(err.message).toContain(
      'its namespaceSelector does not admit namespace team-b: needs team=a, has team=b',
    );
  });

  it('NotIn refuses a pod of a namespace carrying the label, admits the others', async () => {
    const ipam = await ipamOn(await cluster());
    const err = await refused(ipam.allocate(pod('quarantine', 'open')));
    expect(err.code).toBe('POOL_NOT_ALLOWED');
    expect(err.message).toContain('needs nodeward.io/isolated not in (true), has nodeward.io/isolated=true');
    expect(await ipam.allocate(pod('team-a', 'open'))).toMatchObject({ pool: 'open' });
  });

  it("the namespace annotation picks the namespace's default pool; the network's pool otherwise", async () => {
    const api = await cluster();
    const ipam = await ipamOn(api);
    expect(await ipam.allocate(pod('acme'))).toMatchObject({
      pool: 'tenant',
      ip: expect.stringMatching(/^10\.3\.0\./),
    });
    expect(await ipam.allocate(pod('team-a'))).toMatchObject({ pool: 'default' });
    // The pod annotation still comes first.
    expect(await ipam.allocate(pod('acme', 'default'))).toMatchObject({ pool: 'default' });
    // An annotation added later is followed by the watch.
    api.updateNamespace('team-b', (ns) => {
      ns.metadata!.annotations = { 'nodeward.io/ipam-pool': 'tenant' };
    });
    await waitFor(async () => (await ipam.allocate(pod('team-b'))).pool === 'tenant', {
      what: 'the new namespace default',
    });
    // network.ipam.namespaceDefaults: false ignores the annotation.
    const off = await ipamOn(api, { namespaceDefaults: false });
    expect(await off.allocate(pod('acme'))).toMatchObject({ pool: 'default' });
  });

  it("nodeSelector reads this node's labels, and follows them", async () => {
    const api = await cluster();
    const ipam = await ipamOn(api);
    expect(await ipam.allocate(pod('team-a', 'edge'))).toMatchObject({ pool: 'edge' });
    api.updateNode(NODE, (node) => {
      node.metadata!.labels = { ...node.metadata!.labels, zone: 'core' };
    });
    const err = await waitFor(
      async () => {
        const e = await refused(ipam.allocate(pod('team-a', 'edge'))).catch(() => undefined);
        return e?.code === 'POOL_NOT_ALLOWED' ? e : undefined;
      },
      { what: 'the relabelled node to be refused' },
    );
    expect(err.message).toContain(
      'its nodeSelector does not admit node node-a: needs zone=edge, has zone=core',
    );
  });

  it('watches the Node only when a pool selects on node labels', async () => {
    const api = await cluster();
    const ipam = await ipamOn(api, { pools: POOLS.filter((p) => p.name !== 'edge') });
    await ipam.allocate(pod('team-a', 'team'));
    await ipam.allocate(pod('acme'));
    expect(api.requestsOf('namespaces').list).toBe(1);
    expect(api.requestsOf('nodes').list).toBe(0);
  });

  it('API server down: CNI 11 only where labels or the namespace default are needed; the rest is served', async () => {
    const api = await cluster();
    api.mode = 'down';
    const ipam = await ipamOn(api);
    for (const p of [pod('team-a', 'team'), pod('team-a', 'edge'), pod('acme')]) {
      const err = await refused(ipam.allocate(p));
      expect(err.code).toBe('POD_METADATA_UNAVAILABLE');
      expect(err.retriable).toBe(true);
      expect(cniCodeOf(err)).toBe(11);
    }
    const err = await refused(ipam.allocate(pod('team-a', 'team')));
    expect(err.message).toMatch(
      /^pool team \(pod annotation nodeward.io\/ipam-pool\) cannot be checked yet: its namespaceSelector needs the labels of namespace team-a, which are not known: the API server cannot be asked for namespaces \(unreachable\)/,
    );
    // A pool without selectors, named by the pod: no labels needed.
    expect(await ipam.allocate(pod('team-a', 'default'))).toMatchObject({ pool: 'default' });
    // Without namespace defaults, the network's pool needs nothing from the API server either.
    const off = await ipamOn(api, { namespaceDefaults: false });
    expect(await off.allocate(pod('acme'))).toMatchObject({ pool: 'default' });

    // A repeated ADD finds its handle, whatever the API server says.
    api.mode = 'ok';
    const first = pod('team-a', 'team');
    const got = await waitFor(() => ipam.allocate(first).catch(() => undefined), {
      what: 'the API server back',
    });
    api.mode = 'down';
    api.dropWatches();
    expect(await ipam.allocate(first)).toMatchObject({ ip: got.ip, existing: true });
  });

  it('no API server to ask: a pool whose selector needs labels refuses, saying why; NotIn too', async () => {
    const ipam = await ipamOn(undefined);
    for (const pool of ['team', 'open']) {
      const err = await refused(ipam.allocate(pod('team-a', pool)));
      expect(err.code).toBe('POOL_NOT_ALLOWED');
      expect(err.message).toContain(
        `its namespaceSelector needs the labels of namespace team-a, which are not known: this agent reads no namespace labels`,
      );
    }
    expect(await ipam.allocate(pod('acme'))).toMatchObject({ pool: 'default' });
  });
});
