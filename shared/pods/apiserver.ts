import { Changes, type ReflectorHandler, type ReflectorOptions, reflect, SharedLoop } from '../kube/index.ts';
import type { PodRef } from './cache.ts';
import { type PodInfo, podInfoOf, type V1Pod } from './pod.ts';
import { CachedPodSource, type PodSource } from './source.ts';

/**
 * Pod metadata from the API server: one list of this node's pods (`fieldSelector=spec.nodeName`),
 * then a watch from the list's resourceVersion, as client-go's reflector does. The watch delivers
 * a pod as soon as it is bound to the node — before its containers write a line — and its
 * deletion as it happens; no polling. Each agent holds one watch (500 nodes: 500 watches, served
 * from the API server's watch cache since the list asks for resourceVersion=0).
 *
 * Reconnects resume from the last resourceVersion seen (bookmarks keep it fresh); "410 Gone" (the
 * version left the server's window) means list again, and the new list settles what was deleted
 * meanwhile. Failures back off (capped, doubling) and never throw to callers.
 */

export interface ApiServerPodSourceOptions extends ReflectorOptions {
  /** spec.nodeName of the pods to follow. */
  node: string;
  /** How long resolve() waits for the watch to bring a pod it does not know yet (ms). */
  resolveWait: number;
  deletedGrace: number;
}

export class ApiServerPodSource extends CachedPodSource implements PodSource {
  private readonly options: ApiServerPodSourceOptions;
  /** resolve() callers waiting for the cache to change. */
  private readonly changes = new Changes();
  private readonly loop = new SharedLoop((signal, attempted) => this.run(signal, attempted));
  private sweep: NodeJS.Timeout | undefined;

  constructor(options: ApiServerPodSourceOptions) {
    super();
    this.options = options;
  }

  async start(): Promise<void> {
    if (!this.loop.running) {
      const every = Math.max(1000, Math.min(this.options.deletedGrace, 30_000));
      this.sweep = setInterval(() => this.cache.expire(Date.now(), this.options.deletedGrace), every);
      this.sweep.unref();
    }
    await this.loop.start();
  }

  stop(): void {
    if (!this.loop.stop()) return;
    clearInterval(this.sweep);
    this.sweep = undefined;
    this.changes.notify();
  }

  /** Resolves once the watch loop has ended after the last stop() (for tests and clean shutdowns). */
  async stopped(): Promise<void> {
    await this.loop.stopped();
  }

  resolve(ref: PodRef): Promise<PodInfo | undefined> {
    // Not waiting while the source fails: the watch would not bring the pod meanwhile.
    return this.changes.until(
      this.options.resolveWait,
      () => this.get(ref),
      () => !this.loop.running || this.lastError !== undefined,
    );
  }

  private changed(): void {
    this.changes.notify();
  }

  private run(signal: AbortSignal, attempted: () => void): Promise<void> {
    const resource = { path: 'api/v1/pods', fieldSelector: `spec.nodeName=${this.options.node}` };
    return reflect<V1Pod>(this.options, resource, this.handler(attempted), signal);
  }

  /** How list and watch events land in the pod cache. */
  private handler(attempted: () => void): ReflectorHandler<V1Pod> {
    return {
      listed: (items) => {
        const pods: PodInfo[] = [];
        for (const item of items) {
          const pod = podInfoOf(item);
          if (pod !== undefined) pods.push(pod);
        }
        const now = Date.now();
        this.cache.replace(pods, now);
        this.cache.expire(now, this.options.deletedGrace);
        this.refreshed();
        this.changed();
      },
      event: (type, object) => {
        if (type === 'DELETED') {
          const uid = object.metadata?.uid;
          if (uid) this.cache.markGone(uid, Date.now());
          return;
        }
        const pod = podInfoOf(object);
        if (pod !== undefined) this.cache.upsert(pod);
        this.changed();
      },
      watching: () => {
        if (this.lastError !== undefined) this.refreshed();
      },
      failed: (err) => this.failed(err),
      attempted,
    };
  }
}
