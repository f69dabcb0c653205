import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family, NoDataError } from '../collector.ts';
import { readAttribute } from './sysfs.ts';

const SLAVES = family('node_bonding_slaves', 'gauge', 'Number of configured slaves per bonding interface.');
const ACTIVE = family('node_bonding_active', 'gauge', 'Number of active slaves per bonding interface.');

/** Per bond master: its slaves, and how many have MII status up. */
export function readBonding(netRoot: string): Map<string, { slaves: number; active: number }> | undefined {
  const masters = readAttribute(`${netRoot}/bonding_masters`);
  if (masters === undefined) return undefined;
  const out = new Map<string, { slaves: number; active: number }>();
  for (const master of masters.split(/\s+/).filter(Boolean)) {
    const slaves = readAttribute(`${netRoot}/${master}/bonding/slaves`);
    if (slaves === undefined) throw new Error(`${netRoot}/${master}/bonding/slaves: unreadable`);
    const status = { slaves: 0, active: 0 };
    for (const slave of slaves.split(/\s+/).filter(Boolean)) {
      // lower_<slave> since Linux 4.13, slave_<slave> before.
      const mii =
        readAttribute(`${netRoot}/${master}/lower_${slave}/bonding_slave/mii_status`) ??
        readAttribute(`${netRoot}/${master}/slave_${slave}/bonding_slave/mii_status`);
      if (mii === undefined) throw new Error(`${netRoot}/${master}: no mii_status for ${slave}`);
      status.slaves++;
      if (mii === 'up') status.active++;
    }
    out.set(master, status);
  }
  return out;
}

export function createBondingCollector(settings: MetricsConfig): Collector {
  return {
    families: [SLAVES, ACTIVE],
    async collect(emit) {
      const bonds = readBonding(`${settings.sysRoot}/class/net`);
      // No bonding driver loaded: nothing to report (node_exporter's ErrNoData).
      if (!bonds) throw new NoDataError('no bonding_masters');
      for (const [master, { slaves, active }] of bonds) {
        const labels = { master };
        emit(SLAVES, slaves, labels);
        emit(ACTIVE, active, labels);
      }
    },
  };
}
