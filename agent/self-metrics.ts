import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ModuleName } from '../shared/module.ts';
import { registerEventLoopLag } from './event-loop-lag.ts';
import { fdCounter } from './metrics/procfs.ts';

/** The agent's metrics about itself: process defaults plus module health, restarts and errors. */
export function createSelfMetrics(version: string) {
  const registry = new Registry();
  // prom-client's event-loop gauges are replaced (see event-loop-lag.ts); its sampler, which
  // collectDefaultMetrics always starts, then wakes once a minute rather than 10 times a second.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 60_000 });
  for (const name of registry.getMetricsAsArray().map((m) => m.name))
    if (name.startsWith('nodejs_eventloop_lag_')) registry.removeSingleMetric(name);
  registerEventLoopLag(registry);
  // prom-client lists /proc/self/fd; the agent holds ≈ 600 open (the cgroup files of 50
  // containers), and the listing cost ≈ 0.2 ms per scrape. A stat of it says the same.
  registry.removeSingleMetric('process_open_fds');
  const openFds = fdCounter('/proc');
  new Gauge({
    name: 'process_open_fds',
    help: 'Number of open file descriptors.',
    registers: [registry],
    collect() {
      const count = openFds('self');
      if (count !== undefined) this.set(count);
    },
  });
  new Gauge({
    name: 'nodeward_build_info',
    help: 'Always 1; labels say which nodeward and Node.js run here.',
    labelNames: ['version', 'nodejs'],
    registers: [registry],
  }).set({ version, nodejs: process.version }, 1);
  return {
    registry,
    moduleUp: new Gauge<'module'>({
      name: 'nodeward_module_up',
      help: '1 while the module is running (between a start and its stop or failure).',
      labelNames: ['module'],
      registers: [registry],
    }),
    moduleReady: new Gauge<'module'>({
      name: 'nodeward_module_ready',
      help: '1 when the module reports ready (what /readyz checks).',
      labelNames: ['module'],
      registers: [registry],
    }),
    restarts: new Counter<'module'>({
      name: 'nodeward_module_restarts_total',
      help: 'Restarts of a module after it failed.',
      labelNames: ['module'],
      registers: [registry],
    }),
    errors: new Counter<'module' | 'code'>({
      name: 'nodeward_errors_total',
      help: 'Errors by module and error-registry code.',
      labelNames: ['module', 'code'],
      registers: [registry],
    }),
  };
}

export type SelfMetrics = ReturnType<typeof createSelfMetrics>;
export type { ModuleName };
