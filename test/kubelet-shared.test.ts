import { afterAll, describe, expect, it } from 'vitest';
import { createMetricsModule } from '../agent/metrics/index.ts';
import { fixture, parseExposition } from '../agent/metrics/testing.ts';
import { configSchema } from '../shared/config/index.ts';
import { createLogger } from '../shared/logger.ts';
import { startFakeKubelet } from '../shared/pods/fake-kubelet.ts';
import { sharedPodSource } from '../shared/pods/index.ts';
import { tempDir } from './cli.ts';
import { waitFor } from './lab/index.ts';

/**
 * The top-level `kubelet` section feeds every module from one cache. Here the metrics module on a
 * containerd-style node (no Docker socket: containers found by the kubelet's cgroup layout, a
 * fixture tree) names its containers from a kubelet-shaped /pods (shared/pods/fake-kubelet.ts;
 * there is no kubelet in the lab) reached only through that config section.
 */

const POD_UID = '0b7c5a2e-9f3d-4c1e-8a6b-2d4f6e8a0c1b';
const ID = '3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a';

const dir = tempDir();
afterAll(() => dir.remove());

describe('top-level kubelet section', () => {
  it('is one cache per config, and none when disabled', () => {
    const on = configSchema.parse({ kubelet: { enabled: true } });
    expect(sharedPodSource(on.kubelet)).toBeDefined();
    expect(sharedPodSource(on.kubelet)).toBe(sharedPodSource(on.kubelet));
    expect(sharedPodSource(configSchema.parse({ kubelet: { enabled: true } }).kubelet)).not.toBe(
      sharedPodSource(on.kubelet),
    );
    expect(sharedPodSource(configSchema.parse({}).kubelet)).toBeUndefined();
  });

  it('names containers found by cgroup in the metrics module (cgroups mode)', async () => {
    const kubelet = await startFakeKubelet(dir.path);
    const abort = new AbortController();
    let running: Promise<void> | undefined;
    try {
      kubelet.add({
        namespace: 'shop',
        name: 'web-0',
        uid: POD_UID,
        containers: [{ name: 'nginx', id: ID }],
      });
      const config = configSchema.parse({
        kubelet: {
          ...kubelet.settings,
          pollInterval: '200ms',
        },
        metrics: {
          procRoot: fixture('host/proc'),
          containers: { source: 'cgroups', cgroupRoot: fixture('cgroup-v2') },
        },
      });
      const module = createMetricsModule({ config, log: createLogger('silent') });
      running = module.run({ signal: abort.signal, setReady: () => {} });
      const named = async () => {
        const families = parseExposition(await module.registry.metrics());
        return families
          .get('container_memory_working_set_bytes')
          ?.samples.find((s) => s.labels['container'] === 'nginx');
      };
      const sample = await waitFor(named, {
        what: 'container_memory_working_set_bytes named from the kubelet',
      });
      expect(sample.labels).toMatchObject({ pod: 'web-0', namespace: 'shop', name: ID });
      expect(kubelet.requests).toBeGreaterThan(0);
    } finally {
      abort.abort();
      await running;
      await kubelet.close();
    }
  });
});
