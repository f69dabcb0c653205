import { isAbsolute, join } from 'node:path';
import type { CniConfig } from '../../shared/config/index.ts';
import type { Logger } from '../../shared/logger.ts';
import type { PodMetadataSource } from '../../shared/pods/index.ts';
import { Ipam } from '../ipam/ipam.ts';
import { holdsGateway, type Pool } from '../ipam/pool.ts';
import { readPools } from '../ipam/pools.ts';
import type { PoolUsage } from '../ipam/usage.ts';
import { netnsRunner } from '../net/exec.ts';
import { type NodeGateway, type SegmentHealth, Segments } from '../net/segment.ts';
import type { Store } from '../store/store.ts';
import type { CniMetrics } from './metrics.ts';
import { CniHandlers } from './server/handlers.ts';
import { type CniServer, startCniServer } from './server/server.ts';

/**
 * The agent side of the CNI plugin, assembled: handlers over one IPAM and one set of segments,
 * the journal replayed before the socket opens, then served until stop(). A periodic tick re-reads
 * VXLAN peers, segment health and the journal (DELs the agent itself journaled while the store
 * was away).
 */

export interface CniAgentOptions {
  readonly cni: CniConfig;
  readonly store: Store;
  readonly node: string;
  /** Relative journalDir is under it. */
  readonly dataDir?: string | undefined;
  readonly ipam?: Ipam | undefined;
  readonly metrics?: CniMetrics | undefined;
  readonly log?: Logger | undefined;
  /** Owner kinds for sticky addresses (StatefulSet pods); without it only the annotation decides. */
  readonly podMetadata?: PodMetadataSource | undefined;
  /** Peers without a liveness key `nodes/<node>` count as departed (the IPAM GC's presence runs). */
  readonly livenessKeys?: boolean | undefined;
  /** Pool usage as last read, for STATUS (see HandlerDeps.poolUsage). */
  readonly poolUsage?: (() => readonly PoolUsage[] | undefined) | undefined;
  /** Also told each stage's time (the bench's breakdown). */
  readonly onStage?: ((verb: 'ADD' | 'DEL', stage: string, seconds: number) => void) | undefined;
}

export interface CniAgent {
  readonly handlers: CniHandlers;
  readonly segments: Segments;
  readonly server: CniServer;
  readonly replayed: number;
  /** Health as of the last tick. */
  health(): readonly SegmentHealth[];
  /** One tick now (peers, health, journal: pending teardowns retried). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

export async function startCniAgent(o: CniAgentOptions): Promise<CniAgent> {
  const { cni, store, node, log, metrics } = o;
  const journalDir = isAbsolute(cni.journalDir) ? cni.journalDir : join(o.dataDir ?? '.', cni.journalDir);
  const host = netnsRunner(cni.hostNetns);
  const ipam = o.ipam ?? new Ipam({ store, ...(log ? { log } : {}) });
  const segments = new Segments({
    host,
    store,
    node,
    master: cni.uplink.master,
    localAddress: cni.uplink.localAddress,
    vxlanPort: cni.uplink.vxlanPort,
    mtu: cni.mtu,
    log,
    peerGraceMs: cni.peerGrace,
    livenessKeys: o.livenessKeys,
  });
  let health: readonly SegmentHealth[] = [];
  const handlers = new CniHandlers({
    ipam,
    store,
    segments,
    host,
    node,
    journalDir,
    defaultPool: cni.pool,
    log,
    health: () => health,
    poolUsage: o.poolUsage,
    podMetadata: o.podMetadata,
    onStage: (verb, stage, seconds) => {
      metrics?.stageSeconds.observe({ verb, stage }, seconds);
      o.onStage?.(verb, stage, seconds);
    },
    onJournalDepth: (depth) => metrics?.journalDepth.set(depth),
    onTeardown: (seconds, ok) => metrics?.teardownSeconds.observe({ result: ok ? 'ok' : 'failed' }, seconds),
  });
  // Entries the shim wrote while the agent was away, and answered DELs this agent did not finish
  // tearing down before it stopped or died: done before the socket opens (an ADD that waits for
  // one that fails now, store down, retries it; the tick retries the rest).
  const replay = async () => {
    const loaded = await handlers.teardowns.load();
    const outcome = await handlers.teardowns.retry();
    if (loaded > 0 || outcome.done > 0)
      log?.info({ loaded, ...outcome, journalDir }, 'cni: journal replayed');
    metrics?.journalDepth.set(handlers.teardowns.depth);
    return outcome.done;
  };
  const replayed = await replay();
  const server = await startCniServer({ socket: cni.socket, handlers, metrics, log });
  // DELs the shim journaled while the replay ran (the socket was not open yet): known now, so an
  // ADD of their pod waits for them; their teardowns start at once.
  if ((await handlers.teardowns.load()) > 0) void handlers.teardowns.retry();
  // Segments left from before (pods kept running while the agent was away): publish our VTEPs
  // again now, not at the next ADD, before other nodes' grace for our departure runs out. After
  // the socket opens: a slow store must not hold ADDs back (they share the ensure).
  await readPools(store)
    .then((pools) =>
      segments.adopt(
        [...pools.values()].map(({ pool }) => ({
          name: pool.name,
          segment: pool.spec.segment,
          gateway: nodeGatewayOf(pool),
        })),
      ),
    )
    .then(
      (n) => n > 0 && log?.info({ segments: n }, 'cni: existing segments adopted'),
      (err: unknown) => log?.warn({ err }, 'cni: existing segments not adopted; the next ADD ensures them'),
    );
  const tick = async () => {
    health = await segments.refresh();
    metrics?.setSegments(health);
    await replay();
  };
  let ticking: Promise<void> | undefined;
  const timer = setInterval(() => {
    ticking ??= tick()
      .catch((err: unknown) => log?.warn({ err }, 'cni: periodic check failed'))
      .finally(() => {
        ticking = undefined;
      });
  }, cni.peerSyncInterval);
  timer.unref();
  return {
    handlers,
    segments,
    server,
    replayed,
    health: () => health,
    tick,
    async stop() {
      clearInterval(timer);
      await server.close();
      await ticking;
      // Teardowns in flight finish; those not done stay in the journal for the next start.
      await handlers.teardowns.idle();
      // A clean stop: our VTEPs leave the segments (other nodes drop them after peerGrace).
      await segments
        .unpublish()
        .catch((err: unknown) => log?.warn({ err }, 'cni: VTEP keys not removed at stop'));
    },
  };
}

/** The gateway the node holds on the pool's bridge, if the pool says so (pool nodeGateway). */
function nodeGatewayOf(pool: Pool): NodeGateway | undefined {
  const address = pool.spec.gateway;
  if (address === undefined || !holdsGateway(pool.spec)) return undefined;
  return { address, prefixLength: pool.cidr.prefix, family: pool.family };
}
