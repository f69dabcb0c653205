import { hostname, machine, release, type, version } from 'node:os';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { isAbsent, readKernelFile } from '../procfs.ts';

const INFO = family(
  'node_uname_info',
  'gauge',
  'Labeled system information as provided by the uname system call.',
);

export interface Uname {
  sysname: string;
  release: string;
  version: string;
  machine: string;
  nodename: string;
  domainname: string;
}

/**
 * uname(2) through node:os (one syscall, no process); the NIS domain name has no node:os call, so it
 * comes from procfs. Both answer for the agent's UTS namespace, which is the host's with hostNetwork.
 */
async function systemUname(procRoot: string): Promise<Uname> {
  let domainname = '(none)';
  try {
    domainname = (await readKernelFile(procRoot, 'sys/kernel/domainname')).trim();
  } catch (err) {
    if (!isAbsent(err)) throw err;
  }
  return {
    sysname: type(),
    release: release(),
    version: version(),
    machine: machine(),
    nodename: hostname(),
    domainname,
  };
}

export function createUnameCollector(settings: MetricsConfig, source = systemUname): Collector {
  return {
    families: [INFO],
    async collect(emit) {
      const u = await source(settings.procRoot);
      // In node_exporter's (sorted) order, so the two expositions diff cleanly.
      emit(INFO, 1, {
        domainname: u.domainname,
        machine: u.machine,
        nodename: u.nodename,
        release: u.release,
        sysname: u.sysname,
        version: u.version,
      });
    },
  };
}
