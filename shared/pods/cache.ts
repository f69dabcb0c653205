import { MIRROR_ANNOTATION } from '../kube/index.ts';
import type { PodInfo } from './pod.ts';

/**
 * The pods of this node by uid and by namespace/name, as both sources fill it: the kubelet source
 * replaces the whole list on every poll, the API-server source lists once and then applies watch
 * events. A pod that is gone (left the list, or DELETED) is kept for `deletedGrace`, so the last
 * lines of a deleted pod are still labelled; `expire` then forgets it.
 */

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string | undefined;
}

interface Entry {
  pod: PodInfo;
  /** The kubelet's own uid of a static pod, which its log directory and cgroup carry. */
  mirrorOf: string | undefined;
  /** When it was found gone (ms); undefined while it exists. */
  goneSince: number | undefined;
}

const nameKey = (namespace: string, name: string) => `${namespace}/${name}`;

export class PodCache {
  private readonly byUid = new Map<string, Entry>();
  /** Static pods by the kubelet's uid (MIRROR_ANNOTATION). */
  private readonly byMirror = new Map<string, Entry>();
  private readonly byName = new Map<string, Entry>();
  /** Bumped on every change: a cheap test for "worth asking again". */
  generation = 0;

  get size(): number {
    return this.byUid.size;
  }

  get(ref: PodRef): PodInfo | undefined {
    const e =
      (ref.uid !== undefined ? (this.byUid.get(ref.uid) ?? this.byMirror.get(ref.uid)) : undefined) ??
      this.byName.get(nameKey(ref.namespace, ref.name));
    if (e === undefined) return undefined;
    // A name reused by a newer pod: the uid decides.
    if (ref.uid !== undefined && e.pod.uid !== ref.uid && e.mirrorOf !== ref.uid) return undefined;
    return e.pod;
  }

  /** A pod that exists now (listed, ADDED, MODIFIED). */
  upsert(pod: PodInfo): void {
    const mirrorOf = pod.annotations[MIRROR_ANNOTATION] || undefined;
    const entry: Entry = { pod, mirrorOf, goneSince: undefined };
    this.byUid.set(pod.uid, entry);
    if (mirrorOf !== undefined) this.byMirror.set(mirrorOf, entry);
    this.byName.set(nameKey(pod.namespace, pod.name), entry);
    this.generation++;
  }

  /** A pod that no longer exists (DELETED): its grace period starts now, unless it already ran. */
  markGone(uid: string, now: number): void {
    const e = this.byUid.get(uid);
    if (e !== undefined && e.goneSince === undefined) e.goneSince = now;
  }

  /** The complete list of this node's pods: those listed exist, every other one is gone. */
  replace(pods: readonly PodInfo[], now: number): void {
    const listed = new Set<string>();
    for (const pod of pods) {
      listed.add(pod.uid);
      this.upsert(pod);
    }
    for (const [uid] of this.byUid) if (!listed.has(uid)) this.markGone(uid, now);
    this.generation++;
  }

  /** Forgets pods gone for longer than `grace`. */
  expire(now: number, grace: number): void {
    for (const [uid, e] of this.byUid) {
      if (e.goneSince === undefined || now - e.goneSince < grace) continue;
      this.byUid.delete(uid);
      if (e.mirrorOf !== undefined && this.byMirror.get(e.mirrorOf) === e) this.byMirror.delete(e.mirrorOf);
      const key = nameKey(e.pod.namespace, e.pod.name);
      if (this.byName.get(key) === e) this.byName.delete(key);
      this.generation++;
    }
  }
}
