import { hostname } from 'node:os';
import { z } from 'zod';
import { LOG_LEVELS } from '../logger.ts';
import { logsSchema } from './logs.ts';
import { metricsSchema } from './metrics.ts';
import { networkSchema } from './network.ts';
import { podsSchema } from './pods.ts';
import { duration, hostPort } from './units.ts';

/**
 * The one source of truth for nodeward's configuration: types, defaults and the docs of every key
 * (`.describe()`). The defaults are the embedded default — a laptop with no cluster; deploy/ sets the
 * production values. Every object is strict: an unknown key is an error, never silently ignored.
 */
export const configSchema = z
  .strictObject({
    node: z
      .strictObject({
        name: z
          .string()
          .min(1)
          .default(() => hostname())
          .describe(
            "This node's name as Kubernetes knows it (DaemonSet: from spec.nodeName). Default: the hostname.",
          ),
      })
      .prefault({})
      .describe('Identity of the node this agent runs on.'),
    dataDir: z
      .string()
      .min(1)
      .default('.nodeward')
      .describe(
        'Directory for state that must survive restarts (log checkpoints, CNI journal). /var/lib/nodeward on a node.',
      ),
    log: z
      .strictObject({
        level: z
          .enum(LOG_LEVELS)
          .default('info')
          .describe("Minimum level of the agent's own JSON logs (stderr)."),
      })
      .prefault({})
      .describe("The agent's own logs."),
    http: z
      .strictObject({
        listen: hostPort({ anyPort: true })
          .default('127.0.0.1:9560')
          .describe('Address of /healthz, /readyz and /metrics (port 0: any free port, logged at start).'),
      })
      .prefault({})
      .describe("The agent's HTTP endpoint."),
    shutdown: z
      .strictObject({
        deadline: duration()
          .default(10_000)
          .describe('How long SIGTERM/SIGINT waits for modules to stop and flush before exiting anyway.'),
      })
      .prefault({})
      .describe('Graceful shutdown.'),
    supervisor: z
      .strictObject({
        backoffInitial: duration()
          .default(1000)
          .describe('Delay before restarting a module after its first failure.'),
        backoffMax: duration().default(60_000).describe('Cap of the doubling restart delay.'),
        resetAfter: duration()
          .default(60_000)
          .describe('A module that has run this long without failing starts again from backoffInitial.'),
      })
      .prefault({})
      .describe('Restarting modules that fail.'),
    pods: podsSchema,
    network: networkSchema.prefault({}).describe('Pod networking: CNI server and IPAM (ipam-cni/).'),
    logs: logsSchema.prefault({}).describe('Container log shipping (log-shipper/).'),
    metrics: metricsSchema.prefault({}).describe('Host and container metrics (agent/metrics/).'),
  })
  // Keys of one module that need another section: checked here, where both are in view.
  .superRefine((config, ctx) => {
    if (config.network.cni.stickyStatefulSets && config.pods.source === 'none')
      ctx.addIssue({
        code: 'custom',
        path: ['network', 'cni', 'stickyStatefulSets'],
        message: 'needs pods.source kubelet or apiserver (owner kinds come from pod metadata)',
      });
  });

export type Config = z.output<typeof configSchema>;
/** What a config file may contain: every key optional, human units allowed. */
export type ConfigInput = z.input<typeof configSchema>;
