import type { Labels } from '../collector.ts';
import { encodeWriteRequest, type Series } from './protobuf.ts';
import type { Snapshot } from './push.ts';
import { snappyCompress } from './snappy.ts';

/** The headers the remote_write 1.0 spec requires of a sender. */
export const REMOTE_WRITE_HEADERS = {
  'Content-Encoding': 'snappy',
  'Content-Type': 'application/x-protobuf',
  'X-Prometheus-Remote-Write-Version': '0.1.0',
  'User-Agent': 'nodeward',
} as const;

const byName = (a: readonly [string, string], b: readonly [string, string]) =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;

/**
 * The snapshot as remote_write series: __name__ plus the external labels plus the sample's own
 * (the sample's win a clash, as Prometheus' external labels do not override target labels),
 * empty values dropped (the spec forbids them; Prometheus treats them as absent), sorted by name.
 */
export function toSeries(snapshot: Snapshot, externalLabels: Labels): Series[] {
  const out: Series[] = [];
  for (const [family, samples] of snapshot.families) {
    for (const sample of samples) {
      const merged: Record<string, string> = { ...externalLabels, ...sample.labels, __name__: family.name };
      const labels = Object.entries(merged).filter(([, v]) => v !== '');
      labels.sort(byName);
      out.push({ labels, value: sample.value, timestampMs: snapshot.timestampMs });
    }
  }
  return out;
}

export function encodeRemoteWrite(
  snapshot: Snapshot,
  externalLabels: Labels,
  headers: Record<string, string>,
): { body: Buffer; headers: Record<string, string> } {
  const body = snappyCompress(encodeWriteRequest(toSeries(snapshot, externalLabels)));
  return { body, headers: { ...headers, ...REMOTE_WRITE_HEADERS } };
}
