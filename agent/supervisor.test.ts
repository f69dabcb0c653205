import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { NodewardError } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';
import type { AgentModule, RunContext } from '../shared/module.ts';
import { createSelfMetrics } from './self-metrics.ts';
import { backoffDelay, Supervisor } from './supervisor.ts';

const policy = { backoffInitial: 10, backoffMax: 40, resetAfter: 60_000 };
const silent = createLogger('silent');

/** A module that fails its first `failures` runs, then runs until stopped. Pure logic: no peer. */
function flakyModule(failures: number) {
  const runs: number[] = [];
  const module: AgentModule = {
    name: 'logs',
    registry: new Registry(),
    async run(ctx: RunContext) {
      runs.push(Date.now());
      if (runs.length <= failures)
        throw new NodewardError('SINK_UNAVAILABLE', `sink down (run ${runs.length})`);
      ctx.setReady(true);
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    },
  };
  return { module, runs };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('backoffDelay', () => {
  it('doubles from the initial delay and stays at the cap', () => {
    expect([0, 1, 2, 3, 4, 50].map((a) => backoffDelay(a, policy))).toEqual([10, 20, 40, 40, 40, 40]);
  });
});

describe('Supervisor', () => {
  it('restarts a failing module with backoff, counts restarts and errors by code, then reports ready', async () => {
    const metrics = createSelfMetrics('test');
    const { module, runs } = flakyModule(3);
    const s = new Supervisor(module, policy, silent, metrics);
    s.start();
    await until(() => s.readiness().ready);
    expect(runs).toHaveLength(4);
    // Gaps follow the backoff (10, 20, 40 ms), allowing timer slack but not skipping it.
    const gaps = runs.slice(1).map((t, i) => t - runs[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[1]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeGreaterThanOrEqual(39);
    const text = await metrics.registry.metrics();
    expect(text).toContain('nodeward_module_restarts_total{module="logs"} 3');
    expect(text).toContain('nodeward_errors_total{module="logs",code="SINK_UNAVAILABLE"} 3');
    expect(text).toContain('nodeward_module_up{module="logs"} 1');
    await s.stop();
    expect(s.readiness()).toEqual({ ready: false, reason: 'stopped' });
    expect(await metrics.registry.metrics()).toContain('nodeward_module_up{module="logs"} 0');
  });

  it('reports why it is not ready while waiting to restart', async () => {
    const metrics = createSelfMetrics('test');
    const { module } = flakyModule(1);
    const s = new Supervisor(
      module,
      { ...policy, backoffInitial: 10_000, backoffMax: 10_000 },
      silent,
      metrics,
    );
    s.start();
    await until(() => (s.readiness().reason ?? '').startsWith('failed'));
    expect(s.readiness()).toEqual({
      ready: false,
      reason: 'failed with SINK_UNAVAILABLE: sink down (run 1); restarting in 10000 ms',
    });
    // Stopping during the backoff does not wait for it.
    const started = Date.now();
    await s.stop();
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('treats a run that returns without being stopped as a failure', async () => {
    const metrics = createSelfMetrics('test');
    let runs = 0;
    const module: AgentModule = {
      name: 'metrics',
      registry: new Registry(),
      async run(ctx) {
        runs++;
        if (runs === 1) return;
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      },
    };
    const s = new Supervisor(module, policy, silent, metrics);
    s.start();
    await until(() => runs === 2);
    expect(await metrics.registry.metrics()).toContain(
      'nodeward_errors_total{module="metrics",code="MODULE_FAILED"} 1',
    );
    await s.stop();
  });
});
