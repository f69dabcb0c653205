import { Health, type HealthListener } from './health.ts';
import type { Resource } from './list.ts';
import { Changes, SharedLoop } from './loop.ts';
import { type KubeObject, type Labels, ObjectCache } from './objects.ts';
import { type ReflectorOptions, reflect } from './reflector.ts';

/**
 * One collection of cluster-scoped objects (all Namespaces; this node's Node) kept by list +
 * watch, looked up by name. Started by its first lookup, so an agent whose pools never ask for
 * node labels never watches its Node. What it knew stays while the API server fails (stale labels
 * beat none); a lookup it cannot answer says why, and whether asking again later may help.
 */

export interface WatchedObjectsOptions extends ReflectorOptions {
  /** How long a lookup waits for the first list, or for the watch to bring a name it does not know yet (ms). */
  lookupWait: number;
}

export type Lookup =
  | { readonly found: true; readonly labels: Labels; readonly annotations: Labels }
  | { readonly found: false; readonly retriable: boolean; readonly why: string };

export class WatchedObjects {
  private readonly options: WatchedObjectsOptions;
  private readonly resource: Resource;
  /** For messages: namespace, node. */
  private readonly kind: string;
  private readonly cache = new ObjectCache();
  private readonly health = new Health();
  private readonly changes = new Changes();
  private readonly loop = new SharedLoop((signal, attempted) =>
    reflect<KubeObject>(
      this.options,
      this.resource,
      {
        listed: (items) => {
          this.cache.replace(items);
          this.listed = true;
          this.answered();
        },
        event: (type, object) => {
          if (type === 'DELETED') this.cache.remove(object);
          else this.cache.upsert(object);
          this.changes.notify();
        },
        watching: () => {
          if (this.health.lastError !== undefined) this.answered();
        },
        failed: (err) => {
          this.health.failed(err);
          this.changes.notify();
        },
        attempted,
      },
      signal,
    ),
  );
  /** A complete list arrived at least once. */
  private listed = false;
  /** The first list attempt of the running watch. */
  private firstList: Promise<void> | undefined;

  constructor(options: WatchedObjectsOptions, resource: Resource, kind: string) {
    this.options = options;
    this.resource = resource;
    this.kind = kind;
  }

  get size(): number {
    return this.cache.size;
  }

  /** Watching now (a lookup started it, stop() has not ended it). */
  get running(): boolean {
    return this.loop.running;
  }

  subscribe(listener: HealthListener): () => void {
    return this.health.subscribe(listener);
  }

  /**
   * The labels and annotations of `name`. The first lookup starts the watch and waits for its
   * first list (bounded by the request timeout); a name the list did not have is waited for up to
   * `lookupWait`, in case the watch brings it.
   */
  async lookup(name: string): Promise<Lookup> {
    if (!this.loop.running) this.firstList = this.loop.start();
    await this.firstList;
    const found = await this.changes.until(
      this.options.lookupWait,
      () => this.cache.get(name),
      // Not waiting while the API server fails: the watch would not bring it meanwhile.
      () => !this.loop.running || this.health.lastError !== undefined,
    );
    if (found !== undefined) return { found: true, labels: found.labels, annotations: found.annotations };
    const err = this.health.lastError;
    const why =
      err !== undefined
        ? `the API server cannot be asked for ${this.kind}s (${err.reason}): ${err.message}`
        : !this.listed
          ? `the API server's list of ${this.kind}s did not arrive`
          : `${this.kind} ${name} is not in the API server's list of ${this.kind}s (yet)`;
    return { found: false, retriable: true, why };
  }

  stop(): void {
    if (this.loop.stop()) this.changes.notify();
  }

  /** Resolves once the watch has ended after stop(). */
  async stopped(): Promise<void> {
    await this.loop.stopped();
  }

  private answered(): void {
    this.health.ok(this.cache.size);
    this.changes.notify();
  }
}
