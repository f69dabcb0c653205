import { describe, expect, it } from 'vitest';
import { configSchema } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logger.ts';
import { fixture, parseExposition } from '../../test/support/metrics/testing.ts';
import { createMetricsModule } from './index.ts';

describe('metrics module', () => {
  const config = configSchema.parse({ metrics: { procRoot: fixture('host/proc') } });

  it('registers its collectors once, at creation, without process metrics', async () => {
    const module = createMetricsModule({ config, log: createLogger('silent') });
    expect(module.name).toBe('metrics');
    const families = parseExposition(await module.registry.metrics());
    expect(families.get('node_load1')!.samples).toEqual([{ labels: {}, value: 0.27 }]);
    expect([...families.keys()].some((n) => n.startsWith('process_') || n.startsWith('nodejs_'))).toBe(false);
  });

  it('runs ready until aborted, then resolves, and can run again', async () => {
    const module = createMetricsModule({ config, log: createLogger('silent') });
    const before = module.registry.getMetricsAsArray().length;
    for (let run = 0; run < 2; run++) {
      const ready: boolean[] = [];
      const controller = new AbortController();
      let settled = false;
      const running = module.run({ signal: controller.signal, setReady: (r) => ready.push(r) }).then(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 10));
      expect(ready).toEqual([true]);
      expect(settled).toBe(false);
      controller.abort();
      await running;
    }
    expect(module.registry.getMetricsAsArray().length).toBe(before);
  });
});
