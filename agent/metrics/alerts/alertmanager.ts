import { setTimeout as sleep } from 'node:timers/promises';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { NodewardError } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/logger.ts';
import { type Family, family, type Labels } from '../collector.ts';
import type { Snapshot } from '../push/push.ts';
import { retriableStatus } from '../push/send.ts';
import type { Sample } from '../scrape.ts';
import { alertRules } from './defaults.ts';
import { type AlertmanagerConfig, postJson } from './post.ts';
import { type Alert, createRuleEngine } from './rules.ts';
import { renderAnnotations } from './template.ts';

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

/** Resolved alerts kept for re-sending, at most (the oldest go first). */
const MAX_RESOLVED = 1000;
/** Alerts waiting for one Alertmanager that is slow or down, at most (the oldest go first). */
const MAX_QUEUED = 10_000;

type AlertsConfig = MetricsConfig['alerts'];

export interface AlertsOptions {
  readonly settings: AlertsConfig;
  /** job/instance of this node, added to every alert. */
  readonly extraLabels: Labels;
  readonly snapshot: () => Promise<Snapshot>;
  readonly log: Logger;
  readonly clock?: () => number;
}

interface Resolved {
  readonly alert: Alert;
  readonly resolvedAt: number;
  lastSentAt: number;
}

/**
 * One Alertmanager and its own queue: each member of an HA cluster is told everything directly
 * (they deduplicate notifications, not alerts), and one that is down or slow delays no other.
 * Alerts that pile up while a send is in flight go in the next request, the newest state of each.
 */
function createSender(am: AlertmanagerConfig, settings: AlertsConfig, log: Logger) {
  const url = `${am.url.replace(/\/+$/, '')}/api/v2/alerts`;
  const queue = new Map<string, PostableAlert>();
  let running: Promise<void> | undefined;

  const attempt = async (body: string, signal?: AbortSignal): Promise<NodewardError | undefined> => {
    let delay = settings.retry.initial;
    let error: NodewardError | undefined;
    for (let i = 1; i <= settings.retry.attempts && !signal?.aborted; i++) {
      try {
        const { status, text } = await postJson(am, url, body, settings.timeout, signal);
        if (status >= 200 && status < 300) return undefined;
        const details = { url, status, body: text };
        if (!retriableStatus(status)) {
          return new NodewardError('ALERTS_REJECTED', `${url} answered ${status}: ${text.slice(0, 200)}`, {
            details,
          });
        }
        error = new NodewardError('ALERTS_SEND_FAILED', `${url} answered ${status}`, { details });
      } catch (err) {
        error = new NodewardError('ALERTS_SEND_FAILED', `${url}: ${(err as Error).message}`, {
          cause: err,
          details: { url },
        });
      }
      if (i < settings.retry.attempts) {
        await sleep(delay * (1 + Math.random() * 0.2), undefined, signal ? { signal } : {}).catch(() => {});
        delay = Math.min(delay * 2, settings.retry.max);
      }
    }
    return error ?? new NodewardError('ALERTS_SEND_FAILED', `${url}: stopped before sending`);
  };

  const drain = async (signal?: AbortSignal) => {
    while (queue.size > 0 && !signal?.aborted) {
      const batch = [...queue.values()];
      queue.clear();
      const error = await attempt(JSON.stringify(batch), signal);
      // Not queued again: the next resend (every resendInterval) carries what still matters.
      if (error && !signal?.aborted) {
        log.warn(
          { err: error, code: error.code, alertmanager: am.url, alerts: batch.length },
          'alerts not delivered',
        );
      }
    }
  };

  return {
    /** Queues the alerts; resolves once this Alertmanager has been sent them (or given up on). */
    send(alerts: readonly PostableAlert[], signal?: AbortSignal): Promise<void> {
      for (const a of alerts) {
        const key = JSON.stringify(a.labels);
        queue.delete(key);
        queue.set(key, a);
      }
      for (const key of queue.keys()) {
        if (queue.size <= MAX_QUEUED) break;
        queue.delete(key);
      }
      running ??= drain(signal).finally(() => {
        running = undefined;
      });
      return running;
    },
  };
}

/**
 * Evaluates the rules every interval, exports their state, and tells every Alertmanager as
 * Prometheus does: an alert when it fires, again every resendInterval with endsAt a few intervals
 * ahead (so a node that dies has its alerts expire), and once resolved, with endsAt = resolve time,
 * again every resendInterval for resolvedRetention (so an Alertmanager that missed it learns it).
 */
export function createAlerts(opts: AlertsOptions) {
  const { settings, log } = opts;
  const clock = opts.clock ?? Date.now;
  const rules = alertRules(settings);
  const engine = createRuleEngine(rules, opts.extraLabels);
  const senders = settings.alertmanagers.map((am) => createSender(am, settings, log));
  const validFor = 4 * Math.max(settings.interval, settings.resendInterval);
  /** When each firing alert was last sent, by key. */
  const firingSentAt = new Map<string, number>();
  const resolved = new Map<string, Resolved>();

  const postable = (alert: Alert, endsAt: number): PostableAlert => ({
    labels: alert.labels,
    annotations: renderAnnotations(alert.annotations, alert.labels, alert.value),
    startsAt: new Date(alert.firedAt ?? alert.activeSince).toISOString(),
    endsAt: new Date(endsAt).toISOString(),
    generatorURL: '',
  });

  /** What is due at `now`: new and resolved alerts at once, the others every resendInterval. */
  const due = (now: number): PostableAlert[] => {
    const out: PostableAlert[] = [];
    const resend = (last: number | undefined) => last === undefined || now - last >= settings.resendInterval;
    for (const alert of engine.active()) {
      // Active again: the new alert replaces the resolved one (Prometheus does the same).
      resolved.delete(alert.key);
      if (alert.state !== 'firing' || !resend(firingSentAt.get(alert.key))) continue;
      firingSentAt.set(alert.key, now);
      out.push(postable(alert, now + validFor));
    }
    for (const [key, r] of resolved) {
      if (now - r.resolvedAt > settings.resolvedRetention) {
        resolved.delete(key);
      } else if (resend(r.lastSentAt)) {
        r.lastSentAt = now;
        out.push(postable(r.alert, r.resolvedAt));
      }
    }
    return out;
  };

  /** One evaluation; `sent` settles once every Alertmanager has been told (boxed: not awaited with it). */
  const tick = async (signal?: AbortSignal): Promise<{ sent: Promise<void> }> => {
    const snapshot = await opts.snapshot();
    const byName = new Map<string, readonly Sample[]>();
    for (const [f, samples] of snapshot.families) byName.set(f.name, samples);
    const now = clock();
    const evaluation = engine.evaluate(byName, now);
    for (const a of evaluation.fired) log.warn({ alert: a.labels, value: a.value }, 'alert firing');
    for (const r of evaluation.resolved) {
      log.info({ alert: r.alert.labels, value: r.alert.value }, 'alert resolved');
      firingSentAt.delete(r.alert.key);
      resolved.delete(r.alert.key);
      resolved.set(r.alert.key, { ...r, lastSentAt: Number.NEGATIVE_INFINITY });
    }
    for (const key of resolved.keys()) {
      if (resolved.size <= MAX_RESOLVED) break;
      resolved.delete(key);
    }
    const batch = senders.length > 0 ? due(now) : [];
    if (batch.length === 0) return { sent: Promise.resolve() };
    return { sent: Promise.all(senders.map((s) => s.send(batch, signal))).then(() => {}) };
  };

  return {
    /** The rules evaluated: the enabled built-in ones and the configured ones. */
    rules,
    families: [ALERT_FIRING] as readonly Family[],
    samples: (): Sample[] =>
      engine.active().map((a) => ({
        value: a.state === 'firing' ? 1 : 0,
        labels: { ...a.seriesLabels, rule: a.rule },
      })),
    /** One evaluation and the sends it causes, to the end. */
    async evaluateOnce(signal?: AbortSignal): Promise<void> {
      await (await tick(signal)).sent;
    },
    async run(signal: AbortSignal) {
      if (rules.length === 0) return;
      while (!signal.aborted) {
        const started = clock();
        // Sends are not awaited: a slow Alertmanager must not hold back the next evaluation.
        await tick(signal).then(
          ({ sent }) => void sent.catch(() => {}),
          (err: unknown) => log.warn({ err }, 'alert evaluation failed'),
        );
        await sleep(Math.max(0, settings.interval - (clock() - started)), undefined, { signal }).catch(
          () => {},
        );
      }
    },
  };
}
