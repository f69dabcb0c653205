import { setTimeout as sleep } from 'node:timers/promises';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import type { Logger } from '../../../shared/logger.ts';
import { type Family, family, type Labels } from '../collector.ts';
import type { Snapshot } from '../push/push.ts';
import { send } from '../push/send.ts';
import type { Sample } from '../scrape.ts';
import { type Alert, createRuleEngine, type ResolvedAlert } from './rules.ts';

export const ALERT_FIRING = family(
  'nodeward_alert_firing',
  'gauge',
  'nodeward: Node-local alert rules by series: 1 firing, 0 pending (condition holds, `for` not yet reached).',
);

/** One element of Alertmanager's POST /api/v2/alerts body (postableAlert in its OpenAPI spec). */
export interface PostableAlert {
  labels: Labels;
  annotations: Labels;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
}

/** Resolved alerts not yet delivered are kept for the next send, up to this many. */
const MAX_UNSENT_RESOLVED = 1000;

export interface AlertsOptions {
  readonly settings: MetricsConfig['alerts'];
  /** job/instance of this node, added to every alert. */
  readonly extraLabels: Labels;
  readonly snapshot: () => Promise<Snapshot>;
  readonly log: Logger;
  readonly clock?: () => number;
}

/**
 * Evaluates the rules every interval, exports their state, and tells Alertmanager: new and
 * still-firing alerts (again every resendInterval, with endsAt a few intervals ahead, so a node
 * that dies has its alerts expire as Prometheus' do) and resolved ones with endsAt = resolve time.
 */
export function createAlerts(opts: AlertsOptions) {
  const { settings, log } = opts;
  const clock = opts.clock ?? Date.now;
  const engine = createRuleEngine(settings.rules, opts.extraLabels);
  const target = settings.alertmanagerUrl
    ? `${settings.alertmanagerUrl.replace(/\/+$/, '')}/api/v2/alerts`
    : undefined;
  let unsentResolved: ResolvedAlert[] = [];
  let lastSent = Number.NEGATIVE_INFINITY;
  const validFor = 4 * Math.max(settings.interval, settings.resendInterval);

  const postable = (alert: Alert, endsAt: number): PostableAlert => ({
    labels: alert.labels,
    annotations: alert.annotations,
    startsAt: new Date(alert.firedAt ?? alert.activeSince).toISOString(),
    endsAt: new Date(endsAt).toISOString(),
    generatorURL: '',
  });

  const deliver = async (now: number, signal?: AbortSignal) => {
    if (!target) return;
    const firing = engine.active().filter((a) => a.state === 'firing');
    const body = [
      ...firing.map((a) => postable(a, now + validFor)),
      ...unsentResolved.map((r) => postable(r.alert, r.resolvedAt)),
    ];
    if (body.length === 0) return;
    const result = await send(
      {
        url: target,
        body: JSON.stringify(body),
        headers: { 'Content-Type': 'application/json', 'User-Agent': 'nodeward' },
        timeout: settings.timeout,
      },
      settings.retry,
      signal,
      'ALERTS_SEND_FAILED',
    );
    if (result.ok) {
      unsentResolved = [];
      lastSent = now;
    } else if (!signal?.aborted) {
      log.warn({ err: result.error, code: result.error.code, alerts: body.length }, 'alerts not delivered');
    }
  };

  const evaluateOnce = async (signal?: AbortSignal) => {
    const snapshot = await opts.snapshot();
    const byName = new Map<string, readonly Sample[]>();
    for (const [f, samples] of snapshot.families) byName.set(f.name, samples);
    const now = clock();
    const { fired, resolved } = engine.evaluate(byName, now);
    for (const a of fired) log.warn({ alert: a.labels, value: a.value }, 'alert firing');
    for (const r of resolved) log.info({ alert: r.alert.labels, value: r.alert.value }, 'alert resolved');
    if (target) unsentResolved = [...unsentResolved, ...resolved].slice(-MAX_UNSENT_RESOLVED);
    if (fired.length > 0 || unsentResolved.length > 0 || now - lastSent >= settings.resendInterval) {
      await deliver(now, signal);
    }
  };

  return {
    families: [ALERT_FIRING] as readonly Family[],
    samples: (): Sample[] =>
      engine.active().map((a) => ({
        value: a.state === 'firing' ? 1 : 0,
        labels: { ...a.seriesLabels, rule: a.rule },
      })),
    evaluateOnce,
    async run(signal: AbortSignal) {
      if (settings.rules.length === 0) return;
      while (!signal.aborted) {
        const started = clock();
        await evaluateOnce(signal).catch((err: unknown) => {
          log.warn({ err }, 'alert evaluation failed');
        });
        await sleep(Math.max(0, settings.interval - (clock() - started)), undefined, { signal }).catch(
          () => {},
        );
      }
    },
  };
}
