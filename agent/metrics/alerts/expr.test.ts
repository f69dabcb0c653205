import { describe, expect, it } from 'vitest';
import { formatIssues, metricsSchema } from '../../../shared/config/index.ts';
import type { Labels } from '../collector.ts';
import { type AlertExpr, CounterHistory, compileExpr, type Families } from './expr.ts';
import { createRuleEngine } from './rules.ts';
import { renderAnnotations } from './template.ts';

const rulesOf = (rules: unknown[]) => metricsSchema.parse({ alerts: { rules } }).alerts.rules;
const exprOf = (expr: unknown): AlertExpr => rulesOf([{ name: 'R', expr, threshold: 0 }])[0]!.expr!;

type Series = Record<string, [Labels, number][]>;
const families = (series: Series): Families =>
  new Map(
    Object.entries(series).map(([name, list]) => [name, list.map(([labels, value]) => ({ labels, value }))]),
  );

const MIN = 60_000;

describe('alert expressions', () => {
  it('increase and rate of a counter over a window, across a counter reset', () => {
    const increase = compileExpr(exprOf({ increase: { metric: 'c_total', window: '5m' } }));
    const rate = compileExpr(exprOf({ rate: { metric: 'c_total', window: '5m' } }));
    const at = (value: number) => families({ c_total: [[{ id: 'a' }, value]] });
    expect(increase(at(10), 0)).toEqual([]); // one sample: no increase yet
    rate(at(10), 0);
    expect(increase(at(16), MIN)).toEqual([{ labels: { id: 'a' }, value: 6 }]);
    expect(rate(at(16), MIN)).toEqual([{ labels: { id: 'a' }, value: 0.1 }]);
    // Restarted (16 → 2): the 2 counts, the drop does not.
    expect(increase(at(2), 2 * MIN)).toEqual([{ labels: { id: 'a' }, value: 8 }]);
    for (let m = 3; m <= 7; m++) increase(at(2), m * MIN);
    // Nothing since minute 2 and the window is 5m: back to 0.
    expect(increase(at(2), 8 * MIN)).toEqual([{ labels: { id: 'a' }, value: 0 }]);
  });

  it('a counter rule compared with 0 resolves once the window holds no increase (it used to fire for ever)', () => {
    const [rule] = rulesOf([
      {
        name: 'OOM',
        expr: { increase: { metric: 'container_oom_events_total', window: '5m' } },
        threshold: 0,
      },
    ]);
    const engine = createRuleEngine([rule!]);
    const at = (value: number) => families({ container_oom_events_total: [[{ name: 'web' }, value]] });
    expect(engine.evaluate(at(1), 0).fired).toEqual([]);
    expect(engine.evaluate(at(2), MIN).fired).toHaveLength(1);
    for (let m = 2; m <= 5; m++) expect(engine.evaluate(at(2), m * MIN).resolved).toEqual([]);
    expect(engine.evaluate(at(2), 7 * MIN).resolved).toHaveLength(1);
  });

  it('keeps at most ~120 points per series, however long the window, and still counts every increase', () => {
    const history = new CounterHistory();
    const window = 60 * MIN;
    let value = 0;
    for (let t = 0; t <= 2 * window; t += 1000) {
      // A reset every 10 minutes, between kept points: the running total still has it.
      value = t % (10 * MIN) === 0 ? 1 : value + 1;
      history.observe(t, value, window);
    }
    expect(history.size).toBeLessThanOrEqual(122);
    const span = history.span()!;
    expect(span.seconds).toBeGreaterThan(3570);
    expect(span.increase).toBeCloseTo(span.seconds, -1);
  });

  it('a series gone for a whole window loses its history; a short gap does not', () => {
    const increase = compileExpr(exprOf({ increase: { metric: 'c_total', window: '5m' } }));
    const at = (value: number) => families({ c_total: [[{}, value]] });
    increase(at(1), 0);
    increase(families({}), MIN);
    expect(increase(at(3), 2 * MIN)).toEqual([{ labels: {}, value: 2 }]);
    increase(families({}), 8 * MIN);
    expect(increase(at(9), 9 * MIN)).toEqual([]);
  });

  it('ratio matches series on equal labels; unmatched and ambiguous ones are left out', () => {
    const ratio = compileExpr(
      exprOf({
        ratio: {
          numerator: { metric: 'node_filesystem_avail_bytes' },
          denominator: { metric: 'node_filesystem_size_bytes', matchers: { fstype: '~ext4|xfs' } },
        },
      }),
    );
    const root = { mountpoint: '/', fstype: 'ext4' };
    const data = { mountpoint: '/data', fstype: 'xfs' };
    const tmp = { mountpoint: '/tmp', fstype: 'tmpfs' };
    const out = ratio(
      families({
        node_filesystem_avail_bytes: [
          [root, 5],
          [data, 50],
          [tmp, 1],
        ],
        node_filesystem_size_bytes: [
          [root, 100],
          [data, 100],
          [tmp, 100],
        ],
      }),
      0,
    );
    expect(out).toEqual([
      { labels: root, value: 0.05 },
      { labels: data, value: 0.5 },
    ]);
  });

  it('expresses "CPU busy 95 % for 10m": idle seconds over all seconds, summed across CPUs', () => {
    const [rule] = rulesOf([
      {
        name: 'CpuBusy',
        expr: {
          ratio: {
            numerator: {
              sum: { rate: { metric: 'node_cpu_seconds_total', matchers: { mode: 'idle' }, window: '5m' } },
            },
            denominator: { sum: { rate: { metric: 'node_cpu_seconds_total', window: '5m' } } },
          },
        },
        op: '<',
        threshold: 0.05,
        for: '10m',
      },
    ]);
    const engine = createRuleEngine([rule!]);
    // Two CPUs, 60 s of CPU time each per minute, 1 s of it idle: 1.7 % idle.
    const at = (m: number) =>
      families({
        node_cpu_seconds_total: ['0', '1'].flatMap((cpu): [Labels, number][] => [
          [{ cpu, mode: 'idle' }, m],
          [{ cpu, mode: 'user' }, 59 * m],
        ]),
      });
    const fired = [];
    for (let m = 0; m <= 11; m++) fired.push(...engine.evaluate(at(m), m * MIN).fired);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ labels: { alertname: 'CpuBusy' }, firedAt: 11 * MIN });
    expect(fired[0]!.value).toBeCloseTo(1 / 60);
  });

  it('aggregates by labels: one point per value of the by-labels', () => {
    const max = compileExpr(exprOf({ max: { metric: 'temp' }, by: ['chip'] }));
    const count = compileExpr(exprOf({ count: { metric: 'temp' } }));
    const data = families({
      temp: [
        [{ chip: 'a', sensor: '1' }, 40],
        [{ chip: 'a', sensor: '2' }, 70],
        [{ chip: 'b', sensor: '1' }, 50],
      ],
    });
    expect(max(data, 0)).toEqual([
      { labels: { chip: 'a' }, value: 70 },
      { labels: { chip: 'b' }, value: 50 },
    ]);
    expect(count(data, 0)).toEqual([{ labels: {}, value: 3 }]);
  });

  it('annotations: {{ $labels.x }}, {{ $value }} and {{ $value | humanizePercentage }}', () => {
    expect(
      renderAnnotations(
        {
          summary:
            '{{ $labels.mountpoint }} has {{$value | humanizePercentage}} left ({{ $value }}) {{ $other }}',
        },
        { mountpoint: '/var' },
        0.07345,
      ),
    ).toEqual({ summary: '/var has 7.345% left (0.07345) {{ $other }}' });
  });
});

describe('alert rule config', () => {
  const problems = (alerts: unknown) => {
    const result = metricsSchema.safeParse({ alerts });
    return result.success ? [] : formatIssues(result.error.issues);
  };

  it('names the key path of a problem inside an expression', () => {
    expect(
      problems({
        rules: [
          {
            name: 'R',
            expr: { ratio: { numerator: { metric: 'bad name' }, denominator: { rat: { metric: 'x' } } } },
            threshold: 1,
          },
          {
            name: 'S',
            expr: { rate: { metric: 'x_total', window: 'soon', matchers: { a: '~(' } } },
            threshold: 1,
          },
          { name: 'T', expr: { sum: { metric: 'x' }, max: { metric: 'y' } }, threshold: 1 },
        ],
      }),
    ).toEqual([
      expect.stringMatching(/^alerts\.rules\[0]\.expr\.ratio\.numerator\.metric: /),
      expect.stringMatching(
        /^alerts\.rules\[0]\.expr\.ratio\.denominator: expected an expression with one of metric, rate, increase, ratio, sum, avg, min, max, count, got/,
      ),
      expect.stringMatching(
        /^alerts\.rules\[1]\.expr\.rate\.matchers\.a: expected "~" and a regular expression/,
      ),
      expect.stringMatching(/^alerts\.rules\[1]\.expr\.rate\.window: expected a duration/),
      'alerts.rules[2].expr: expected an expression with one of metric, rate, increase, ratio, sum, avg, min, max, count, not sum and max together',
    ]);
  });

  it('rejects duplicate names, metric with expr, and a clear level on the bad side', () => {
    expect(
      problems({
        rules: [
          { name: 'A', metric: 'x', threshold: 1 },
          { name: 'B', metric: 'x', expr: { metric: 'y' }, threshold: 1 },
          { name: 'A', metric: 'y', threshold: 1 },
          { name: 'C', metric: 'y', op: '<', threshold: 10, clear: 5 },
          { name: 'D', threshold: 1 },
        ],
      }),
    ).toEqual([
      'alerts.rules[1].metric: set either metric (one metric as it is) or expr (a rate, ratio or aggregation), not both',
      'alerts.rules[3].clear: with op "<" the clear level is on the good side of threshold (>= 10), got 5',
      'alerts.rules[4].expr: set either metric (one metric as it is) or expr (a rate, ratio or aggregation), not both',
      'alerts.rules[2].name: rule name "A" is taken by rules[0]: names must be unique (they are the alertname)',
    ]);
  });

  it('checks Alertmanager TLS settings and built-in rule names', () => {
    expect(
      problems({
        defaultRules: { disabled: ['DiskFull'] },
        alertmanagers: [
          { url: 'http://am-0:9093', tls: { caFile: '/ca.pem' } },
          { url: 'https://am-1:9093', tls: { certFile: '/c.pem' } },
        ],
      }),
    ).toEqual([
      expect.stringMatching(/^alerts\.defaultRules\.disabled\[0]: expected one of "FilesystemAlmostFull", /),
      'alerts.alertmanagers[0].url: tls is set: use https://, got "http://am-0:9093"',
      'alerts.alertmanagers[1].tls.keyFile: a client certificate needs both tls.certFile and tls.keyFile',
    ]);
  });
});
