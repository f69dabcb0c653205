import type { PodsConfig } from '../config/index.ts';
import { NodewardError } from '../errors.ts';
import { type NodePlacement, nodePlacement } from './placement.ts';
import type { ReflectorOptions } from './reflector.ts';
import { WatchedObjects, type WatchedObjectsOptions } from './watched.ts';

/**
 * The agent's view of the cluster beyond its own pods, on the API server of the `pods` section
 * (pods.source: apiserver; its URL, token and CA): Namespaces (labels, and the annotation naming
 * a namespace's default pool) and this node's Node (labels), each one list + watch started by its
 * first lookup; and fresh reads about any node for the cluster GC. One per agent process, keyed
 * by the parsed `pods` section like the pod source. Undefined for any other pods.source: there
 * is no API server to ask.
 */

export interface Kube {
  /** Every Namespace. */
  readonly namespaces: WatchedObjects;
  /** This node's Node object (fieldSelector metadata.name). */
  readonly node: WatchedObjects;
  readonly nodeName: string;
  /** Whether a Node exists and which pods are bound to it, read now; throws when not answered. */
  placement(node: string): Promise<NodePlacement>;
  /** Ends the watches started (a later lookup starts them again). */
  stop(): Promise<void>;
}

const views = new WeakMap<PodsConfig, Kube>();

export function sharedKube(
  settings: PodsConfig,
  node: string,
  env: NodeJS.ProcessEnv = process.env,
): Kube | undefined {
  if (settings.source !== 'apiserver') return undefined;
  let kube = views.get(settings);
  if (kube === undefined) {
    const api = apiServerOf(settings, env);
    const options: WatchedObjectsOptions = { ...api, lookupWait: settings.apiserver.resolveWait };
    const namespaces = new WatchedObjects(options, { path: 'api/v1/namespaces' }, 'namespace');
    const nodes = new WatchedObjects(
      options,
      { path: 'api/v1/nodes', fieldSelector: `metadata.name=${node}` },
      'node',
    );
    kube = {
      namespaces,
      node: nodes,
      nodeName: node,
      placement: (name) => nodePlacement(api, name),
      async stop() {
        namespaces.stop();
        nodes.stop();
        await Promise.all([namespaces.stopped(), nodes.stopped()]);
      },
    };
    views.set(settings, kube);
  }
  return kube;
}

/** The API server of the `pods` section: pods.apiserver.url, or in-cluster; its credentials. */
export function apiServerOf(settings: PodsConfig, env: NodeJS.ProcessEnv): ReflectorOptions {
  const { url, tokenFile, caFile, insecureSkipVerify, watchTimeout, watchIdleTimeout } = settings.apiserver;
  return {
    url: url || inClusterUrl(env),
    tokenFile,
    caFile,
    insecureSkipVerify,
    watchTimeout,
    watchIdleTimeout,
    timeout: settings.timeout,
  };
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
