import { join } from 'node:path';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { readAttribute } from './sysfs.ts';

const CONFIG_MODE = family('node_selinux_config_mode', 'gauge', 'Configured SELinux enforcement mode');
const CURRENT_MODE = family('node_selinux_current_mode', 'gauge', 'Current SELinux enforcement mode');
const ENABLED = family('node_selinux_enabled', 'gauge', 'SELinux is enabled, 1 is true, 0 is false');

/** SELINUX= of /etc/selinux/config: enforcing 1, permissive 0, anything else (disabled) -1. */
export function configuredMode(text: string | undefined): number {
  const value = /^\s*SELINUX\s*=\s*(\S+)/m.exec(text ?? '')?.[1]?.replace(/["']/g, '');
  return value === 'enforcing' ? 1 : value === 'permissive' ? 0 : -1;
}

/** Enabled when selinuxfs is mounted (its `enforce` file exists), as libselinux decides. */
export function createSelinuxCollector(settings: MetricsConfig): Collector {
  return {
    families: [CONFIG_MODE, CURRENT_MODE, ENABLED],
    async collect(emit) {
      const enforce = readAttribute(join(settings.sysRoot, 'fs/selinux/enforce'));
      if (enforce === undefined) {
        emit(ENABLED, 0);
        return;
      }
      emit(ENABLED, 1);
      emit(CONFIG_MODE, configuredMode(readAttribute(join(settings.hostRoot, 'etc/selinux/config'))));
      emit(CURRENT_MODE, enforce === '1' ? 1 : 0);
    },
  };
}
