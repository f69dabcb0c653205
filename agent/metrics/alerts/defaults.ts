import {
  type AlertRuleConfig,
  type ConfigInput,
  type MetricsConfig,
  metricsSchema,
} from '../../../shared/config/index.ts';

type AlertsConfig = MetricsConfig['alerts'];
type RuleInput = NonNullable<NonNullable<NonNullable<ConfigInput['metrics']>['alerts']>['rules']>[number];
/** The names metrics.alerts.defaultRules.disabled accepts: the type checker holds them to this file. */
type DefaultRuleName = AlertsConfig['defaultRules']['disabled'][number];

const warning = { severity: 'warning' };
const on = (what: string) => `${what} on {{ $labels.instance }}`;

/** numerator / denominator of two metrics, per series of equal labels. */
const ratio = (numerator: string, denominator: string) => ({
  ratio: { numerator: { metric: numerator }, denominator: { metric: denominator } },
});

/** Less than 10 % of something left for 5m, clearing at 12 %. */
const tenPercentLeft = (
  numerator: string,
  denominator: string,
  summary: string,
  description: string,
): Omit<RuleInput, 'name'> => ({
  expr: ratio(numerator, denominator),
  op: '<',
  threshold: 0.1,
  clear: 0.12,
  for: '5m',
  labels: warning,
  annotations: { summary: on(summary), description },
});

/** A 0/1 health gauge at 0 for a while. */
const zeroFor = (
  metric: string,
  duration: string,
  summary: string,
  description: string,
): Omit<RuleInput, 'name'> => ({
  metric,
  op: '<',
  threshold: 1,
  for: duration,
  labels: warning,
  annotations: { summary: on(summary), description },
});

/**
 * The built-in rules, written as an operator would write them in metrics.alerts.rules. Thresholds
 * follow the node_exporter mixin where it has the alert; each has a `clear` level a little on the
 * good side, so a value hovering at the threshold does not page every few minutes.
 */
const DEFINITIONS: Record<DefaultRuleName, Omit<RuleInput, 'name'>> = {
  FilesystemAlmostFull: tenPercentLeft(
    'node_filesystem_avail_bytes',
    'node_filesystem_size_bytes',
    'Filesystem {{ $labels.mountpoint }} almost full',
    '{{ $labels.device }} at {{ $labels.mountpoint }} has {{ $value | humanizePercentage }} of its space left.',
  ),
  FilesystemInodesAlmostFull: tenPercentLeft(
    'node_filesystem_files_free',
    'node_filesystem_files',
    'Filesystem {{ $labels.mountpoint }} almost out of inodes',
    '{{ $labels.device }} at {{ $labels.mountpoint }} has {{ $value | humanizePercentage }} of its inodes left.',
  ),
  MemoryPressure: tenPercentLeft(
    'node_memory_MemAvailable_bytes',
    'node_memory_MemTotal_bytes',
    'Memory almost exhausted',
    '{{ $value | humanizePercentage }} of memory is available; the kubelet evicts pods and the kernel OOM-kills soon.',
  ),
  ConntrackAlmostFull: {
    expr: ratio('node_nf_conntrack_entries', 'node_nf_conntrack_entries_limit'),
    threshold: 0.9,
    clear: 0.85,
    for: '2m',
    labels: warning,
    annotations: {
      summary: on('Conntrack table almost full'),
      description:
        'The conntrack table is {{ $value | humanizePercentage }} full; once full, new connections are dropped.',
    },
  },
  // A counter compared with 0 would fire for ever after the first kill: its increase is what matters.
  ContainerOOMKilled: {
    expr: {
      increase: { metric: 'container_oom_events_total', matchers: { container: '~.+' }, window: '5m' },
    },
    threshold: 0,
    labels: warning,
    annotations: {
      summary: on('Container {{ $labels.namespace }}/{{ $labels.pod }}/{{ $labels.container }} OOM-killed'),
      description: 'It was killed for running out of memory {{ $value }} times in the last 5 minutes.',
    },
  },
  NodeOOMKill: {
    expr: { increase: { metric: 'node_vmstat_oom_kill', window: '5m' } },
    threshold: 0,
    labels: warning,
    annotations: {
      summary: on('The kernel OOM-killed processes'),
      description:
        '{{ $value }} processes were killed for lack of memory in the last 5 minutes (in containers or not).',
    },
  },
  ClockNotSynchronised: zeroFor(
    'node_timex_sync_status',
    '10m',
    'Clock not synchronised',
    'The kernel reports the clock unsynchronised: check NTP (chronyd, systemd-timesyncd).',
  ),
  CniSegmentLinkDown: zeroFor(
    'nodeward_cni_segment_link_up',
    '1m',
    'CNI segment {{ $labels.segment }}: {{ $labels.link }} {{ $labels.device }} down',
    'Pods on this segment cannot reach the network through this node.',
  ),
  CniSegmentNoCarrier: zeroFor(
    'nodeward_cni_segment_uplink_carrier',
    '1m',
    'CNI segment {{ $labels.segment }}: uplink {{ $labels.device }} has no carrier',
    'Pods on this segment cannot reach other nodes.',
  ),
  LogShipperLosingLines: {
    expr: { sum: { increase: { metric: 'nodeward_logs_lost_lines_total', window: '5m' } } },
    threshold: 0,
    labels: warning,
    annotations: {
      summary: on('Log shipper losing lines'),
      description: '{{ $value }} container log lines were lost in the last 5 minutes.',
    },
  },
};

/** The built-in rules, parsed (and so checked) as rules from a config file are. */
export const DEFAULT_RULES: readonly AlertRuleConfig[] = metricsSchema.parse({
  alerts: { rules: Object.entries(DEFINITIONS).map(([name, rule]) => ({ name, ...rule })) },
}).alerts.rules;

/** The rules to evaluate: the enabled built-in ones (unless a rule of the config has the name) and the config's. */
export function alertRules(alerts: Pick<AlertsConfig, 'defaultRules' | 'rules'>): AlertRuleConfig[] {
  const { enabled, disabled } = alerts.defaultRules;
  const own = new Set(alerts.rules.map((r) => r.name));
  const builtIn = enabled
    ? DEFAULT_RULES.filter((r) => !own.has(r.name) && !disabled.includes(r.name as DefaultRuleName))
    : [];
  return [...builtIn, ...alerts.rules];
}
