import { NodewardError } from '../../shared/errors.ts';
import type { Condition, Entry, Store, Write } from '../store/store.ts';
import { MAX_COMMIT_OPS } from '../store/store.ts';
import { formatCidr } from './addr.ts';
import {
  blocksPrefix,
  handleKey,
  ipsPrefix,
  lastSegment,
  poolIndexKey,
  poolKey,
  poolsPrefix,
  stickyPrefix,
} from './keys.ts';
import { compilePool, overlapProblem, type Pool } from './pool.ts';
import {
  handleRecordSchema,
  type IpRecord,
  ipRecordSchema,
  type PoolRecord,
  parseRecord,
  poolRecordSchema,
  stickyRecordSchema,
} from './records.ts';

/** Pool records in the store: add (with the overlap check inside the txn), read, remove. */

export interface StoredPool {
  readonly pool: Pool;
  readonly modRevision: number;
  readonly draining: boolean;
  readonly created: string;
}

export function storedPool(entry: Entry): StoredPool {
  const record = parseRecord(poolRecordSchema, entry);
  const pool = compilePool(record.spec, `store key ${entry.key}`);
  if (pool.name !== lastSegment(entry.key)) {
    throw new NodewardError(
      'STORE_CORRUPT',
      `the IPAM record ${entry.key} holds pool ${pool.name}; fix or delete it`,
      {
        details: { key: entry.key },
      },
    );
  }
  return {
    pool,
    modRevision: entry.modRevision,
    draining: record.draining === true,
    created: record.created,
  };
}

export async function readPools(store: Store): Promise<Map<string, StoredPool>> {
  const { entries } = await store.list(poolsPrefix);
  return new Map(entries.map((e) => [lastSegment(e.key), storedPool(e)]));
}

const indexValue = (now: Date) => JSON.stringify({ changed: now.toISOString() });

function contention(what: string): NodewardError {
  return new NodewardError('IPAM_CONTENTION', `${what} kept conflicting with concurrent pool changes; retry`);
}

/**
 * Adds a pool. The overlap check reads every pool, and the commit compares the pool index key that
 * every add and remove rewrites: a pool added by someone else in between fails the commit, and the
 * check runs again — two overlapping pools cannot both get in.
 */
export async function addPool(
  store: Store,
  input: unknown,
  options: { now?: () => Date; retries?: number } = {},
): Promise<Pool> {
  const pool = compilePool(input);
  const now = options.now ?? (() => new Date());
  for (let attempt = 0; attempt <= (options.retries ?? 10); attempt++) {
    const index = (await store.get([poolIndexKey])).get(poolIndexKey);
    const pools = await readPools(store);
    if (pools.has(pool.name)) {
      throw new NodewardError(
        'POOL_EXISTS',
        `pool ${pool.name} exists already; remove it first or pick another name`,
        {
          details: { pool: pool.name },
        },
      );
    }
    const overlap = overlapProblem(
      pool,
      [...pools.values()].map((p) => p.pool),
    );
    if (overlap) throw new NodewardError('POOL_OVERLAP', `pool ${overlap}`, { details: { pool: pool.name } });
    const record: PoolRecord = {
      spec: pool.spec as unknown as Record<string, unknown>,
      created: now().toISOString(),
    };
    const result = await store.commit({
      conditions: [
        index ? { key: poolIndexKey, modRevision: index.modRevision } : { key: poolIndexKey, absent: true },
        { key: poolKey(pool.name), absent: true },
      ],
      writes: [
        { key: poolKey(pool.name), value: JSON.stringify(record) },
        { key: poolIndexKey, value: indexValue(now()) },
      ],
    });
    if (result.ok) return pool;
  }
  throw contention(`adding pool ${pool.name}`);
}

function describeHolder(ip: string, r: IpRecord): string {
  return r.containerID === null
    ? `${ip} kept for sticky pod ${r.namespace}/${r.pod}`
    : `${ip} held by ${r.namespace}/${r.pod} (container ${r.containerID.slice(0, 12)}, node ${r.node})`;
}

/**
 * Removes a pool that has no address allocated. It is first marked draining — allocations compare
 * the pool key, so none can start after that — then checked for addresses, then deleted with its
 * (empty) blocks. If addresses remain, the mark is taken back and POOL_IN_USE lists some holders.
 */
export async function removePool(
  store: Store,
  name: string,
  options: { now?: () => Date; force?: boolean } = {},
): Promise<{ released: number; skipped: number }> {
  let released = 0;
  let skipped = 0;
  const now = options.now ?? (() => new Date());
  const entry = (await store.get([poolKey(name)])).get(poolKey(name));
  if (!entry) {
    throw new NodewardError(
      'POOL_NOT_FOUND',
      `pool ${name} does not exist; see \`nodeward ipam pool list\``,
      {
        details: { pool: name },
      },
    );
  }
  const record = parseRecord(poolRecordSchema, entry);
  const marked = await store.commit({
    conditions: [{ key: entry.key, modRevision: entry.modRevision }],
    writes: [{ key: entry.key, value: JSON.stringify({ ...record, draining: true }) }],
  });
  if (!marked.ok) throw contention(`removing pool ${name}`);
  let ips = await store.list(ipsPrefix(name));
  if (ips.entries.length > 0 && options.force === true) {
    // Draining: no allocation starts any more. Each address goes with its handle, by compare.
    for (const e of ips.entries) {
      if (await releasePoolIp(store, e)) released++;
      else skipped++;
    }
    ips = await store.list(ipsPrefix(name));
  }
  if (options.force === true) {
    for (const e of (await store.list(stickyPrefix)).entries) {
      if (parseRecord(stickyRecordSchema, e).pool !== name) continue;
      await store.commit({
        conditions: [{ key: e.key, modRevision: e.modRevision }],
        writes: [{ key: e.key, delete: true }],
      });
    }
  }
  if (ips.entries.length > 0) {
    await store.commit({
      conditions: [{ key: entry.key, modRevision: marked.revision }],
      writes: [{ key: entry.key, value: JSON.stringify({ ...record, draining: false }) }],
    });
    const sample = ips.entries
      .slice(0, 3)
      .map((e) => describeHolder(lastSegment(e.key), parseRecord(ipRecordSchema, e)));
    throw new NodewardError(
      'POOL_IN_USE',
      `pool ${name} has ${ips.entries.length} address(es) allocated (${sample.join('; ')}${ips.entries.length > 3 ? '; …' : ''}); release them first${options.force === true ? ' (they changed while --force released them: run it again)' : ', or remove with --force to release them'}`,
      { details: { pool: name, allocated: ips.entries.length } },
    );
  }
  const blocks = await store.list(blocksPrefix(name));
  for (let i = 0; i < blocks.entries.length; i += MAX_COMMIT_OPS) {
    const chunk = blocks.entries.slice(i, i + MAX_COMMIT_OPS);
    await store.commit({
      conditions: [{ key: entry.key, modRevision: marked.revision }],
      writes: chunk.map((b) => ({ key: b.key, delete: true as const })),
    });
  }
  const removed = await store.commit({
    conditions: [{ key: entry.key, modRevision: marked.revision }],
    writes: [
      { key: entry.key, delete: true },
      { key: poolIndexKey, value: indexValue(now()) },
    ],
  });
  if (!removed.ok) throw contention(`removing pool ${name}`);
  return { released, skipped };
}

/**
 * Frees one address of a pool being force-removed, as read: the ip key unchanged, and its handle
 * (when a container holds it) unchanged and pointing at it. False when either changed meanwhile.
 */
async function releasePoolIp(store: Store, e: Entry): Promise<boolean> {
  const r = parseRecord(ipRecordSchema, e);
  const conditions: Condition[] = [{ key: e.key, modRevision: e.modRevision }];
  const writes: Write[] = [{ key: e.key, delete: true }];
  if (r.containerID !== null) {
    const hKey = handleKey(r.containerID, r.ifName);
    const h = (await store.get([hKey])).get(hKey);
    if (h) {
      const handle = parseRecord(handleRecordSchema, h);
      conditions.push({ key: hKey, modRevision: h.modRevision });
      if (`${ipsPrefix(handle.pool)}${handle.block}/${handle.ip}` === e.key)
        writes.push({ key: hKey, delete: true });
    } else conditions.push({ key: hKey, absent: true });
  }
  return (await store.commit({ conditions, writes })).ok;
}

export const describePool = (p: Pool): string => `${p.name} ${formatCidr(p.cidr)}`;
