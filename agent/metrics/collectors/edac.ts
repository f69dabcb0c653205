import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';
import { parseUint } from './sysfs-parse.ts';

const CE = family('node_edac_correctable_errors_total', 'counter', 'Total correctable memory errors.');
const UE = family('node_edac_uncorrectable_errors_total', 'counter', 'Total uncorrectable memory errors.');
const CSROW_CE = family(
  'node_edac_csrow_correctable_errors_total',
  'counter',
  'Total correctable memory errors for this csrow.',
);
const CSROW_UE = family(
  'node_edac_csrow_uncorrectable_errors_total',
  'counter',
  'Total uncorrectable memory errors for this csrow.',
);
const CHANNEL_CE = family(
  'node_edac_channel_correctable_errors_total',
  'counter',
  'Total correctable memory errors for this channel.',
);
const CHANNEL_UE = family(
  'node_edac_channel_uncorrectable_errors_total',
  'counter',
  'Total uncorrectable memory errors for this channel.',
);

/** A count node_exporter requires: a missing or garbled one fails the scrape. */
function count(path: string, what: string): number {
  const text = readAttribute(path);
  const value = text === undefined ? undefined : parseUint(text, 10);
  if (value === undefined) throw new Error(`couldn't get ${what} from ${path}`);
  return Number(value);
}

/**
 * The DIMM's name as node_exporter labels it: the driver's label without `#`, with `_` before
 * csrow and channel (the kernel's default "mc#0csrow#1channel#0" → "mc0_csrow1_channel0").
 */
function dimmLabel(csrowDir: string, channel: string): string {
  const label = readAttribute(`${csrowDir}/ch${channel}_dimm_label`);
  if (label === undefined) return 'unknown';
  return label.replaceAll('#', '').replaceAll('csrow', '_csrow').replaceAll('channel', '_channel');
}

/**
 * /sys/devices/system/edac/mc/mcN: counts per memory controller, its csrowN and their channels.
 * Errors the controller could not place on a csrow are the csrow "unknown". A machine without
 * EDAC has no series and no error: node_exporter finds no mc* there and reports success.
 */
export function createEdacCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/devices/system/edac/mc`;
  return {
    families: [CE, UE, CSROW_CE, CSROW_UE, CHANNEL_CE, CHANNEL_UE],
    async collect(emit) {
      for (const mc of listDir(root) ?? []) {
        const controller = /^mc([0-9]+)/.exec(mc)?.[1];
        if (controller === undefined) continue;
        const dir = `${root}/${mc}`;
        emit(CE, count(`${dir}/ce_count`, 'ce_count'), { controller });
        emit(CSROW_CE, count(`${dir}/ce_noinfo_count`, 'ce_noinfo_count'), { controller, csrow: 'unknown' });
        emit(UE, count(`${dir}/ue_count`, 'ue_count'), { controller });
        emit(CSROW_UE, count(`${dir}/ue_noinfo_count`, 'ue_noinfo_count'), { controller, csrow: 'unknown' });
        // Drivers of the newer API (skx_edac, i10nm_edac) have dimmN instead of csrowN directories.
        for (const entry of listDir(dir) ?? []) {
          const csrow = /^csrow([0-9]+)/.exec(entry)?.[1];
          if (csrow === undefined) continue;
          const csrowDir = `${dir}/${entry}`;
          emit(CSROW_CE, count(`${csrowDir}/ce_count`, 'ce_count'), { controller, csrow });
          emit(CSROW_UE, count(`${csrowDir}/ue_count`, 'ue_count'), { controller, csrow });
          for (const file of listDir(csrowDir) ?? []) {
            if (!file.startsWith('ch')) continue;
            const channel = /ch([0-9]+)_ce_count$/.exec(file)?.[1];
            if (channel === undefined) continue;
            const labels = { channel, controller, csrow, dimm_label: dimmLabel(csrowDir, channel) };
            emit(CHANNEL_CE, count(`${csrowDir}/${file}`, 'ce_count'), labels);
            // Optional: node_exporter only logs its absence.
            const ue = readAttribute(`${csrowDir}/ch${channel}_ue_count`);
            const value = ue === undefined ? undefined : parseUint(ue, 10);
            if (value !== undefined) emit(CHANNEL_UE, Number(value), labels);
          }
        }
      }
    },
  };
}
