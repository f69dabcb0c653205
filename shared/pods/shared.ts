import type { PodsConfig } from '../config/pods.ts';
import { apiServerOf, logHealth } from '../kube/index.ts';
import type { Logger } from '../logger.ts';
import { ApiServerPodSource } from './apiserver.ts';
import { KubeletPodSource, type PodSource } from './source.ts';

/**
 * The one pod cache of an agent process. Modules are handed the same parsed config, so keying by
 * its `pods` section gives every module (logs, network, metrics) the same source: one poll of the
 * kubelet, or one API-server watch, however many modules read it. Start/stop are reference
 * counted. Undefined when `pods.source` is none.
 */
const sources = new WeakMap<PodsConfig, PodSource>();

export function sharedPodSource(
  settings: PodsConfig,
  node: string,
  env: NodeJS.ProcessEnv = process.env,
): PodSource | undefined {
  if (settings.source === 'none') return undefined;
  let source = sources.get(settings);
  if (source === undefined) {
    const { timeout, deletedGrace } = settings;
    source =
      settings.source === 'kubelet'
        ? new KubeletPodSource({ ...settings.kubelet, timeout, deletedGrace })
        : new ApiServerPodSource({
            ...apiServerOf(settings, env),
            resolveWait: settings.apiserver.resolveWait,
            node,
            deletedGrace,
          });
    sources.set(settings, source);
  }
  return source;
}

/**
 * Logs the source's health for one module: a warning when it starts failing (or fails for a new
 * reason), an info line when it answers again — never one line per poll while it is down.
 * `consequence` says what the module loses meanwhile. Returns the unsubscribe.
 */
export function logPodSourceHealth(source: PodSource, log: Logger, consequence: string): () => void {
  return logHealth(source, log, 'pod metadata source', consequence);
}
