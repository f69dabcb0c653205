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
