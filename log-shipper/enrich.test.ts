import { describe, expect, it } from 'vitest';
import { type PodMetadataSource, podInfoOf } from '../shared/pods/index.ts';
import { v1Pod } from '../test/support/pods/fake-kubelet.ts';
import { createEnricher, labelsFromContainerLogName, labelsFromPodLogPath } from './enrich.ts';

const ID = 'a'.repeat(24) + '0123456789abcdef'.repeat(2) + 'b'.repeat(8);

describe('enrich', () => {
  it('reads pod, namespace, container and id from a kubelet container log name', () => {
    expect(labelsFromContainerLogName(`/var/log/containers/web-7d9f-x2k_shop_nginx-${ID}.log`)).toEqual({
      pod: 'web-7d9f-x2k',
      namespace: 'shop',
      container: 'nginx',
      container_id: ID,
    });
  });

  it('gives no labels for names that are not kubelet-shaped', () => {
    for (const name of [
      'app.log',
      `a_b-${ID}.log`,
      `a_b_c-${ID.slice(1)}.log`,
      `a_b_c-${ID.toUpperCase()}.log`,
      `a__c-${ID}.log`,
    ]) {
      expect(labelsFromContainerLogName(`/r/${name}`), name).toEqual({});
    }
  });

  it('reads namespace, pod, uid and container from the /var/log/pods path', () => {
    expect(
      labelsFromPodLogPath('/var/log/pods/shop_web-1_0b7c6f3e-1111-2222-3333-444455556666/nginx/3.log'),
    ).toEqual({
      namespace: 'shop',
      pod: 'web-1',
      pod_uid: '0b7c6f3e-1111-2222-3333-444455556666',
      container: 'nginx',
    });
  });

  it('combines both, trusting the pod directory only for the same pod, and adds what the pod source knows', async () => {
    const pod = podInfoOf(
      v1Pod({
        namespace: 'shop',
        name: 'web-1',
        uid: 'u1',
        labels: { app: 'web', 'app.kubernetes.io/part-of': 'shop', 'pod-template-hash': 'abc12' },
        owner: { kind: 'ReplicaSet', name: 'web-abc12' },
        containers: [{ name: 'nginx', id: 'c'.repeat(64) }],
      }),
    )!;
    const metadata: PodMetadataSource = {
      get: (ref) => (ref.namespace === 'shop' && ref.name === 'web-1' && ref.uid === 'u1' ? pod : undefined),
      resolve: async (ref) => metadata.get(ref),
      generation: 1,
    };
    const enricher = createEnricher({ node: 'n1', metadata, podLabels: ['app', 'app.kubernetes.io/*'] });
    expect(
      enricher.labels({ path: `/c/web-1_shop_nginx-${ID}.log`, realPath: '/p/shop_web-1_u1/nginx/0.log' }),
    ).toEqual({
      pod,
      missing: false,
      labels: {
        node: 'n1',
        namespace: 'shop',
        pod: 'web-1',
        pod_uid: 'u1',
        container: 'nginx',
        container_id: ID,
        deployment: 'web',
        replicaset: 'web-abc12',
        pod_labels: { app: 'web', 'app.kubernetes.io/part-of': 'shop' },
      },
    });
    // A link name cut at 255 characters: the container id comes from the pod's status.
    expect(
      (await enricher.resolve({ path: '/c/cut.log', realPath: '/p/shop_web-1_u1/nginx/0.log' })).labels
        .container_id,
    ).toBe('c'.repeat(64));
    expect(
      enricher.labels({ path: `/c/web-1_shop_nginx-${ID}.log`, realPath: '/p/other_web-9_u9/x/0.log' }),
    ).toEqual({
      pod: undefined,
      missing: true,
      labels: { node: 'n1', namespace: 'shop', pod: 'web-1', container: 'nginx', container_id: ID },
    });
    expect(enricher.labels({ path: '/c/app.log', realPath: '/c/app.log' })).toEqual({
      pod: undefined,
      missing: false,
      labels: { node: 'n1' },
    });
    expect(
      createEnricher({ node: 'n1' }).labels({ path: `/c/web-1_shop_nginx-${ID}.log`, realPath: '/x' })
        .missing,
    ).toBe(false);
  });
});
