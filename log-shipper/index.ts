import { Registry } from 'prom-client';
import type { AgentModule, ModuleFactory } from '../shared/module.ts';
import { createLogsMetrics } from './metrics.ts';
import { runPipeline } from './pipeline.ts';

export type { LogRecord } from './record.ts';

/**
 * The agent's `logs` module: container log files → records → the configured sink, with
 * checkpoints that move only on acknowledgement (see README.md).
 */
export const createLogsModule: ModuleFactory = ({ config, log }): AgentModule => {
  const registry = new Registry();
  const metrics = createLogsMetrics(registry);
  return {
    name: 'logs',
    registry,
    async run(ctx) {
      if (!config.logs.enabled) {
        ctx.setReady(true, 'disabled');
        await new Promise<void>((resolve) => {
          if (ctx.signal.aborted) resolve();
          else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        return;
      }
      await runPipeline(
        { node: config.node.name, dataDir: config.dataDir, logs: config.logs, pods: config.pods },
        { log, metrics, signal: ctx.signal, setReady: ctx.setReady },
      );
    },
  };
};
