import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/lab/wait.ts';
import { type FakeApiServer, startFakeApiServer } from '../../test/support/pods/fake-apiserver.ts';
import { configSchema } from '../config/index.ts';
import {
  ApiServerPodSource,
  type ApiServerPodSourceOptions,
  inClusterUrl,
  KubeletPodSource,
  sharedPodSource,
} from './index.ts';

/**
 * The API-server pod source against shared/pods/fake-apiserver.ts, which answers list and watch
 * of core/v1 pods the way kube-apiserver does (there is none in the lab): field selector,
 * resourceVersion, chunked watch events, bookmarks, 410 Expired.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const NODE = 'node-a';

async function apiserver(): Promise<FakeApiServer> {
  const dir = mkdtempSync(join(tmpdir(), 'nodeward-apiserver-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const api = await startFakeApiServer(dir);
  cleanups.push(() => api.close());
  return api;
}

function source(api: FakeApiServer, over: Partial<ApiServerPodSourceOptions> = {}): ApiServerPodSource {
  const s = new ApiServerPodSource({
    url: api.url,
    tokenFile: api.tokenFile,
    caFile: api.caFile,
    insecureSkipVerify: false,
    timeout: 2000,
    node: NODE,
    watchTimeout: 60_000,
    resolveWait: 1000,
    deletedGrace: 60_000,
    backoffInitial: 50,
    backoffMax: 200,
    ...over,
  });
  cleanups.push(async () => {
    s.stop();
    await s.stopped();
  });
  return s;
}

function failures(s: ApiServerPodSource): string[] {
  const seen: string[] = [];
  s.subscribe({ failed: (reason) => seen.push(reason) });
  return seen;
}

describe('API-server pod source (list + watch of this node, kube-apiserver-shaped)', () => {
  it("lists this node's pods, then follows ADDED, MODIFIED and DELETED from the watch", async () => {
    const api = await apiserver();
    const web = api.add({
      namespace: 'shop',
      name: 'web-7d9f8c6b5-x2k4p',
      node: NODE,
      labels: { app: 'web', 'pod-template-hash': '7d9f8c6b5' },
      owner: { kind: 'ReplicaSet', name: 'web-7d9f8c6b5' },
    });
    const elsewhere = api.add({ namespace: 'shop', name: 'other-node', node: 'node-b' });
    const s = source(api, { deletedGrace: 300 });
    const failed = failures(s);
    await s.start();
    expect(failed).toEqual([]);
    expect(s.get({ namespace: 'shop', name: 'web-7d9f8c6b5-x2k4p' })).toMatchObject({
      uid: web.metadata!.uid,
      owners: { deployment: 'web' },
      labels: { app: 'web' },
    });
    // The field selector keeps other nodes' pods out, in the list and in the watch.
    expect(s.get({ namespace: 'shop', name: 'other-node', uid: elsewhere.metadata!.uid })).toBeUndefined();
    await waitFor(() => api.watching === 1, { what: 'the watch to open' });
    api.add({ namespace: 'shop', name: 'late-b', node: 'node-b' });

    // A pod bound to this node after the list arrives through the watch; resolve() waits for it.
    const pending = s.resolve({ namespace: 'db', name: 'db-0' });
    const db = api.add({
      namespace: 'db',
      name: 'db-0',
      node: NODE,
      owner: { kind: 'StatefulSet', name: 'db' },
    });
    expect((await pending)?.uid).toBe(db.metadata!.uid);
    expect(s.get({ namespace: 'shop', name: 'late-b' })).toBeUndefined();

    api.update(db.metadata!.uid!, (p) => {
      p.metadata!.labels = { ...p.metadata!.labels, tier: 'data' };
    });
    await waitFor(() => s.get({ namespace: 'db', name: 'db-0' })?.labels['tier'] === 'data', {
      what: 'the MODIFIED labels',
    });

    // DELETED: kept for the grace period (its last lines still get labels), then forgotten.
    api.remove(web.metadata!.uid!);
    await new Promise((r) => setTimeout(r, 100));
    expect(s.get({ namespace: 'shop', name: 'web-7d9f8c6b5-x2k4p' })?.uid).toBe(web.metadata!.uid);
    await waitFor(() => s.get({ namespace: 'shop', name: 'web-7d9f8c6b5-x2k4p' }) === undefined, {
      what: 'the deleted pod to expire after deletedGrace',
      timeoutMs: 5000,
    });
    // A resolve for a pod that never comes gives up after resolveWait.
    const t0 = Date.now();
    expect(await s.resolve({ namespace: 'x', name: 'never' })).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    // One list; no polling.
    expect(api.requests.list).toBe(1);
  });

  it('resumes a cut watch from the last resourceVersion (bookmarks included) without listing again', async () => {
    const api = await apiserver();
    api.add({ namespace: 'a', name: 'p', node: NODE });
    const s = source(api);
    await s.start();
    await waitFor(() => api.watching === 1, { what: 'the watch to open' });
    // Changes elsewhere move the cluster's version; a bookmark tells our watch about it.
    api.add({ namespace: 'a', name: 'q', node: 'node-b' });
    api.bookmark();
    const bookmarked = api.resourceVersion;
    await new Promise((r) => setTimeout(r, 100));

    api.dropWatches();
    // Created while no watch was open: replayed on the resumed watch.
    const during = api.add({ namespace: 'a', name: 'during', node: NODE });
    await waitFor(() => s.get({ namespace: 'a', name: 'during' })?.uid === during.metadata!.uid, {
      what: 'the pod created while the watch was cut',
    });
    expect(api.requests.list).toBe(1);
    expect(api.requests.watchFrom.at(-1)).toBe(bookmarked);
  });

  it('takes a watch that brings nothing, not even a bookmark, for watchIdleTimeout for dead and watches again', async () => {
    const api = await apiserver();
    const s = source(api, { watchIdleTimeout: 400 });
    await s.start();
    await waitFor(() => api.watching === 1, { what: 'the watch to open' });
    // Bookmarks keep a quiet watch alive.
    for (let i = 0; i < 6; i++) {
      api.bookmark();
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(api.requests.watchFrom).toHaveLength(1);
    // The connection dies without either end knowing: the pod comes only on a new watch.
    api.muteWatches();
    const pod = api.add({ namespace: 'a', name: 'after', node: NODE });
    await waitFor(() => s.get({ namespace: 'a', name: 'after' })?.uid === pod.metadata!.uid, {
      what: 'the pod added after the watch went dead (watchTimeout is a minute)',
      timeoutMs: 5000,
    });
    expect(api.requests.list).toBe(1);
  });

  it('lists again on 410 Expired, and the new list settles pods deleted meanwhile', async () => {
    const api = await apiserver();
    const old = api.add({ namespace: 'a', name: 'old', node: NODE });
    const s = source(api, { deletedGrace: 0 });
    await s.start();
    await waitFor(() => api.watching === 1, { what: 'the watch to open' });
    api.dropWatches();
    api.mode = 'down';
    await new Promise((r) => setTimeout(r, 100));
    api.remove(old.metadata!.uid!);
    const fresh = api.add({ namespace: 'a', name: 'fresh', node: NODE });
    api.compact();
    api.mode = 'ok';
    await waitFor(() => s.get({ namespace: 'a', name: 'fresh' })?.uid === fresh.metadata!.uid, {
      what: 'the relist after 410',
    });
    expect(api.requests.list).toBe(2);
    // The relist is a consistent read (no resourceVersion), not the watch cache's possibly older view.
    expect(api.requests.listFrom).toEqual(['0', '']);
    expect(s.get({ namespace: 'a', name: 'old' })).toBeUndefined();

    // A server answering 410 to every watch, even from a fresh list's version: lists back off
    // (50, 100, 200, 200 … ms here) instead of looping.
    const failed = failures(s);
    api.expireEverything();
    api.dropWatches();
    await waitFor(() => failed.length >= 3, { what: 'three failed rounds' });
    expect(new Set(failed)).toEqual(new Set(['gone']));
    expect(api.requests.list).toBeLessThanOrEqual(2 + failed.length + 1);
  });

  it('reports failures by reason, keeps what it knew, retries with backoff and recovers', async () => {
    const api = await apiserver();
    const pod = api.add({ namespace: 'a', name: 'p', node: NODE });
    api.mode = 'unauthorized';
    const s = source(api);
    const failed = failures(s);
    let refreshed = 0;
    s.subscribe({ refreshed: () => refreshed++ });
    // start() resolves after the first attempt even when it fails.
    await s.start();
    expect(failed).toEqual(['unauthorized']);
    api.mode = 'ok';
    await waitFor(() => s.get({ namespace: 'a', name: 'p' }) !== undefined, { what: 'the retry to list' });
    expect(refreshed).toBe(1);

    api.mode = 'down';
    api.dropWatches();
    await waitFor(() => failed.includes('unreachable'), { what: 'the failed reconnect' });
    // Nothing ages out while the API server cannot say what was deleted.
    expect(s.get({ namespace: 'a', name: 'p' })?.uid).toBe(pod.metadata!.uid);
    api.mode = 'ok';
    await waitFor(() => refreshed === 2, { what: `the reconnect to be reported (${refreshed}, ${failed})` });

    // stop() closes the watch.
    s.stop();
    await s.stopped();
    await waitFor(() => api.watching === 0, { what: 'the watch to close' });
  });
});

describe('API-server pod source: what the real world sends', () => {
  it('finds a static pod by the kubelet uid of its mirror annotation (its log directory and cgroup)', async () => {
    const api = await apiserver();
    const kubeletUid = '3c1f8e1b2a0d9c8b7a6f5e4d3c2b1a09';
    const mirror = api.add({
      namespace: 'kube-system',
      name: `etcd-${NODE}`,
      node: NODE,
      annotations: { 'kubernetes.io/config.mirror': kubeletUid },
    });
    const s = source(api);
    await s.start();
    expect(s.get({ namespace: 'kube-system', name: `etcd-${NODE}`, uid: kubeletUid })?.uid).toBe(
      mirror.metadata!.uid,
    );
    // The API server's own uid still finds it; an unrelated uid does not.
    expect(
      s.get({ namespace: 'kube-system', name: `etcd-${NODE}`, uid: mirror.metadata!.uid }),
    ).toBeDefined();
    expect(s.get({ namespace: 'kube-system', name: `etcd-${NODE}`, uid: 'other' })).toBeUndefined();
  });

  it('survives a line that is not a watch event (a broken proxy): reported, the stream dropped, watched again', async () => {
    const api = await apiserver();
    const s = source(api);
    const failed = failures(s);
    await s.start();
    await waitFor(() => api.watching === 1, { what: 'the watch to open' });
    api.sendRaw('<html>502 Bad Gateway</html>');
    await waitFor(() => failed.includes('bad_json'), { what: 'the bad line to be reported' });
    // The broken stream is closed by us, not left open to fail later; a new watch takes over.
    await waitFor(() => api.requests.watch >= 2 && api.watching === 1, { what: 'a new watch' });
    const later = api.add({ namespace: 'a', name: 'later', node: NODE });
    await waitFor(() => s.get({ namespace: 'a', name: 'later' })?.uid === later.metadata!.uid, {
      what: 'a pod from the new watch',
    });
  });
});

describe('pods config → one shared source', () => {
  it('gives every module of an agent the same source of the configured kind, none when off', () => {
    const kubelet = configSchema.parse({ pods: { source: 'kubelet' } });
    const a = sharedPodSource(kubelet.pods, 'n1');
    expect(a).toBeInstanceOf(KubeletPodSource);
    expect(sharedPodSource(kubelet.pods, 'n1')).toBe(a);
    expect(sharedPodSource(configSchema.parse({ pods: { source: 'kubelet' } }).pods, 'n1')).not.toBe(a);
    expect(sharedPodSource(configSchema.parse({}).pods, 'n1')).toBeUndefined();
    const api = configSchema.parse({ pods: { source: 'apiserver' } });
    expect(
      sharedPodSource(api.pods, 'n1', {
        KUBERNETES_SERVICE_HOST: '10.96.0.1',
        KUBERNETES_SERVICE_PORT: '443',
      }),
    ).toBeInstanceOf(ApiServerPodSource);
  });

  it('finds the API server in a pod from the env the kubelet sets, and says what to do outside one', () => {
    expect(inClusterUrl({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' })).toBe(
      'https://10.96.0.1:443',
    );
    expect(inClusterUrl({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' })).toBe(
      'https://[fd00::1]:6443',
    );
    expect(() => inClusterUrl({})).toThrow(
      /pods\.apiserver\.url is empty and KUBERNETES_SERVICE_HOST is not set/,
    );
  });
});
