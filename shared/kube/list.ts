import { type ApiServer, apiUrl, KubeError, openGet, readJson } from './http.ts';
import type { KubeList, KubeObject } from './objects.ts';

/** One collection of the core API: its path and, optionally, a field selector narrowing it. */
export interface Resource {
  /** e.g. api/v1/pods, api/v1/namespaces, api/v1/nodes */
  readonly path: string;
  /** e.g. spec.nodeName=node-a, metadata.name=node-a */
  readonly fieldSelector?: string | undefined;
}

/** The URL of `resource` with `params` (watch, resourceVersion, …) added. */
export function resourceUrl(
  api: Pick<ApiServer, 'url'>,
  resource: Resource,
  params: Record<string, string>,
): URL {
  return apiUrl(api, resource.path, {
    ...(resource.fieldSelector === undefined ? {} : { fieldSelector: resource.fieldSelector }),
    ...params,
  });
}

/**
 * One complete list of `resource` and its resourceVersion. Without `resourceVersion` it is a
 * consistent read (from etcd); "0" lets the API server answer from its watch cache.
 */
export async function listObjects<T extends KubeObject>(
  api: ApiServer,
  resource: Resource,
  resourceVersion: string | undefined,
  signal?: AbortSignal,
): Promise<{ items: T[]; resourceVersion: string }> {
  const url = resourceUrl(api, resource, resourceVersion === undefined ? {} : { resourceVersion });
  const res = await openGet(url, api, 'API server', signal);
  const list = (await readJson(res, url, 'API server')) as KubeList<T>;
  if (typeof list !== 'object' || list === null || !Array.isArray(list.items))
    throw new KubeError('bad_json', `API server ${url.href}: not a list (no items array)`);
  const version = list.metadata?.resourceVersion;
  if (!version)
    throw new KubeError(
      'bad_json',
      `API server ${url.href}: ${list.kind ?? 'list'} without metadata.resourceVersion`,
    );
  return { items: list.items, resourceVersion: version };
}
