import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeKubelet, startFakeKubelet, v1Pod } from '../../test/support/pods/fake-kubelet.ts';
import {
  containerIdOf,
  KubeletPodSource,
  type KubeletPodSourceOptions,
  ownersOf,
  podInfoOf,
} from './index.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function kubelet(opts: { tls?: boolean } = {}): Promise<{ k: FakeKubelet; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'nodeward-pods-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const k = await startFakeKubelet(dir, opts);
  cleanups.push(() => k.close());
  return { k, dir };
}

function source(k: FakeKubelet, over: Partial<KubeletPodSourceOptions> = {}): KubeletPodSource {
  const s = new KubeletPodSource({
    url: k.url,
    tokenFile: k.tokenFile,
    caFile: k.caFile,
    insecureSkipVerify: false,
    timeout: 2000,
    pollInterval: 60_000,
    refreshMinInterval: 0,
    deletedGrace: 60_000,
    ...over,
  });
  cleanups.push(() => s.stop());
  return s;
}

function failures(s: KubeletPodSource): string[] {
  const reasons: string[] = [];
  s.subscribe({ failed: (reason) => reasons.push(reason) });
  return reasons;
}

describe('owner resolution', () => {
  const owned = (kind: string, name: string, labels: Record<string, string> = {}, created?: Date) =>
    ownersOf(
      v1Pod({ namespace: 'n', name: 'p', owner: { kind, name }, labels, ...(created ? { created } : {}) }),
    );

  it('names the Deployment: the ReplicaSet name minus its pod-template-hash', () => {
    expect(owned('ReplicaSet', 'web-api-7d9f8c6b5', { 'pod-template-hash': '7d9f8c6b5' })).toEqual({
      replicaset: 'web-api-7d9f8c6b5',
      deployment: 'web-api',
    });
    // A ReplicaSet of its own (no hash suffix): no Deployment is made up.
    expect(owned('ReplicaSet', 'web-api', { 'pod-template-hash': '7d9f8c6b5' })).toEqual({
      replicaset: 'web-api',
    });
    expect(owned('ReplicaSet', 'web-api-7d9f8c6b5')).toEqual({ replicaset: 'web-api-7d9f8c6b5' });
  });

  it('names StatefulSets, DaemonSets, Jobs, and CronJobs only when the Job name carries its schedule', () => {
    expect(owned('StatefulSet', 'db')).toEqual({ statefulset: 'db' });
    expect(owned('DaemonSet', 'agent')).toEqual({ daemonset: 'agent' });
    const scheduled = new Date('2026-11-22T03:00:00Z');
    const minutes = scheduled.getTime() / 60_000;
    expect(owned('Job', `backup-${minutes}`, {}, new Date(scheduled.getTime() + 5000))).toEqual({
      job: `backup-${minutes}`,
      cronjob: 'backup',
    });
    // Created before its "schedule", or days after it: a Job that happens to end in digits.
    expect(owned('Job', `backup-${minutes}`, {}, new Date(scheduled.getTime() - 60_000))).toEqual({
      job: `backup-${minutes}`,
    });
    expect(owned('Job', `backup-${minutes}`, {}, new Date(scheduled.getTime() + 3 * 86_400_000))).toEqual({
      job: `backup-${minutes}`,
    });
    expect(owned('Job', 'migrate-42')).toEqual({ job: 'migrate-42' });
    expect(ownersOf(v1Pod({ namespace: 'n', name: 'static' }))).toEqual({});
  });

  it('maps <restarts>.log to the current or the previous container id', () => {
    const pod = podInfoOf(
      v1Pod({
        namespace: 'n',
        name: 'p',
        containers: [{ name: 'app', id: 'cur', lastId: 'prev', restartCount: 3 }],
      }),
    )!;
    expect(containerIdOf(pod, 'app', 3)).toBe('cur');
    expect(containerIdOf(pod, 'app', 2)).toBe('prev');
    expect(containerIdOf(pod, 'app', 1)).toBeUndefined();
    expect(containerIdOf(pod, 'other', 3)).toBeUndefined();
  });
});

describe('kubelet pod source (kubelet-shaped /pods over HTTPS with a bearer token)', () => {
  it('lists pods with the service-account token and CA, and refreshes on demand for an unknown pod', async () => {
    const { k } = await kubelet();
    const web = k.add({
      namespace: 'shop',
      name: 'web-7d9f8c6b5-x2k4p',
      labels: { app: 'web', 'pod-template-hash': '7d9f8c6b5' },
      owner: { kind: 'ReplicaSet', name: 'web-7d9f8c6b5' },
    });
    const s = source(k, { refreshMinInterval: 400 });
    const failed = failures(s);
    // The first fetch starts after this instant, so a rate-limited second one cannot start before
    // it plus the interval, however slow the machine.
    const beforeFirstFetch = Date.now();
    await s.start();
    expect(failed).toEqual([]);
    const got = s.get({ namespace: 'shop', name: 'web-7d9f8c6b5-x2k4p' });
    expect(got).toMatchObject({
      uid: web.metadata!.uid,
      owners: { deployment: 'web' },
      labels: { app: 'web' },
    });
    // The uid decides when a name is reused.
    expect(s.get({ namespace: 'shop', name: 'web-7d9f8c6b5-x2k4p', uid: 'other' })).toBeUndefined();

    const requests = k.requests;
    const late = k.add({ namespace: 'shop', name: 'late', owner: { kind: 'StatefulSet', name: 'late' } });
    // Rate-limited: the last fetch was just now, so the fetch waits for the interval; callers share it.
    const [r1, r2] = await Promise.all([
      s.resolve({ namespace: 'shop', name: 'late' }),
      s.resolve({ namespace: 'shop', name: 'nobody' }),
    ]);
    expect(Date.now() - beforeFirstFetch).toBeGreaterThanOrEqual(400);
    expect(r1?.uid).toBe(late.metadata!.uid);
    expect(r2).toBeUndefined();
    expect(k.requests).toBe(requests + 1);

    const eager = source(k, { refreshMinInterval: 0 });
    await eager.start();
    const late2 = k.add({ namespace: 'shop', name: 'later' });
    const before = k.requests;
    const [a, b] = await Promise.all([
      eager.resolve({ namespace: 'shop', name: 'later', uid: late2.metadata!.uid }),
      eager.resolve({ namespace: 'shop', name: 'late' }),
    ]);
    expect(a?.uid).toBe(late2.metadata!.uid);
    expect(b?.owners).toEqual({ statefulset: 'late' });
    expect(b?.uid).toBe(late.metadata!.uid);
    // Concurrent callers share one fetch.
    expect(k.requests).toBe(before + 1);
  });

  it('keeps a deleted pod for the grace period, then forgets it', async () => {
    const { k } = await kubelet({ tls: false });
    const pod = k.add({ namespace: 'a', name: 'gone' });
    const s = source(k, { deletedGrace: 300 });
    await s.start();
    k.remove(pod.metadata!.uid!);
    await s.refresh();
    expect(s.get({ namespace: 'a', name: 'gone' })?.uid).toBe(pod.metadata!.uid);
    await new Promise((r) => setTimeout(r, 350));
    await s.refresh();
    expect(s.get({ namespace: 'a', name: 'gone' })).toBeUndefined();
    expect(s.size).toBe(0);
  });

  it('reports failures by reason and keeps what it knew: down, 401, bad JSON, untrusted certificate', async () => {
    const { k, dir } = await kubelet();
    const pod = k.add({ namespace: 'a', name: 'p' });
    const s = source(k, { deletedGrace: 0 });
    const failed = failures(s);
    await s.start();
    for (const mode of ['down', 'unauthorized', 'bad_json'] as const) {
      k.mode = mode;
      await s.refresh();
    }
    expect(failed).toEqual(['unreachable', 'unauthorized', 'bad_json']);
    // Nothing ages out while the kubelet cannot say what was deleted.
    expect(s.get({ namespace: 'a', name: 'p' })?.uid).toBe(pod.metadata!.uid);
    k.mode = 'ok';

    // A wrong token file is a 401 too; the token file is re-read on every request.
    writeFileSync(k.tokenFile, 'wrong');
    await s.refresh();
    expect(failed.at(-1)).toBe('unauthorized');

    const noCa = source(k, { caFile: join(dir, 'missing.crt') });
    const noCaFailed = failures(noCa);
    await noCa.start();
    expect(noCaFailed).toEqual(['tls']);

    const insecure = source(k, {
      caFile: join(dir, 'missing.crt'),
      insecureSkipVerify: true,
      tokenFile: join(dir, 'none'),
    });
    const insecureFailed = failures(insecure);
    await insecure.start();
    // The certificate is accepted; without a token the kubelet says 401.
    expect(insecureFailed).toEqual(['unauthorized']);

    const closed = source(k, { url: 'https://127.0.0.1:1/pods' });
    const closedFailed = failures(closed);
    await closed.start();
    expect(closedFailed).toEqual(['unreachable']);
  });
});
