import type { HandlerDeps } from './handler-deps.ts';

/**
 * Pod annotation: "true" asks for a sticky address (kept across re-creation of the same
 * namespace/name), "false" refuses one even for a StatefulSet pod. The runtime passes annotations
 * but not the owner kind; with a pod-metadata source the owner kind StatefulSet also says sticky.
 */
export const STICKY_ANNOTATION = 'nodeward.io/sticky-ip';

/**
 * Whether the pod keeps its address across re-creation: the annotation when set, else (with a
 * pod-metadata source) a StatefulSet owner. Without a pod name there is no identity to keep it
 * for. A metadata source that fails or does not know the pod means not sticky (logged).
 */
export async function isSticky(
  deps: HandlerDeps,
  annotations: Readonly<Record<string, string>>,
  pod: string | undefined,
  namespace: string,
  uid: string | undefined,
): Promise<boolean> {
  if (pod === undefined) return false;
  const asked = annotations[STICKY_ANNOTATION];
  if (asked === 'true') return true;
  if (asked === 'false') return false;
  const source = deps.podMetadata;
  if (!source) return false;
  const ref = { namespace, name: pod, uid };
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = deps.podMetadataTimeoutMs ?? 2000;
    const info =
      source.get(ref) ??
      (await Promise.race([
        source.resolve(ref),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no pod metadata within ${timeout} ms`)), timeout);
        }),
      ]));
    if (!info) deps.log?.debug({ namespace, pod }, 'cni: pod metadata unknown; address not sticky');
    return info?.owners.statefulset !== undefined;
  } catch (err) {
    deps.log?.warn({ err, namespace, pod }, 'cni: pod metadata lookup failed; address not sticky');
    return false;
  } finally {
    clearTimeout(timer);
  }
}
