import type { PodsConfig } from '../config/pods.ts';
import { NodewardError } from '../errors.ts';
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
            ...settings.apiserver,
            url: settings.apiserver.url || inClusterUrl(env),
            node,
            timeout,
            deletedGrace,
          });
    sources.set(settings, source);
  }
  return source;
}

/** The API server as seen from inside a pod: the env the kubelet sets in every container. */
export function inClusterUrl(env: NodeJS.ProcessEnv): string {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] || '443';
  if (!host)
    throw new NodewardError(
      'CONFIG_INVALID',
      'pods.apiserver.url is empty and KUBERNETES_SERVICE_HOST is not set (not running in a pod): set pods.apiserver.url',
    );
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Logs the source's health for one module: a warning when it starts failing (or fails for a new
 * reason), an info line when it answers again — never one line per poll while it is down.
 * `consequence` says what the module loses meanwhile. Returns the unsubscribe.
 */
export function logPodSourceHealth(source: PodSource, log: Logger, consequence: string): () => void {
  let lastReason: string | undefined;
  return source.subscribe({
    failed(reason, err) {
      if (reason !== lastReason)
        log.warn(
          { err, reason, code: 'POD_METADATA_UNAVAILABLE' },
          `pod metadata source failed: ${consequence}`,
        );
      lastReason = reason;
    },
    refreshed(pods) {
      if (lastReason !== undefined) log.info({ pods }, 'pod metadata source answers again');
      lastReason = undefined;
    },
  });
}
