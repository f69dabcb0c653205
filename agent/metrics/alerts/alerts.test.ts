import { Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { metricsSchema } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logger.ts';
import { parseExposition, startReceiver } from '../../../test/support/metrics/testing.ts';
import { family } from '../collector.ts';
import type { Snapshot } from '../push/push.ts';
import type { Sample } from '../scrape.ts';
import { createAlerts, type PostableAlert } from './alertmanager.ts';
import { compileMatchers } from './expr.ts';
import { createRuleEngine } from './rules.ts';

const rulesOf = (rules: unknown[]) => metricsSchema.parse({ alerts: { rules } }).alerts.rules;

const WS = 'container_memory_working_set_bytes';
const series = (values: Record<string, number>): Map<string, Sample[]> =>
  new Map([
    [WS, Object.entries(values).map(([name, value]) => ({ value, labels: { name, namespace: 'shop' } }))],
  ]);

describe('alert rules', () => {
  const [rule] = rulesOf([
    {
      name: 'ContainerMemoryHigh',
      metric: WS,
      matchers: { namespace: 'shop', name: '~web|db' },
      op: '>',
      threshold: 100,
      clear: 80,
      for: '30s',
      labels: { severity: 'warning' },
    },
  ]);

  it('goes pending, fires only after `for`, and resolves only below the clear level (hysteresis)', () => {
    const engine = createRuleEngine([rule!], { instance: 'n1' });
    expect(engine.evaluate(series({ web: 120 }), 0)).toEqual({ fired: [], resolved: [] });
    expect(engine.active()).toMatchObject([{ state: 'pending', activeSince: 0 }]);
    expect(engine.evaluate(series({ web: 130 }), 15_000).fired).toEqual([]);
    const { fired } = engine.evaluate(series({ web: 125 }), 30_000);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({
      state: 'firing',
      firedAt: 30_000,
      value: 125,
      labels: {
        alertname: 'ContainerMemoryHigh',
        instance: 'n1',
        name: 'web',
        namespace: 'shop',
        severity: 'warning',
      },
    });
    // Between clear (80) and threshold (100): still firing, not re-fired.
    expect(engine.evaluate(series({ web: 90 }), 45_000)).toEqual({ fired: [], resolved: [] });
    expect(engine.active()[0]!.state).toBe('firing');
    const { resolved } = engine.evaluate(series({ web: 79 }), 60_000);
    expect(resolved).toMatchObject([{ resolvedAt: 60_000, alert: { value: 79 } }]);
    expect(engine.active()).toEqual([]);
  });

  it('a dip below threshold before `for` resets the pending timer', () => {
    const engine = createRuleEngine([rule!]);
    engine.evaluate(series({ web: 120 }), 0);
    engine.evaluate(series({ web: 50 }), 20_000);
    engine.evaluate(series({ web: 120 }), 25_000);
    expect(engine.evaluate(series({ web: 120 }), 40_000).fired).toEqual([]);
    expect(engine.evaluate(series({ web: 120 }), 55_000).fired).toHaveLength(1);
  });

  it('matches per series; a vanished series resolves its alert', () => {
    const engine = createRuleEngine([{ ...rule!, for: 0 }]);
    const first = engine.evaluate(series({ web: 200, db: 300, cache: 999 }), 0);
    expect(first.fired.map((a) => a.labels['name']).sort()).toEqual(['db', 'web']);
    const { resolved } = engine.evaluate(series({ web: 200 }), 10_000);
    expect(resolved.map((r) => r.alert.labels['name'])).toEqual(['db']);
  });

  it('matchers: exact, anchored regex, absent label as empty', () => {
    const m = compileMatchers({ a: 'x', b: '~y.*', c: '' });
    expect(m({ a: 'x', b: 'yes' })).toBe(true);
    expect(m({ a: 'x', b: 'ayes' })).toBe(false);
    expect(m({ a: 'x', b: 'y', c: 'z' })).toBe(false);
  });

  it('`<` rules clear above their clear level', () => {
    const [low] = rulesOf([
      { name: 'MemLow', metric: 'node_memory_MemAvailable_bytes', op: '<', threshold: 100, clear: 150 },
    ]);
    const engine = createRuleEngine([low!]);
    const at = (value: number) => new Map([['node_memory_MemAvailable_bytes', [{ value }]]]);
    expect(engine.evaluate(at(90), 0).fired).toHaveLength(1);
    expect(engine.evaluate(at(120), 1).resolved).toEqual([]);
    expect(engine.evaluate(at(151), 2).resolved).toHaveLength(1);
  });
});

describe('alerts to an Alertmanager-compatible receiver', () => {
  it('posts firing alerts (retrying a 5xx), exports their state, then posts the resolution with endsAt', async () => {
    const receiver = await startReceiver([503, 200]);
    try {
      const LOAD = family('node_load1', 'gauge', '1m load average.');
      let load = 5;
      let now = Date.parse('2026-11-22T03:00:00Z');
      const settings = metricsSchema.parse({
        alerts: {
          alertmanagers: [{ url: `${receiver.url}/` }],
          interval: '15s',
          resendInterval: '1m',
          retry: { initial: 10, attempts: 3 },
          rules: [
            {
              name: 'LoadHigh',
              metric: 'node_load1',
              threshold: 4,
              clear: 2,
              for: '30s',
              labels: { severity: 'page' },
              annotations: { summary: 'load is high' },
            },
          ],
        },
      }).alerts;
      const alerts = createAlerts({
        settings,
        extraLabels: { job: 'nodeward', instance: 'n1' },
        snapshot: async (): Promise<Snapshot> => ({
          timestampMs: now,
          families: new Map([[LOAD, [{ value: load }]]]),
        }),
        log: createLogger('silent'),
        clock: () => now,
      });

      await alerts.evaluateOnce();
      expect(receiver.requests).toHaveLength(0); // pending: nothing to say yet
      expect(alerts.samples()).toEqual([{ value: 0, labels: { severity: 'page', rule: 'LoadHigh' } }]);

      now += 30_000;
      await alerts.evaluateOnce();
      expect(receiver.requests).toHaveLength(2); // 503, then accepted
      const [req] = receiver.requests.slice(-1);
      expect(req!.method).toBe('POST');
      expect(req!.url).toBe('/api/v2/alerts');
      expect(req!.headers['content-type']).toBe('application/json');
      const firing = JSON.parse(req!.body.toString()) as PostableAlert[];
      expect(firing).toEqual([
        {
          labels: { job: 'nodeward', instance: 'n1', severity: 'page', alertname: 'LoadHigh' },
          annotations: { summary: 'load is high' },
          startsAt: '2026-11-22T03:00:30.000Z',
          endsAt: new Date(now + 4 * 60_000).toISOString(),
          generatorURL: '',
        },
      ]);
      expect(alerts.samples()).toEqual([{ value: 1, labels: { severity: 'page', rule: 'LoadHigh' } }]);

      // Still firing, within resendInterval: no new request. Past it: sent again.
      now += 15_000;
      await alerts.evaluateOnce();
      expect(receiver.requests).toHaveLength(2);
      now += 60_000;
      await alerts.evaluateOnce();
      expect(receiver.requests).toHaveLength(3);

      // Back to 3: above clear (2), still firing. At 1.5: resolved, sent with endsAt = now.
      load = 3;
      now += 15_000;
      await alerts.evaluateOnce();
      expect(alerts.samples()[0]!.value).toBe(1);
      load = 1.5;
      now += 15_000;
      await alerts.evaluateOnce();
      const resolved = JSON.parse(receiver.requests.at(-1)!.body.toString()) as PostableAlert[];
      expect(resolved).toEqual([
        expect.objectContaining({
          labels: expect.objectContaining({ alertname: 'LoadHigh' }),
          startsAt: '2026-11-22T03:00:30.000Z',
          endsAt: new Date(now).toISOString(),
        }),
      ]);
      expect(alerts.samples()).toEqual([]);
    } finally {
      await receiver.close();
    }
  });

  it('nodeward_alert_firing is on the module registry when rules are configured', async () => {
    const { createMetrics } = await import('../index.ts');
    const settings = metricsSchema.parse({
      containers: { enabled: false },
      collectors: { filesystem: false },
      alerts: {
        defaultRules: { enabled: false },
        rules: [{ name: 'AlwaysLoad', metric: 'node_load1', op: '>=', threshold: 0 }],
      },
    });
    const metrics = createMetrics(settings, { log: createLogger('silent'), node: 'n1' });
    await metrics.alerts.evaluateOnce();
    const families = parseExposition(await metrics.registry.metrics());
    expect(families.get('nodeward_alert_firing')!.samples).toEqual([
      { labels: { rule: 'AlwaysLoad' }, value: 1 },
    ]);
  });
});

describe('rules over the series of the rest of the agent', () => {
  it("see the agent's other registries (the CNI and log shipper rules' series), which /metrics does not show twice", async () => {
    const { createMetrics } = await import('../index.ts');
    const peer = new Registry();
    const linkUp = new Gauge({
      name: 'nodeward_cni_segment_link_up',
      help: 'Link state.',
      labelNames: ['segment', 'link', 'device'],
      registers: [peer],
    });
    const requests = new Histogram({
      name: 'nodeward_cni_request_seconds',
      help: 'Request time.',
      buckets: [1],
      registers: [peer],
    });
    linkUp.set({ segment: 'vlan/100', link: 'uplink', device: 'bond0.100' }, 0);
    requests.observe(0.5);
    const settings = metricsSchema.parse({
      containers: { enabled: false },
      collectors: { filesystem: false },
      alerts: {
        defaultRules: { enabled: false },
        rules: [{ name: 'SegmentDown', metric: 'nodeward_cni_segment_link_up', op: '<', threshold: 1 }],
      },
    });
    const metrics = createMetrics(settings, { log: createLogger('silent'), node: 'n1', peers: () => [peer] });
    const snapshot = await metrics.snapshot();
    const byName = new Map([...snapshot.families].map(([f, samples]) => [f.name, { type: f.type, samples }]));
    expect(byName.get('nodeward_cni_segment_link_up')).toEqual({
      type: 'gauge',
      samples: [{ value: 0, labels: { segment: 'vlan/100', link: 'uplink', device: 'bond0.100' } }],
    });
    // A histogram's parts, as the text format names them.
    expect(byName.get('nodeward_cni_request_seconds_count')).toEqual({
      type: 'untyped',
      samples: [{ value: 1, labels: {} }],
    });
    expect(byName.get('nodeward_cni_request_seconds_bucket')?.samples.map((s) => s.labels)).toEqual([
      { le: '1' },
      { le: '+Inf' },
    ]);
    await metrics.alerts.evaluateOnce();
    const families = parseExposition(await metrics.registry.metrics());
    expect(families.get('nodeward_alert_firing')!.samples).toEqual([
      { labels: { rule: 'SegmentDown', segment: 'vlan/100', link: 'uplink', device: 'bond0.100' }, value: 1 },
    ]);
    expect(families.has('nodeward_cni_segment_link_up')).toBe(false);
  });
});

describe('alert delivery', () => {
  const LOAD = family('node_load1', 'gauge', '1m load average.');
  const setup = (alertmanagers: object[], extra: object = {}) => {
    const state = { load: 0, now: Date.parse('2026-11-22T03:00:00Z') };
    const settings = metricsSchema.parse({
      alerts: {
        defaultRules: { enabled: false },
        alertmanagers,
        resendInterval: '1m',
        resolvedRetention: '3m',
        retry: { initial: 10, attempts: 1 },
        rules: [{ name: 'LoadHigh', metric: 'node_load1', threshold: 4 }],
        ...extra,
      },
    }).alerts;
    const alerts = createAlerts({
      settings,
      extraLabels: { instance: 'n1' },
      snapshot: async (): Promise<Snapshot> => ({
        timestampMs: state.now,
        families: new Map([[LOAD, [{ value: state.load }]]]),
      }),
      log: createLogger('silent'),
      clock: () => state.now,
    });
    return { state, alerts };
  };
  const bodies = (receiver: Awaited<ReturnType<typeof startReceiver>>) =>
    receiver.requests.map((r) => JSON.parse(r.body.toString()) as PostableAlert[]);

  it('re-sends a resolved alert every resendInterval for resolvedRetention, as Prometheus does', async () => {
    const receiver = await startReceiver();
    try {
      const { state, alerts } = setup([{ url: receiver.url }]);
      state.load = 9;
      await alerts.evaluateOnce(); // fires
      state.now += 15_000;
      const resolvedAt = state.now;
      state.load = 1;
      await alerts.evaluateOnce(); // resolved, sent at once
      for (let i = 0; i < 16; i++) {
        state.now += 15_000;
        await alerts.evaluateOnce();
      }
      const sent = bodies(receiver);
      expect(sent.map((b) => b.map((a) => a.endsAt))).toEqual([
        [new Date(resolvedAt - 15_000 + 4 * 60_000).toISOString()],
        // At resolution, then each minute until 3 minutes past it; then no more.
        ...[0, 1, 2, 3].map(() => [new Date(resolvedAt).toISOString()]),
      ]);
    } finally {
      await receiver.close();
    }
  });

  it('an alert active again replaces its resolved one: never both in one request', async () => {
    const receiver = await startReceiver();
    try {
      const { state, alerts } = setup([{ url: receiver.url }]);
      state.load = 9;
      await alerts.evaluateOnce();
      state.now += 15_000;
      state.load = 1;
      await alerts.evaluateOnce();
      state.now += 60_000;
      state.load = 9;
      await alerts.evaluateOnce();
      const last = bodies(receiver).at(-1)!;
      expect(last).toEqual([expect.objectContaining({ startsAt: new Date(state.now).toISOString() })]);
      expect(Date.parse(last[0]!.endsAt)).toBeGreaterThan(state.now);
    } finally {
      await receiver.close();
    }
  });

  it('the evaluation loop does not wait for a hanging Alertmanager', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const hanging = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const stop = new AbortController();
    try {
      const port = (hanging.address() as import('node:net').AddressInfo).port;
      let evaluations = 0;
      const alerts = createAlerts({
        settings: metricsSchema.parse({
          alerts: {
            defaultRules: { enabled: false },
            alertmanagers: [{ url: `http://127.0.0.1:${port}` }],
            interval: '50ms',
            timeout: '10s',
            rules: [{ name: 'Always', metric: 'node_load1', op: '>=', threshold: 0 }],
          },
        }).alerts,
        extraLabels: {},
        snapshot: async (): Promise<Snapshot> => {
          evaluations++;
          return { timestampMs: Date.now(), families: new Map([[LOAD, [{ value: 1 }]]]) };
        },
        log: createLogger('silent'),
      });
      const running = alerts.run(stop.signal);
      await new Promise((r) => setTimeout(r, 500));
      expect(sockets.length).toBe(1); // the first send still hangs, and nothing piles up behind it
      expect(evaluations).toBeGreaterThanOrEqual(5);
      stop.abort();
      await running;
    } finally {
      stop.abort();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => hanging.close(resolve));
    }
  });

  it('tells each Alertmanager directly: one that hangs delays no other', async () => {
    const receiver = await startReceiver();
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const hanging = createServer((s) => sockets.push(s)); // accepts, never answers
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    try {
      const port = (hanging.address() as import('node:net').AddressInfo).port;
      const { state, alerts } = setup([{ url: `http://127.0.0.1:${port}` }, { url: receiver.url }], {
        timeout: '2s',
      });
      state.load = 9;
      const started = Date.now();
      const done = alerts.evaluateOnce();
      while (receiver.requests.length === 0 && Date.now() - started < 1500) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(receiver.requests).toHaveLength(1);
      expect(Date.now() - started).toBeLessThan(1500);
      await done; // the hanging one times out
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => hanging.close(resolve));
      await receiver.close();
    }
  });
});
