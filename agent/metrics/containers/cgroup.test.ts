import { describe, expect, it } from 'vitest';
import { fixture } from '../../../test/support/metrics/testing.ts';
import {
  BLKIO_FILES,
  cgroupPathOf,
  detectCgroupLayout,
  parseBlkio,
  parseCpuMax,
  parseIoStat,
  parseLimit,
  readBlkio,
  readCgroupStats,
  readCgroupV1,
  weightToShares,
} from './cgroup.ts';
import { scanKubeletCgroups } from './kubelet-cgroups.ts';

const POD_UID = '0b7c5a2e-9f3d-4c1e-8a6b-2d4f6e8a0c1b';
const ID = '3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a';
const V1_PATH = `/kubepods/burstable/pod${POD_UID}/${ID}`;
const V2_PATH = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID.replaceAll('-', '_')}.slice/cri-containerd-${ID}.scope`;

/** The same container as both fixtures describe it (the v2 one in v2's units, converted). */
const EXPECTED = {
  memoryUsage: 52428800,
  memoryWorkingSet: 52428800 - 10485760,
  memoryRss: 31457280,
  memoryCache: 20971520,
  memoryMappedFile: 4096000,
  memorySwap: 8192,
  memoryMaxUsage: 60000000,
  memoryFailcnt: 7,
  memoryLimit: 134217728,
  oomEvents: 2,
  cfsPeriods: 1200,
  cfsThrottledPeriods: 300,
  cfsThrottledSeconds: 4.5,
  cpuQuota: 50000,
  cpuPeriod: 100000,
  io: [
    { device: '8:0', readBytes: 4915200, writeBytes: 13926400, reads: 120, writes: 340 },
    { device: '259:0', readBytes: 28672, writeBytes: 0, reads: 7, writes: 0 },
  ],
};

describe('cgroup layout', () => {
  it('tells v2 (cgroup.controllers at the root) from v1 controller dirs', () => {
    expect(detectCgroupLayout(fixture('cgroup-v2'))).toEqual({ version: 2, root: fixture('cgroup-v2') });
    expect(detectCgroupLayout(fixture('cgroup-v1'))).toMatchObject({
      version: 1,
      memory: fixture('cgroup-v1/memory'),
      cpuacct: fixture('cgroup-v1/cpuacct'),
    });
  });

  it('places a process from /proc/<pid>/cgroup: the memory line for v1, 0:: for v2 (hybrid host)', () => {
    const text = `12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n`;
    expect(cgroupPathOf(text, 1)).toBe('/docker/abc');
    expect(cgroupPathOf('0::/kubepods.slice/x.scope\n', 2)).toBe('/kubepods.slice/x.scope');
    // A private cgroup namespace shows paths outside it as climbing up: unusable.
    expect(cgroupPathOf('0::/../../kubepods/x\n', 2)).toBeUndefined();
    expect(cgroupPathOf('0::/x\n', 1)).toBeUndefined();
  });
});

describe('cgroup files', () => {
  it('reads v1: cpuacct, cpu (CFS), memory with total_* and working set = usage − inactive_file', () => {
    const stats = readCgroupStats(detectCgroupLayout(fixture('cgroup-v1')), V1_PATH);
    expect(stats).toEqual({
      ...EXPECTED,
      cpuUsageSeconds: 12.345678901,
      cpuUserSeconds: 9,
      cpuSystemSeconds: 3,
      cpuShares: 512,
    });
  });

  it('reads v2: cpu.stat in µs, cpu.max, cpu.weight as shares, anon/file as rss/cache', () => {
    const stats = readCgroupStats(detectCgroupLayout(fixture('cgroup-v2')), V2_PATH);
    expect(stats).toEqual({
      ...EXPECTED,
      cpuUsageSeconds: 12.345678,
      cpuUserSeconds: 9,
      cpuSystemSeconds: 3.345678,
      cpuShares: weightToShares(20),
    });
  });

  it('v1 unlimited and no CFS quota: limit 0, quota 0 (cAdvisor leaves the quota series out)', () => {
    const stats = readCgroupStats(
      detectCgroupLayout(fixture('cgroup-v1')),
      '/docker/e160c4d5be902260120e065c12d1b05aa97efcc560b70168278ef664428e47c9',
    );
    expect(stats).toMatchObject({ memoryLimit: 0, cpuQuota: 0, cpuPeriod: 100000, memoryWorkingSet: 0 });
  });

  it('v2 without the cpu and memory controllers: only cpu.stat usage', () => {
    const stats = readCgroupStats(detectCgroupLayout(fixture('cgroup-v2-bare')), '/docker/abc');
    expect(stats).toEqual({
      cpuUsageSeconds: 0.0001,
      cpuUserSeconds: 0.00006,
      cpuSystemSeconds: 0.00004,
      cfsPeriods: undefined,
      cfsThrottledPeriods: undefined,
      cfsThrottledSeconds: undefined,
    });
  });

  it('v1 blkio with no I/O ("Total 0" everywhere): no devices, so no container_fs_* series', () => {
    const stats = readCgroupStats(
      detectCgroupLayout(fixture('cgroup-v1')),
      '/docker/e160c4d5be902260120e065c12d1b05aa97efcc560b70168278ef664428e47c9',
    );
    expect(stats).toBeDefined();
    expect(stats!.io).toBeUndefined();
  });

  it('a gone cgroup reads as undefined, not an error', () => {
    expect(readCgroupStats(detectCgroupLayout(fixture('cgroup-v1')), '/docker/gone')).toBeUndefined();
    expect(readCgroupStats(detectCgroupLayout(fixture('cgroup-v2')), '/gone')).toBeUndefined();
  });

  it('a garbled file fails loudly, naming it', () => {
    const layout = detectCgroupLayout(fixture('cgroup-v1'));
    if (layout.version !== 1) throw new Error('v1 expected');
    const read = (_dir: string, file: string) => (file === 'memory.stat' ? 'total_rss x\n' : '1\n');
    expect(() => readCgroupV1(layout, '/x', read)).toThrow(/memory.stat total_rss/);
  });

  it('parses limits and cpu.max, and converts weight to shares as runc does', () => {
    expect(parseLimit('max\n', 'memory.max')).toBe(0);
    expect(parseLimit('9223372036854771712\n', 'memory.limit_in_bytes')).toBe(0);
    expect(parseLimit('268435456\n', 'memory.max')).toBe(268435456);
    expect(parseCpuMax('max 100000\n')).toEqual({ quota: 0, period: 100000 });
    expect(parseCpuMax('25000 50000\n')).toEqual({ quota: 25000, period: 50000 });
    expect(weightToShares(1)).toBe(2);
    expect(weightToShares(100)).toBe(2597);
    expect(weightToShares(10000)).toBe(262144);
  });
});

describe('block I/O files', () => {
  const THROTTLE = `8:0 Read 4096
8:0 Write 8192
8:0 Sync 12288
8:0 Async 0
8:0 Discard 0
8:0 Total 12288
253:1 Read 0
253:1 Write 512
253:1 Sync 0
253:1 Async 512
253:1 Discard 0
253:1 Total 512
Total 12800
`;

  it('parses v1 blkio Read and Write per device, skipping Sync/Async/Discard/Total', () => {
    expect(parseBlkio(THROTTLE, 'x')).toEqual(
      new Map([
        ['8:0', { read: 4096, write: 8192 }],
        ['253:1', { read: 0, write: 512 }],
      ]),
    );
  });

  it('an empty blkio file or a lone "Total 0" has no devices', () => {
    expect(parseBlkio('', 'x').size).toBe(0);
    expect(parseBlkio('Total 0\n', 'x').size).toBe(0);
  });

  it('a garbled blkio line fails, naming the file', () => {
    expect(() => parseBlkio('8:0 Read\n', 'blkio.throttle.io_serviced')).toThrow(
      /blkio.throttle.io_serviced/,
    );
    expect(() => parseBlkio('8:0 Read x\n', 'blkio.throttle.io_serviced')).toThrow(/8:0 Read/);
  });

  it('parses v2 io.stat: rbytes/wbytes/rios/wios, other keys ignored, empty file = no devices', () => {
    expect(parseIoStat('8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n', 'io.stat')).toEqual([
      { device: '8:16', readBytes: 1, writeBytes: 2, reads: 3, writes: 4 },
    ]);
    // Older kernels print fewer keys; missing ones count as 0.
    expect(parseIoStat('8:0 rbytes=10 wbytes=20 rios=1 wios=2\n', 'io.stat')[0]).toMatchObject({
      readBytes: 10,
      writes: 2,
    });
    expect(parseIoStat('', 'io.stat')).toEqual([]);
    expect(() => parseIoStat('8:0 rbytes\n', 'io.stat')).toThrow(/io.stat/);
  });

  it("v1 takes the first of runc's file pairs that has entries (BFQ, CFQ, throttle recursive, throttle)", () => {
    const files: Record<string, string> = {
      'blkio.bfq.io_serviced_recursive': 'Total 0\n',
      'blkio.throttle.io_serviced_recursive': THROTTLE,
      'blkio.throttle.io_service_bytes_recursive': THROTTLE.replaceAll(/ (\d+)$/gm, ' $10'),
    };
    const read = (_dir: string, file: string) => files[file];
    expect(readBlkio('/x', read)).toEqual([
      { device: '8:0', readBytes: 40960, writeBytes: 81920, reads: 4096, writes: 8192 },
      { device: '253:1', readBytes: 0, writeBytes: 5120, reads: 0, writes: 512 },
    ]);
    // BFQ with entries wins (runc's order), even though the throttle files have more.
    files['blkio.bfq.io_serviced_recursive'] = '8:0 Read 1\n8:0 Write 2\nTotal 3\n';
    files['blkio.bfq.io_service_bytes_recursive'] = '8:0 Read 512\n8:0 Write 1024\nTotal 1536\n';
    expect(readBlkio('/x', read)).toEqual([
      { device: '8:0', readBytes: 512, writeBytes: 1024, reads: 1, writes: 2 },
    ]);
    // An empty recursive file: its non-recursive twin (the same blkio groups) is not read.
    const asked: string[] = [];
    const throttleOnly: Record<string, string> = {
      'blkio.throttle.io_serviced_recursive': 'Total 0\n',
      'blkio.throttle.io_serviced': THROTTLE,
    };
    const readLogged = (_dir: string, file: string) => {
      asked.push(file);
      return throttleOnly[file];
    };
    expect(readBlkio('/x', readLogged, BLKIO_FILES.slice(2))).toBeUndefined();
    expect(asked).toEqual(['blkio.throttle.io_serviced_recursive']);
    // Nothing anywhere (no I/O yet, or no accounting): undefined.
    expect(readBlkio('/x', () => 'Total 0\n')).toBeUndefined();
    expect(readBlkio('/x', () => undefined, BLKIO_FILES)).toBeUndefined();
  });
});

describe('kubelet cgroup layout', () => {
  it('finds containers under pods for the systemd driver (v2), skipping conmon and non-pod cgroups', () => {
    expect(scanKubeletCgroups(fixture('cgroup-v2'))).toEqual([
      { cgroupPath: V2_PATH, podUid: POD_UID, containerId: ID },
    ]);
  });

  it('finds containers under pods for the cgroupfs driver (v1)', () => {
    expect(scanKubeletCgroups(fixture('cgroup-v1/memory'))).toEqual([
      { cgroupPath: V1_PATH, podUid: POD_UID, containerId: ID },
    ]);
  });

  it('finds nothing where there is no kubepods tree', () => {
    expect(scanKubeletCgroups(fixture('cgroup-v2-bare'))).toEqual([]);
    expect(scanKubeletCgroups(fixture('does-not-exist'))).toEqual([]);
  });
});
