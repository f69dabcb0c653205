import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import type { Config } from '../shared/config/index.ts';
import { type CniConfig, cniSchema } from '../shared/config/index.ts';
import { NodewardError } from '../shared/errors.ts';
import { type Kube, logHealth, sharedKube } from '../shared/kube/index.ts';
import type { Logger } from '../shared/logger.ts';
import type { AgentModule, ModuleFactory } from '../shared/module.ts';
import { logPodSourceHealth, sharedPodSource } from '../shared/pods/index.ts';
import { removeConflist, type WrittenConflist, writeConflist } from './cni/install.ts';
import { createCniMetrics } from './cni/metrics.ts';
import { createIpamMetrics } from './ipam/metrics.ts';
import type { PoolUsage } from './ipam/usage.ts';

// The network module and the `nodeward ipam` / `nodeward cni` commands: what the agent and its CLI
// use. Nothing here loads etcd3 until an etcd store is opened.
export { type IpamCliIo, registerIpamCommands } from './cli.ts';

/**
 * network.cni of the effective config. Parsed again here (idempotent on parsed output) so this
 * works whether or not the config schema mounts cniSchema at network.cni.
 */
function cniConfigOf(config: Config): CniConfig {
  const raw = (config.network as Record<string, unknown>)['cni'];
  const r = cniSchema.safeParse(raw ?? {});
  if (!r.success) {
    throw new NodewardError(
      'CONFIG_INVALID',
      `network.cni: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return r.data;
}

const untilAborted = (signal: AbortSignal) =>
  new Promise<void>((done) => {
    if (signal.aborted) done();
    else signal.addEventListener('abort', () => done(), { once: true });
  });

/**
 * The agent's `network` module: opens the IPAM store, replays the CNI journal, serves the shim's
 * socket. Ready while the store answers and every segment's links are up — a node whose network
 * daemon is broken says so on /readyz and in STATUS, instead of pods silently losing connectivity.
 */
export const createNetworkModule: ModuleFactory = ({ config, log }): AgentModule => {
  const registry = new Registry();
  const metrics = createCniMetrics(registry);
  const ipamMetrics = createIpamMetrics(registry);
  return {
    name: 'network',
    registry,
    async run(ctx) {
      if (!config.network.enabled) {
        ctx.setReady(true, 'disabled');
        await untilAborted(ctx.signal);
        return;
      }
      const cni = cniConfigOf(config);
      const { openIpamStore } = await import('./store/open.ts');
      const { startCniAgent } = await import('./cni/agent.ts');
      const { Ipam } = await import('./ipam/ipam.ts');
      const { usageReport } = await import('./ipam/usage.ts');
      const { startIpamGc } = await import('./gc/index.ts');
      // Owner kinds for sticky StatefulSet addresses: the agent's shared pod source (the config
      // check makes stickyStatefulSets require a pods.source). Resolved before the store opens: a
      // pods section that cannot be used fails the run with nothing to close.
      const pods = cni.stickyStatefulSets ? sharedPodSource(config.pods, config.node.name) : undefined;
      // Namespaces and this Node for pool admission, and the cluster GC's word on dead nodes: on
      // the API server of pods.source apiserver (none otherwise). Watches start on first use.
      const kube = sharedKube(config.pods, config.node.name);
      const store = await openIpamStore(config);
      const unsubscribe = [
        pods ? logPodSourceHealth(pods, log, 'StatefulSet pods get no sticky IP meanwhile') : () => {},
        ...(kube ? logKubeHealth(kube, log) : []),
      ];
      try {
        await pods?.start();
        const { ipam: ipamConfig } = config.network;
        const ipam = new Ipam({
          store,
          conflictRetries: ipamConfig.conflictRetries,
          batchSize: ipamConfig.batchSize,
          viewMaxAgeMs: ipamConfig.viewMaxAge,
          observer: ipamMetrics,
          log,
          metadata: kube && admissionMetadata(kube, ipamConfig.namespaceDefaults),
        });
        let usage: PoolUsage[] | undefined;
        const agent = await startCniAgent({
          cni,
          store,
          ipam,
          node: config.node.name,
          dataDir: config.dataDir,
          metrics,
          log,
          // Liveness keys exist when the GC's presence lease runs (etcd store only).
          livenessKeys: ipamConfig.gc.enabled && store.kind === 'etcd',
          podMetadata: pods,
          poolUsage: () => usage,
        });
        log.info({ socket: cni.socket, replayed: agent.replayed }, 'network: CNI server listening');
        const conflist = new AgentConflist(cni, log);
        const check = async () => {
          // Pool gauges from one usage read here, so a scrape does no store I/O; STATUS reads it too.
          await usageReport(store).then(
            (u) => {
              usage = u;
              ipamMetrics.setPools(u);
            },
            (err: unknown) => log.debug({ err }, 'network: pool usage not refreshed'),
          );
          try {
            // The agent's own tick refreshes segment health; STATUS reads it and asks the store.
            await agent.handlers.status();
            // Only a working agent tells the runtime to send pods: the conflist appears now.
            conflist.ready();
            ctx.setReady(true);
          } catch (err) {
            ctx.setReady(false, err instanceof Error ? err.message : String(err));
          }
        };
        await check();
        const timer = setInterval(() => void check(), cni.peerSyncInterval);
        const gc = ipamConfig.gc.enabled
          ? await startIpamGc({
              store,
              node: config.node.name,
              gc: ipamConfig.gc,
              log,
              onRelease: (kind) => ipamMetrics.gcReleases.inc({ kind }),
              nodes: kube && { placement: (node) => kube.placement(node) },
            })
          : undefined;
        if (gc) agent.handlers.onValidAttachments = (network, list) => gc.valid.note(network, list);
        let collecting: Promise<unknown> | undefined;
        const collect = () => {
          if (!gc) return;
          collecting ??= gc
            .tick()
            .catch((err: unknown) => log.warn({ err }, 'network: IPAM GC round failed'))
            .finally(() => {
              collecting = undefined;
            });
        };
        // At once: the liveness key is published before other agents' cluster GC looks for it.
        collect();
        const gcTimer = gc ? setInterval(collect, ipamConfig.gc.interval) : undefined;
        await untilAborted(ctx.signal);
        conflist.stopping();
        clearInterval(timer);
        clearInterval(gcTimer);
        await collecting;
        await gc?.stop();
        await agent.stop();
      } finally {
        for (const u of unsubscribe) u();
        pods?.stop();
        await kube?.stop();
        await store.close();
      }
    },
  };
};

/**
 * network.cni.conflist: the agent writes the .conflist once it is first ready, and removes it when
 * it stops, so the runtime reports the network not ready (and the node takes no new pods) exactly
 * while no agent can serve the shim. Not removed on a flap of readiness: pods then get "try again".
 */
class AgentConflist {
  private readonly cni: CniConfig;
  private readonly log: Logger;
  private written: WrittenConflist | undefined;

  constructor(cni: CniConfig, log: Logger) {
    this.cni = cni;
    this.log = log;
  }

  /** Throws (the module stays not ready, saying why) when the conflist cannot be written. */
  ready(): void {
    const { dir, name, binDir } = this.cni.conflist;
    if (dir === '' || this.written !== undefined) return;
    try {
      this.written = writeConflist({ confDir: dir, confName: name, binDir, cni: this.cni });
    } catch (err) {
      throw new NodewardError('IO', `cannot write the CNI conflist in ${dir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.log.info(
      { conflist: this.written.path, notes: this.written.notes },
      'network: conflist written; the runtime sends pods to this node',
    );
  }

  stopping(): void {
    if (this.written === undefined || !this.cni.conflist.removeOnStop) return;
    const removed = removeConflist(this.written);
    this.log.info(
      { conflist: this.written.path, removed },
      removed
        ? 'network: conflist removed; the runtime takes no new pods until an agent is ready again'
        : 'network: conflist left in place: another writer changed it',
    );
  }
}

/** Pool admission's namespaces and node labels, from the watches of `kube`. */
function admissionMetadata(kube: Kube, namespaceDefaults: boolean) {
  return {
    namespaceDefaults,
    namespace: (name: string) => kube.namespaces.lookup(name),
    node: async (name: string) =>
      name === kube.nodeName
        ? kube.node.lookup(name)
        : {
            found: false as const,
            retriable: false,
            why: `only this node's (${kube.nodeName}) labels are watched`,
          },
  };
}

function logKubeHealth(kube: Kube, log: Logger): (() => void)[] {
  const consequence = (what: string) =>
    `pods whose pool selects on ${what} labels not known yet get CNI 11 (try again) meanwhile; known labels are used as last seen`;
  return [
    logHealth(kube.namespaces, log, 'namespace watch', consequence('namespace')),
    logHealth(kube.node, log, 'node watch', consequence('node')),
  ];
}

/** The build's shim, beside the sources (`npm run build:cni`). */
const BUILT_SHIM = resolve(import.meta.dirname, '../build/nodeward-cni');

/**
 * `nodeward cni install`. The caller (agent/cli.ts) gives the program and how to load the config
 * the way the other commands do.
 */
export function registerCniCommands(
  program: Command,
  io: {
    stdout: (s: string) => void;
    env: NodeJS.ProcessEnv;
    /** The effective config: file (or $NODEWARD_CONFIG), NODEWARD_* env, then `--set` flags. */
    loadConfig?: (file: string | undefined, sets: string[]) => Config;
  },
): void {
  const cni = program.command('cni').description('the CNI plugin on this node');
  cni
    .command('install')
    .description('copy the nodeward CNI plugin into the bin dir and write its .conflist (atomic, idempotent)')
    .requiredOption('--bin-dir <dir>', 'CNI plugin directory, e.g. /opt/cni/bin')
    .requiredOption('--conf-dir <dir>', 'CNI network config directory, e.g. /etc/cni/net.d')
    .option('--conf-name <name>', 'file name of the .conflist', '10-nodeward.conflist')
    .option('--binary <file>', 'the shim executable to install', BUILT_SHIM)
    .option(
      '--no-conflist',
      'install the shim only: the agent writes the .conflist once it is ready (network.cni.conflist.dir)',
    )
    .option('-c, --config <file>', 'YAML config file (default: $NODEWARD_CONFIG, else the embedded default)')
    .option(
      '--set <key=value>',
      'set one config key, e.g. --set network.cni.pool=pods (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .action(
      async (flags: {
        binDir: string;
        confDir: string;
        confName: string;
        binary: string;
        conflist: boolean;
        config?: string;
        set: string[];
      }) => {
        const file = flags.config ?? io.env['NODEWARD_CONFIG'];
        const config = io.loadConfig
          ? io.loadConfig(file, flags.set)
          : (await import('../shared/config/index.ts')).loadConfig({ file, env: io.env, sets: flags.set });
        const { installCni, installShim } = await import('./cni/install.ts');
        if (!flags.conflist) {
          const bin = installShim(flags.binary, flags.binDir);
          io.stdout(`${bin.path}: ${bin.changed ? 'installed' : 'unchanged'}\n`);
          return;
        }
        const out = installCni({
          binary: flags.binary,
          binDir: flags.binDir,
          confDir: flags.confDir,
          confName: flags.confName,
          cni: cniConfigOf(config),
        });
        for (const f of [out.binary, out.conflist])
          io.stdout(`${f.path}: ${f.changed ? 'installed' : 'unchanged'}\n`);
        // What this node's network cannot do (a chained plugin missing or too old) is said at install
        // time, where the operator can still fix it; the conflist keeps the same notes.
        for (const note of out.notes) io.stdout(`note: ${note}\n`);
      },
    );
}
