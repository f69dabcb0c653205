import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import type { Family } from '../collector.ts';
import { createZfsCollector, parseKstat, parsePoolIo } from './zfs.ts';

const ZFS = fixture('host/proc/spl/kstat/zfs');

/** node_exporter's subsystem for each kstat file it reads (its linuxPathMap). */
const SUBSYSTEMS: Record<string, string> = {
  abdstats: 'zfs_abd',
  arcstats: 'zfs_arc',
  dbufstats: 'zfs_dbuf',
  dmu_tx: 'zfs_dmu_tx',
  dnodestats: 'zfs_dnode',
  fm: 'zfs_fm',
  vdev_cache_stats: 'zfs_vdev_cache',
  vdev_mirror_stats: 'zfs_vdev_mirror',
  xuio_stats: 'zfs_xuio',
  zfetchstats: 'zfs_zfetch',
  zil: 'zfs_zil',
};

/** Rows of a fixture kstat file after its `name type data` line, as [name, type]. */
const rows = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .slice(2)
    .filter(Boolean)
    .map((l) => l.split(/\s+/) as [string, string]);

/**
 * The families node_exporter makes of the fixture, written out from its rule rather than by hand:
 * node_<subsystem>_<field with - as _>, HELP the kstat path, untyped; types 3 and 4 only (objsets: 4).
 */
function expectedFamilies(): Map<string, string> {
  const out = new Map<string, string>();
  const name = (field: string) => field.replaceAll('-', '_');
  for (const [file, subsystem] of Object.entries(SUBSYSTEMS))
    for (const [field, type] of rows(`${ZFS}/${file}`))
      if (type === '3' || type === '4')
        out.set(`node_${subsystem}_${name(field)}`, `kstat.zfs.misc.${file}.${field}`);
  for (const pool of ['tank', 'data']) {
    const header = readFileSync(`${ZFS}/${pool}/io`, 'utf8').split('\n')[1]!.trim().split(/\s+/);
    for (const field of header) out.set(`node_zfs_zpool_${name(field)}`, `kstat.zfs.misc.io.${field}`);
    for (const objset of readdirSync(`${ZFS}/${pool}`).filter((f) => f.startsWith('objset-')))
      for (const [field, type] of rows(`${ZFS}/${pool}/${objset}`))
        if (type === '4') out.set(`node_zfs_zpool_dataset_${name(field)}`, `kstat.zfs.misc.objset.${field}`);
  }
  out.set('node_zfs_zpool_state', 'kstat.zfs.misc.state');
  return out;
}

async function familiesOf(collector: ReturnType<typeof createZfsCollector>) {
  const seen = new Map<string, Family>();
  await collector.collect((f) => {
    const before = seen.get(f.name);
    if (before && before !== f) throw new Error(`two Family objects for ${f.name}`);
    seen.set(f.name, f);
  });
  return seen;
}

describe('zfs kstat parsing', () => {
  it('reads named values after the header, integers of types 3 and 4, strings to the line end', () => {
    const text = '1 1 0x01 3 144 1 2\nname type data\na-b 4 7\nc 3 -2\nd 1 5\nname 7 x y\n';
    const { values, strings } = parseKstat(text, 'k');
    expect([...values]).toEqual([
      ['a-b', 7],
      ['c', -2],
    ]);
    expect(strings.get('name')).toBe('x y');
    expect([...parseKstat(text, 'k', ['4']).values.keys()]).toEqual(['a-b']);
    expect(() => parseKstat('name type data\nx 4 -1\n', 'k')).toThrow(/kstat type 4/);
    expect(() => parseKstat('1 1 0x01 0 0 1 2\n', 'k')).toThrow(/no "name type data" header/);
  });

  it('reads a pool io kstat by its header of field names', () => {
    const io = parsePoolIo(readFileSync(`${ZFS}/tank/io`, 'utf8'), 'io');
    expect(io.size).toBe(12);
    expect(io.get('nwritten')).toBe(2411720245248);
    expect(() =>
      parsePoolIo(
        'nread nwritten reads writes wtime wlentime wupdate rtime rlentime rupdate wcnt rcnt\n1 2\n',
        'io',
      ),
    ).toThrow(/nwritten|reads/);
  });
});

describe('zfs collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it("exposes the families node_exporter's naming rule makes of each kstat file, with their HELP", async () => {
    const expected = expectedFamilies();
    expect(expected.size).toBeGreaterThan(200);
    const families = await familiesOf(createZfsCollector(settings));
    expect([...families.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, f] of families) {
      expect(f.help, name).toBe(expected.get(name));
      expect(f.type, name).toBe(name === 'node_zfs_zpool_state' ? 'gauge' : 'untyped');
    }
  });

  it('keeps one Family object per name from scrape to scrape', async () => {
    const collector = createZfsCollector(settings);
    const first = await familiesOf(collector);
    const second = await familiesOf(collector);
    for (const [name, f] of first) expect(second.get(name), name).toBe(f);
  });

  it('reports the module-wide values, int64 ones too', async () => {
    const samples = await collectSamples(createZfsCollector(settings));
    expect(sampleValue(samples, 'node_zfs_arc_hits')).toBe(2384012871);
    expect(sampleValue(samples, 'node_zfs_arc_c_max')).toBe(33680261120);
    expect(sampleValue(samples, 'node_zfs_arc_memory_available_bytes')).toBe(-524288000);
    expect(sampleValue(samples, 'node_zfs_dmu_tx_dmu_tx_assigned')).toBe(40120331);
    expect(sampleValue(samples, 'node_zfs_fm_erpt_dropped')).toBe(4);
    expect(sampleValue(samples, 'node_zfs_zfetch_hits')).toBe(30221044);
    expect(sampleValue(samples, 'node_zfs_zil_zil_commit_count')).toBe(1203311);
  });

  it('reports pools: io, datasets (names with spaces, and a pool named "data") and state', async () => {
    const samples = await collectSamples(createZfsCollector(settings));
    expect(sampleValue(samples, 'node_zfs_zpool_nread', { zpool: 'tank' })).toBe(6018331648000);
    expect(sampleValue(samples, 'node_zfs_zpool_rcnt', { zpool: 'tank' })).toBe(1);
    const dataset = (zpool: string, dataset: string) =>
      sampleValue(samples, 'node_zfs_zpool_dataset_nwritten', { zpool, dataset });
    expect(dataset('tank', 'tank/home')).toBe(602211330048);
    expect(dataset('tank', 'tank/vm images')).toBe(2621440000000);
    expect(dataset('data', 'data')).toBe(140221133312);
    const state = (zpool: string, state: string) =>
      sampleValue(samples, 'node_zfs_zpool_state', { zpool, state });
    expect(state('tank', 'online')).toBe(1);
    expect(state('tank', 'degraded')).toBe(0);
    expect(state('data', 'degraded')).toBe(1);
    expect(samples.filter((s) => s.name === 'node_zfs_zpool_state')).toHaveLength(14);
  });

  it('reports no data without the zfs module', async () => {
    await expect(collectSamples(createZfsCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
