import { z } from 'zod';
import { duration, shown } from './units.ts';

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
});

export type MetricsConfig = z.output<typeof metricsSchema>;
