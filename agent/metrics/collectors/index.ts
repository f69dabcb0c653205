import type { HostCollectorName } from '../../../shared/config/index.ts';
import type { CollectorFactory } from '../collector.ts';
import { createArpCollector } from './arp.ts';
import { createBcacheCollector } from './bcache.ts';
import { createBondingCollector } from './bonding.ts';
import { createBtrfsCollector } from './btrfs.ts';
import { createConntrackCollector } from './conntrack.ts';
import { createCpuCollector } from './cpu.ts';
import { createCpufreqCollector } from './cpufreq.ts';
import { createDiskstatsCollector } from './diskstats.ts';
import { createDmiCollector } from './dmi.ts';
import { createEdacCollector } from './edac.ts';
import { createEntropyCollector } from './entropy.ts';
import { createFibrechannelCollector } from './fibrechannel.ts';
import { createFilefdCollector } from './filefd.ts';
import { createFilesystemCollector } from './filesystem.ts';
import { createHwmonCollector } from './hwmon.ts';
import { createInfinibandCollector } from './infiniband.ts';
import { createIpvsCollector } from './ipvs.ts';
import { createLoadavgCollector } from './loadavg.ts';
import { createMdadmCollector } from './mdadm.ts';
import { createMeminfoCollector } from './meminfo.ts';
import { createNetclassCollector } from './netclass.ts';
import { createNetdevCollector } from './netdev.ts';
import { createNetstatCollector } from './netstat.ts';
import { createNfsCollector } from './nfs.ts';
import { createNfsdCollector } from './nfsd.ts';
import { createNvmeCollector } from './nvme.ts';
import { createOsCollector } from './os.ts';
import { createPowersupplyclassCollector } from './powersupplyclass.ts';
import { createPressureCollector } from './pressure.ts';
import { createRaplCollector } from './rapl.ts';
import { createSchedstatCollector } from './schedstat.ts';
import { createSelinuxCollector } from './selinux.ts';
import { createSockstatCollector } from './sockstat.ts';
import { createSoftnetCollector } from './softnet.ts';
import { createStatCollector } from './stat.ts';
import { createTapestatsCollector } from './tapestats.ts';
import { createTextfileCollector } from './textfile.ts';
import { createThermalZoneCollector } from './thermal-zone.ts';
import { createTimeCollector } from './time.ts';
import { createTimexCollector } from './timex.ts';
import { createUdpQueuesCollector } from './udp-queues.ts';
import { createUnameCollector } from './uname.ts';
import { createVmstatCollector } from './vmstat.ts';
import { createXfsCollector } from './xfs.ts';
import { createZfsCollector } from './zfs.ts';

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
  bcache: createBcacheCollector,
  btrfs: createBtrfsCollector,
  xfs: createXfsCollector,
  zfs: createZfsCollector,
  nfs: createNfsCollector,
  nfsd: createNfsdCollector,
  ipvs: createIpvsCollector,
  dmi: createDmiCollector,
  edac: createEdacCollector,
  fibrechannel: createFibrechannelCollector,
  infiniband: createInfinibandCollector,
  nvme: createNvmeCollector,
  powersupplyclass: createPowersupplyclassCollector,
  rapl: createRaplCollector,
  tapestats: createTapestatsCollector,
  timex: createTimexCollector,
};
