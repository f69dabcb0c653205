import { Health, type HealthListener, type KubeError } from '../kube/index.ts';
import { PodCache, type PodRef } from './cache.ts';
import { fetchPodList, type KubeletOptions } from './kubelet.ts';
import { type PodInfo, podInfoOf } from './pod.ts';

export type { PodRef } from './cache.ts';

/** Told when the cache was (re)filled from a complete list (`pods` known now), and each failure. */
export type PodSourceListener = HealthListener;

/** What consumers depend on; the kubelet and API-server sources implement it, tests may bring another. */
export interface PodMetadataSource {
  /** From the cache only. */
  get(ref: PodRef): PodInfo | undefined;
  /**
   * From the cache, or once the source had a chance to learn of the pod (a rate-limited fetch of
   * the kubelet's list; a short wait for the API server's watch).
   */
  resolve(ref: PodRef): Promise<PodInfo | undefined>;
  /** Bumped whenever the cache changed: a cheap test for "worth asking again". */
  readonly generation: number;
  /** Set while the source fails (unreachable, refused, not a pod list): waiting for it is pointless. */
  readonly lastError?: unknown;
}

/**
 * A running source, shared by the modules of one agent. Failures never throw to callers: lookups
 * answer from the cache (or undefined), listeners hear the reason.
 */
export interface PodSource extends PodMetadataSource {
  /** Starts it (reference counted) and resolves after the first complete list, successful or not. */
  start(): Promise<void>;
  stop(): void;
  subscribe(listener: PodSourceListener): () => void;
  readonly size: number;
}

/** What both sources share: the cache, the listeners and the read side. */
export class CachedPodSource {
  protected readonly cache = new PodCache();
  protected readonly health = new Health();

  /** Set while the source fails; cleared once it answers again. */
  get lastError(): KubeError | undefined {
    return this.health.lastError;
  }

  get size(): number {
    return this.cache.size;
  }

  get generation(): number {
    return this.cache.generation;
  }

  subscribe(listener: PodSourceListener): () => void {
    return this.health.subscribe(listener);
  }

  get(ref: PodRef): PodInfo | undefined {
    return this.cache.get(ref);
  }

  protected failed(e: unknown): KubeError {
    return this.health.failed(e);
  }

  protected refreshed(): void {
    this.health.ok(this.cache.size);
  }
}

export interface KubeletPodSourceOptions extends KubeletOptions {
  pollInterval: number;
  refreshMinInterval: number;
  deletedGrace: number;
}

/**
 * Pod metadata from the kubelet's `/pods`: polled every `pollInterval`, and refreshed on demand
 * when someone asks for a pod it does not know (a pod newer than the last poll), at most once per
 * `refreshMinInterval`. Node-local: no load on the API server.
 */
export class KubeletPodSource extends CachedPodSource implements PodSource {
  private readonly options: KubeletPodSourceOptions;
  private inflight: Promise<void> | undefined;
  private delayed: Promise<void> | undefined;
  private lastFetch = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private users = 0;

  constructor(options: KubeletPodSourceOptions) {
    super();
    this.options = options;
  }

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
      // Stale metadata beats none: nothing ages out while the kubelet cannot say what was deleted.
      this.failed(e);
      return;
    }
    const now = Date.now();
    const pods: PodInfo[] = [];
    for (const item of list.items ?? []) {
      const pod = podInfoOf(item);
      if (pod !== undefined) pods.push(pod);
    }
    this.cache.replace(pods, now);
    this.cache.expire(now, this.options.deletedGrace);
    this.refreshed();
  }
}
