import type { HostCollectorName } from '../../../shared/config/index.ts';
import type { CollectorFactory } from '../collector.ts';
import { createArpCollector } from './arp.ts';
import { createBondingCollector } from './bonding.ts';
import { createConntrackCollector } from './conntrack.ts';
import { createCpuCollector } from './cpu.ts';
import { createCpufreqCollector } from './cpufreq.ts';
import { createDiskstatsCollector } from './diskstats.ts';
import { createEntropyCollector } from './entropy.ts';
import { createFilefdCollector } from './filefd.ts';
import { createFilesystemCollector } from './filesystem.ts';
import { createHwmonCollector } from './hwmon.ts';
import { createLoadavgCollector } from './loadavg.ts';
import { createMdadmCollector } from './mdadm.ts';
import { createMeminfoCollector } from './meminfo.ts';
import { createNetclassCollector } from './netclass.ts';
import { createNetdevCollector } from './netdev.ts';
import { createNetstatCollector } from './netstat.ts';
import { createOsCollector } from './os.ts';
import { createPressureCollector } from './pressure.ts';
import { createSchedstatCollector } from './schedstat.ts';
import { createSelinuxCollector } from './selinux.ts';
import { createSockstatCollector } from './sockstat.ts';
import { createSoftnetCollector } from './softnet.ts';
import { createStatCollector } from './stat.ts';
import { createTextfileCollector } from './textfile.ts';
import { createThermalZoneCollector } from './thermal-zone.ts';
import { createTimeCollector } from './time.ts';
import { createUdpQueuesCollector } from './udp-queues.ts';
import { createUnameCollector } from './uname.ts';
import { createVmstatCollector } from './vmstat.ts';

/** Every host collector by its config name (`metrics.collectors.<name>`). */
export const HOST_COLLECTOR_FACTORIES: Record<HostCollectorName, CollectorFactory> = {
  cpu: createCpuCollector,
  meminfo: createMeminfoCollector,
  loadavg: createLoadavgCollector,
  filesystem: (settings) => createFilesystemCollector(settings),
  diskstats: createDiskstatsCollector,
  netdev: createNetdevCollector,
  pressure: createPressureCollector,
  uname: (settings) => createUnameCollector(settings),
  stat: createStatCollector,
  vmstat: createVmstatCollector,
  filefd: createFilefdCollector,
  conntrack: createConntrackCollector,
  time: createTimeCollector,
  netstat: createNetstatCollector,
  netclass: createNetclassCollector,
  sockstat: createSockstatCollector,
  softnet: createSoftnetCollector,
  os: createOsCollector,
  entropy: createEntropyCollector,
  textfile: createTextfileCollector,
  arp: createArpCollector,
  udp_queues: createUdpQueuesCollector,
  selinux: createSelinuxCollector,
  bonding: createBondingCollector,
  hwmon: createHwmonCollector,
  thermal_zone: createThermalZoneCollector,
  cpufreq: createCpufreqCollector,
  mdadm: createMdadmCollector,
  schedstat: createSchedstatCollector,
};
