import type { AlertRuleConfig } from '../../../shared/config/index.ts';
import type { Labels } from '../collector.ts';
import type { Sample } from '../scrape.ts';

/** What a rule compares with its threshold (metrics.alerts.rules[].expr). */
export type AlertExpr = NonNullable<AlertRuleConfig['expr']>;
type Selector = Extract<AlertExpr, { metric: string }>;

/** One value of an expression and the labels that tell it apart. */
export interface Point {
  readonly labels: Labels;
  readonly value: number;
}

/** The samples of one collection, by family name. */
export type Families = ReadonlyMap<string, readonly Sample[]>;

/** Evaluates an expression at `now` (ms); rates keep their sample history between calls. */
export type Evaluator = (families: Families, now: number) => Point[];

type Matcher = (labels: Labels) => boolean;

/** Exact values, or "~regex" anchored like PromQL's =~; an absent label matches only "". */
export function compileMatchers(matchers: Readonly<Record<string, string>>): Matcher {
  const tests = Object.entries(matchers).map(([name, want]): Matcher => {
    if (want.startsWith('~')) {
      const re = new RegExp(`^(?:${want.slice(1)})$`);
      return (labels) => re.test(labels[name] ?? '');
    }
    return (labels) => (labels[name] ?? '') === want;
  });
  return (labels) => tests.every((t) => t(labels));
}

/** A label set's identity, independent of key order. */
export const keyOf = (labels: Labels) =>
  JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );

/**
 * Points kept per series of a rate: enough to place the window's start within 1/120 of it. A
 * window of hours evaluated every few seconds then costs 122 points a series, not thousands.
 */
const MAX_POINTS = 120;

/**
 * One counter series over a trailing window. Resets are folded in on every sample (a drop means
 * the counter restarted from 0, as PromQL reads it) into a running total, so thinning the kept
 * points never loses an increase.
 */
export class CounterHistory {
  #last: number | undefined;
  #total = 0;
  readonly #points: { t: number; total: number }[] = [];

  observe(t: number, value: number, window: number): void {
    if (this.#last !== undefined) this.#total += value >= this.#last ? value - this.#last : value;
    this.#last = value;
    const points = this.#points;
    const step = window / MAX_POINTS;
    // The newest point always goes in. The previous newest stays only when it is a step past the
    // point before it: kept points are a step apart, ≤ MAX_POINTS + 2 in a window.
    if (points.length >= 2 && points.at(-1)!.t - points.at(-2)!.t < step)
      points[points.length - 1] = { t, total: this.#total };
    else points.push({ t, total: this.#total });
    while (points.length > 0 && points[0]!.t < t - window) points.shift();
  }

  /** Points kept. */
  get size(): number {
    return this.#points.length;
  }

  /** Newest time (ms), or undefined when empty. */
  get newest(): number | undefined {
    return this.#points.at(-1)?.t;
  }

  /** The increase between the oldest and newest point in the window, and the seconds between them. */
  span(): { increase: number; seconds: number } | undefined {
    const first = this.#points[0];
    const last = this.#points.at(-1);
    if (!first || !last || last.t === first.t) return undefined;
    return { increase: last.total - first.total, seconds: (last.t - first.t) / 1000 };
  }
}

function selector(sel: Selector): Evaluator {
  const match = compileMatchers(sel.matchers);
  return (families) => {
    const out: Point[] = [];
    for (const s of families.get(sel.metric) ?? []) {
      const labels = s.labels ?? {};
      if (!Number.isNaN(s.value) && match(labels)) out.push({ labels, value: s.value });
    }
    return out;
  };
}

/**
 * rate (per second) or increase of a counter over the samples inside the window. Unlike PromQL it
 * does not extrapolate to the window's edges: a window holds what was seen, at least two samples.
 */
function windowed(sel: Selector & { window: number }, per: 'second' | 'window'): Evaluator {
  const select = selector(sel);
  const histories = new Map<string, CounterHistory>();
  return (families, now) => {
    const out: Point[] = [];
    for (const p of select(families, now)) {
      const key = keyOf(p.labels);
      let history = histories.get(key);
      if (!history) {
        history = new CounterHistory();
        histories.set(key, history);
      }
      history.observe(now, p.value, sel.window);
      const span = history.span();
      if (span)
        out.push({
          labels: p.labels,
          value: per === 'second' ? span.increase / span.seconds : span.increase,
        });
    }
    // A series missing from one collection keeps its history; one gone for a whole window is dropped.
    for (const [key, history] of histories) {
      if ((history.newest ?? 0) < now - sel.window) histories.delete(key);
    }
    return out;
  };
}

/** numerator / denominator, series matched one-to-one on equal labels (PromQL's default matching). */
function ratio(numerator: Evaluator, denominator: Evaluator): Evaluator {
  return (families, now) => {
    const top = numerator(families, now);
    const below = new Map<string, number | undefined>();
    for (const p of denominator(families, now)) {
      const key = keyOf(p.labels);
      // Two denominators for one label set: ambiguous (PromQL fails the query), left out.
      below.set(key, below.has(key) ? undefined : p.value);
    }
    const out: Point[] = [];
    for (const p of top) {
      const d = below.get(keyOf(p.labels));
      if (d !== undefined) out.push({ labels: p.labels, value: p.value / d });
    }
    return out;
  };
}

type Reduce = (values: readonly number[]) => number;
type AggregateExpr = Exclude<
  AlertExpr,
  Selector | { rate: unknown } | { increase: unknown } | { ratio: unknown }
>;
/** sum, avg, …: the config's aggregations, so `satisfies` below fails the build when one is missing here. */
type Aggregation = AggregateExpr extends infer E
  ? E extends unknown
    ? Exclude<keyof E, 'by'>
    : never
  : never;
const AGGREGATIONS = {
  sum: (v) => v.reduce((a, b) => a + b, 0),
  avg: (v) => v.reduce((a, b) => a + b, 0) / v.length,
  min: (v) => Math.min(...v),
  max: (v) => Math.max(...v),
  count: (v) => v.length,
} satisfies Record<Aggregation, Reduce>;

/** `<op> by (labels) (inner)`: one point per distinct value of the by-labels (absent ones left out). */
function aggregate(reduce: Reduce, by: readonly string[], inner: Evaluator): Evaluator {
  return (families, now) => {
    const groups = new Map<string, { labels: Labels; values: number[] }>();
    for (const p of inner(families, now)) {
      const labels: Record<string, string> = {};
      for (const name of by) {
        const value = p.labels[name];
        if (value !== undefined && value !== '') labels[name] = value;
      }
      const key = keyOf(labels);
      const group = groups.get(key);
      if (group) group.values.push(p.value);
      else groups.set(key, { labels, values: [p.value] });
    }
    return [...groups.values()].map((g) => ({ labels: g.labels, value: reduce(g.values) }));
  };
}

/** An evaluator for one expression tree; each rate in it keeps its own bounded history. */
export function compileExpr(expr: AlertExpr): Evaluator {
  if ('metric' in expr) return selector(expr);
  if ('rate' in expr) return windowed(expr.rate, 'second');
  if ('increase' in expr) return windowed(expr.increase, 'window');
  if ('ratio' in expr) return ratio(compileExpr(expr.ratio.numerator), compileExpr(expr.ratio.denominator));
  const op = (Object.keys(AGGREGATIONS) as Aggregation[]).find((o) => o in expr)!;
  const inner = (expr as Partial<Record<Aggregation, AlertExpr>>)[op]!;
  return aggregate(AGGREGATIONS[op], expr.by, compileExpr(inner));
}
