import { afterAll, describe, expect, it } from 'vitest';
import { metricsSchema } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logger.ts';
import {
  ALERTMANAGER_LAB_USER,
  Lab,
  skipReason,
  startAlertmanager,
  waitFor,
} from '../../../test/lab/index.ts';
import { type Family, family, type Labels } from '../collector.ts';
import type { Snapshot } from '../push/push.ts';
import type { Sample } from '../scrape.ts';
import { createAlerts } from './alertmanager.ts';
import { alertRules, DEFAULT_RULES } from './defaults.ts';
import { createRuleEngine } from './rules.ts';

const NAMES = DEFAULT_RULES.map((r) => r.name).sort();
const MIN = 60_000;

/**
 * A node going bad in every way the built-in rules watch, and recovering. Counters (OOM kills,
 * lost log lines) rise once a minute while bad and stay flat after.
 */
function sickNode() {
  let bad = false;
  let kills = 0;
  const container = { namespace: 'shop', pod: 'web-0', container: 'web', name: 'k8s_web_web-0' };
  const podCgroup = { namespace: 'shop', pod: 'web-0', container: '', name: '' };
  const fs = { device: '/dev/sda1', fstype: 'ext4', mountpoint: '/var' };
  const gauge = (ok: number, sick: number) => (bad ? sick : ok);
  const series: Record<string, () => [Labels, number][]> = {
    node_filesystem_avail_bytes: () => [[fs, gauge(50, 5)]],
    node_filesystem_size_bytes: () => [[fs, 100]],
    node_filesystem_files_free: () => [[fs, gauge(500, 50)]],
    node_filesystem_files: () => [[fs, 1000]],
    node_memory_MemAvailable_bytes: () => [[{}, gauge(50, 5)]],
    node_memory_MemTotal_bytes: () => [[{}, 100]],
    node_nf_conntrack_entries: () => [[{}, gauge(10, 95)]],
    node_nf_conntrack_entries_limit: () => [[{}, 100]],
    container_oom_events_total: () => [
      [container, kills],
      // The pod's own cgroup counts its containers' kills too: not a container, no alert of its own.
      [podCgroup, kills],
    ],
    node_vmstat_oom_kill: () => [[{}, kills]],
    node_timex_sync_status: () => [[{}, gauge(1, 0)]],
    nodeward_cni_segment_link_up: () => [
      [{ segment: 'vlan/100', link: 'bridge', device: 'br100' }, gauge(1, 0)],
    ],
    nodeward_cni_segment_uplink_carrier: () => [[{ segment: 'vlan/100', device: 'eth0.100' }, gauge(1, 0)]],
    nodeward_logs_lost_lines_total: () => [
      [{ namespace: 'shop', reason: 'deleted_while_stopped' }, 3 * kills],
    ],
  };
  const families = new Map<string, Family>(Object.keys(series).map((n) => [n, family(n, 'gauge', n)]));
  return {
    setBad(value: boolean) {
      bad = value;
    },
    /** One collection; while bad, the counters rise first. */
    collect(): Map<Family, Sample[]> {
      if (bad) kills++;
      return new Map(
        Object.entries(series).map(([name, values]) => [
          families.get(name)!,
          values().map(([labels, value]) => ({ labels, value })),
        ]),
      );
    },
    byName(): Map<string, Sample[]> {
      return new Map([...this.collect()].map(([f, s]) => [f.name, s]));
    },
  };
}

describe('built-in alert rules', () => {
  it('each is valid config, and can be switched off or replaced by name', () => {
    expect(NAMES).toEqual(
      [
        'ClockNotSynchronised',
        'CniSegmentLinkDown',
        'CniSegmentNoCarrier',
        'ConntrackAlmostFull',
        'ContainerOOMKilled',
        'FilesystemAlmostFull',
        'FilesystemInodesAlmostFull',
        'LogShipperLosingLines',
        'MemoryPressure',
        'NodeOOMKill',
      ].sort(),
    );
    const alerts = (input: object) => metricsSchema.parse({ alerts: input }).alerts;
    expect(alertRules(alerts({})).map((r) => r.name)).toEqual(DEFAULT_RULES.map((r) => r.name));
    expect(alertRules(alerts({ defaultRules: { enabled: false } }))).toEqual([]);
    const mine = {
      name: 'MemoryPressure',
      metric: 'node_memory_MemAvailable_bytes',
      op: '<',
      threshold: 1e9,
    };
    const rules = alertRules(alerts({ defaultRules: { disabled: ['NodeOOMKill'] }, rules: [mine] }));
    expect(rules.map((r) => r.name)).toEqual(
      NAMES.filter((n) => n !== 'NodeOOMKill').sort((a, b) =>
        a === 'MemoryPressure'
          ? 1
          : b === 'MemoryPressure'
            ? -1
            : DEFAULT_RULES.findIndex((r) => r.name === a) - DEFAULT_RULES.findIndex((r) => r.name === b),
      ),
    );
    expect(rules.at(-1)).toMatchObject({ name: 'MemoryPressure', threshold: 1e9 });
  });

  it('all fire on a sick node (each after its `for`) and all resolve once it recovers', () => {
    const node = sickNode();
    const engine = createRuleEngine(DEFAULT_RULES, { instance: 'n1' });
    const fired: string[] = [];
    const resolved: string[] = [];
    const step = (m: number) => {
      const { fired: f, resolved: r } = engine.evaluate(node.byName(), m * MIN);
      fired.push(...f.map((a) => a.labels['alertname']!));
      resolved.push(...r.map((x) => x.alert.labels['alertname']!));
    };
    step(0);
    node.setBad(true);
    for (let m = 1; m <= 10; m++) step(m);
    expect(fired).not.toContain('ClockNotSynchronised'); // for: 10m, bad since minute 1
    step(11);
    expect(fired.sort()).toEqual(NAMES);
    expect(engine.active().filter((a) => a.rule === 'ContainerOOMKilled')).toMatchObject([
      { labels: { container: 'web' }, value: 5 },
    ]);
    node.setBad(false);
    for (let m = 12; m <= 17; m++) step(m);
    expect(resolved.sort()).toEqual(NAMES);
    expect(engine.active()).toEqual([]);
  });
});

const reason = skipReason({ binaries: ['prometheus-alertmanager', 'openssl'] });
if (reason) console.warn(`[lab] alertmanager tests skipped: ${reason} (install prometheus-alertmanager)`);

describe('built-in alert rules against real Alertmanagers', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  it.skipIf(reason)(
    'fire and resolve on two Alertmanagers at once (one over TLS with basic auth), each told directly',
    async () => {
      const [plain, secure] = await Promise.all([
        startAlertmanager({ lab }),
        startAlertmanager({ lab, tls: true, basicAuth: true }),
      ]);
      const node = sickNode();
      // Alertmanager judges endsAt by its own clock: the story runs in the last 17 minutes.
      const start = Date.now() - 17 * MIN - 5000;
      let now = start;
      const { username, password } = ALERTMANAGER_LAB_USER;
      const settings = metricsSchema.parse({
        alerts: {
          // Firing alerts stay valid 4 × resendInterval past their last send: past the story's end.
          resendInterval: '10m',
          retry: { initial: 50, attempts: 2 },
          alertmanagers: [
            { url: plain.url },
            {
              url: secure.url,
              headers: {
                Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
              },
              tls: { caFile: secure.caFile },
            },
          ],
        },
      }).alerts;
      const alerts = createAlerts({
        settings,
        extraLabels: { job: 'nodeward', instance: 'n1' },
        snapshot: async (): Promise<Snapshot> => ({ timestampMs: now, families: node.collect() }),
        log: createLogger('silent'),
        clock: () => now,
      });
      const at = async (m: number) => {
        now = start + m * MIN;
        await alerts.evaluateOnce();
      };
      const activeNames = async (am: typeof plain) =>
        (await am.alerts())
          .filter((a) => a.status.state === 'active')
          .map((a) => a.labels['alertname']!)
          .sort();
      const notified = (am: typeof plain, status: 'firing' | 'resolved') =>
        [
          ...new Set(
            am.notifications.flatMap((n) =>
              n.alerts.filter((a) => a.status === status).map((a) => a.labels['alertname']!),
            ),
          ),
        ].sort();

      await at(0);
      node.setBad(true);
      for (let m = 1; m <= 11; m++) await at(m);
      for (const am of [plain, secure]) {
        expect(await activeNames(am)).toEqual(NAMES);
        await waitFor(() => notified(am, 'firing').length === NAMES.length, {
          what: `firing notifications from ${am.url}`,
          services: [am.service],
        });
      }
      const disk = (await secure.alerts()).find((a) => a.labels['alertname'] === 'FilesystemAlmostFull')!;
      expect(disk).toMatchObject({
        labels: { instance: 'n1', job: 'nodeward', mountpoint: '/var', severity: 'warning' },
        annotations: {
          summary: 'Filesystem /var almost full on n1',
          description: '/dev/sda1 at /var has 5% of its space left.',
        },
        startsAt: new Date(start + 6 * MIN).toISOString(), // bad from minute 1, for: 5m
      });

      node.setBad(false);
      for (let m = 12; m <= 17; m++) await at(m);
      for (const am of [plain, secure]) {
        expect(await activeNames(am)).toEqual([]);
        await waitFor(() => notified(am, 'resolved').length === NAMES.length, {
          what: `resolved notifications from ${am.url}`,
          services: [am.service],
        });
      }
    },
  );
});
