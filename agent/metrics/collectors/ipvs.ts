import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { fieldsOf, readKernelFileSync } from '../procfs.ts';
import { readOrNoData } from './sysfs.ts';

const CONNECTIONS = family('node_ipvs_connections_total', 'counter', 'The total number of connections made.');
const INCOMING_PACKETS = family(
  'node_ipvs_incoming_packets_total',
  'counter',
  'The total number of incoming packets.',
);
const OUTGOING_PACKETS = family(
  'node_ipvs_outgoing_packets_total',
  'counter',
  'The total number of outgoing packets.',
);
const INCOMING_BYTES = family(
  'node_ipvs_incoming_bytes_total',
  'counter',
  'The total amount of incoming data.',
);
const OUTGOING_BYTES = family(
  'node_ipvs_outgoing_bytes_total',
  'counter',
  'The total amount of outgoing data.',
);
const ACTIVE = family(
  'node_ipvs_backend_connections_active',
  'gauge',
  'The current active connections by local and remote address.',
);
const INACTIVE = family(
  'node_ipvs_backend_connections_inactive',
  'gauge',
  'The current inactive connections by local and remote address.',
);
const WEIGHT = family(
  'node_ipvs_backend_weight',
  'gauge',
  'The current backend weight by local and remote address.',
);

/** A hexadecimal kernel counter, exactly (a byte count passes 2^53 before it passes 2^64). */
const hex = (text: string | undefined, where: string) => {
  if (text === undefined || !/^[0-9A-Fa-f]+$/.test(text))
    throw new Error(`${where}: expected a hexadecimal number, got ${JSON.stringify(text)}`);
  return Number(BigInt(`0x${text}`));
};

/**
 * /proc/net/ip_vs_stats: two header lines, then the totals since boot in hexadecimal — connections,
 * incoming packets, outgoing packets, incoming bytes, outgoing bytes — then the rates.
 */
export function parseIpvsStats(text: string): number[] {
  const lines = text.split('\n');
  if (lines.length < 4) throw new Error('/proc/net/ip_vs_stats: too short');
  const fields = fieldsOf(lines[2]!);
  if (fields.length !== 5) throw new Error(`/proc/net/ip_vs_stats: ${fields.length} totals, expected 5`);
  return fields.map((f) => hex(f, '/proc/net/ip_vs_stats'));
}

/** An IPv6 address the way Go prints it (node_exporter's labels): RFC 5952, IPv4-mapped dotted. */
export function formatIPv6(address: string): string {
  const [head = '', tail] = address.split('::');
  const part = (s: string) => (s === '' ? [] : s.split(':'));
  const given = [...part(head), ...(tail === undefined ? [] : part(tail))];
  const groups =
    tail === undefined ? given : [...part(head), ...new Array(8 - given.length).fill('0'), ...part(tail)];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g)))
    throw new Error(`invalid IPv6 address ${JSON.stringify(address)}`);
  const words = groups.map((g) => Number.parseInt(g, 16));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff)
    return [words[6]! >> 8, words[6]! & 255, words[7]! >> 8, words[7]! & 255].join('.');
  // The first longest run of two or more zero groups becomes "::".
  let start = -1;
  let end = -1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i >= 2 && j - i > end - start) [start, end] = [i, j];
    i = Math.max(i, j);
  }
  const hexes = words.map((w) => w.toString(16));
  if (start < 0) return hexes.join(':');
  return `${hexes.slice(0, start).join(':')}::${hexes.slice(end).join(':')}`;
}

/** `C0A80016:0CEA` (IPv4) or `[2001:0db8:…:0001]:0050` (IPv6) → address and port. */
export function parseAddressPort(text: string): { address: string; port: number } {
  let address: string;
  if (text.length === 13) {
    const ip = hex(text.slice(0, 8), text);
    address = [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
  } else if (text.length === 46) {
    address = formatIPv6(text.slice(1, 40));
  } else throw new Error(`/proc/net/ip_vs: unexpected address:port ${JSON.stringify(text)}`);
  return { address, port: hex(text.slice(-4), text) };
}

export interface IpvsBackend {
  labels: {
    local_address: string;
    local_port: string;
    remote_address: string;
    remote_port: string;
    proto: string;
    local_mark: string;
  };
  active: number;
  inactive: number;
  weight: number;
}

/**
 * /proc/net/ip_vs: a service line (`TCP  C0A80016:0CEA wlc`, or `FWM  0000000A wlc` for a firewall
 * mark) followed by its real servers (`-> C0A85216:0CEA Masq 100 248 2`: weight, active,
 * inactive). Real servers with the same labels are summed, as node_exporter sums them.
 */
export function parseIpvsBackends(text: string): IpvsBackend[] {
  const out = new Map<string, IpvsBackend>();
  let service: { proto: string; local_address: string; local_port: string; local_mark: string } | undefined;
  for (const line of text.split('\n')) {
    const fields = fieldsOf(line);
    if (fields[0] === '' || fields[0] === 'IP' || fields[0] === 'Prot' || fields[1] === 'RemoteAddress:Port')
      continue;
    const [kind, where] = fields as [string, string | undefined];
    if (where === undefined) continue;
    // SCTP too: node_exporter would put its real servers under the service before it.
    if (kind === 'TCP' || kind === 'UDP' || kind === 'SCTP') {
      const { address, port } = parseAddressPort(where);
      service = { proto: kind, local_address: address, local_port: String(port), local_mark: '' };
    } else if (kind === 'FWM') {
      service = { proto: kind, local_address: '', local_port: '0', local_mark: where };
    } else if (kind === '->' && fields.length >= 6) {
      const remote = parseAddressPort(where);
      const number = (i: number) => {
        if (!/^\d+$/.test(fields[i]!))
          throw new Error(`/proc/net/ip_vs: bad count in ${JSON.stringify(line)}`);
        return Number(fields[i]);
      };
      const labels = {
        local_address: service?.local_address ?? '',
        local_port: service?.local_port ?? '0',
        remote_address: remote.address,
        remote_port: String(remote.port),
        proto: service?.proto ?? '',
        local_mark: service?.local_mark ?? '',
      };
      const key = Object.values(labels).join('-');
      const backend = out.get(key) ?? { labels, active: 0, inactive: 0, weight: 0 };
      backend.weight += number(3);
      backend.active += number(4);
      backend.inactive += number(5);
      out.set(key, backend);
    }
  }
  return [...out.values()];
}

/**
 * IPVS (kube-proxy's ipvs mode): traffic totals, and per real server its connections and weight.
 * Both files are per network namespace: the agent's, so the host's with hostNetwork. All six
 * backend labels, node_exporter's default (--collector.ipvs.backend-labels).
 */
export function createIpvsCollector(settings: MetricsConfig): Collector {
  return {
    families: [
      CONNECTIONS,
      INCOMING_PACKETS,
      OUTGOING_PACKETS,
      INCOMING_BYTES,
      OUTGOING_BYTES,
      ACTIVE,
      INACTIVE,
      WEIGHT,
    ],
    async collect(emit) {
      // Absent until the ip_vs module is loaded: node_exporter's ErrNoData.
      const totals = parseIpvsStats(
        readOrNoData(settings.procRoot, 'net/ip_vs_stats', 'no /proc/net/ip_vs_stats'),
      );
      [CONNECTIONS, INCOMING_PACKETS, OUTGOING_PACKETS, INCOMING_BYTES, OUTGOING_BYTES].forEach((f, i) => {
        emit(f, totals[i]!);
      });
      for (const { labels, active, inactive, weight } of parseIpvsBackends(
        readKernelFileSync(settings.procRoot, 'net/ip_vs'),
      )) {
        emit(ACTIVE, active, labels);
        emit(INACTIVE, inactive, labels);
        emit(WEIGHT, weight, labels);
      }
    },
  };
}
