import { NodewardError } from '../../shared/errors.ts';
import type { Condition, Store } from '../store/store.ts';
import { canonicalIp, cidrContains, parseIp } from './addr.ts';
import { blockKeyName, blockOf } from './allocator.ts';
import type { Ipam, Released } from './ipam.ts';
import { handleKey, ipKey, stickyKey, stickyPrefix } from './keys.ts';
import { readPools } from './pools.ts';
import { ipRecordSchema, parseRecord, stickyRecordSchema } from './records.ts';

/** What operators ask of IPAM beyond allocate/release: releasing by address, by sticky pod, from a report. */

/**
 * Releases an address whoever holds it: through its handle when a container holds it (as a DEL
 * would), or by deleting the reservation when it is kept for a sticky pod (the pod then gets a new
 * address when it is next created).
 */
export async function releaseIp(
  store: Store,
  ipam: Ipam,
  ipText: string,
  poolName?: string,
): Promise<Released> {
  const ip = canonicalIp(ipText);
  if (!ip) throw new NodewardError('USAGE', `--ip ${JSON.stringify(ipText)} is not an IPv4 or IPv6 address`);
  const pools = [...(await readPools(store)).values()].filter(
    (p) =>
      (poolName === undefined || p.pool.name === poolName) &&
      cidrContains(p.pool.cidr, parseIp(ip)!.value) &&
      p.pool.family === parseIp(ip)!.family,
  );
  for (const { pool } of pools) {
    const key = ipKey(pool.name, blockKeyName(blockOf(pool, parseIp(ip)!.value)), ip);
    const entry = (await store.get([key])).get(key);
    if (!entry) continue;
    const r = parseRecord(ipRecordSchema, entry);
    if (r.containerID !== null) {
      const released = await ipam.release(r.containerID, r.ifName);
      // Through the handle a sticky address stays kept; an admin release by address frees it.
      if (!released.kept) return released;
      await releaseSticky(store, r.namespace, r.pod, r.ifName);
      return { released: true, pool: pool.name, ip, kept: false };
    }
    await releaseSticky(store, r.namespace, r.pod, r.ifName);
    return { released: true, pool: pool.name, ip, kept: false };
  }
  return { released: false };
}

/** Forgets a sticky pod's address: the sticky record, and the reservation if no container holds it. */
export async function releaseSticky(
  store: Store,
  namespace: string,
  pod: string,
  ifName = 'eth0',
): Promise<Released> {
  const sKey = stickyKey(namespace, pod, ifName);
  for (let attempt = 0; attempt < 10; attempt++) {
    const sticky = (await store.get([sKey])).get(sKey);
    if (!sticky) return { released: false };
    const s = parseRecord(stickyRecordSchema, sticky);
    const iKey = ipKey(s.pool, s.block, s.ip);
    const ipEntry = (await store.get([iKey])).get(iKey);
    const held = ipEntry ? parseRecord(ipRecordSchema, ipEntry) : undefined;
    const result = await store.commit({
      conditions: [
        { key: sKey, modRevision: sticky.modRevision },
        ipEntry ? { key: iKey, modRevision: ipEntry.modRevision } : { key: iKey, absent: true },
      ],
      writes: [
        { key: sKey, delete: true },
        // Kept for nobody now: free. Held by a container: it stays until that container's DEL,
        // which then frees it (the record no longer says sticky).
        ...(ipEntry && held?.containerID === null ? [{ key: iKey, delete: true as const }] : []),
        ...(ipEntry && held && held.containerID !== null
          ? [{ key: iKey, value: JSON.stringify({ ...held, sticky: false }) }]
          : []),
      ],
    });
    if (result.ok) return { released: true, pool: s.pool, ip: s.ip, kept: false };
  }
  throw new NodewardError(
    'IPAM_CONTENTION',
    `release of the sticky address of ${namespace}/${pod} kept conflicting; retry`,
  );
}

/** Every sticky record, for listings. */
export async function stickyRecords(store: Store): Promise<{ pod: string; pool: string; ip: string }[]> {
  const { entries } = await store.list(stickyPrefix);
  return entries.map((e) => {
    const s = parseRecord(stickyRecordSchema, e);
    return { pod: e.key.slice(stickyPrefix.length), pool: s.pool, ip: s.ip };
  });
}

/** Problems of `ipam check` that are leaked or orphaned records, which `release --from-report` deletes. */
const RELEASABLE = new Set<string>([
  'handle-without-ip',
  'ip-of-other-handle',
  'ip-without-handle',
  'ip-of-missing-pool',
  'sticky-without-ip',
]);

export interface ReportRelease {
  readonly key: string;
  readonly kind: string;
  /** released; changed (the record is not what the report saw: skipped); gone; skipped (not a leak). */
  readonly outcome: 'released' | 'changed' | 'gone' | 'skipped';
}

/**
 * Deletes the leaked and orphaned records an `ipam check -o json` report lists — each only if it
 * is still exactly as audited (its modRevision), so anything re-used or repaired since the report
 * is skipped and said so. Other problems (an address in the wrong block, …) need a person.
 */
export async function releaseFromReport(store: Store, report: unknown): Promise<ReportRelease[]> {
  const problems = (report as { problems?: unknown } | null)?.problems;
  if (!Array.isArray(problems)) {
    throw new NodewardError(
      'USAGE',
      'the report has no "problems" list: give the JSON of `nodeward ipam check -o json`',
    );
  }
  const out: ReportRelease[] = [];
  for (const p of problems as { key?: unknown; kind?: unknown; modRevision?: unknown }[]) {
    if (typeof p?.key !== 'string' || typeof p.kind !== 'string' || typeof p.modRevision !== 'number') {
      throw new NodewardError(
        'USAGE',
        `a report problem lacks key, kind or modRevision (${JSON.stringify(p)}); run \`nodeward ipam check -o json\` again`,
      );
    }
    const { key, kind, modRevision } = p;
    if (!RELEASABLE.has(kind)) {
      out.push({ key, kind, outcome: 'skipped' });
      continue;
    }
    const current = (await store.get([key])).get(key);
    if (!current) {
      out.push({ key, kind, outcome: 'gone' });
      continue;
    }
    const conditions: Condition[] = [{ key, modRevision }];
    // An orphaned ip key stays orphaned only while its handle is still missing.
    if (kind === 'ip-without-handle' && current.modRevision === modRevision) {
      const r = parseRecord(ipRecordSchema, current);
      if (r.containerID !== null) conditions.push({ key: handleKey(r.containerID, r.ifName), absent: true });
    }
    const result = await store.commit({ conditions, writes: [{ key, delete: true }] });
    out.push({ key, kind, outcome: result.ok ? 'released' : 'changed' });
  }
  return out;
}
