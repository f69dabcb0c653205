import { z } from 'zod';
import { duration, shown, url } from './units.ts';

/** A JavaScript regular expression source, checked at load so a typo fails the config, not a scrape. */
const pattern = () =>
  z.string().superRefine((value, ctx) => {
    try {
      new RegExp(value);
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a regular expression, got ${shown(value)}: ${(err as Error).message}`,
      });
    }
  });

/**
 * The host collectors, by the name node_exporter gives each; agent/metrics/collectors/ implements
 * exactly these (the type checker holds the two lists together).
 */
export const HOST_COLLECTORS = {
  cpu: 'node_cpu_seconds_total and node_cpu_guest_seconds_total from /proc/stat.',
  meminfo: 'node_memory_*_bytes, one per /proc/meminfo field.',
  loadavg: 'node_load1, node_load5, node_load15.',
  filesystem: 'node_filesystem_* from statfs of each mount of PID 1 (procRoot/1/mounts).',
  diskstats: 'node_disk_* from /proc/diskstats.',
  netdev: 'node_network_receive_*_total and node_network_transmit_*_total from /proc/net/dev.',
  pressure: 'node_pressure_* from /proc/pressure (PSI); no series on kernels without it.',
  uname: 'node_uname_info.',
  stat: 'node_boot_time_seconds, node_context_switches_total, node_forks_total, node_intr_total, node_procs_*.',
  vmstat: 'node_vmstat_<field> for the /proc/vmstat fields that vmstat.fields matches.',
  filefd: 'node_filefd_allocated, node_filefd_maximum.',
  conntrack:
    'node_nf_conntrack_entries(_limit) and node_nf_conntrack_stat_*; no series without nf_conntrack.',
} as const;

export type HostCollectorName = keyof typeof HOST_COLLECTORS;

const collectorSwitches = Object.fromEntries(
  Object.entries(HOST_COLLECTORS).map(([name, what]) => [name, z.boolean().default(true).describe(what)]),
) as Record<HostCollectorName, z.ZodDefault<z.ZodBoolean>>;

/** Retrying a push: 5xx, 429 and network errors are retried with capped doubling delays; other 4xx never. */
const pushRetry = () =>
  z
    .strictObject({
      initial: duration().default(500).describe('Delay before the first retry of a failed push.'),
      max: duration().default(30_000).describe('Cap of the doubling retry delay.'),
      attempts: z
        .int()
        .min(1)
        .default(5)
        .describe(
          'Tries per batch (the first included); after the last the batch is dropped and counted, the next interval sends fresh values.',
        ),
    })
    .prefault({});

const labelMap = () => z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/), z.string());

const alertRule = z.strictObject({
  name: z
    .string()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/)
    .describe('Rule name: the alertname sent to Alertmanager and the rule label of nodeward_alert_firing.'),
  metric: z
    .string()
    .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/)
    .describe('Metric family the rule watches, e.g. node_load1 or container_memory_working_set_bytes.'),
  matchers: labelMap()
    .default({})
    .describe(
      'Label matchers: each value is an exact match, or a regular expression (anchored) when written as "~regex".',
    ),
  op: z.enum(['>', '>=', '<', '<=']).default('>').describe('How a value is compared with threshold.'),
  threshold: z.number().describe('The value is bad when `value op threshold` holds.'),
  clear: z
    .number()
    .optional()
    .describe(
      'Hysteresis: a firing alert resolves only once the value is back past this level (default: threshold).',
    ),
  for: duration().default(0).describe('How long the condition must hold before the alert fires.'),
  labels: labelMap().default({}).describe('Extra labels on the alert (e.g. severity).'),
  annotations: z.record(z.string(), z.string()).default({}).describe('Annotations sent to Alertmanager.'),
});

const containersSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Collect container_* series (cAdvisor/kubelet names) from the cgroup files.'),
    source: z
      .enum(['auto', 'docker', 'cgroups'])
      .default('auto')
      .describe(
        'Where container identity comes from: docker (list/inspect + events on dockerSocket), cgroups (the kubelet layout kubepods…/pod<uid>/<id>, pod names from the kubelet), auto (docker when dockerSocket exists at start, else cgroups).',
      ),
    dockerSocket: z
      .string()
      .min(1)
      .default('/var/run/docker.sock')
      .describe('The Docker Engine API socket (mounted from the host in a pod).'),
    cgroupRoot: z
      .string()
      .min(1)
      .default('/sys/fs/cgroup')
      .describe(
        "Where the host's cgroup filesystems are mounted: v2 (cgroup.controllers at the root) or v1 (one dir per controller).",
      ),
    interfaceExclude: pattern()
      .default('^(lo|veth.*|docker.*|nerdctl.*)$')
      .describe("Interfaces inside a container's netns left out of container_network_* (cAdvisor's list)."),
    reconnectMax: duration()
      .default(30_000)
      .describe('Cap of the doubling delay between attempts to reopen the Docker events stream.'),
  })
  .prefault({});

const remoteWriteSchema = z
  .strictObject({
    url: url()
      .optional()
      .describe(
        'Prometheus remote_write 1.0 endpoint, e.g. http://prometheus:9090/api/v1/write; unset: no push.',
      ),
    interval: duration().default(15_000).describe('How often the current values are collected and pushed.'),
    timeout: duration().default(10_000).describe('Deadline of one push request.'),
    externalLabels: labelMap()
      .default({})
      .describe('Labels added to every pushed series (job defaults to "nodeward", instance to node.name).'),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe('Extra HTTP headers of each push, e.g. Authorization (prefer the env form for secrets).'),
    retry: pushRetry().describe('Retrying a failed remote_write push.'),
  })
  .prefault({});

const jsonPushSchema = z
  .strictObject({
    url: url()
      .optional()
      .describe(
        'Endpoint of a WMonitor-style collector receiving the JSON push (schema: agent/metrics/push/README.md); unset: no push.',
      ),
    interval: duration().default(60_000).describe('How often the current values are collected and pushed.'),
    timeout: duration().default(10_000).describe('Deadline of one push request.'),
    metrics: pattern().default('^(node_|container_)').describe('Metric families included in the JSON push.'),
    headers: z.record(z.string(), z.string()).default({}).describe('Extra HTTP headers of each push.'),
    retry: pushRetry().describe('Retrying a failed JSON push.'),
  })
  .prefault({});

const alertsSchema = z
  .strictObject({
    rules: z
      .array(alertRule)
      .default([])
      .describe(
        'Node-local alert rules: [{name, metric, matchers, op, threshold, clear, for, labels, annotations}], evaluated per series.',
      ),
    interval: duration().default(15_000).describe('How often the rules are evaluated.'),
    alertmanagerUrl: url()
      .optional()
      .describe(
        'Alertmanager base URL, e.g. http://alertmanager:9093 (alerts go to <url>/api/v2/alerts); unset: state only in nodeward_alert_firing.',
      ),
    resendInterval: duration()
      .default(60_000)
      .describe('How often firing alerts are sent again (Alertmanager resolves alerts it stops hearing of).'),
    timeout: duration().default(10_000).describe('Deadline of one request to Alertmanager.'),
    retry: pushRetry().describe('Retrying a failed send to Alertmanager.'),
  })
  .prefault({});

/** The `metrics` section: host and container collectors (agent/metrics/). */
export const metricsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Collect host and container metrics.'),
  procRoot: z
    .string()
    .min(1)
    .default('/proc')
    .describe(
      "Where the host's procfs is mounted (/host/proc in a pod; per-netns files follow the agent's netns).",
    ),
  sysRoot: z
    .string()
    .min(1)
    .default('/sys')
    .describe("Where the host's sysfs is mounted (/host/sys in a pod)."),
  hostRoot: z
    .string()
    .min(1)
    .default('/')
    .describe(
      "Where the host's / is mounted (/host/root in a pod): filesystem statfs calls go to hostRoot + mount point, labels keep the host path.",
    ),
  collectors: z
    .strictObject(collectorSwitches)
    .prefault({})
    .describe('Turn each host collector on (true) or off (false).'),
  filesystem: z
    .strictObject({
      mountPointsExclude: pattern()
        .default('^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)')
        .describe("Mount points to leave out (node_exporter's default)."),
      fsTypesExclude: pattern()
        .default(
          '^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$',
        )
        .describe("Filesystem types to leave out (node_exporter's default)."),
      mountTimeout: duration()
        .default(5000)
        .describe(
          'How long one statfs may take before the mount reports node_filesystem_device_error 1; a hung mount is not asked again until its call returns.',
        ),
    })
    .prefault({})
    .describe('The filesystem collector.'),
  diskstats: z
    .strictObject({
      deviceExclude: pattern()
        .default('^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$')
        .describe("Block devices to leave out (node_exporter's default: partitions, ram, loop, floppy)."),
    })
    .prefault({})
    .describe('The diskstats collector.'),
  netdev: z
    .strictObject({
      deviceExclude: pattern()
        .default('')
        .describe(
          'Network devices to leave out, e.g. "^(lo|veth.*)$"; empty (node_exporter\'s default) keeps all.',
        ),
    })
    .prefault({})
    .describe('The netdev collector.'),
  vmstat: z
    .strictObject({
      fields: pattern()
        .default('^(oom_kill|pgpg|pswp|pg.*fault).*')
        .describe("/proc/vmstat fields to expose (node_exporter's default); read once at start."),
    })
    .prefault({})
    .describe('The vmstat collector.'),
  containers: containersSchema.describe('Container collectors (container_* with cAdvisor/kubelet names).'),
  remoteWrite: remoteWriteSchema.describe('Push to Prometheus remote_write.'),
  jsonPush: jsonPushSchema.describe('Push to a WMonitor-style collector as JSON.'),
  alerts: alertsSchema.describe('Node-local alert rules, sent to an Alertmanager-compatible endpoint.'),
});

export type MetricsConfig = z.output<typeof metricsSchema>;
export type ContainersConfig = MetricsConfig['containers'];
export type PushRetryConfig = MetricsConfig['remoteWrite']['retry'];
export type AlertRuleConfig = MetricsConfig['alerts']['rules'][number];
