import { handleKey, ipKey, parseHandleKey } from '../ipam/keys.ts';
import { handleRecordSchema, type IpRecord, ipRecordSchema, parseRecord } from '../ipam/records.ts';
import type { Condition, Entry, Store } from '../store/store.ts';

/**
 * Releases a handle as the GC observed it: only if the handle is still the record seen (its
 * modRevision), and only while `guard` holds (cluster GC: the node's liveness key is still absent).
 * A record re-used or re-written since the observation is left alone. The ip key goes with the
 * handle when this handle holds it; a sticky pod's address stays kept, as with a DEL.
 */

export type GcOutcome = 'released' | 'changed' | 'gone';

export async function releaseObservedHandle(
  store: Store,
  observed: Pick<Entry, 'key' | 'modRevision'>,
  options: { guard?: readonly Condition[]; now?: () => Date } = {},
): Promise<GcOutcome> {
  const { containerID, ifName } = parseHandleKey(observed.key);
  const hKey = handleKey(containerID, ifName);
  const current = (await store.get([hKey])).get(hKey);
  if (!current) return 'gone';
  if (current.modRevision !== observed.modRevision) return 'changed';
  const handle = parseRecord(handleRecordSchema, current);
  const iKey = ipKey(handle.pool, handle.block, handle.ip);
  const ipEntry = (await store.get([iKey])).get(iKey);
  const holder = ipEntry && parseRecord(ipRecordSchema, ipEntry);
  const ours = holder !== undefined && holder.containerID === containerID && holder.ifName === ifName;
  const kept: IpRecord | undefined =
    ours && holder.sticky
      ? { ...holder, containerID: null, since: (options.now ?? (() => new Date()))().toISOString() }
      : undefined;
  const result = await store.commit({
    conditions: [
      ...(options.guard ?? []),
      { key: hKey, modRevision: observed.modRevision },
      ipEntry ? { key: iKey, modRevision: ipEntry.modRevision } : { key: iKey, absent: true },
    ],
    writes: [
      { key: hKey, delete: true },
      ...(ours
        ? [kept ? { key: iKey, value: JSON.stringify(kept) } : { key: iKey, delete: true as const }]
        : []),
    ],
  });
  return result.ok ? 'released' : 'changed';
}
