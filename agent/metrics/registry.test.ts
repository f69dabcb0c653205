import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HOST_COLLECTORS } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logger.ts';
import { fixture, parseExposition, settingsFor } from '../../test/support/metrics/testing.ts';
import { type Collector, family } from './collector.ts';
import { createHostRegistry } from './index.ts';
import { registerCollectors } from './registry.ts';
import { createScraper, FAILURE_LOG_INTERVAL_MS } from './scrape.ts';

/** A logger whose JSON lines land in an array. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { log: createLogger('info', sink), lines };
}

const labelNames = (f: { samples: { labels: Record<string, string> }[] }) =>
  [...new Set(f.samples.flatMap((s) => Object.keys(s.labels)))].sort();

describe('host registry exposition', () => {
  it('parses, and has the expected families with their labels and types', async () => {
    const { log } = capturedLogger();
    const text = await createHostRegistry(settingsFor(fixture('host/proc')), log).metrics();
    const families = parseExposition(text);
    const expected: [string, string, string[]][] = [
      ['node_cpu_seconds_total', 'counter', ['cpu', 'mode']],
      ['node_cpu_guest_seconds_total', 'counter', ['cpu', 'mode']],
      ['node_memory_MemTotal_bytes', 'gauge', []],
      ['node_memory_Active_anon_bytes', 'gauge', []],
      ['node_load1', 'gauge', []],
      ['node_filesystem_avail_bytes', 'gauge', ['device', 'fstype', 'mountpoint']],
      ['node_filesystem_device_error', 'gauge', ['device', 'fstype', 'mountpoint']],
      ['node_disk_read_bytes_total', 'counter', ['device']],
      ['node_disk_info', 'gauge', ['device', 'major', 'minor']],
      ['node_network_receive_bytes_total', 'counter', ['device']],
      ['node_pressure_io_stalled_seconds_total', 'counter', []],
      ['node_uname_info', 'gauge', ['domainname', 'machine', 'nodename', 'release', 'sysname', 'version']],
      ['node_boot_time_seconds', 'gauge', []],
      ['node_intr_total', 'counter', []],
      ['node_vmstat_pgmajfault', 'untyped', []],
      ['node_filefd_maximum', 'gauge', []],
      ['node_nf_conntrack_stat_insert_failed', 'gauge', []],
      ['node_timex_sync_status', 'gauge', []],
      ['node_timex_pps_jitter_total', 'counter', []],
      ['nodeward_scrape_collector_duration_seconds', 'gauge', ['collector']],
      ['nodeward_scrape_collector_success', 'gauge', ['collector']],
    ];
    for (const [name, type, labels] of expected) {
      const f = families.get(name);
      expect(f, name).toBeDefined();
      expect(f!.type, name).toBe(type);
      expect(f!.samples.length, name).toBeGreaterThan(0);
      expect(labelNames(f!), name).toEqual(labels);
    }
    const success = families.get('nodeward_scrape_collector_success')!.samples;
    expect(success).toHaveLength(Object.keys(HOST_COLLECTORS).length);
    expect(success.every((s) => s.value === 1)).toBe(true);
    // node_exporter's name for the same, 0 where a collector found nothing (no data) as it has it.
    const theirs = families.get('node_scrape_collector_success')!.samples;
    expect(theirs.map((s) => s.labels.collector)).toEqual(success.map((s) => s.labels.collector));
    expect(theirs.filter((s) => s.value === 0).map((s) => s.labels.collector)).toEqual([]);
    expect(families.get('node_memory_MemTotal_bytes')!.samples[0]!.value).toBe(24684084 * 1024);
  });

  it('is accepted by promtool (only its camelCase and entropy-bits lints, inherent to node_exporter names)', async (ctx) => {
    if (!existsSync('/usr/bin/promtool')) ctx.skip();
    const text = await createHostRegistry(settingsFor(fixture('host/proc')), capturedLogger().log).metrics();
    const r = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const complaints = `${r.stdout}${r.stderr}`
      .split('\n')
      .filter((l) => l && !/snake_case|base unit "bytes" instead of "bits"/.test(l));
    expect(complaints).toEqual([]);
  });

  it('turns collectors off from metrics.collectors', async () => {
    const settings = settingsFor(fixture('host/proc'), { collectors: { cpu: false, filesystem: false } });
    const families = parseExposition(await createHostRegistry(settings, capturedLogger().log).metrics());
    expect(families.has('node_cpu_seconds_total')).toBe(false);
    expect(families.has('node_filesystem_size_bytes')).toBe(false);
    const collectors = families
      .get('nodeward_scrape_collector_success')!
      .samples.map((s) => s.labels.collector);
    expect(collectors).not.toContain('cpu');
    expect(collectors).toHaveLength(Object.keys(HOST_COLLECTORS).length - 2);
  });

  it('exposes nothing when metrics.enabled is false', async () => {
    const registry = createHostRegistry(
      settingsFor(fixture('host/proc'), { enabled: false }),
      capturedLogger().log,
    );
    expect(registry.getMetricsAsArray()).toEqual([]);
  });
});

describe('registerCollectors', () => {
  const OK = family('test_ok', 'gauge', 'A value.');
  const good: Collector = {
    families: [OK],
    async collect(emit) {
      emit(OK, 1, { device: 'a"b\\c\nd' });
    },
  };
  const BROKEN = family('test_broken', 'gauge', 'Never seen.');
  const broken: Collector = {
    families: [BROKEN],
    async collect(emit) {
      emit(BROKEN, 1);
      throw new Error('cannot read /proc/broken');
    },
  };

  it('isolates a failing collector: success 0, none of its samples, the rest unharmed', async () => {
    const registry = new Registry();
    const { log, lines } = capturedLogger();
    registerCollectors(
      registry,
      [
        { name: 'good', collector: good },
        { name: 'broken', collector: broken },
      ],
      log,
    );
    const families = parseExposition(await registry.metrics());
    expect(families.get('test_ok')!.samples).toEqual([{ labels: { device: 'a"b\\c\nd' }, value: 1 }]);
    expect(families.get('test_broken')!.samples).toEqual([]);
    expect(families.get('nodeward_scrape_collector_success')!.samples).toEqual([
      { labels: { collector: 'good' }, value: 1 },
      { labels: { collector: 'broken' }, value: 0 },
    ]);
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', code: 'METRICS_COLLECTOR_FAILED', collector: 'broken' });
    expect(String((lines[0]!.err as { message: string }).message)).toMatch(/cannot read \/proc\/broken/);
  });

  it('logs a failing collector once per interval, then says when it recovers', async () => {
    let failing = true;
    let now = 0;
    const flaky: Collector = {
      families: [],
      async collect() {
        if (failing) throw new Error('EIO');
      },
    };
    const { log, lines } = capturedLogger();
    const scrape = createScraper([{ name: 'flaky', collector: flaky }], log, () => now);
    for (let i = 0; i < 5; i++) {
      await scrape();
      now += 15_000;
    }
    now += FAILURE_LOG_INTERVAL_MS;
    await scrape();
    failing = false;
    await scrape();
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => [l.level, l.msg, l.suppressed])).toEqual([
      ['warn', 'metrics collector failed; its series are left out until it recovers', 0],
      ['warn', 'metrics collector failed; its series are left out until it recovers', 4],
      ['info', 'metrics collector recovered', undefined],
    ]);
  });

  it('fails a collector that emits a family it did not declare', async () => {
    const sneaky: Collector = {
      families: [],
      async collect(emit) {
        emit(OK, 1);
      },
    };
    const registry = new Registry();
    registerCollectors(registry, [{ name: 'sneaky', collector: sneaky }], capturedLogger().log);
    const families = parseExposition(await registry.metrics());
    expect(families.get('nodeward_scrape_collector_success')!.samples[0]!.value).toBe(0);
  });

  it('collects once per scrape, and once for scrapes that overlap', async () => {
    let calls = 0;
    const counted: Collector = {
      families: [OK, BROKEN],
      async collect(emit) {
        calls++;
        await new Promise((r) => setTimeout(r, 5));
        emit(OK, calls);
      },
    };
    const registry = new Registry();
    registerCollectors(registry, [{ name: 'counted', collector: counted }], capturedLogger().log);
    await registry.metrics();
    expect(calls).toBe(1);
    const [a, b] = await Promise.all([registry.metrics(), registry.metrics()]);
    expect(calls).toBe(2);
    expect(a).toBe(b);
  });
});
