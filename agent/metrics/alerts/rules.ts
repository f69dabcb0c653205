import type { AlertRuleConfig } from '../../../shared/config/index.ts';
import type { Labels } from '../collector.ts';
import { compileExpr, type Families, keyOf } from './expr.ts';

/** One alert: a rule and one series it watches. */
export interface Alert {
  /** The rule name and the alert's labels: one alert's identity across evaluations. */
  readonly key: string;
  readonly rule: string;
  /** The series' labels, the rule's extra labels and alertname: what Alertmanager groups by. */
  readonly labels: Labels;
  /** The series' labels and the rule's: those of nodeward_alert_firing (no job/instance, which a scrape adds). */
  readonly seriesLabels: Labels;
  /** The rule's annotation templates ({{ $labels.x }}, {{ $value }}), filled in when sent. */
  readonly annotations: Labels;
  state: 'pending' | 'firing';
  value: number;
  /** When the condition began to hold (ms). */
  activeSince: number;
  /** When it fired (ms); set once firing. */
  firedAt?: number;
}

export interface ResolvedAlert {
  readonly alert: Alert;
  readonly resolvedAt: number;
}

export interface Evaluation {
  readonly fired: readonly Alert[];
  readonly resolved: readonly ResolvedAlert[];
}

type Compare = (value: number, limit: number) => boolean;
const COMPARE: Record<AlertRuleConfig['op'], Compare> = {
  '>': (v, l) => v > l,
  '>=': (v, l) => v >= l,
  '<': (v, l) => v < l,
  '<=': (v, l) => v <= l,
};

/**
 * Node-local alert rules, Prometheus' alerting semantics for an expression (a metric, a rate, a
 * ratio, an aggregation: expr.ts) and a threshold, per series of its value:
 * inactive → pending when `value op threshold` holds → firing once it has held for `for` →
 * resolved when the value is back past `clear` (hysteresis: a value hovering at the threshold
 * does not flap) or the series is gone. No I/O: time comes in, transitions go out.
 */
export function createRuleEngine(rules: readonly AlertRuleConfig[], extraLabels: Labels = {}) {
  const compiled = rules.map((rule) => ({
    rule,
    evaluate: compileExpr(rule.expr ?? { metric: rule.metric!, matchers: rule.matchers }),
    bad: COMPARE[rule.op],
    clear: rule.clear ?? rule.threshold,
  }));
  const alerts = new Map<string, Alert>();

  return {
    /** Active (pending and firing) alerts. */
    active: (): Alert[] => [...alerts.values()],

    /** One evaluation over the samples of this collection, by family name. */
    evaluate(families: Families, now: number): Evaluation {
      const fired: Alert[] = [];
      const resolved: ResolvedAlert[] = [];
      const seen = new Set<string>();
      for (const { rule, evaluate, bad, clear } of compiled) {
        for (const point of evaluate(families, now)) {
          if (Number.isNaN(point.value)) continue;
          const seriesLabels: Labels = { ...point.labels, ...rule.labels };
          const labels: Labels = { ...extraLabels, ...seriesLabels, alertname: rule.name };
          const key = `${rule.name}\u0000${keyOf(labels)}`;
          const alert = alerts.get(key);
          const { value } = point;
          if (alert?.state === 'firing') {
            seen.add(key);
            alert.value = value;
            // Hysteresis: stays firing while the value is still past the clear level.
            if (!bad(value, clear)) {
              alerts.delete(key);
              resolved.push({ alert, resolvedAt: now });
            }
            continue;
          }
          if (!bad(value, rule.threshold)) {
            alerts.delete(key);
            continue;
          }
          seen.add(key);
          const current = alert ?? {
            key,
            rule: rule.name,
            labels,
            seriesLabels,
            annotations: rule.annotations,
            state: 'pending' as const,
            value,
            activeSince: now,
          };
          current.value = value;
          alerts.set(key, current);
          if (now - current.activeSince >= rule.for) {
            current.state = 'firing';
            current.firedAt = now;
            fired.push(current);
          }
        }
      }
      // A series that vanished (container gone, device unplugged) resolves its alert.
      for (const [key, alert] of alerts) {
        if (seen.has(key)) continue;
        alerts.delete(key);
        if (alert.state === 'firing') resolved.push({ alert, resolvedAt: now });
      }
      return { fired, resolved };
    },
  };
}
