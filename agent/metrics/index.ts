import type { Registry } from 'prom-client';
import { HOST_COLLECTORS, type HostCollectorName, type MetricsConfig } from '../../shared/config/index.ts';
import type { Logger } from '../../shared/logger.ts';
import type { ModuleFactory } from '../../shared/module.ts';
import { logPodSourceHealth, sharedPodSource } from '../../shared/pods/index.ts';
import { createAlerts } from './alerts/alertmanager.ts';
import { type Family, family } from './collector.ts';
import { HOST_COLLECTOR_FACTORIES } from './collectors/index.ts';
import { detectCgroupLayout } from './containers/cgroup.ts';
import { createContainerCollector } from './containers/collector.ts';
import { createDockerSource } from './containers/docker.ts';
import { createCgroupSource } from './containers/kubelet-cgroups.ts';
import { podLookupFrom } from './containers/pods.ts';
import { type AutoSource, createAutoSource, type SourceKind } from './containers/runtime.ts';
import type { ContainerSource, PodLookup } from './containers/source.ts';
import { createWritableLayers } from './containers/writable-layer.ts';
import { encodeJsonPush, toJsonPush } from './push/json.ts';
import {
  createPusher,
  createPushStats,
  PUSH_LAST_SUCCESS,
  PUSH_REQUESTS,
  type Pusher,
  pushStatsSamples,
  type Snapshot,
} from './push/push.ts';
import { encodeRemoteWrite } from './push/remote-write.ts';
import { MetricsRegistry, registerCollectors, registerFamilies } from './registry.ts';
import type { NamedCollector, Sample, Scrape } from './scrape.ts';

export type { ContainerInfo, ContainerSource, PodLookup } from './containers/source.ts';

/** The host collectors that `metrics.collectors` turns on, created once. */
export function createHostCollectors(settings: MetricsConfig): NamedCollector[] {
  return (Object.keys(HOST_COLLECTORS) as HostCollectorName[])
    .filter((name) => settings.collectors[name])
    .map((name) => ({ name, collector: HOST_COLLECTOR_FACTORIES[name](settings) }));
}

/** A registry with the enabled host collectors on it; it reads the kernel files at each scrape. */
export function createHostRegistry(settings: MetricsConfig, log: Logger): Registry {
  const registry = new MetricsRegistry();
  if (settings.enabled) registerCollectors(registry, createHostCollectors(settings), log);
  return registry;
}

/**
 * Where container identity comes from: Docker when asked, or under `auto` when Docker is the
 * node's runtime (containers/runtime.ts decides when the source starts running); else the
 * kubelet's cgroup layout, named through `pods` when the pod metadata source is given.
 */
export function createContainerSource(
  settings: MetricsConfig,
  log: Logger,
  pods?: PodLookup,
): ContainerSource | AutoSource {
  const { containers } = settings;
  const layout = detectCgroupLayout(containers.cgroupRoot);
  const create = (kind: SourceKind): ContainerSource =>
    kind === 'docker'
      ? createDockerSource({
          socketPath: containers.dockerSocket,
          procRoot: settings.procRoot,
          cgroupVersion: layout.version,
          reconnectMax: containers.reconnectMax,
          log,
        })
      : createCgroupSource(pods ? { layout, pods } : { layout });
  if (containers.source !== 'auto') return create(containers.source);
  return createAutoSource({ dockerSocket: containers.dockerSocket, layout, create, log });
}

export interface MetricsOptions {
  readonly log: Logger;
  /** This node's name: the instance label of pushed series and alerts. */
  readonly node: string;
  /** Pod metadata for the cgroup-layout source (containerd, CRI-O nodes). */
  readonly pods?: PodLookup;
  /** A ready-made container source (tests); default: from settings. */
  readonly source?: ContainerSource | AutoSource;
  /**
   * The agent's other registries (its own, the network and logs modules'): their series join each
   * snapshot, so alert rules (CniSegmentLinkDown, LogShipperLosingLines) and pushes see them.
   */
  readonly peers?: () => readonly Registry[];
}

/**
 * A prom-client registry's series as snapshot families. A histogram's or summary's parts
 * (`_bucket`, `_sum`, `_count`) become families of their own, untyped, as in the text format.
 */
async function peerSamples(registry: Registry): Promise<Map<Family, Sample[]>> {
  const out = new Map<string, { family: Family; samples: Sample[] }>();
  for (const m of await registry.getMetricsAsJSON()) {
    const kind = String(m.type);
    const type = kind === 'counter' || kind === 'gauge' ? kind : 'untyped';
    for (const v of m.values as {
      value: number;
      labels: Record<string, string | number>;
      metricName?: string;
    }[]) {
      const name = v.metricName ?? m.name;
      let entry = out.get(name);
      if (entry === undefined) {
        entry = { family: family(name, name === m.name ? type : 'untyped', m.help), samples: [] };
        out.set(name, entry);
      }
      const labels: Record<string, string> = {};
      for (const [k, value] of Object.entries(v.labels)) labels[k] = String(value);
      entry.samples.push({ value: v.value, labels });
    }
  }
  return new Map([...out.values()].map((e) => [e.family, e.samples]));
}

/** The module's parts: one registry, one shared collection, and what runs in the background. */
export interface Metrics {
  readonly registry: Registry;
  /** One collection of every collector, shared with concurrent scrapes (push and alerts use it too). */
  readonly scrape: () => Promise<Scrape>;
  /** A collection plus the alert state, as pushes and rules read it. */
  readonly snapshot: () => Promise<Snapshot>;
  readonly source: ContainerSource | AutoSource | undefined;
  readonly remoteWrite: Pusher | undefined;
  readonly jsonPush: Pusher | undefined;
  readonly alerts: ReturnType<typeof createAlerts>;
  /** Follows container events, pushes and evaluates alerts until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
}

export function createMetrics(settings: MetricsConfig, opts: MetricsOptions): Metrics {
  const { log } = opts;
  const registry = new MetricsRegistry();
  const collectors = settings.enabled ? createHostCollectors(settings) : [];
  let source: ContainerSource | AutoSource | undefined;
  if (settings.enabled && settings.containers.enabled) {
    const { containers } = settings;
    source = opts.source ?? createContainerSource(settings, log, opts.pods);
    const layout = detectCgroupLayout(containers.cgroupRoot);
    // The CRI is asked only for containers the cgroup source found (the collector checks the kind).
    const writableLayers =
      source.kind !== 'docker' && containers.criSockets.length > 0
        ? createWritableLayers({
            sockets: containers.criSockets,
            procRoot: settings.procRoot,
            hostRoot: settings.hostRoot,
            intervalMs: containers.criStatsInterval,
            log,
          })
        : undefined;
    collectors.push({
      name: 'containers',
      collector: createContainerCollector({
        settings: containers,
        procRoot: settings.procRoot,
        sysRoot: settings.sysRoot,
        hostRoot: settings.hostRoot,
        layout,
        source,
        ...(writableLayers ? { writableLayers } : {}),
      }),
    });
  }
  const scrape = settings.enabled ? registerCollectors(registry, collectors, log) : createEmptyScrape;
  // job/instance as a Prometheus scrape of this agent would set them, unless configured.
  const external = { job: 'nodeward', instance: opts.node, ...settings.remoteWrite.externalLabels };

  let alerts: ReturnType<typeof createAlerts> | undefined;
  const snapshot = async (): Promise<Snapshot> => {
    const collected = await scrape();
    const families = new Map(collected.samples);
    for (const peer of opts.peers?.() ?? [])
      for (const [f, samples] of await peerSamples(peer)) families.set(f, samples);
    if (alerts) for (const f of alerts.families) families.set(f, alerts.samples());
    return { timestampMs: Date.now(), families };
  };
  alerts = createAlerts({ settings: settings.alerts, extraLabels: external, snapshot, log });
  const current = alerts;
  // The default rules count too: with only them on, their state must still be on /metrics.
  if (current.rules.length > 0) registerFamilies(registry, current.families, () => current.samples());

  const stats = createPushStats();
  const { remoteWrite: rw, jsonPush: jp } = settings;
  const remoteWrite = rw.url
    ? createPusher({
        target: 'remote_write',
        url: rw.url,
        interval: rw.interval,
        timeout: rw.timeout,
        retry: rw.retry,
        snapshot,
        encode: (snap) => encodeRemoteWrite(snap, external, rw.headers),
        stats,
        log,
      })
    : undefined;
  const include = new RegExp(jp.metrics);
  const jsonPush = jp.url
    ? createPusher({
        target: 'json',
        url: jp.url,
        interval: jp.interval,
        timeout: jp.timeout,
        retry: jp.retry,
        snapshot,
        encode: (snap) => encodeJsonPush(toJsonPush(snap, opts.node, external, include), jp.headers),
        stats,
        log,
      })
    : undefined;
  if (remoteWrite || jsonPush) {
    registerFamilies(registry, [PUSH_REQUESTS, PUSH_LAST_SUCCESS], (f) => pushStatsSamples(stats, f));
  }

  return {
    registry,
    scrape,
    snapshot,
    source,
    remoteWrite,
    jsonPush,
    alerts: current,
    async run(signal) {
      await Promise.all([
        source?.run(signal),
        remoteWrite?.run(signal),
        jsonPush?.run(signal),
        current.run(signal),
      ]);
    },
  };
}

const createEmptyScrape = async (): Promise<Scrape> => ({ samples: new Map(), outcomes: [] });

/**
 * The metrics module. Collection happens inside scrapes of its registry; `run` follows container
 * events and drives push and alerts until it is stopped. (Process metrics are the agent's.)
 */
export const createMetricsModule: ModuleFactory = ({ config, log, peers }) => {
  // The agent's shared pod source names containers found by their cgroup (containerd, CRI-O).
  const podSource = sharedPodSource(config.pods, config.node.name);
  const metrics = createMetrics(config.metrics, {
    log,
    node: config.node.name,
    ...(peers ? { peers } : {}),
    ...(podSource ? { pods: podLookupFrom(podSource) } : {}),
  });
  return {
    name: 'metrics',
    registry: metrics.registry,
    async run(ctx) {
      ctx.setReady(true);
      if (ctx.signal.aborted) return;
      // Docker names its containers itself: then the pod source is not started on this module's
      // behalf. Under `auto` that is known once the source has chosen (when it starts running).
      let pods: typeof podSource;
      let unsubscribe = () => {};
      const startPods = (kind: ContainerSource['kind'] | undefined) => {
        if (kind !== 'cgroups' || !podSource || ctx.signal.aborted) return;
        pods = podSource;
        unsubscribe = logPodSourceHealth(pods, log, 'containers found by cgroup have no pod names meanwhile');
        // Not awaited: a slow pod source must not hold back the first scrapes (they fill names in later).
        void pods.start();
      };
      const source = metrics.source;
      if (source && 'decided' in source) void source.decided().then(startPods);
      else startPods(source?.kind);
      try {
        await metrics.run(ctx.signal);
        if (ctx.signal.aborted) return;
        await new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      } finally {
        unsubscribe();
        pods?.stop();
      }
    },
  };
};
