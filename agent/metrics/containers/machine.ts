import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { numberFrom } from '../procfs.ts';

/**
 * cAdvisor's machine_cpu_cores and machine_memory_bytes (the kubelet's /metrics/cadvisor serves
 * them beside the container series; the mixin divides by them), with cAdvisor's labels
 * machine_id, system_uuid and boot_id — empty where the host does not have one, as in cAdvisor.
 */
export interface MachineInfo {
  /** Logical CPUs online. */
  readonly cores: number;
  /** MemTotal, in bytes. */
  readonly memoryBytes: number;
  readonly labels: Readonly<{ machine_id: string; system_uuid: string; boot_id: string }>;
}

export interface MachineRoots {
  readonly procRoot: string;
  readonly sysRoot: string;
  /** The host's / (machine-id lives in its /etc). */
  readonly hostRoot: string;
}

const firstLine = (...paths: string[]): string => {
  for (const path of paths) {
    try {
      const text = readFileSync(path, 'latin1').trim();
      if (text !== '') return text;
    } catch {
      // Absent or unreadable (product_uuid is root-only): the next, else "".
    }
  }
  return '';
};

/** `0-3,8,10-11` (sysfs cpu lists) → how many CPUs. */
export function countCpuList(list: string): number {
  let n = 0;
  for (const part of list.trim().split(',')) {
    if (part === '') continue;
    const [from = '', to] = part.split('-');
    n += to === undefined ? 1 : numberFrom(to, 'cpu list') - numberFrom(from, 'cpu list') + 1;
  }
  return n;
}

/**
 * Reads what the machine_* series say. Cores: sysfs' online list (cAdvisor counts the online CPUs
 * of the sysfs topology), else the cpuN lines of /proc/stat, which list the online CPUs too.
 */
export function readMachineInfo(roots: MachineRoots): MachineInfo {
  let cores: number;
  try {
    cores = countCpuList(readFileSync(join(roots.sysRoot, 'devices/system/cpu/online'), 'latin1'));
  } catch {
    const stat = readFileSync(join(roots.procRoot, 'stat'), 'latin1');
    cores = stat.split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
  }
  const meminfo = readFileSync(join(roots.procRoot, 'meminfo'), 'latin1');
  const total = /^MemTotal:\s+(\d+) kB$/m.exec(meminfo);
  if (!total) throw new Error(`${join(roots.procRoot, 'meminfo')}: no MemTotal line`);
  return {
    cores,
    memoryBytes: numberFrom(total[1], 'MemTotal') * 1024,
    labels: {
      // cAdvisor's order of search: /etc/machine-id, then D-Bus's copy.
      machine_id: firstLine(
        join(roots.hostRoot, 'etc/machine-id'),
        join(roots.hostRoot, 'var/lib/dbus/machine-id'),
      ),
      system_uuid: firstLine(join(roots.sysRoot, 'class/dmi/id/product_uuid')),
      boot_id: firstLine(join(roots.procRoot, 'sys/kernel/random/boot_id')),
    },
  };
}
