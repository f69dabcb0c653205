import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Emit, type Family, family } from '../collector.ts';
import { fieldsOf, numberFrom } from '../procfs.ts';
import { readOrNoData } from './sysfs.ts';

const PACKETS = family(
  'node_nfs_packets_total',
  'counter',
  'Total NFSd network packets (sent+received) by protocol type.',
);
const CONNECTIONS = family('node_nfs_connections_total', 'counter', 'Total number of NFSd TCP connections.');
const RPCS = family('node_nfs_rpcs_total', 'counter', 'Total number of RPCs performed.');
const RETRANSMISSIONS = family(
  'node_nfs_rpc_retransmissions_total',
  'counter',
  'Number of RPC transmissions performed.',
);
const AUTH_REFRESHES = family(
  'node_nfs_rpc_authentication_refreshes_total',
  'counter',
  'Number of RPC authentication refreshes performed.',
);
const REQUESTS = family('node_nfs_requests_total', 'counter', 'Number of NFS procedures invoked.');

/**
 * Procedure names of the proc2 and proc3 lines, in column order, as procfs names them (the
 * method label); nfs and nfsd share them.
 */
export const V2_PROCEDURES = [
  'Null',
  'GetAttr',
  'SetAttr',
  'Root',
  'Lookup',
  'ReadLink',
  'Read',
  'WrCache',
  'Write',
  'Create',
  'Remove',
  'Rename',
  'Link',
  'SymLink',
  'MkDir',
  'RmDir',
  'ReadDir',
  'FsStat',
] as const;
export const V3_PROCEDURES = [
  'Null',
  'GetAttr',
  'SetAttr',
  'Lookup',
  'Access',
  'ReadLink',
  'Read',
  'Write',
  'Create',
  'MkDir',
  'SymLink',
  'MkNod',
  'Remove',
  'RmDir',
  'Rename',
  'Link',
  'ReadDir',
  'ReadDirPlus',
  'FsStat',
  'FsInfo',
  'PathConf',
  'Commit',
] as const;
/**
 * The client's proc4 columns procfs names, in its order (columns 45 and 46 as it maps them).
 * Newer kernels write more columns, which node_exporter does not read; older ones fewer, which
 * count 0.
 */
const CLIENT_V4_PROCEDURES = [
  'Null',
  'Read',
  'Write',
  'Commit',
  'Open',
  'OpenConfirm',
  'OpenNoattr',
  'OpenDowngrade',
  'Close',
  'Setattr',
  'FsInfo',
  'Renew',
  'SetClientID',
  'SetClientIDConfirm',
  'Lock',
  'Lockt',
  'Locku',
  'Access',
  'Getattr',
  'Lookup',
  'LookupRoot',
  'Remove',
  'Rename',
  'Link',
  'Symlink',
  'Create',
  'Pathconf',
  'StatFs',
  'ReadLink',
  'ReadDir',
  'ServerCaps',
  'DelegReturn',
  'GetACL',
  'SetACL',
  'FsLocations',
  'ReleaseLockowner',
  'Secinfo',
  'FsidPresent',
  'ExchangeID',
  'CreateSession',
  'DestroySession',
  'Sequence',
  'GetLeaseTime',
  'ReclaimComplete',
  'GetDeviceInfo',
  'LayoutGet',
  'LayoutCommit',
  'LayoutReturn',
  'SecinfoNoName',
  'TestStateID',
  'FreeStateID',
  'GetDeviceList',
  'BindConnToSession',
  'DestroyClientID',
  'Seek',
  'Allocate',
  'DeAllocate',
  'LayoutStats',
  'Clone',
] as const;

/**
 * /proc/net/rpc/nfs and nfsd: one line per statistic, `<name> <n1> <n2> …`, as name → values.
 * A line not in `known` fails the file, as procfs fails it (a kernel that adds one needs a look).
 * `th` keeps its first two values: the rest is a histogram of floats the kernel writes as 0.000.
 */
export function parseRpcStats(text: string, where: string, known: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [name, ...rest] = fieldsOf(line);
    if (rest.length === 0) throw new Error(`${where}: invalid line ${JSON.stringify(line)}`);
    if (!known.includes(name!)) throw new Error(`${where}: unknown line ${JSON.stringify(name)}`);
    const values = (name === 'th' ? rest.slice(0, 2) : rest).map((v) => {
      if (!/^\d+$/.test(v))
        throw new Error(`${where}: ${name}: expected an unsigned integer, got ${JSON.stringify(v)}`);
      return numberFrom(v, `${where} ${name}`);
    });
    out.set(name!, values);
  }
  return out;
}

/**
 * The counts of a procN line, whose first value says how many follow; at least `min` of them
 * (procfs's check). Absent, all 0 — node_exporter reports the version's procedures anyway.
 */
export function procedureCounts(values: number[] | undefined, min: number, where: string): number[] {
  if (values === undefined) return [];
  const [count, ...counts] = values;
  if (count !== counts.length || counts.length < min)
    throw new Error(`${where}: says ${count} values, has ${counts.length} (at least ${min} expected)`);
  return counts;
}

/** Expects a fixed number of values on a line, when the line is there. */
export function fixed(values: number[] | undefined, n: number, where: string): number[] {
  if (values === undefined) return new Array(n).fill(0);
  if (values.length !== n) throw new Error(`${where}: ${values.length} values, expected ${n}`);
  return values;
}

/** One requests_total sample per procedure named in `names` (less `skip`); a column not written counts 0. */
export function emitProcedures(
  emit: Emit,
  requests: Family,
  proto: string,
  names: readonly string[],
  counts: number[],
  skip: ReadonlySet<string> = new Set(),
): void {
  names.forEach((method, i) => {
    if (!skip.has(method)) emit(requests, counts[i] ?? 0, { proto, method });
  });
}

const CLIENT_LINES = ['net', 'rpc', 'proc2', 'proc3', 'proc4'];

/** /proc/net/rpc/nfs: the NFS client's RPC counts and procedures per protocol version. */
export function createNfsCollector(settings: MetricsConfig): Collector {
  return {
    families: [PACKETS, CONNECTIONS, RPCS, RETRANSMISSIONS, AUTH_REFRESHES, REQUESTS],
    async collect(emit) {
      // Absent until the nfs client module is loaded: node_exporter's ErrNoData.
      const where = '/proc/net/rpc/nfs';
      const stats = parseRpcStats(
        readOrNoData(settings.procRoot, 'net/rpc/nfs', 'no /proc/net/rpc/nfs'),
        where,
        CLIENT_LINES,
      );
      // net: packets, UDP packets, TCP packets, TCP connections.
      const [, udp, tcp, connections] = fixed(stats.get('net'), 4, `${where} net`);
      emit(PACKETS, udp!, { protocol: 'udp' });
      emit(PACKETS, tcp!, { protocol: 'tcp' });
      emit(CONNECTIONS, connections!);
      const [calls, retransmissions, refreshes] = fixed(stats.get('rpc'), 3, `${where} rpc`);
      emit(RPCS, calls!);
      emit(RETRANSMISSIONS, retransmissions!);
      emit(AUTH_REFRESHES, refreshes!);
      const v2 = procedureCounts(stats.get('proc2'), 18, `${where} proc2`);
      emitProcedures(emit, REQUESTS, '2', V2_PROCEDURES, v2);
      const v3 = procedureCounts(stats.get('proc3'), 22, `${where} proc3`);
      emitProcedures(emit, REQUESTS, '3', V3_PROCEDURES, v3);
      const v4 = procedureCounts(stats.get('proc4'), 0, `${where} proc4`);
      emitProcedures(emit, REQUESTS, '4', CLIENT_V4_PROCEDURES, v4);
    },
  };
}
