import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogsConfig, PodsConfig } from '../shared/config/index.ts';
import { asNodewardError, NodewardError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { type PodMetadataSource, sharedPodSource } from '../shared/pods/index.ts';
import { Batcher } from './batch.ts';
import { CheckpointStore } from './checkpoint.ts';
import { Sender } from './deliver.ts';
import { createDiscovery } from './discover.ts';
import { createEnricher } from './enrich.ts';
import { FollowedFiles } from './followed-files.ts';
import { InflightBudget } from './inflight.ts';
import type { LogsMetrics } from './metrics.ts';
import { createPodRules } from './pod-rules.ts';
import { createRouter } from './route.ts';
import { createSink, reasonOf, type Sink } from './sink/index.ts';
import { BufferPool } from './tail.ts';

/**
 * One run of the log shipper: discover → tail → parse → enrich → route → batch → deliver, with
 * acknowledgements flowing back into the checkpoints. Stops on `signal` (delivering what was read,
 * within logs.flushTimeout). A sink down past logs.retry.giveUpAfter does not end it: the module
 * reports not ready and keeps its files open (deliver.ts).
 */

export interface PipelineConfig {
  node: string;
  dataDir: string;
  logs: LogsConfig;
  pods: PodsConfig;
}

export interface PipelineDeps {
  log: Logger;
  metrics: LogsMetrics;
  signal: AbortSignal;
  setReady(ready: boolean, reason?: string): void;
  /**
   * Pod metadata for labels beyond the file name, shared with other modules; without it, one
   * the agent's shared pod source (pods.source).
   */
  metadata?: PodMetadataSource;
  /** For tests: a sink other than the configured one. */
  sink?: Sink;
}

export function checkpointPath(dataDir: string): string {
  return join(dataDir, 'logs', 'checkpoints.json');
}

export async function runPipeline(config: PipelineConfig, deps: PipelineDeps): Promise<void> {
  const { logs } = config;
  const { log, metrics, signal } = deps;
  if (signal.aborted) return;
  try {
    // The embedded default watches a directory nobody else creates.
    await mkdir(logs.root, { recursive: true });
  } catch (err) {
    throw new NodewardError('IO', `cannot create the log root ${logs.root}: ${(err as Error).message}`, {
      cause: err,
      details: { root: logs.root },
    });
  }
  // Before anything is opened: a pods section that cannot be used (no API-server address) fails
  // the run with nothing to close.
  const podSource = deps.metadata === undefined ? sharedPodSource(config.pods, config.node) : undefined;
  const checkpoints = await CheckpointStore.load(checkpointPath(config.dataDir), log);
  const sink = deps.sink ?? createSink(logs, log);
  try {
    await sink.open();
  } catch (err) {
    await sink.close().catch(() => {});
    throw asNodewardError(err);
  }

  const metadata = deps.metadata ?? podSource;
  let unsubscribe = () => {};
  if (podSource !== undefined) {
    let lastReason: string | undefined;
    const k = podSource;
    unsubscribe = k.subscribe({
      failed(reason, err) {
        metrics.metadataErrors.inc({ reason });
        // One warning per change of cause, not one per poll while the source is down.
        if (reason !== lastReason)
          log.warn(
            { err, reason, source: config.pods.source, code: 'POD_METADATA_UNAVAILABLE' },
            'pod metadata source failed; lines are labelled from file names meanwhile',
          );
        lastReason = reason;
      },
      refreshed(pods) {
        if (lastReason !== undefined) log.info({ pods }, 'pod metadata source answers again');
        lastReason = undefined;
      },
    });
    // The first fetch is awaited (bounded by pods.timeout) so that files present at the start get their labels.
    await k.start();
  }

  const budget = new InflightBudget(logs.maxInflightBytes);
  const stop = new AbortController();
  const sender = new Sender(
    sink,
    logs.retry,
    {
      acked(batch, seconds) {
        metrics.sendDuration.observe({ sink: sink.name }, seconds);
        for (const slot of batch.slots) {
          checkpoints.ack(slot.owner.entry, slot.gen, slot.end);
          if (slot.lines > 0) {
            metrics.linesSent.inc({ namespace: slot.owner.namespace }, slot.lines);
            metrics.bytesSent.inc({ namespace: slot.owner.namespace }, slot.bytes);
          }
        }
        budget.release(batch.bytes);
        batch.release();
      },
      failed(err, attempt, retryInMs) {
        metrics.sinkErrors.inc({ sink: sink.name, code: reasonOf(err) });
        const level = attempt === 1 || attempt % 10 === 0 ? 'warn' : 'debug';
        log[level]({ err, code: err.code, attempt, retryInMs }, 'log sink send failed; retrying');
      },
      stalled(err, ms) {
        // Not a module restart: the files being read stay open (some may be deleted or
        // compressed away by the kubelet meanwhile), reading waits at the in-flight cap.
        log.error(
          { err, code: err.code, failingForMs: ms },
          'log sink failing past logs.retry.giveUpAfter; reopened, still retrying',
        );
        deps.setReady(false, `sink unavailable: ${reasonOf(err)}`);
      },
      resumed() {
        log.info({ sink: sink.name }, 'log sink delivers again');
        if (!stop.signal.aborted) deps.setReady(true);
      },
      refused(records, reason, action) {
        const pods = new Map<
          string,
          { namespace: string; pod: string; container: string; records: number }
        >();
        for (const r of records) {
          const l = recordLabels(r.value);
          const id = `${l.namespace}/${l.pod}/${l.container}`;
          const p = pods.get(id);
          if (p === undefined) pods.set(id, { ...l, records: 1 });
          else p.records++;
        }
        for (const p of pods.values())
          metrics.recordsRefused.inc({ namespace: p.namespace, reason, action }, p.records);
        log.warn(
          {
            reason,
            action,
            topic: records[0]?.topic,
            deadLetterTopic: action === 'dead_letter' ? logs.kafka.deadLetterTopic : undefined,
            pods: [...pods.values()],
            code: 'SINK_UNAVAILABLE',
          },
          action === 'dead_letter'
            ? 'log records refused by the sink for good; sent to the dead-letter topic'
            : 'log records refused by the sink for good; dropped',
        );
      },
    },
    log,
    // The file and stdout sinks append: one write at a time keeps the lines in order.
    sink.name === 'kafka' ? logs.kafka.inFlight : 1,
    sink.name === 'kafka' ? logs.kafka.deadLetterTopic : '',
  );
  const batcher = new Batcher(logs.batch, budget, (batch) => sender.enqueue(batch));
  const files = new FollowedFiles({
    options: logs,
    checkpoints,
    batcher,
    budget,
    pool: new BufferPool(logs.maxLineBytes),
    enricher: createEnricher({
      node: config.node,
      podLabels: logs.podLabels,
      ...(metadata ? { metadata } : {}),
    }),
    router: createRouter(logs.kafka.topic),
    podRules: createPodRules({
      excludeNamespaces: logs.exclude.namespaces,
      excludeAnnotation: logs.exclude.annotation,
      multilineAnnotation: logs.multiline.annotation,
      linesPerSecond: logs.rateLimit.linesPerSecond,
      burst: logs.rateLimit.burst,
    }),
    multilineTimeout: logs.multiline.timeout,
    metrics,
    log,
  });
  const discovery = createDiscovery(
    logs.root,
    logs.rescanInterval,
    {
      added: (path) => void files.added(path),
      removed: (path) => files.removed(path),
      changed: (path) => files.changed(path),
    },
    log,
  );
  metrics.attach({
    inflightBytes: () => budget.bytes,
    filesWatched: () => files.count,
    checkpointLagBytes: () => files.lagBytes(),
  });

  let failure: NodewardError | undefined;
  const fail = (err: unknown) => {
    failure ??= asNodewardError(err);
    stop.abort();
  };
  const onAbort = () => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  // Aborted while the sink was opening: the listener came too late to hear it.
  if (signal.aborted) stop.abort();
  const delivering = sender.run().catch(fail);
  const timers: NodeJS.Timeout[] = [];
  try {
    const initial = await discovery.start();
    await Promise.all(initial.map((path) => files.added(path, true)));
    await files.recover();
    if (!stop.signal.aborted) deps.setReady(true);
    log.info({ root: logs.root, sink: sink.name, files: files.count }, 'log shipper running');
    timers.push(setInterval(() => files.tick(), logs.pollInterval));
    timers.push(setInterval(() => void checkpoints.persist().catch(fail), logs.checkpointInterval));
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      else stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } catch (err) {
    fail(err);
  } finally {
    deps.setReady(false, failure ? `failed: ${failure.code}` : 'stopping');
    for (const t of timers) clearInterval(t);
    signal.removeEventListener('abort', onAbort);
    await discovery.stop().catch(() => {});
    await files.stop();
    batcher.flush();
    const deadline = Date.now() + logs.flushTimeout;
    sender.close(deadline);
    await until(delivering, deadline);
    metrics.attach(undefined);
    unsubscribe();
    podSource?.stop();
    try {
      await checkpoints.persist();
    } catch (err) {
      failure ??= asNodewardError(err);
    }
    await sink.close().catch((err: unknown) => log.debug({ err }, 'closing the log sink failed'));
    log.info({ sink: sink.name, undelivered: sender.queued }, 'log shipper stopped');
  }
  if (failure !== undefined) throw failure;
}

/** Namespace, pod and container of an encoded record, for the log line of a refused one. */
function recordLabels(value: Buffer): { namespace: string; pod: string; container: string } {
  try {
    const { labels } = JSON.parse(value.toString('utf8')) as {
      labels?: { namespace?: string; pod?: string; container?: string };
    };
    return { namespace: labels?.namespace ?? '', pod: labels?.pod ?? '', container: labels?.container ?? '' };
  } catch {
    return { namespace: '', pod: '', container: '' };
  }
}

/** Settles with `work`, or at `deadline` (epoch ms) if that comes first. */
async function until(work: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work,
    new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now())))),
  ]);
  clearTimeout(timer);
}
