import { type Connection, KubeError, openGet, readJson } from '../kube/index.ts';
import type { V1PodList } from './pod.ts';

/** One GET of the kubelet's `/pods`: node-local, no API-server load. */

export interface KubeletOptions extends Connection {
  /** https://127.0.0.1:10250/pods on a node; http:// for the read-only port or a test. */
  url: string;
}

export async function fetchPodList(options: KubeletOptions): Promise<V1PodList> {
  const url = new URL(options.url);
  const res = await openGet(url, options, 'kubelet');
  const list = await readJson(res, url, 'kubelet');
  if (typeof list !== 'object' || list === null || !Array.isArray((list as V1PodList).items))
    throw new KubeError('bad_json', `kubelet ${url.href}: not a PodList (no items array)`);
  return list as V1PodList;
}
