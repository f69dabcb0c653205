import type { AlertRuleConfig } from '../../../shared/config/index.ts';
import type { Labels } from '../collector.ts';
import type { Sample } from '../scrape.ts';

/** One alert: a rule and one series it watches. */
export interface Alert {
  readonly rule: string;
  /** The series' labels, the rule's extra labels and alertname: what Alertmanager groups by. */
  readonly labels: Labels;
  /** The series' labels and the rule's: those of nodeward_alert_firing (no job/instance, which a scrape adds). */
  readonly seriesLabels: Labels;
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

const keyOf = (labels: Labels) =>
  JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );

/**
 * Node-local alert rules, Prometheus' alerting semantics for one metric and a threshold:
 * inactive → pending when `value op threshold` holds → firing once it has held for `for` →
 * resolved when the value is back past `clear` (hysteresis: a value hovering at the threshold
 * does not flap) or the series is gone. Pure: time comes in, transitions go out.
 */
export function createRuleEngine(rules: readonly AlertRuleConfig[], extraLabels: Labels = {}) {
  const compiled = rules.map((rule) => ({
    rule,
    match: compileMatchers(rule.matchers),
    bad: COMPARE[rule.op],
    clear: rule.clear ?? rule.threshold,
  }));
  const alerts = new Map<string, Alert>();

  return {
    /** Active (pending and firing) alerts. */
    active: (): Alert[] => [...alerts.values()],

    /** One evaluation over the samples of this collection, by family name. */
    evaluate(families: ReadonlyMap<string, readonly Sample[]>, now: number): Evaluation {
      const fired: Alert[] = [];
      const resolved: ResolvedAlert[] = [];
      const seen = new Set<string>();
      for (const { rule, match, bad, clear } of compiled) {
        for (const sample of families.get(rule.metric) ?? []) {
          const own = sample.labels ?? {};
          if (!match(own) || Number.isNaN(sample.value)) continue;
          const seriesLabels: Labels = { ...own, ...rule.labels };
          const labels: Labels = { ...extraLabels, ...seriesLabels, alertname: rule.name };
          const key = `${rule.name}\u0000${keyOf(labels)}`;
          const alert = alerts.get(key);
          const value = sample.value;
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
