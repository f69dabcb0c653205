import { Registry } from 'prom-client';
import { HOST_COLLECTORS, type HostCollectorName, type MetricsConfig } from '../../shared/config/metrics.ts';
import type { Logger } from '../../shared/logger.ts';
import type { ModuleFactory } from '../module.ts';
import { HOST_COLLECTOR_FACTORIES } from './collectors/index.ts';
import { registerCollectors } from './registry.ts';
import type { NamedCollector } from './scrape.ts';

/** The host collectors that `metrics.collectors` turns on, created once. */
export function createHostCollectors(settings: MetricsConfig): NamedCollector[] {
  return (Object.keys(HOST_COLLECTORS) as HostCollectorName[])
    .filter((name) => settings.collectors[name])
    .map((name) => ({ name, collector: HOST_COLLECTOR_FACTORIES[name](settings) }));
}

/** A registry with the enabled host collectors on it; it reads the kernel files at each scrape. */
export function createHostRegistry(settings: MetricsConfig, log: Logger): Registry {
  const registry = new Registry();
  if (settings.enabled) registerCollectors(registry, createHostCollectors(settings), log);
  return registry;
}

/**
 * The metrics module. Collection happens inside scrapes of its registry, so `run` has nothing to
 * drive: it reports ready and waits to be stopped. (Process metrics are the agent's, not ours.)
 */
export const createMetricsModule: ModuleFactory = ({ config, log }) => {
  const registry = createHostRegistry(config.metrics, log);
  return {
    name: 'metrics',
    registry,
    async run(ctx) {
      ctx.setReady(true);
      if (ctx.signal.aborted) return;
      await new Promise<void>((resolve) => {
        ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
  };
};
