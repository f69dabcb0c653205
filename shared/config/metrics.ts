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
  time: 'node_time_seconds, node_time_zone_offset_seconds, node_time_clocksource_*_info.',
  netstat:
    'node_netstat_<Protocol>_<Field> from /proc/net/{netstat,snmp,snmp6}, for the fields netstat.fields matches.',
  netclass: 'node_network_up, node_network_info and the other /sys/class/net/<device> properties.',
  sockstat: 'node_sockstat_* from /proc/net/sockstat and sockstat6.',
  softnet: 'node_softnet_{processed,dropped,times_squeezed}_total per CPU from /proc/net/softnet_stat.',
  os: 'node_os_info, node_os_version from hostRoot/etc/os-release (or /usr/lib/os-release).',
  entropy: 'node_entropy_available_bits, node_entropy_pool_size_bits.',
  textfile:
    'node_textfile_scrape_error, node_textfile_mtime_seconds and the series of textfile.directory/*.prom.',
  arp: 'node_arp_entries per device from /proc/net/arp.',
  udp_queues: 'node_udp_queues{ip,queue} from /proc/net/udp and udp6.',
  selinux: 'node_selinux_enabled, node_selinux_{config,current}_mode.',
  bonding: 'node_bonding_slaves, node_bonding_active per bond master; no series without bonds.',
  hwmon: 'node_hwmon_* from /sys/class/hwmon (temperatures, fans, voltages, power).',
  thermal_zone: 'node_thermal_zone_temp, node_cooling_device_{cur,max}_state.',
  cpufreq: 'node_cpu_frequency_*, node_cpu_scaling_* from /sys/devices/system/cpu/cpu*/cpufreq.',
  mdadm: 'node_md_* from /proc/mdstat (software RAID).',
  schedstat: 'node_schedstat_* per CPU from /proc/schedstat.',
  bcache:
    'node_bcache_* per cache set, backing and cache device from /sys/fs/bcache; no series without bcache.',
  btrfs:
    'node_btrfs_* per filesystem from /sys/fs/btrfs (allocation, commit times, device sizes; not the ioctl-only device errors).',
  xfs: 'node_xfs_* per mounted XFS filesystem from /sys/fs/xfs/<device>/stats/stats.',
  zfs: 'node_zfs_* from /proc/spl/kstat/zfs (ARC, DMU, ZIL … and per pool io, datasets, state); no series without ZFS.',
  nfs: 'node_nfs_* from /proc/net/rpc/nfs (NFS client RPC counts and procedures).',
  nfsd: 'node_nfsd_* from /proc/net/rpc/nfsd (NFS server).',
  ipvs: 'node_ipvs_* from /proc/net/ip_vs_stats and ip_vs (IPVS, kube-proxy ipvs mode); no series without ip_vs.',
  dmi: 'node_dmi_info from /sys/class/dmi/id (BIOS, board, chassis, product).',
  edac: 'node_edac_* memory error counts from /sys/devices/system/edac/mc; no series without EDAC.',
  fibrechannel: 'node_fibrechannel_* from /sys/class/fc_host (FC HBAs).',
  infiniband: 'node_infiniband_* from /sys/class/infiniband (HCA ports: state, rate, counters).',
  nvme: 'node_nvme_info, node_nvme_namespace_* from /sys/class/nvme.',
  powersupplyclass: 'node_power_supply_* from /sys/class/power_supply (AC, batteries, USB).',
  rapl: 'node_rapl_<zone>_joules_total from /sys/class/powercap (RAPL energy counters).',
  tapestats: 'node_tape_* from /sys/class/scsi_tape/st*/stats.',
  timex:
    'node_timex_* (kernel NTP state: offset, frequency, error bounds, sync status) from adjtimex(2), read by the timex.helper program.',
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

const labelName = () => z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
const metricName = () => z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/);

/** Label matchers: a regular expression (written "~regex") is checked at load, like `pattern`. */
const labelMatchers = () =>
  labelMap().superRefine((matchers, ctx) => {
    for (const [name, want] of Object.entries(matchers)) {
      if (!want.startsWith('~')) continue;
      try {
        new RegExp(want.slice(1));
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `expected "~" and a regular expression, got ${shown(want)}: ${(err as Error).message}`,
        });
      }
    }
  });

const MATCHERS_HELP =
  'Label matchers: each value is an exact match, or a regular expression (anchored) when written as "~regex"; an absent label is "".';

/** The aggregations of `{ <op>: expr, by: [labels] }`, as PromQL's `<op> by (labels) (expr)`. */
const ALERT_AGGREGATIONS = ['sum', 'avg', 'min', 'max', 'count'] as const;
type AlertAggregation = (typeof ALERT_AGGREGATIONS)[number];

/** One metric's series as they are: `{ metric, matchers }`. */
interface AlertSelector {
  readonly metric: string;
  readonly matchers: Readonly<Record<string, string>>;
}
/** A counter's samples inside the trailing window (ms). */
interface AlertWindow extends AlertSelector {
  readonly window: number;
}
/**
 * What a rule compares with its threshold, per series; small and explicit rather than PromQL:
 * a selector, `{ rate: … }` and `{ increase: … }` of a counter over a window, `{ ratio: { numerator,
 * denominator } }` of two expressions (series matched on equal labels), `{ sum|avg|min|max|count:
 * expr, by: [labels] }`.
 */
type AlertExpr =
  | AlertSelector
  | { readonly rate: AlertWindow }
  | { readonly increase: AlertWindow }
  | { readonly ratio: { readonly numerator: AlertExpr; readonly denominator: AlertExpr } }
  | {
      [Op in AlertAggregation]: { readonly [K in Op]: AlertExpr } & { readonly by: readonly string[] };
    }[AlertAggregation];

const selectorShape = {
  metric: metricName(),
  matchers: labelMatchers().default({}),
};
const windowed = () =>
  z.strictObject({
    ...selectorShape,
    window: duration().refine((ms) => ms > 0, 'expected a window longer than 0'),
  });

let exprForms: Record<string, z.ZodType> | undefined;
/** Built on first use: the forms refer to alertExpr, which refers to them. */
const forms = (): Record<string, z.ZodType> => {
  exprForms ??= {
    metric: z.strictObject(selectorShape),
    rate: z.strictObject({ rate: windowed() }),
    increase: z.strictObject({ increase: windowed() }),
    ratio: z.strictObject({ ratio: z.strictObject({ numerator: alertExpr, denominator: alertExpr }) }),
    ...Object.fromEntries(
      ALERT_AGGREGATIONS.map((op) => [
        op,
        z.strictObject({ [op]: alertExpr, by: z.array(labelName()).default([]) }),
      ]),
    ),
  };
  return exprForms;
};

/**
 * An AlertExpr, told apart by its one operator key (metric, rate, increase, ratio, sum, …) and
 * then checked against that form alone, so an error names the key path inside the expression
 * instead of "no union member matched".
 */
const alertExpr: z.ZodType<AlertExpr> = z.unknown().transform((value, ctx): AlertExpr => {
  const known = Object.keys(forms());
  const ops =
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.keys(value).filter((k) => known.includes(k))
      : [];
  if (ops.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      message: `expected an expression with one of ${known.join(', ')}${ops.length > 1 ? `, not ${ops.join(' and ')} together` : `, got ${JSON.stringify(value) ?? String(value)}`}`,
    });
    return z.NEVER;
  }
  const result = forms()[ops[0]!]!.safeParse(value);
  if (result.success) return result.data as AlertExpr;
  for (const issue of result.error.issues) ctx.addIssue({ ...issue });
  return z.NEVER;
});

const OPS = ['>', '>=', '<', '<='] as const;

const alertRule = z
  .strictObject({
    name: labelName().describe(
      'Rule name: the alertname sent to Alertmanager and the rule label of nodeward_alert_firing.',
    ),
    metric: metricName()
      .optional()
      .describe(
        'Metric family the rule watches as it is, e.g. node_load1 (or expr for a rate, ratio or aggregation).',
      ),
    matchers: labelMatchers().default({}).describe(`With metric: ${MATCHERS_HELP}`),
    expr: alertExpr
      .optional()
      .describe(
        'Instead of metric: { metric, matchers }, { rate|increase: { metric, matchers, window } }, { ratio: { numerator: expr, denominator: expr } } or { sum|avg|min|max|count: expr, by: [labels] }.',
      ),
    op: z.enum(OPS).default('>').describe('How a value is compared with threshold.'),
    threshold: z.number().describe('The value is bad when `value op threshold` holds.'),
    clear: z
      .number()
      .optional()
      .describe(
        'Hysteresis: a firing alert resolves only once the value is back past this level (default: threshold).',
      ),
    for: duration().default(0).describe('How long the condition must hold before the alert fires.'),
    labels: labelMap().default({}).describe('Extra labels on the alert (e.g. severity).'),
    annotations: z
      .record(z.string(), z.string())
      .default({})
      .describe(
        'Annotations sent to Alertmanager; {{ $labels.<name> }}, {{ $value }} and {{ $value | humanizePercentage }} are filled in.',
      ),
  })
  .superRefine((rule, ctx) => {
    if ((rule.metric === undefined) === (rule.expr === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [rule.metric === undefined ? 'expr' : 'metric'],
        message: 'set either metric (one metric as it is) or expr (a rate, ratio or aggregation), not both',
      });
    }
    if (rule.expr !== undefined && Object.keys(rule.matchers).length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['matchers'],
        message: 'matchers go with metric; with expr, put them in its { metric, matchers }',
      });
    }
    const below = rule.op === '<' || rule.op === '<=';
    if (rule.clear !== undefined && (below ? rule.clear < rule.threshold : rule.clear > rule.threshold)) {
      ctx.addIssue({
        code: 'custom',
        path: ['clear'],
        message: `with op "${rule.op}" the clear level is on the good side of threshold (${below ? '>=' : '<='} ${rule.threshold}), got ${rule.clear}`,
      });
    }
  });

/**
 * The built-in rules, by name; agent/metrics/alerts/defaults.ts defines exactly these (the type
 * checker holds the two lists together).
 */
const DEFAULT_ALERT_RULES = {
  FilesystemAlmostFull: "less than 10 % of a filesystem's space left, for 5m",
  FilesystemInodesAlmostFull: "less than 10 % of a filesystem's inodes left, for 5m",
  MemoryPressure: 'less than 10 % of memory available (MemAvailable / MemTotal), for 5m',
  ConntrackAlmostFull: 'the conntrack table over 90 % of its limit, for 2m',
  ContainerOOMKilled: "a container's OOM kills rose in the last 5m",
  NodeOOMKill: 'the kernel OOM-killed a process, in a container or not, in the last 5m',
  ClockNotSynchronised: 'the kernel clock not synchronised (node_timex_sync_status), for 10m',
  CniSegmentLinkDown: "a CNI segment's bridge or uplink down, for 1m",
  CniSegmentNoCarrier: "a CNI segment's uplink without carrier, for 1m",
  LogShipperLosingLines: 'the log shipper lost lines in the last 5m',
} as const;
type DefaultAlertRuleName = keyof typeof DEFAULT_ALERT_RULES;
const DEFAULT_RULE_NAMES = Object.keys(DEFAULT_ALERT_RULES) as [
  DefaultAlertRuleName,
  ...DefaultAlertRuleName[],
];

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
        "Where container identity comes from: docker (list/inspect + events on dockerSocket), cgroups (the kubelet layout kubepods…/pod<uid>/<id>, pod names from the pods source), auto (docker when Docker is the node's runtime — it runs the pods' containers, or there is no kubelet — else cgroups; a Docker socket alone does not count).",
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
    criSockets: z
      .array(z.string().min(1))
      .default(['/run/containerd/containerd.sock', '/run/crio/crio.sock'])
      .describe(
        "CRI sockets (containerd, CRI-O) asked for each container's writable layer (container_fs_usage_bytes, container_fs_limit_bytes) with the cgroups source; the first that exists is used; [] to never ask.",
      ),
    criStatsInterval: duration()
      .default(60_000)
      .describe(
        "How often the runtime is asked for the writable layers (at a scrape, never when idle); the runtime gathers every container's stats for the answer. containerd measures the layers every 10 s.",
      ),
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

const alertmanagerTarget = z
  .strictObject({
    url: url().describe(
      'Alertmanager base URL, e.g. http://alertmanager-0.alertmanager:9093 (alerts go to <url>/api/v2/alerts).',
    ),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe('Extra HTTP headers of each request, e.g. Authorization.'),
    tls: z
      .strictObject({
        caFile: z
          .string()
          .default('')
          .describe("CA bundle (PEM) that signed Alertmanager's certificate; empty: the system CAs."),
        certFile: z
          .string()
          .default('')
          .describe('Client certificate (PEM) for mutual TLS; empty: none. Needs keyFile.'),
        keyFile: z.string().default('').describe('Private key (PEM) of certFile.'),
        serverName: z
          .string()
          .default('')
          .describe("Name expected in Alertmanager's certificate (SNI); empty: the host of url."),
        insecureSkipVerify: z
          .boolean()
          .default(false)
          .describe('Accept any certificate (tests only: headers go to whoever answers).'),
      })
      .prefault({})
      .describe('TLS towards this Alertmanager (https:// url); files are read at each send.'),
  })
  .superRefine((am, ctx) => {
    if ((am.tls.certFile === '') !== (am.tls.keyFile === '')) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls', am.tls.certFile === '' ? 'certFile' : 'keyFile'],
        message: 'a client certificate needs both tls.certFile and tls.keyFile',
      });
    }
    const tls = am.tls.caFile !== '' || am.tls.certFile !== '' || am.tls.insecureSkipVerify;
    if (tls && am.url.startsWith('http://')) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: `tls is set: use https://, got ${shown(am.url)}`,
      });
    }
  });

const alertsSchema = z
  .strictObject({
    defaultRules: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            `Evaluate the built-in rules (agent/metrics/alerts/README.md): ${Object.entries(
              DEFAULT_ALERT_RULES,
            )
              .map(([name, what]) => `${name} (${what})`)
              .join('; ')}.`,
          ),
        disabled: z
          .array(z.enum(DEFAULT_RULE_NAMES))
          .default([])
          .describe(
            'Built-in rules left out, by name. A rule in rules with the name of a built-in one replaces it.',
          ),
      })
      .prefault({})
      .describe('The built-in rule set.'),
    rules: z
      .array(alertRule)
      .default([])
      .describe(
        'Node-local alert rules: [{name, metric, matchers | expr, op, threshold, clear, for, labels, annotations}], evaluated per series; names are unique.',
      ),
    interval: duration().default(15_000).describe('How often the rules are evaluated.'),
    alertmanagers: z
      .array(alertmanagerTarget)
      .default([])
      .describe(
        'Alertmanagers, each told every alert (an Alertmanager HA cluster needs every member listed): [{url, headers, tls}]; none: state only in nodeward_alert_firing.',
      ),
    resendInterval: duration()
      .default(60_000)
      .describe(
        'How often firing and recently resolved alerts are sent again (Alertmanager resolves alerts it stops hearing of).',
      ),
    resolvedRetention: duration()
      .default(15 * 60_000)
      .describe(
        'How long a resolved alert keeps being sent (each resendInterval), so an Alertmanager that missed the resolution learns it.',
      ),
    timeout: duration().default(10_000).describe('Deadline of one request to an Alertmanager.'),
    retry: pushRetry().describe('Retrying a failed send to an Alertmanager.'),
  })
  .superRefine((alerts, ctx) => {
    const first = new Map<string, number>();
    for (const [i, rule] of alerts.rules.entries()) {
      const earlier = first.get(rule.name);
      if (earlier === undefined) first.set(rule.name, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'name'],
          message: `rule name ${shown(rule.name)} is taken by rules[${earlier}]: names must be unique (they are the alertname)`,
        });
    }
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
        .default(
          '^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+|var/lib/kubelet/pods/.+)($|/)',
        )
        .describe(
          "Mount points to leave out: node_exporter's default, and the pods' volumes under /var/lib/kubelet/pods (as kube-prometheus: several per pod).",
        ),
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
  netstat: z
    .strictObject({
      fields: pattern()
        .default(
          '^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$',
        )
        .describe("<Protocol>_<Field> names to expose (node_exporter's default); read once at start."),
    })
    .prefault({})
    .describe('The netstat collector.'),
  netclass: z
    .strictObject({
      deviceExclude: pattern()
        .default('')
        .describe("Network devices to leave out of netclass; empty (node_exporter's default) keeps all."),
    })
    .prefault({})
    .describe('The netclass collector.'),
  textfile: z
    .strictObject({
      directory: z
        .string()
        .default('')
        .describe(
          "Directory of *.prom files (text format, no timestamps) whose series are exposed as they are, e.g. /var/lib/node_exporter/textfile_collector; empty: none (node_exporter's default).",
        ),
    })
    .prefault({})
    .describe('The textfile collector.'),
  timex: z
    .strictObject({
      helper: z
        .string()
        .refine((path) => path.startsWith('/'), {
          error: (issue) => `expected an absolute path, got ${shown(issue.input)}`,
        })
        .default('/opt/nodeward/bin/nodeward-timex')
        .describe(
          'The program that makes the adjtimex(2) call (Node cannot) and prints its fields; run at each scrape. The image has it here; elsewhere build it with `node agent/metrics/timex/build.ts <path>` (needs gcc, libc6-dev).',
        ),
    })
    .prefault({})
    .describe('The timex collector.'),
  containers: containersSchema.describe('Container collectors (container_* with cAdvisor/kubelet names).'),
  remoteWrite: remoteWriteSchema.describe('Push to Prometheus remote_write.'),
  jsonPush: jsonPushSchema.describe('Push to a WMonitor-style collector as JSON.'),
  alerts: alertsSchema.describe('Node-local alert rules, sent to an Alertmanager-compatible endpoint.'),
});

export type MetricsConfig = z.output<typeof metricsSchema>;
export type ContainersConfig = MetricsConfig['containers'];
export type PushRetryConfig = MetricsConfig['remoteWrite']['retry'];
export type AlertRuleConfig = MetricsConfig['alerts']['rules'][number];
