/**
 * The Kubernetes API as the agent reads it: authenticated GETs (http.ts), one-shot lists
 * (list.ts), list + watch of a collection (reflector.ts), caches of cluster-scoped objects kept by
 * a watch (watched.ts), fresh reads about one node (placement.ts), and the agent's one view of
 * the cluster on the `pods` section's API server (shared.ts). shared/pods builds its API-server
 * pod source on the same reflector.
 */
export { Health, type HealthListener, logHealth } from './health.ts';
export { type ApiServer, apiUrl, type Connection, KubeError, openGet, readJson } from './http.ts';
export { listObjects, type Resource } from './list.ts';
export { Changes, SharedLoop } from './loop.ts';
export {
  type KubeList,
  type KubeObject,
  type Labels,
  MIRROR_ANNOTATION,
  ObjectCache,
  type ObjectMeta,
} from './objects.ts';
export { type NodePlacement, nodePlacement, type PlacedPod } from './placement.ts';
export { type ReflectorHandler, type ReflectorOptions, reflect, type WatchEventType } from './reflector.ts';
export { apiServerOf, inClusterUrl, type Kube, sharedKube } from './shared.ts';
export { type Lookup, WatchedObjects, type WatchedObjectsOptions } from './watched.ts';
