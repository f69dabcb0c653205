import type { KubeletConfig } from '../config/kubelet.ts';
import type { Logger } from '../logger.ts';
import { KubeletPodSource } from './source.ts';

/**
 * The one pod cache of an agent process. Modules are handed the same parsed config, so keying by
 * its `kubelet` section gives every module (logs, network, metrics) the same cache: one poll of
 * the kubelet per interval however many modules read it. Start/stop are reference counted.
 * Undefined when `kubelet.enabled` is false.
 */
const sources = new WeakMap<KubeletConfig, KubeletPodSource>();

export function sharedPodSource(settings: KubeletConfig): KubeletPodSource | undefined {
  if (!settings.enabled) return undefined;
  let source = sources.get(settings);
  if (source === undefined) {
    source = new KubeletPodSource(settings);
    sources.set(settings, source);
  }
  return source;
}

/**
 * Logs the cache's health for one module: a warning when the kubelet starts failing (or fails for
 * a new reason), an info line when it answers again — never one line per poll while it is down.
 * `consequence` says what the module loses meanwhile. Returns the unsubscribe.
 */
export function logPodSourceHealth(source: KubeletPodSource, log: Logger, consequence: string): () => void {
  let lastReason: string | undefined;
  return source.subscribe({
    failed(reason, err) {
      if (reason !== lastReason)
        log.warn({ err, reason, code: 'POD_METADATA_UNAVAILABLE' }, `kubelet /pods failed: ${consequence}`);
      lastReason = reason;
    },
    refreshed(pods) {
      if (lastReason !== undefined) log.info({ pods }, 'kubelet /pods answers again');
      lastReason = undefined;
    },
  });
}
