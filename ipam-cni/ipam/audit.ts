import type { Store } from '../store/store.ts';
import { cidrContains, parseIp } from './addr.ts';
import { blockKeyName, blockOf } from './allocator.ts';
import { blocksPrefix, handlesPrefix, ipsPrefix, poolsPrefix, stickyPrefix } from './keys.ts';
import { readPools } from './pools.ts';
import { handleRecordSchema, ipRecordSchema, parseRecord, stickyRecordSchema } from './records.ts';

/**
 * Reads the whole IPAM key space and lists every record that breaks an invariant the allocator
 * keeps (other keys under the prefix — `vteps/`, `nodes/`, `gc-leader` — are not IPAM records and
 * are not looked at): a handle and its ip key agree, an ip key lies in its block, a sticky record points at a
 * kept address. Read-only; the core of `nodeward ipam check`, and what the tests use to prove
 * that nothing was half-written.
 */

export interface AuditProblem {
  readonly kind:
    | 'handle-without-ip'
    | 'ip-without-handle'
    | 'ip-of-other-handle'
    | 'ip-in-wrong-block'
    | 'ip-outside-pool'
    | 'ip-in-unclaimed-block'
    | 'ip-of-missing-pool'
    | 'sticky-without-ip';
  readonly key: string;
  readonly detail: string;
  /** The record's modRevision as audited: `ipam release --from-report` frees it only if unchanged. */
  readonly modRevision: number;
}

export interface AuditReport {
  readonly revision: number;
  readonly pools: number;
  readonly allocated: number;
  readonly kept: number;
  readonly handles: number;
  readonly problems: readonly AuditProblem[];
}

export async function audit(store: Store): Promise<AuditReport> {
  // One listing of everything: the five prefixes read at one revision.
  const all = await store.list('');
  const pools = await readPools(store);
  const under = (prefix: string) => all.entries.filter((e) => e.key.startsWith(prefix));
  const revisions = new Map(all.entries.map((e) => [e.key, e.modRevision]));
  const problems: AuditProblem[] = [];
  const problem = (p: Omit<AuditProblem, 'modRevision'>) =>
    problems.push({ ...p, modRevision: revisions.get(p.key) ?? 0 });
  const ips = new Map(under('ips/').map((e) => [e.key, parseRecord(ipRecordSchema, e)]));
  const handles = under(handlesPrefix).map((e) => ({ key: e.key, h: parseRecord(handleRecordSchema, e) }));
  const claimed = new Set(under('blocks/').map((e) => e.key));

  for (const { key, h } of handles) {
    const ipKeyOf = `${ipsPrefix(h.pool)}${h.block}/${h.ip}`;
    const held = ips.get(ipKeyOf);
    const [, containerID, ifName] = key.split('/');
    if (!held) problem({ kind: 'handle-without-ip', key, detail: `no ${ipKeyOf}` });
    else if (held.containerID !== containerID || held.ifName !== ifName)
      problem({
        kind: 'ip-of-other-handle',
        key,
        detail: `${ipKeyOf} is held by ${held.containerID}/${held.ifName}`,
      });
  }
  const handleKeys = new Set(handles.map((x) => x.key));
  let kept = 0;
  for (const [key, r] of ips) {
    const [, poolName = '', blockName = '', ipText = ''] = key.split('/');
    if (r.containerID === null) kept++;
    else if (!handleKeys.has(`${handlesPrefix}${r.containerID}/${r.ifName}`))
      problem({ kind: 'ip-without-handle', key, detail: `no handle ${r.containerID}/${r.ifName}` });
    const stored = pools.get(poolName);
    const a = parseIp(ipText);
    if (!stored || !a) {
      problem({ kind: 'ip-of-missing-pool', key, detail: `pool ${poolName} does not exist` });
      continue;
    }
    const pool = stored.pool;
    if (a.family !== pool.family || !cidrContains(pool.cidr, a.value)) {
      problem({ kind: 'ip-outside-pool', key, detail: `${ipText} is not in ${pool.spec.cidr}` });
      continue;
    }
    const block = blockKeyName(blockOf(pool, a.value));
    if (block !== blockName)
      problem({ kind: 'ip-in-wrong-block', key, detail: `belongs under block ${block}` });
    if (!claimed.has(`${blocksPrefix(poolName)}${block}`))
      problem({ kind: 'ip-in-unclaimed-block', key, detail: `block ${block} has no claim` });
  }
  for (const e of under(stickyPrefix)) {
    const s = parseRecord(stickyRecordSchema, e);
    if (!ips.has(`${ipsPrefix(s.pool)}${s.block}/${s.ip}`))
      problem({
        kind: 'sticky-without-ip',
        key: e.key,
        detail: `${s.pool} ${s.ip} is neither held nor kept`,
      });
  }
  return {
    revision: all.revision,
    pools: under(poolsPrefix).length,
    allocated: ips.size - kept,
    kept,
    handles: handles.length,
    problems,
  };
}
