import type { IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import { type ApiServer, KubeError, openGet } from './http.ts';
import { listObjects, type Resource, resourceUrl } from './list.ts';
import type { KubeObject } from './objects.ts';

/**
 * List + watch of one collection, as client-go's reflector does: one list, then a watch from the
 * list's resourceVersion, resumed from the last version seen (bookmarks keep it fresh) when it
 * ends or is cut; "410 Gone" (the version left the server's window) means list again, and the new
 * list settles what was deleted meanwhile. Failures back off (capped, doubling) and are handed to
 * the caller, never thrown: the loop runs until `signal` aborts.
 */

export interface ReflectorOptions extends ApiServer {
  /** Server-side length of one watch request (timeoutSeconds), then it is renewed (ms). */
  watchTimeout: number;
  /**
   * A watch that brings nothing, not even a bookmark, for this long is taken for dead and renewed
   * (ms): a connection cut without a FIN (a NAT or load balancer that dropped it) looks just quiet.
   * Default 150 s: the API server sends a bookmark about once a minute.
   */
  watchIdleTimeout?: number | undefined;
  /** Reconnect delays: first, then doubling up to max (ms). */
  backoffInitial?: number | undefined;
  backoffMax?: number | undefined;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** What the reflector tells its cache. */
export interface ReflectorHandler<T> {
  /** A complete list: these exist, nothing else. */
  listed(items: T[]): void;
  /** One watch event. */
  event(type: WatchEventType, object: T): void;
  /** A watch opened: the API server answers (again). */
  watching(): void;
  failed(err: KubeError): void;
  /** The first list was attempted (successfully or not); called again later, harmlessly. */
  attempted(): void;
}

/** Consecutive watch failures after which the collection is listed again rather than watched from the last version. */
const WATCH_FAILURES_BEFORE_RELIST = 3;

/** A watch event line: {"type":"ADDED","object":{…}}; ERROR carries a Status. */
interface WatchEvent<T> {
  type?: string;
  object?: T & { code?: number; reason?: string; message?: string };
}

export async function reflect<T extends KubeObject>(
  options: ReflectorOptions,
  resource: Resource,
  handler: ReflectorHandler<T>,
  signal: AbortSignal,
): Promise<void> {
  const initial = options.backoffInitial ?? 500;
  const max = options.backoffMax ?? 30_000;
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
        // resourceVersion=0 lets the API server answer from its watch cache (cheap: 500 nodes
        // list at once after a restart); a relist after 410 asks for a consistent read instead,
        // as client-go does: a lagging cache could bring deleted objects back.
        const list = await listObjects<T>(options, resource, lists++ === 0 ? '0' : undefined, signal);
        handler.listed(list.items);
        version = list.resourceVersion;
        listed = true;
        failures = 0;
        handler.attempted();
      }
      const opened = Date.now();
      let events = 0;
      await watch<T>(options, resource, version, signal, handler, (v) => {
        version = v;
        events++;
        listed = false;
        failures = 0;
        delay = initial;
      });
      // A server that ends watches at once must not be hammered by reconnects.
      if (events === 0 && Date.now() - opened < 1000) {
        await sleep(jittered(delay), signal);
        delay = Math.min(max, delay * 2);
      }
    } catch (err) {
      if (signal.aborted) break;
      if (err instanceof KubeError && err.reason === 'gone') {
        // Our resourceVersion left the server's window: list again — at once, unless the list
        // itself was just made (a server that keeps answering 410 must not be listed in a loop).
        version = undefined;
        if (!listed) continue;
      }
      failures++;
      handler.failed(
        err instanceof KubeError ? err : new KubeError('unknown', (err as Error).message, { cause: err }),
      );
      handler.attempted();
      await sleep(jittered(delay), signal);
      delay = Math.min(max, delay * 2);
    }
  }
  handler.attempted();
}

/** One watch request, applied event by event until the server ends it. */
async function watch<T extends KubeObject>(
  options: ReflectorOptions,
  resource: Resource,
  version: string,
  signal: AbortSignal,
  handler: ReflectorHandler<T>,
  advanced: (v: string) => void,
): Promise<void> {
  // Between watchTimeout and twice it, as client-go jitters: agents that reconnected together
  // (after an API server restart) do not renew their watches in lockstep.
  const seconds = Math.max(1, Math.round((options.watchTimeout * (1 + Math.random())) / 1000));
  const url = resourceUrl(options, resource, {
    watch: 'true',
    resourceVersion: version,
    allowWatchBookmarks: 'true',
    timeoutSeconds: String(seconds),
  });
  // Opening it is bounded like any request; once it answered, the socket may stay quiet between
  // bookmarks (about once a minute), so the inactivity limit is the idle timeout, or the whole
  // watch when that is shorter.
  const res = await openGet(url, options, 'API server watch', signal);
  const idle = Math.min(seconds * 1000, options.watchIdleTimeout ?? 150_000);
  res.socket?.setTimeout(idle + options.timeout);
  handler.watching();
  await applyEvents(res, url, handler, advanced);
}

async function applyEvents<T extends KubeObject>(
  res: IncomingMessage,
  url: URL,
  handler: ReflectorHandler<T>,
  advanced: (v: string) => void,
): Promise<void> {
  const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
  // Errors of the stream surface through the iteration below, or not at all once it ended: an
  // 'error' without a listener would take the whole agent down.
  lines.on('error', () => {});
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      let event: WatchEvent<T>;
      try {
        event = JSON.parse(line) as WatchEvent<T>;
      } catch (err) {
        throw new KubeError('bad_json', `API server watch ${url.href}: not JSON`, { cause: err });
      }
      const object = event.object ?? ({} as NonNullable<WatchEvent<T>['object']>);
      if (event.type === 'ERROR') {
        const code = object.code ?? 0;
        throw new KubeError(
          code === 410 ? 'gone' : `watch_${code || 'error'}`,
          `API server watch ${url.href}: ${object.reason ?? 'error'} ${object.message ?? ''}`.trim(),
        );
      }
      if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED')
        handler.event(event.type, object);
      const v = object.metadata?.resourceVersion;
      if (v) advanced(v);
    }
  } catch (err) {
    if (err instanceof KubeError) throw err;
    // A watch cut mid-stream (API server restart, load balancer idle limit) is renewed like one
    // that ended; if the server is really gone, opening the next one says so.
  } finally {
    // Left early (a bad line, an ERROR event): the server may keep the stream open.
    lines.close();
    res.destroy();
  }
}

/**
 * A backoff delay spread over [delay/2, 3·delay/2): 500 agents that lost the API server together
 * (its restart) come back spread out rather than all at each doubling.
 */
export function jittered(delay: number): number {
  return delay / 2 + Math.random() * delay;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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
