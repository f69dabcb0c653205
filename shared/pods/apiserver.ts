import type { IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import type { PodRef } from './cache.ts';
import { type Connection, openGet, PodSourceError, readJson } from './http.ts';
import { type PodInfo, podInfoOf, type V1Pod, type V1PodList } from './pod.ts';
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

export interface ApiServerPodSourceOptions extends Connection {
  /** The API server's base URL, e.g. https://10.96.0.1:443. */
  url: string;
  /** spec.nodeName of the pods to follow. */
  node: string;
  /** Server-side length of one watch request (timeoutSeconds), then it is renewed (ms). */
  watchTimeout: number;
  /** How long resolve() waits for the watch to bring a pod it does not know yet (ms). */
  resolveWait: number;
  deletedGrace: number;
  /** Reconnect delays: first, then doubling up to max (ms). */
  backoffInitial?: number;
  backoffMax?: number;
}

/** Consecutive watch failures after which the pods are listed again rather than watched from the last version. */
const WATCH_FAILURES_BEFORE_RELIST = 3;

/** A watch event line: {"type":"ADDED","object":{…Pod…}}; ERROR carries a Status. */
interface WatchEvent {
  type?: string;
  object?: V1Pod & { code?: number; reason?: string; message?: string };
}

export class ApiServerPodSource extends CachedPodSource implements PodSource {
  private readonly options: ApiServerPodSourceOptions;
  /** resolve() callers waiting for the cache to change. */
  private readonly waiters = new Set<() => void>();
  private users = 0;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private firstAttempt: Promise<void> | undefined;
  private sweep: NodeJS.Timeout | undefined;

  constructor(options: ApiServerPodSourceOptions) {
    super();
    this.options = options;
  }

  async start(): Promise<void> {
    this.users++;
    if (this.users === 1) {
      const abort = new AbortController();
      this.abort = abort;
      let attempted: () => void = () => {};
      this.firstAttempt = new Promise<void>((resolve) => {
        attempted = resolve;
      });
      this.loop = this.run(abort.signal, attempted);
      const every = Math.max(1000, Math.min(this.options.deletedGrace, 30_000));
      this.sweep = setInterval(() => this.cache.expire(Date.now(), this.options.deletedGrace), every);
      this.sweep.unref();
    }
    await this.firstAttempt;
  }

  stop(): void {
    this.users = Math.max(0, this.users - 1);
    if (this.users > 0) return;
    this.abort?.abort();
    this.abort = undefined;
    clearInterval(this.sweep);
    this.sweep = undefined;
    this.changed();
  }

  /** Resolves once the watch loop has ended after the last stop() (for tests and clean shutdowns). */
  async stopped(): Promise<void> {
    await this.loop;
  }

  async resolve(ref: PodRef): Promise<PodInfo | undefined> {
    const deadline = Date.now() + this.options.resolveWait;
    for (;;) {
      const pod = this.get(ref);
      const left = deadline - Date.now();
      // Not waiting while the source fails: the watch would not bring the pod meanwhile.
      if (pod !== undefined || left <= 0 || this.abort === undefined || this.lastError !== undefined)
        return pod;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        timer.unref();
        this.waiters.add(wake);
      });
    }
  }

  private changed(): void {
    for (const wake of [...this.waiters]) wake();
  }

  private async run(signal: AbortSignal, attempted: () => void): Promise<void> {
    const initial = this.options.backoffInitial ?? 500;
    const max = this.options.backoffMax ?? 30_000;
    let version: string | undefined;
    let delay = initial;
    /** Lists so far: the first may come from the watch cache (resourceVersion=0), later ones not. */
    let lists = 0;
    /** The version came from a list and no event followed yet: a 410 for it is no reason to list again at once. */
    let listed = false;
    /** Watches that failed in a row: past a few, the cache may be missing changes, so list again. */
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (version === undefined || failures >= WATCH_FAILURES_BEFORE_RELIST) {
          version = await this.list(signal, lists++ === 0 ? '0' : undefined);
          listed = true;
          failures = 0;
          attempted();
        }
        const opened = Date.now();
        let events = 0;
        await this.watch(version, signal, (v) => {
          version = v;
          events++;
          listed = false;
          failures = 0;
          delay = initial;
        });
        // A server that ends watches at once must not be hammered by reconnects.
        if (events === 0 && Date.now() - opened < 1000) {
          await sleep(delay, signal);
          delay = Math.min(max, delay * 2);
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof PodSourceError && err.reason === 'gone') {
          // Our resourceVersion left the server's window: list again — at once, unless the list
          // itself was just made (a server that keeps answering 410 must not be listed in a loop).
          version = undefined;
          if (!listed) continue;
        }
        failures++;
        this.failed(err);
        attempted();
        await sleep(delay, signal);
        delay = Math.min(max, delay * 2);
      }
    }
    attempted();
  }

  /**
   * The complete list of this node's pods; returns its resourceVersion. `resourceVersion=0` lets
   * the API server answer from its watch cache (cheap: 500 nodes list at once after a restart);
   * a relist after 410 asks for a consistent read instead, as client-go does: a lagging cache could
   * bring deleted pods back.
   */
  private async list(signal: AbortSignal, resourceVersion: string | undefined): Promise<string> {
    const url = this.podsUrl(resourceVersion === undefined ? {} : { resourceVersion });
    const res = await openGet(url, this.options, 'API server', signal);
    const list = (await readJson(res, url, 'API server')) as V1PodList;
    if (typeof list !== 'object' || list === null || !Array.isArray(list.items))
      throw new PodSourceError('bad_json', `API server ${url.href}: not a PodList (no items array)`);
    const version = list.metadata?.resourceVersion;
    if (!version)
      throw new PodSourceError(
        'bad_json',
        `API server ${url.href}: PodList without metadata.resourceVersion`,
      );
    const pods: PodInfo[] = [];
    for (const item of list.items) {
      const pod = podInfoOf(item);
      if (pod !== undefined) pods.push(pod);
    }
    const now = Date.now();
    this.cache.replace(pods, now);
    this.cache.expire(now, this.options.deletedGrace);
    this.refreshed();
    this.changed();
    return version;
  }

  /** One watch request, applied event by event until the server ends it. */
  private async watch(version: string, signal: AbortSignal, advanced: (v: string) => void): Promise<void> {
    // Between watchTimeout and twice it, as client-go jitters: agents that reconnected together
    // (after an API server restart) do not renew their watches in lockstep.
    const seconds = Math.max(1, Math.round((this.options.watchTimeout * (1 + Math.random())) / 1000));
    const url = this.podsUrl({
      watch: 'true',
      resourceVersion: version,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(seconds),
    });
    // Opening it is bounded like any request; once it answered, the socket may stay quiet for the
    // whole watch (bookmarks come about once a minute), so the inactivity limit covers that.
    const res = await openGet(url, this.options, 'API server watch', signal);
    res.socket?.setTimeout(seconds * 1000 + this.options.timeout);
    if (this.lastError !== undefined) this.refreshed();
    await this.applyEvents(res, url, advanced);
  }

  private async applyEvents(res: IncomingMessage, url: URL, advanced: (v: string) => void): Promise<void> {
    const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
    // Errors of the stream surface through the iteration below, or not at all once it ended: an
    // 'error' without a listener would take the whole agent down.
    lines.on('error', () => {});
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        let event: WatchEvent;
        try {
          event = JSON.parse(line) as WatchEvent;
        } catch (err) {
          throw new PodSourceError('bad_json', `API server watch ${url.href}: not JSON`, { cause: err });
        }
        const object = event.object ?? {};
        if (event.type === 'ERROR') {
          const code = object.code ?? 0;
          throw new PodSourceError(
            code === 410 ? 'gone' : `watch_${code || 'error'}`,
            `API server watch ${url.href}: ${object.reason ?? 'error'} ${object.message ?? ''}`.trim(),
          );
        }
        if (event.type === 'ADDED' || event.type === 'MODIFIED') {
          const pod = podInfoOf(object);
          if (pod !== undefined) this.cache.upsert(pod);
          this.changed();
        } else if (event.type === 'DELETED') {
          const uid = object.metadata?.uid;
          if (uid) this.cache.markGone(uid, Date.now());
        }
        const v = object.metadata?.resourceVersion;
        if (v) advanced(v);
      }
    } catch (err) {
      if (err instanceof PodSourceError) throw err;
      // A watch cut mid-stream (API server restart, load balancer idle limit) is renewed like one
      // that ended; if the server is really gone, opening the next one says so.
    } finally {
      // Left early (a bad line, an ERROR event): the server may keep the stream open.
      lines.close();
      res.destroy();
    }
  }

  private podsUrl(params: Record<string, string>): URL {
    // Relative, so that a base URL with a path (an authenticating proxy) keeps it.
    const base = this.options.url.endsWith('/') ? this.options.url : `${this.options.url}/`;
    const url = new URL('api/v1/pods', base);
    url.searchParams.set('fieldSelector', `spec.nodeName=${this.options.node}`);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
