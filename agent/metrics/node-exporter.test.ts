import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.ts';
import { type ExposedFamily, parseExposition, settingsFor } from '../../test/support/metrics/testing.ts';
import { createHostRegistry } from './index.ts';

/**
 * Side by side with the real node_exporter (Debian's prometheus-node-exporter), run with our
 * collectors only and our filters, reading /proc/net/dev (not netlink) as we do. Every family must
 * have the same name, TYPE, HELP and label names; series must match where the machine holds still.
 */

const BINARY = '/usr/bin/prometheus-node-exporter';
const COLLECTORS =
  'cpu meminfo loadavg filesystem diskstats netdev pressure uname stat vmstat filefd conntrack';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Only node_exporter's own families (not go_*, process_*, promhttp_*), without empty labels. */
function nodeFamilies(text: string): Map<string, ExposedFamily> {
  const lines = text
    .split('\n')
    .filter((l) => /^(# (HELP|TYPE) )?node_/.test(l) && !/node_(scrape|exporter)_/.test(l));
  const families = parseExposition(lines.join('\n'));
  for (const f of families.values()) {
    for (const s of f.samples) {
      for (const [k, v] of Object.entries(s.labels)) if (v === '') delete s.labels[k];
    }
  }
  return families;
}

const series = (f: ExposedFamily | undefined) =>
  (f?.samples ?? []).map((s) => JSON.stringify(s.labels)).sort();
const labelNames = (f: ExposedFamily) => [...new Set(f.samples.flatMap((s) => Object.keys(s.labels)))].sort();

describe.skipIf(!existsSync(BINARY))('same output as node_exporter', () => {
  const settings = settingsFor('/proc');
  let exporter: ChildProcess | undefined;
  let theirs: Map<string, ExposedFamily>;
  let ours: Map<string, ExposedFamily>;

  beforeAll(async () => {
    const port = await freePort();
    exporter = spawn(
      BINARY,
      [
        `--web.listen-address=127.0.0.1:${port}`,
        '--collector.disable-defaults',
        ...COLLECTORS.split(' ').map((c) => `--collector.${c}`),
        '--no-collector.netdev.netlink',
        '--collector.netdev.device-exclude=',
        `--collector.diskstats.device-exclude=${settings.diskstats.deviceExclude}`,
        `--collector.filesystem.mount-points-exclude=${settings.filesystem.mountPointsExclude}`,
        `--collector.filesystem.fs-types-exclude=${settings.filesystem.fsTypesExclude}`,
      ],
      { stdio: 'ignore' },
    );
    const url = `http://127.0.0.1:${port}/metrics`;
    const registry = createHostRegistry(settings, createLogger('silent'));
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(url);
        [theirs, ours] = await Promise.all([
          res.text().then(nodeFamilies),
          registry.metrics().then(nodeFamilies),
        ]);
        break;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  afterAll(() => {
    exporter?.kill();
  });

  it('has every family node_exporter has, with the same TYPE, HELP and labels', () => {
    for (const [name, f] of theirs) {
      const mine = ours.get(name);
      expect(mine, name).toBeDefined();
      expect(mine!.type, name).toBe(f.type);
      expect(mine!.help, name).toBe(f.help);
      if (f.samples.length > 0) expect(labelNames(mine!), name).toEqual(labelNames(f));
    }
  });

  it('has no family node_exporter lacks, except those of newer node_exporter versions', () => {
    const newer = new Set(['node_pressure_irq_stalled_seconds_total']);
    const extra = [...ours.keys()].filter((n) => !theirs.has(n) && !newer.has(n));
    expect(extra).toEqual([]);
  });

  it('has the same series where the machine holds still', () => {
    // Mounts and network devices come and go with other tests; compare them on / and lo only.
    const moving = /^node_(filesystem|network)_/;
    for (const [name, f] of theirs) {
      if (!moving.test(name)) expect(series(ours.get(name)), name).toEqual(series(f));
    }
    expect(series(ours.get('node_filesystem_size_bytes'))).toContain(
      series(theirs.get('node_filesystem_size_bytes')).find((s) => s.includes('"mountpoint":"/"}')),
    );
    expect(series(ours.get('node_network_receive_bytes_total'))).toContain('{"device":"lo"}');
    expect(series(theirs.get('node_network_receive_bytes_total'))).toContain('{"device":"lo"}');
  });

  it('has the same values for what does not move', () => {
    for (const name of ['node_memory_MemTotal_bytes', 'node_boot_time_seconds', 'node_filefd_maximum']) {
      expect(ours.get(name)!.samples, name).toEqual(theirs.get(name)!.samples);
    }
    const root = (m: Map<string, ExposedFamily>) =>
      m.get('node_filesystem_size_bytes')!.samples.find((s) => s.labels.mountpoint === '/')!.value;
    expect(root(ours)).toBe(root(theirs));
    expect(ours.get('node_uname_info')!.samples).toEqual(theirs.get('node_uname_info')!.samples);
  });
});
