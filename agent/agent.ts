import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../shared/config/index.ts';
import { NodewardError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { MODULE_NAMES, type ModuleFactory, type ModuleName } from '../shared/module.ts';
import { createHttpServer, listen } from './http.ts';
import { createSelfMetrics } from './self-metrics.ts';
import { Supervisor } from './supervisor.ts';

export interface AgentOptions {
  config: Config;
  log: Logger;
  version: string;
  /** The module implementations this build has. */
  factories: Partial<Record<ModuleName, ModuleFactory>>;
}

export interface Agent {
  /** The bound HTTP address (port 0 in config means any free port). */
  readonly address: AddressInfo;
  readonly supervisors: ReadonlyMap<ModuleName, Supervisor>;
  /** Stops every module within the deadline; resolves true when all stopped in time. */
  stop(deadlineMs: number): Promise<boolean>;
}

/** Wires the enabled modules to their supervisors and the HTTP endpoint, then starts them. */
export async function startAgent({ config, log, version, factories }: AgentOptions): Promise<Agent> {
  const self = createSelfMetrics(version);
  const supervisors = new Map<ModuleName, Supervisor>();
  for (const name of MODULE_NAMES) {
    if (!config[name].enabled) continue;
    const factory = factories[name];
    if (!factory) {
      throw new NodewardError(
        'CONFIG_INVALID',
        `${name}.enabled: this build of nodeward has no ${name} module yet`,
      );
    }
    const module = factory({
      config,
      log: log.child({ module: name }),
      peers: () => [
        self.registry,
        ...[...supervisors].filter(([other]) => other !== name).map(([, s]) => s.module.registry),
      ],
    });
    supervisors.set(name, new Supervisor(module, config.supervisor, log, self));
  }

  const readiness = () => {
    const modules: Record<string, unknown> = {};
    let ready = true;
    for (const name of MODULE_NAMES) {
      const s = supervisors.get(name);
      if (!s) {
        modules[name] = { enabled: false };
        continue;
      }
      const r = s.readiness();
      ready &&= r.ready;
      modules[name] = { enabled: true, ...r };
    }
    return { ready, modules };
  };
  const server: Server = createHttpServer({
    registries: () => [self.registry, ...[...supervisors.values()].map((s) => s.module.registry)],
    readiness,
  });
  const address = await listen(server, config.http.listen);
  log.info(
    { address: `${address.address}:${address.port}`, modules: [...supervisors.keys()] },
    'agent listening',
  );
  for (const s of supervisors.values()) s.start();

  return {
    address,
    supervisors,
    async stop(deadlineMs) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), deadlineMs);
      });
      const stopped = Promise.all([...supervisors.values()].map((s) => s.stop())).then(() => true as const);
      const inTime = await Promise.race([stopped, deadline]);
      clearTimeout(timer);
      if (!inTime) {
        const pending = [...supervisors.values()]
          .filter((s) => s.readiness().reason !== 'stopped')
          .map((s) => s.module.name);
        const err = new NodewardError(
          'SHUTDOWN_TIMEOUT',
          `modules did not stop within ${deadlineMs} ms: ${pending.join(', ')}`,
        );
        log.error({ err, code: err.code, pending }, 'shutdown deadline passed');
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return inTime;
    },
  };
}
