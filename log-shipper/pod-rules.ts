import type { Labels } from './enrich.ts';
import { TokenBucket } from './token-bucket.ts';

/**
 * Per-file decisions that come from the pod: whether its lines are shipped at all (namespace list,
 * pod annotation), where a multi-line record starts (pod annotation), and the pod's rate limit.
 */
export interface PodRulesOptions {
  excludeNamespaces: readonly string[];
  excludeAnnotation: string;
  multilineAnnotation: string;
  linesPerSecond: number;
  burst: number;
}

export interface FileRules {
  readonly excluded: boolean;
  /** Start-of-record pattern, when the pod asks for multi-line grouping. */
  readonly multiline: RegExp | undefined;
  /** Shared by every file of the pod; undefined without a limit. */
  readonly limiter: TokenBucket | undefined;
  /** The multi-line annotation did not compile (shipped line by line). */
  readonly badPattern?: string;
}

export interface PodRules {
  forFile(labels: Labels, annotations: Readonly<Record<string, string>> | undefined): FileRules;
}

export function createPodRules(options: PodRulesOptions): PodRules {
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
