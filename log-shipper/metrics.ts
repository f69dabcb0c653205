import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the gauges read from the running pipeline; absent between runs (they read 0 then). */
export interface PipelineGauges {
  inflightBytes(): number;
  filesWatched(): number;
  checkpointLagBytes(): number;
}

export interface LogsMetrics {
  readonly linesRead: Counter<'namespace'>;
  readonly bytesRead: Counter<'namespace'>;
  readonly linesSent: Counter<'namespace'>;
  readonly bytesSent: Counter<'namespace'>;
  readonly parseErrors: Counter<'namespace'>;
  readonly linesSplit: Counter<'namespace'>;
  readonly linesDropped: Counter<'namespace' | 'reason'>;
  readonly linesUnlabelled: Counter<'namespace'>;
  readonly metadataErrors: Counter<'reason'>;
  readonly rotations: Counter<'kind'>;
  readonly linesLost: Counter<'namespace' | 'reason'>;
  readonly bytesLost: Counter<'namespace' | 'reason'>;
  readonly recordsRefused: Counter<'namespace' | 'reason' | 'action'>;
  readonly sendDuration: Histogram<'sink'>;
  readonly sinkErrors: Counter<'sink' | 'code'>;
  attach(gauges: PipelineGauges | undefined): void;
}

/**
 * The module's metrics, created once per process so counters survive restarts of the module.
 * Bytes are those of the files (read) and of the records (sent); lines are log lines after partials
 * were merged, so read and sent compare.
 */
export function createLogsMetrics(registry: Registry): LogsMetrics {
  let gauges: PipelineGauges | undefined;
  const registers = [registry];
  const gauge = (name: string, help: string, read: (g: PipelineGauges) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(gauges === undefined ? 0 : read(gauges));
      },
    });
  gauge('nodeward_logs_inflight_bytes', 'Record bytes read and not yet acknowledged by the sink.', (g) =>
    g.inflightBytes(),
  );
  gauge(
    'nodeward_logs_files_watched',
    'Log files open for reading (followed or draining after rotation).',
    (g) => g.filesWatched(),
  );
  gauge(
    'nodeward_logs_checkpoint_lag_bytes',
    'Bytes of open log files past their acknowledged checkpoint.',
    (g) => g.checkpointLagBytes(),
  );
  return {
    linesRead: new Counter({
      name: 'nodeward_logs_lines_read_total',
      help: 'Log lines read from files (partials merged).',
      labelNames: ['namespace'],
      registers,
    }),
    bytesRead: new Counter({
      name: 'nodeward_logs_bytes_read_total',
      help: 'Bytes read from log files.',
      labelNames: ['namespace'],
      registers,
    }),
    linesSent: new Counter({
      name: 'nodeward_logs_lines_sent_total',
      help: 'Log records acknowledged by the sink.',
      labelNames: ['namespace'],
      registers,
    }),
    bytesSent: new Counter({
      name: 'nodeward_logs_bytes_sent_total',
      help: 'Bytes of log records acknowledged by the sink (JSON, before compression).',
      labelNames: ['namespace'],
      registers,
    }),
    parseErrors: new Counter({
      name: 'nodeward_logs_parse_errors_total',
      help: 'Lines that were neither CRI nor docker json-file, shipped raw with parse_error.',
      labelNames: ['namespace'],
      registers,
    }),
    linesSplit: new Counter({
      name: 'nodeward_logs_lines_truncated_total',
      help: 'Records cut at logs.maxLineBytes, shipped with truncated (the line goes on in the next record).',
      labelNames: ['namespace'],
      registers,
    }),
    linesDropped: new Counter({
      name: 'nodeward_logs_lines_dropped_total',
      help: 'Lines read and not shipped, by reason: rate_limit (logs.rateLimit) or excluded (namespace or pod annotation).',
      labelNames: ['namespace', 'reason'],
      registers,
    }),
    linesUnlabelled: new Counter({
      name: 'nodeward_logs_lines_without_metadata_total',
      help: 'Lines shipped with the file-name labels only, because the kubelet did not know the pod (or could not be asked).',
      labelNames: ['namespace'],
      registers,
    }),
    metadataErrors: new Counter({
      name: 'nodeward_logs_pod_metadata_errors_total',
      help: 'Failed fetches of the kubelet /pods, by reason (unreachable, timeout, unauthorized, tls, http_<status>, bad_json); shipping goes on.',
      labelNames: ['reason'],
      registers,
    }),
    rotations: new Counter({
      name: 'nodeward_logs_rotations_total',
      help: 'Log files rotated: renamed, deleted or truncated (copytruncate).',
      labelNames: ['kind'],
      registers,
    }),
    linesLost: new Counter({
      name: 'nodeward_logs_lost_lines_total',
      help: 'Lines of files deleted before they were read to their end (estimated from their bytes and the average line), by reason: deleted_while_stopped (rotated away while the module was down), deleted_before_open (gone between listing and opening).',
      labelNames: ['namespace', 'reason'],
      registers,
    }),
    bytesLost: new Counter({
      name: 'nodeward_logs_lost_bytes_total',
      help: 'Bytes of files deleted before they were read to their end (the last size seen, or the size on disk; a .gz its compressed size), by reason as nodeward_logs_lost_lines_total.',
      labelNames: ['namespace', 'reason'],
      registers,
    }),
    recordsRefused: new Counter({
      name: 'nodeward_logs_records_refused_total',
      help: 'Records the sink refused for good (reason: the Kafka error, e.g. TOPIC_AUTHORIZATION_FAILED, MESSAGE_TOO_LARGE), by action: dead_letter (sent to logs.kafka.deadLetterTopic) or dropped.',
      labelNames: ['namespace', 'reason', 'action'],
      registers,
    }),
    sendDuration: new Histogram({
      name: 'nodeward_logs_sink_send_duration_seconds',
      help: 'Time from handing a batch to the sink to its acknowledgement.',
      labelNames: ['sink'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    sinkErrors: new Counter({
      name: 'nodeward_logs_sink_errors_total',
      help: 'Failed sink sends by cause (errno, Kafka error type); the batch is retried.',
      labelNames: ['sink', 'code'],
      registers,
    }),
    attach(g) {
      gauges = g;
    },
  };
}
