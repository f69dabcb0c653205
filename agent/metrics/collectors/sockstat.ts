import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { fieldsOf, isAbsent, numberFrom, readKernelFileHeld } from '../procfs.ts';
import { pageSize } from './sysfs.ts';

const USED = family('node_sockstat_sockets_used', 'gauge', 'Number of IPv4 sockets in use.');

/** The properties node_exporter exposes, in its order; `mem` also as `mem_bytes` (pages × size). */
const PROPERTIES = ['inuse', 'orphan', 'tw', 'alloc', 'mem', 'memory'];

/**
 * /proc/net/sockstat(6): `TCP: inuse 5 orphan 0 tw 2 alloc 7 mem 1` per protocol, and
 * `sockets: used 40` (IPv4 only). Keys are `PROTO_property`, and `sockets_used`.
 */
export function parseSockstat(text: string, where: string, pageBytes: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = fieldsOf(line);
    const protocol = fields[0]!.replace(/:$/, '');
    if (fields.length < 3 || fields.length % 2 === 0)
      throw new Error(`${where}: malformed line ${JSON.stringify(line)}`);
    const kv = new Map<string, number>();
    for (let i = 1; i < fields.length; i += 2)
      kv.set(fields[i]!, numberFrom(fields[i + 1], `${where} ${protocol} ${fields[i]}`));
    if (protocol === 'sockets') {
      if (kv.has('used')) out.set('sockets_used', kv.get('used')!);
      continue;
    }
    for (const p of PROPERTIES) {
      const v = kv.get(p) ?? (p === 'inuse' ? 0 : undefined);
      if (v !== undefined) out.set(`${protocol}_${p}`, v);
    }
    if (kv.has('mem')) out.set(`${protocol}_mem_bytes`, kv.get('mem')! * pageBytes);
  }
  return out;
}

function readSockstat(procRoot: string, pageBytes: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const file of ['sockstat', 'sockstat6']) {
    try {
      for (const [k, v] of parseSockstat(
        readKernelFileHeld(procRoot, `net/${file}`),
        `/proc/net/${file}`,
        pageBytes,
      ))
        out.set(k, v);
    } catch (err) {
      // IPv4 or IPv6 disabled in this kernel.
      if (!isAbsent(err)) throw err;
    }
  }
  return out;
}

/** Families fixed at creation from the kernel's protocols, as for vmstat. */
export function createSockstatCollector(settings: MetricsConfig): Collector {
  const pageBytes = pageSize(settings.procRoot);
  const families = new Map<string, Family>();
  try {
    for (const key of readSockstat(settings.procRoot, pageBytes).keys()) {
      if (key === 'sockets_used') {
        families.set(key, USED);
        continue;
      }
      const cut = key.indexOf('_');
      const protocol = key.slice(0, cut);
      const state = key.slice(cut + 1);
      families.set(
        key,
        family(`node_sockstat_${key}`, 'gauge', `Number of ${protocol} sockets in state ${state}.`),
      );
    }
  } catch {
    // No families to register; collect() reports the problem at every scrape.
  }
  return {
    families: [...families.values()],
    async collect(emit) {
      const values = readSockstat(settings.procRoot, pageBytes);
      if (families.size === 0 && values.size > 0) {
        throw new Error('/proc/net/sockstat was unreadable when the agent started: no fields registered');
      }
      for (const [key, f] of families) {
        const v = values.get(key);
        if (v !== undefined) emit(f, v);
      }
    },
  };
}
