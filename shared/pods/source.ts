import { fetchPodList, KubeletError, type KubeletOptions } from './kubelet.ts';
import { type PodInfo, podInfoOf } from './pod.ts';

/**
 * A node-local cache of pod metadata, filled from the kubelet's `/pods`: polled every
 * `pollInterval`, and refreshed on demand when someone asks for a pod it does not know (a pod
 * newer than the last poll), at most once per `refreshMinInterval`. A pod that leaves the list is
 * kept for `deletedGrace`, so that the last lines of a deleted pod are still labelled. Failures
 * never throw to callers: lookups answer from the cache (or undefined), listeners hear the reason.
 */

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string | undefined;
}

export interface PodSourceListener {
  refreshed?(pods: number): void;
  failed?(reason: string, err: Error): void;
}

/** What consumers depend on; the kubelet source is one implementation, tests may bring another. */
export interface PodMetadataSource {
  /** From the cache only. */
  get(ref: PodRef): PodInfo | undefined;
  /**
   * From the cache, or after one refresh when the pod is not known yet — at once, or when the
   * rate limit allows (at most refreshMinInterval later).
   */
  resolve(ref: PodRef): Promise<PodInfo | undefined>;
  /** Bumped whenever the cache changed: a cheap test for "worth asking again". */
  readonly generation: number;
}

export interface KubeletPodSourceOptions extends KubeletOptions {
  pollInterval: number;
  refreshMinInterval: number;
  deletedGrace: number;
}

interface Entry {
  pod: PodInfo;
  /** When it was last listed (ms); deleted pods age from it. */
  seen: number;
}

const byName = (namespace: string, name: string) => `${namespace}/${name}`;

export class KubeletPodSource implements PodMetadataSource {
  private readonly options: KubeletPodSourceOptions;
  private readonly byUid = new Map<string, Entry>();
  private readonly byName = new Map<string, Entry>();
  private readonly listeners = new Set<PodSourceListener>();
  private inflight: Promise<void> | undefined;
  private delayed: Promise<void> | undefined;
  private lastFetch = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private users = 0;
  generation = 0;
  /** The outcome of the last fetch: undefined once one succeeded. */
  lastError: KubeletError | undefined;

  constructor(options: KubeletPodSourceOptions) {
    this.options = options;
  }

  get size(): number {
    return this.byUid.size;
  }

  subscribe(listener: PodSourceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Starts polling (the first fetch at once) and resolves after it, successful or not. Reference
   * counted: modules sharing the source each start and stop it.
   */
  async start(): Promise<void> {
    this.users++;
    if (this.users === 1) {
      this.timer = setInterval(() => void this.refresh(), this.options.pollInterval);
      this.timer.unref();
    }
    await this.refresh();
  }

  stop(): void {
    this.users = Math.max(0, this.users - 1);
    if (this.users === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get(ref: PodRef): PodInfo | undefined {
    const e =
      (ref.uid !== undefined ? this.byUid.get(ref.uid) : undefined) ??
      this.byName.get(byName(ref.namespace, ref.name));
    if (e === undefined) return undefined;
    // A name reused by a newer pod: the uid decides.
    if (ref.uid !== undefined && e.pod.uid !== ref.uid) return undefined;
    return e.pod;
  }

  async resolve(ref: PodRef): Promise<PodInfo | undefined> {
    const known = this.get(ref);
    if (known !== undefined) return known;
    if (this.inflight !== undefined) await this.inflight;
    else {
      const wait = this.lastFetch + this.options.refreshMinInterval - Date.now();
      if (wait > 0) {
        // Callers arriving meanwhile share the same delayed fetch.
        this.delayed ??= new Promise<void>((resolve) => setTimeout(resolve, wait).unref()).then(() => {
          this.delayed = undefined;
          return this.refresh();
        });
        await this.delayed;
      } else await this.refresh();
    }
    return this.get(ref);
  }

  /** One fetch; concurrent callers share it. */
  refresh(): Promise<void> {
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetch(): Promise<void> {
    this.lastFetch = Date.now();
    let list: Awaited<ReturnType<typeof fetchPodList>>;
    try {
      list = await fetchPodList(this.options);
    } catch (e) {
      const err =
        e instanceof KubeletError ? e : new KubeletError('unknown', (e as Error).message, { cause: e });
      this.lastError = err;
      // Stale metadata beats none: nothing ages out while the kubelet cannot say what was deleted.
      for (const l of this.listeners) l.failed?.(err.reason, err);
      return;
    }
    const now = Date.now();
    this.lastError = undefined;
    for (const item of list.items ?? []) {
      const pod = podInfoOf(item);
      if (pod === undefined) continue;
      const entry: Entry = { pod, seen: now };
      this.byUid.set(pod.uid, entry);
      this.byName.set(byName(pod.namespace, pod.name), entry);
    }
    this.expire(now);
    this.generation++;
    for (const l of this.listeners) l.refreshed?.(this.byUid.size);
  }

  /** Pods no successful fetch has listed for longer than deletedGrace go. */
  private expire(now: number): void {
    for (const [uid, e] of this.byUid) {
      if (now - e.seen <= this.options.deletedGrace) continue;
      this.byUid.delete(uid);
      const key = byName(e.pod.namespace, e.pod.name);
      if (this.byName.get(key) === e) this.byName.delete(key);
    }
  }
}
