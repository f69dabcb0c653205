import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import {
  emitProcedures,
  fixed,
  parseRpcStats,
  procedureCounts,
  V2_PROCEDURES,
  V3_PROCEDURES,
} from './nfs.ts';
import { readOrNoData } from './sysfs.ts';

const f = (name: string, type: 'counter' | 'gauge', help: string) => family(`node_nfsd_${name}`, type, help);

const REPLY_CACHE_HITS = f(
  'reply_cache_hits_total',
  'counter',
  'Total number of NFSd Reply Cache hits (client lost server response).',
);
const REPLY_CACHE_MISSES = f(
  'reply_cache_misses_total',
  'counter',
  'Total number of NFSd Reply Cache an operation that requires caching (idempotent).',
);
const REPLY_CACHE_NOCACHE = f(
  'reply_cache_nocache_total',
  'counter',
  'Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).',
);
const STALE_FILE_HANDLES = f(
  'file_handles_stale_total',
  'counter',
  'Total number of NFSd stale file handles',
);
const DISK_READ = f('disk_bytes_read_total', 'counter', 'Total NFSd bytes read.');
const DISK_WRITTEN = f('disk_bytes_written_total', 'counter', 'Total NFSd bytes written.');
const THREADS = f('server_threads', 'gauge', 'Total number of NFSd kernel threads that are running.');
const READ_AHEAD_SIZE = f(
  'read_ahead_cache_size_blocks',
  'gauge',
  'How large the read ahead cache is in blocks.',
);
const READ_AHEAD_NOT_FOUND = f(
  'read_ahead_cache_not_found_total',
  'counter',
  'Total number of NFSd read ahead cache not found.',
);
const PACKETS = f('packets_total', 'counter', 'Total NFSd network packets (sent+received) by protocol type.');
const CONNECTIONS = f('connections_total', 'counter', 'Total number of NFSd TCP connections.');
const RPC_ERRORS = f('rpc_errors_total', 'counter', 'Total number of NFSd RPC errors by error type.');
const SERVER_RPCS = f('server_rpcs_total', 'counter', 'Total number of NFSd RPCs.');
const REQUESTS = f('requests_total', 'counter', 'Total number NFSd Requests by method and protocol.');

/**
 * proc4ops columns (NFSv4 operation numbers 0–39) as procfs names them. node_exporter reports
 * all but the unused 0–2 and PutPubFH/PutRootFH; later operations (4.1, 4.2) it does not read.
 */
const V4_OPS = [
  'Op0Unused',
  'Op1Unused',
  'Op2Future',
  'Access',
  'Close',
  'Commit',
  'Create',
  'DelegPurge',
  'DelegReturn',
  'GetAttr',
  'GetFH',
  'Link',
  'Lock',
  'Lockt',
  'Locku',
  'Lookup',
  'LookupRoot',
  'Nverify',
  'Open',
  'OpenAttr',
  'OpenConfirm',
  'OpenDgrd',
  'PutFH',
  'PutPubFH',
  'PutRootFH',
  'Read',
  'ReadDir',
  'ReadLink',
  'Remove',
  'Rename',
  'Renew',
  'RestoreFH',
  'SaveFH',
  'SecInfo',
  'SetAttr',
  'SetClientID',
  'SetClientIDConfirm',
  'Verify',
  'Write',
  'RelLockOwner',
] as const;
const V4_OPS_LEFT_OUT = new Set(['Op0Unused', 'Op1Unused', 'Op2Future', 'PutPubFH', 'PutRootFH']);
const WITHOUT_NULL = new Set(['Null']);

const SERVER_LINES = [
  'rc',
  'fh',
  'io',
  'th',
  'ra',
  'net',
  'rpc',
  'proc2',
  'proc3',
  'proc4',
  'proc4ops',
  'wdeleg_getattr',
];

/** /proc/net/rpc/nfsd: the NFS server's reply cache, I/O, threads, RPC counts and operations. */
export function createNfsdCollector(settings: MetricsConfig): Collector {
  const families: Family[] = [
    REPLY_CACHE_HITS,
    REPLY_CACHE_MISSES,
    REPLY_CACHE_NOCACHE,
    STALE_FILE_HANDLES,
    DISK_READ,
    DISK_WRITTEN,
    THREADS,
    READ_AHEAD_SIZE,
    READ_AHEAD_NOT_FOUND,
    PACKETS,
    CONNECTIONS,
    RPC_ERRORS,
    SERVER_RPCS,
    REQUESTS,
  ];
  return {
    families,
    async collect(emit) {
      // Absent until nfsd is loaded: node_exporter's ErrNoData.
      const where = '/proc/net/rpc/nfsd';
      const stats = parseRpcStats(
        readOrNoData(settings.procRoot, 'net/rpc/nfsd', 'no /proc/net/rpc/nfsd'),
        where,
        SERVER_LINES,
      );
      const [hits, misses, nocache] = fixed(stats.get('rc'), 3, `${where} rc`);
      emit(REPLY_CACHE_HITS, hits!);
      emit(REPLY_CACHE_MISSES, misses!);
      emit(REPLY_CACHE_NOCACHE, nocache!);
      // The kernel counts only the first of fh's five values.
      emit(STALE_FILE_HANDLES, fixed(stats.get('fh'), 5, `${where} fh`)[0]!);
      const [read, written] = fixed(stats.get('io'), 2, `${where} io`);
      emit(DISK_READ, read!);
      emit(DISK_WRITTEN, written!);
      emit(THREADS, fixed(stats.get('th'), 2, `${where} th`)[0]!);
      // The read-ahead cache is gone from the kernel, which still writes `ra` as zeros.
      const ra = fixed(stats.get('ra'), 12, `${where} ra`);
      emit(READ_AHEAD_SIZE, ra[0]!);
      emit(READ_AHEAD_NOT_FOUND, ra[11]!);
      const [, udp, tcp, connections] = fixed(stats.get('net'), 4, `${where} net`);
      emit(PACKETS, udp!, { proto: 'udp' });
      emit(PACKETS, tcp!, { proto: 'tcp' });
      emit(CONNECTIONS, connections!);
      const [calls, , badFmt, badAuth, badClient] = fixed(stats.get('rpc'), 5, `${where} rpc`);
      emit(RPC_ERRORS, badFmt!, { error: 'fmt' });
      emit(RPC_ERRORS, badAuth!, { error: 'auth' });
      emit(RPC_ERRORS, badClient!, { error: 'cInt' });
      emit(SERVER_RPCS, calls!);
      // Version 2 and 3 without their Null procedure, as node_exporter.
      const v2 = procedureCounts(stats.get('proc2'), 18, `${where} proc2`);
      emitProcedures(emit, REQUESTS, '2', V2_PROCEDURES, v2, WITHOUT_NULL);
      const v3 = procedureCounts(stats.get('proc3'), 22, `${where} proc3`);
      emitProcedures(emit, REQUESTS, '3', V3_PROCEDURES, v3, WITHOUT_NULL);
      // proc4 (NULL and COMPOUND) is checked as procfs does, not reported.
      if (stats.has('proc4') && procedureCounts(stats.get('proc4'), 2, `${where} proc4`).length !== 2)
        throw new Error(`${where} proc4: expected 2 values`);
      const ops = procedureCounts(stats.get('proc4ops'), 39, `${where} proc4ops`);
      emitProcedures(emit, REQUESTS, '4', V4_OPS, ops, V4_OPS_LEFT_OUT);
      emit(REQUESTS, stats.get('wdeleg_getattr')?.[0] ?? 0, { proto: '4', method: 'WdelegGetattr' });
    },
  };
}
