import type { Labels } from '../collector.ts';
import type { Snapshot } from './push.ts';

/**
 * The JSON push body (schema version 1, documented in README.md beside this file): one document
 * per push, samples grouped by family so names and help are sent once.
 */
export interface JsonPushBody {
  readonly version: 1;
  readonly node: string;
  /** Unix milliseconds of the collection. */
  readonly timestamp: number;
  /** metrics.jsonPush has no labels of its own; these are metrics.remoteWrite.externalLabels' defaults. */
  readonly labels: Labels;
  readonly metrics: readonly {
    readonly name: string;
    readonly type: 'counter' | 'gauge' | 'untyped';
    readonly help: string;
    readonly samples: readonly { readonly labels: Labels; readonly value: number | null }[];
  }[];
}

export function toJsonPush(snapshot: Snapshot, node: string, labels: Labels, include: RegExp): JsonPushBody {
  const metrics: JsonPushBody['metrics'][number][] = [];
  for (const [family, samples] of snapshot.families) {
    if (!include.test(family.name) || samples.length === 0) continue;
    metrics.push({
      name: family.name,
      type: family.type,
      help: family.help,
      // JSON has no NaN or Infinity: those go as null.
      samples: samples.map((s) => ({
        labels: s.labels ?? {},
        value: Number.isFinite(s.value) ? s.value : null,
      })),
    });
  }
  return { version: 1, node, timestamp: snapshot.timestampMs, labels, metrics };
}

export function encodeJsonPush(
  body: JsonPushBody,
  headers: Record<string, string>,
): { body: string; headers: Record<string, string> } {
  return {
    body: JSON.stringify(body),
    headers: { ...headers, 'Content-Type': 'application/json', 'User-Agent': 'nodeward' },
  };
}
