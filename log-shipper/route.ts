import type { Labels } from './enrich.ts';

/**
 * The route stage: which topic and key the records of a file go to. Computed once per file, since
 * labels do not change while it is open. The key keeps one pod's lines in one partition, in order.
 */

export interface Route {
  readonly topic: string;
  readonly key: string;
}

export type Router = (labels: Labels, file: string) => Route;

const MAX_TOPIC_LENGTH = 249;

/** Kafka accepts [a-zA-Z0-9._-] in topic names; anything else in a label becomes '_'. */
function topicSafe(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const ok =
      (c >= 0x30 && c <= 0x39) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) ||
      c === 0x2e ||
      c === 0x5f ||
      c === 0x2d;
    out += ok ? value[i] : '_';
  }
  return out;
}

export function createRouter(topicTemplate: string): Router {
  return (labels, file) => {
    const topic = topicTemplate
      .replace(/\{(namespace|pod|container|node)\}/g, (_, name: 'namespace' | 'pod' | 'container' | 'node') =>
        topicSafe(labels[name] ?? 'unknown'),
      )
      .slice(0, MAX_TOPIC_LENGTH);
    return { topic, key: labels.pod_uid ?? labels.pod ?? file };
  };
}

/**
 * Per-file decisions that come from the pod: whether its lines are shipped at all (namespace list,
 * pod annotation), where a multi-line record starts (pod annotation), and the pod's rate limit.
 */
export interface RoutePolicyOptions {
  excludeNamespaces: readonly string[];
  excludeAnnotation: string;
  multilineAnnotation: string;
  linesPerSecond: number;
  burst: number;
}

export interface FilePolicy {
  readonly excluded: boolean;
  /** Start-of-record pattern, when the pod asks for multi-line grouping. */
  readonly multiline: RegExp | undefined;
  /** Shared by every file of the pod; undefined without a limit. */
  readonly limiter: TokenBucket | undefined;
  /** The multi-line annotation did not compile (shipped line by line). */
  readonly badPattern?: string;
}

/** Lines per second with a burst; refilled lazily on take(). */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly rate: number;
  private readonly burst: number;
  used = 0;

  constructor(rate: number, burst: number, now = Date.now()) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.last = now;
  }

  take(now = Date.now()): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
      this.last = now;
    }
    this.used = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface RoutePolicy {
  forFile(labels: Labels, annotations: Readonly<Record<string, string>> | undefined): FilePolicy;
}

export function createRoutePolicy(options: RoutePolicyOptions): RoutePolicy {
  const namespaces = new Set(options.excludeNamespaces);
  const buckets = new Map<string, TokenBucket>();
  const patterns = new Map<string, RegExp | string>();
  const IDLE_BUCKET_MS = 60_000;

  function bucketOf(key: string): TokenBucket {
    let b = buckets.get(key);
    if (b === undefined) {
      // Buckets of pods quiet for a minute are full again anyway: forget them.
      if (buckets.size >= 1000) {
        const now = Date.now();
        for (const [k, v] of buckets) if (now - v.used > IDLE_BUCKET_MS) buckets.delete(k);
      }
      b = new TokenBucket(options.linesPerSecond, options.burst || options.linesPerSecond);
      buckets.set(key, b);
    }
    return b;
  }

  function compiled(source: string): RegExp | string {
    let r = patterns.get(source);
    if (r === undefined) {
      try {
        r = new RegExp(source);
      } catch (err) {
        r = (err as Error).message;
      }
      if (patterns.size > 1000) patterns.clear();
      patterns.set(source, r);
    }
    return r;
  }

  return {
    forFile(labels, annotations) {
      const container = labels.container;
      const annotated = (name: string) =>
        (container !== undefined ? annotations?.[`${name}.${container}`] : undefined) ?? annotations?.[name];
      const excluded =
        (labels.namespace !== undefined && namespaces.has(labels.namespace)) ||
        annotated(options.excludeAnnotation)?.trim().toLowerCase() === 'false';
      const start = annotated(options.multilineAnnotation);
      const pattern = start === undefined || start === '' ? undefined : compiled(start);
      const limiter =
        options.linesPerSecond > 0
          ? bucketOf(labels.pod_uid ?? `${labels.namespace}/${labels.pod}`)
          : undefined;
      return {
        excluded,
        multiline: pattern instanceof RegExp ? pattern : undefined,
        limiter,
        ...(typeof pattern === 'string' ? { badPattern: pattern } : {}),
      };
    },
  };
}
