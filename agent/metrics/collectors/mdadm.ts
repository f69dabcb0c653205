import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { fieldsOf } from '../procfs.ts';
import { readOrNoData } from './sysfs.ts';

const STATE = family('node_md_state', 'gauge', 'Indicates the state of md-device.');
const DISKS = family('node_md_disks', 'gauge', 'Number of active/failed/spare disks of device.');
const DISKS_REQUIRED = family('node_md_disks_required', 'gauge', 'Total number of disks of device.');
const BLOCKS = family('node_md_blocks', 'gauge', 'Total number of blocks on device.');
const BLOCKS_SYNCED = family('node_md_blocks_synced', 'gauge', 'Number of blocks synced on device.');

export interface MdDevice {
  name: string;
  /** active, inactive, recovering, resyncing or checking. */
  state: string;
  active: number;
  total: number;
  failed: number;
  spare: number;
  blocks: number;
  synced: number;
}

const count = (text: string, what: string) => text.split(what).length - 1;

/**
 * /proc/mdstat: per array a device line (`md0 : active raid1 sdb1[1] sda1[0](F)`), a status line
 * (`1047552 blocks … [2/1] [U_]`), perhaps a bitmap line, then a resync/recovery/check line.
 */
export function parseMdstat(text: string): MdDevice[] {
  const lines = text.split('\n');
  const out: MdDevice[] = [];
  lines.forEach((line, i) => {
    if (
      line.trim() === '' ||
      line[0] === ' ' ||
      line.startsWith('Personalities') ||
      line.startsWith('unused')
    )
      return;
    const fields = fieldsOf(line);
    if (fields.length < 3) throw new Error(`/proc/mdstat: not enough fields in ${JSON.stringify(line)}`);
    const name = fields[0]!;
    if (lines.length <= i + 3) throw new Error(`/proc/mdstat: too few lines for ${name}`);
    const status = lines[i + 1]!;
    const blocks = Number(fieldsOf(status)[0]);
    if (!Number.isFinite(blocks))
      throw new Error(`/proc/mdstat: ${name}: unexpected status line ${JSON.stringify(status)}`);
    let active: number;
    let total: number;
    if (line.includes('raid0') || line.includes('linear')) {
      total = count(line, '[');
      active = total;
    } else if (line.includes('inactive')) {
      total = 0;
      active = 0;
    } else {
      const m = /(\d+) blocks .*\[(\d+)\/(\d+)\] \[([U_]+)\]/.exec(status);
      if (!m) throw new Error(`/proc/mdstat: ${name}: no [n/m] [UU] in ${JSON.stringify(status)}`);
      total = Number(m[2]);
      active = Number(m[3]);
    }
    let state = fields[2]!;
    let synced = blocks;
    const sync = lines[lines[i + 2]!.includes('bitmap') ? i + 3 : i + 2] ?? '';
    const recovering = sync.includes('recovery');
    const checking = sync.includes('check');
    if (recovering || checking || sync.includes('resync')) {
      state = recovering ? 'recovering' : checking ? 'checking' : 'resyncing';
      if (sync.includes('PENDING') || sync.includes('DELAYED')) synced = 0;
      else {
        const done = /\((\d+)\/\d+\)/.exec(sync);
        if (!done) throw new Error(`/proc/mdstat: ${name}: unexpected sync line ${JSON.stringify(sync)}`);
        synced = Number(done[1]);
      }
    }
    out.push({
      name,
      state,
      active,
      total,
      failed: count(line, '(F)'),
      spare: count(line, '(S)'),
      blocks,
      synced,
    });
  });
  return out;
}

/** node_md_state's label for each state the parser reports (resync and check are spelled short). */
const STATES: [state: string, label: string][] = [
  ['active', 'active'],
  ['inactive', 'inactive'],
  ['recovering', 'recovering'],
  ['resyncing', 'resync'],
  ['checking', 'check'],
];

export function createMdadmCollector(settings: MetricsConfig): Collector {
  return {
    families: [STATE, DISKS, DISKS_REQUIRED, BLOCKS, BLOCKS_SYNCED],
    async collect(emit) {
      // Absent until the md driver is loaded.
      for (const md of parseMdstat(readOrNoData(settings.procRoot, 'mdstat', 'no /proc/mdstat'))) {
        const device = md.name;
        emit(DISKS_REQUIRED, md.total, { device });
        emit(DISKS, md.active, { device, state: 'active' });
        emit(DISKS, md.failed, { device, state: 'failed' });
        emit(DISKS, md.spare, { device, state: 'spare' });
        for (const [state, label] of STATES)
          emit(STATE, md.state === state ? 1 : 0, { device, state: label });
        emit(BLOCKS, md.blocks, { device });
        emit(BLOCKS_SYNCED, md.synced, { device });
      }
    },
  };
}
