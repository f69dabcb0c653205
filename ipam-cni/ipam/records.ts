import { z } from 'zod';
import { NodewardError } from '../../shared/errors.ts';
import type { Entry } from '../store/store.ts';

/**
 * The values IPAM keeps in the store, as JSON. Parsed back with these schemas: a record that is not
 * what nodeward wrote is STORE_CORRUPT naming its key, never a silent guess.
 */

export const poolRecordSchema = z.object({
  /** The validated, canonical spec (validated again when read). */
  spec: z.record(z.string(), z.unknown()),
  created: z.string(),
  /** Set by `removePool` before it checks for addresses: allocations compare the pool key, so none can start meanwhile. */
  draining: z.boolean().optional(),
});
export type PoolRecord = z.infer<typeof poolRecordSchema>;

export const blockRecordSchema = z.object({ node: z.string(), since: z.string() });
export type BlockRecord = z.infer<typeof blockRecordSchema>;

export const ipRecordSchema = z.object({
  /** null: no container holds it, the address is kept for a sticky pod. */
  containerID: z.string().nullable(),
  ifName: z.string(),
  pod: z.string(),
  namespace: z.string(),
  node: z.string(),
  since: z.string(),
  sticky: z.boolean(),
});
export type IpRecord = z.infer<typeof ipRecordSchema>;

export const handleRecordSchema = z.object({
  pool: z.string(),
  ip: z.string(),
  /** The block's key name, so a release finds the ip key even when the pool is gone. */
  block: z.string(),
  sticky: z.boolean(),
  pod: z.string(),
  namespace: z.string(),
  node: z.string(),
  since: z.string(),
  /** The container's network namespace path (CNI_NETNS), when the ADD gave one: the node GC's liveness probe. */
  netns: z.string().optional(),
  /** The CNI network that made it (absent in records written before it was recorded). */
  network: z.string().optional(),
  /** K8S_POD_UID of the ADD, when the runtime passed it. */
  podUid: z.string().optional(),
});
export type HandleRecord = z.infer<typeof handleRecordSchema>;

export const stickyRecordSchema = z.object({ pool: z.string(), ip: z.string(), block: z.string() });
export type StickyRecord = z.infer<typeof stickyRecordSchema>;

export function parseRecord<T>(schema: z.ZodType<T>, entry: Entry): T {
  let json: unknown;
  try {
    json = JSON.parse(entry.value);
  } catch (err) {
    throw corruptRecord(entry.key, 'it is not JSON', err);
  }
  const r = schema.safeParse(json);
  if (!r.success)
    throw corruptRecord(entry.key, r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data;
}

function corruptRecord(key: string, why: string, cause?: unknown): NodewardError {
  return new NodewardError(
    'STORE_CORRUPT',
    `the IPAM record ${key} is not one nodeward wrote (${why}); inspect it, then delete or fix it by hand`,
    { cause, details: { key } },
  );
}
