import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createTextfileCollector, parseTextFormat } from './textfile.ts';

const withDir = (directory: string) => settingsFor(fixture('host/proc'), { textfile: { directory } });

describe('textfile collector', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('exposes the series of each *.prom file, with their mtimes and no error', async () => {
    const collector = createTextfileCollector(withDir(fixture('host/textfile')));
    const families = new Map<string, { type: string; help: string }>();
    const samples = await collectSamples({
      ...collector,
      collect: (emit) =>
        collector.collect((f, v, l) => {
          families.set(f.name, f);
          emit(f, v, l);
        }),
    });
    // Every series has every label of its family, empty where the file gave none.
    expect(sampleValue(samples, 'backup_last_success_timestamp_seconds', { job: 'etcd', target: '' })).toBe(
      1.7e9,
    );
    expect(families.get('backup_last_success_timestamp_seconds')).toMatchObject({
      type: 'gauge',
      help: 'When the last backup finished.',
    });
    expect(sampleValue(samples, 'backup_duration_seconds_bucket', { le: '+Inf' })).toBe(4);
    expect(sampleValue(samples, 'backup_duration_seconds_sum')).toBe(250.5);
    expect(families.get('raid_controller_ok')).toMatchObject({
      type: 'untyped',
      help: `Metric read from ${join(fixture('host/textfile'), 'raid.prom')}`,
    });
    expect(samples.filter((s) => s.name === 'node_textfile_mtime_seconds').map((s) => s.labels.file)).toEqual(
      [join(fixture('host/textfile'), 'backup.prom'), join(fixture('host/textfile'), 'raid.prom')],
    );
    expect(sampleValue(samples, 'node_textfile_scrape_error')).toBe(0);
  });

  it('skips a file with timestamps or bad syntax and says so; re-reads a file when it changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'textfile-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'a.prom'), 'a_metric 1\n');
    writeFileSync(join(dir, 'b.prom'), 'b_metric 1 1700000000000\n');
    const collector = createTextfileCollector(withDir(dir));
    let samples = await collectSamples(collector);
    expect(sampleValue(samples, 'node_textfile_scrape_error')).toBe(1);
    expect(samples.some((s) => s.name === 'b_metric')).toBe(false);
    writeFileSync(join(dir, 'a.prom'), 'a_metric 2\n');
    utimesSync(join(dir, 'a.prom'), 1_800_000_000, 1_800_000_000);
    rmSync(join(dir, 'b.prom'));
    samples = await collectSamples(collector);
    expect(sampleValue(samples, 'a_metric')).toBe(2);
    expect(sampleValue(samples, 'node_textfile_mtime_seconds', { file: join(dir, 'a.prom') })).toBe(
      1_800_000_000,
    );
    expect(sampleValue(samples, 'node_textfile_scrape_error')).toBe(0);
  });

  it('reports an error for a missing directory, and only the error metric without one', async () => {
    expect(
      sampleValue(
        await collectSamples(createTextfileCollector(withDir('/nonexistent'))),
        'node_textfile_scrape_error',
      ),
    ).toBe(1);
    const none = await collectSamples(createTextfileCollector(withDir('')));
    expect(none.map((s) => [s.name, s.value])).toEqual([['node_textfile_scrape_error', 0]]);
  });

  it('parses escapes, special values and spacing of the text format', () => {
    const f = parseTextFormat(
      '# HELP x A \\\\ help\\nline\n# TYPE x counter\nx{a="q\\"\\n", b="2"} +Inf\nx 1e3\n',
    );
    expect(f.get('x')).toEqual({
      name: 'x',
      type: 'counter',
      help: 'A \\ help\nline',
      samples: [
        { labels: { a: 'q"\n', b: '2' }, value: Number.POSITIVE_INFINITY },
        { labels: {}, value: 1000 },
      ],
    });
    expect(() => parseTextFormat('x{a=1} 2\n')).toThrow(/bad labels/);
  });
});
