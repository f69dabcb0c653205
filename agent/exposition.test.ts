import { gunzipSync } from 'node:zlib';
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createExpositionWriter, gzipExposition } from './exposition.ts';
import { family } from './metrics/collector.ts';
import { MetricsRegistry } from './metrics/registry.ts';

/** A registry of ours whose one family has `n` samples with non-ASCII label values. */
function ours(n: number, value: () => number) {
  const registry = new MetricsRegistry();
  const f = family('test_items', 'gauge', 'Items: "quoted" \\ and ünïcode.');
  registry.expose(f, () =>
    Array.from({ length: n }, (_, i) => ({ value: value(), labels: { item: `ö-${i}` } })),
  );
  return registry;
}

function theirs(): Registry {
  const registry = new Registry();
  new Counter({ name: 'test_requests_total', help: 'Requests.', registers: [registry] }).inc(3);
  return registry;
}

describe('exposition writer', () => {
  it('writes what the registries say, a blank line between non-empty ones, as UTF-8', async () => {
    const registries = [ours(3, () => 1), ours(0, () => 1), theirs()];
    const expected = (await Promise.all(registries.map((r) => r.metrics())))
      .filter((t) => t.length > 0)
      .join('\n');
    const { body, contentType } = await createExpositionWriter()(registries);
    expect(body.toString('utf8')).toBe(expected);
    expect(expected).toContain('test_items{item="ö-2"} 1\n\n# HELP test_requests_total');
    expect(contentType).toBe(registries[0]!.contentType);
    expect(gunzipSync(gzipExposition(body)).equals(body)).toBe(true);
  });

  it('grows past its buffer, and a body stays as it was after later renders reuse the buffer', async () => {
    let next = 0;
    const registry = ours(20_000, () => next++);
    const render = createExpositionWriter();
    const first = await render([registry]);
    const firstText = first.body.toString('utf8');
    expect(first.body.length).toBeGreaterThan(256 * 1024);
    const second = await render([registry]);
    expect(first.body.toString('utf8')).toBe(firstText);
    expect(second.body.toString('utf8')).not.toBe(firstText);
    expect(second.body.toString('utf8')).toMatch(/^test_items\{item="ö-19999"\} 39999$/m);
  });

  it('renders overlapping scrapes each whole', async () => {
    const registries = [ours(5_000, () => 7), theirs()];
    const render = createExpositionWriter();
    const [a, b] = await Promise.all([render(registries), render(registries)]);
    expect(a.body.equals(b.body)).toBe(true);
    expect(a.body.toString('utf8')).toBe(await registries[0]!.metrics().then((t) => `${t}\n${theirsText}`));
  });
});

const theirsText = await theirs().metrics();
