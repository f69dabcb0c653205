import type { HostCollectorName } from '../../../shared/config/index.ts';
import type { CollectorFactory } from '../collector.ts';
import { createConntrackCollector } from './conntrack.ts';
import { createCpuCollector } from './cpu.ts';
import { createDiskstatsCollector } from './diskstats.ts';
import { createFilefdCollector } from './filefd.ts';
import { createFilesystemCollector } from './filesystem.ts';
import { createLoadavgCollector } from './loadavg.ts';
import { createMeminfoCollector } from './meminfo.ts';
import { createNetdevCollector } from './netdev.ts';
import { createPressureCollector } from './pressure.ts';
import { createStatCollector } from './stat.ts';
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
};
