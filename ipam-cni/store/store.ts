/**
 * The transaction primitives IPAM needs, and nothing more: consistent reads that carry revisions,
 * and an all-or-nothing commit guarded by compares on those revisions. etcd, the node-local file
 * store and the in-memory store implement it, and one conformance suite
 * (test/support/ipam-cni/store-conformance.ts) holds them to the same semantics.
 *
 * Keys are relative to the store's prefix. Revisions are numbers: a store-wide counter that grows
 * by one per successful commit, and every key written by a commit gets that commit's revision as
 * its modRevision — so keys written together can be recognised as written together.
 */

export interface Entry {
  readonly key: string;
  readonly value: string;
  /** Revision of the commit that created the key (since it last did not exist). */
  readonly createRevision: number;
  /** Revision of the commit that last wrote the key. */
  readonly modRevision: number;
}

/**
 * A compare: the key does not exist (etcd: createRevision == 0), is unchanged since read, or no key
 * at all starts with a prefix (etcd: createRevision == 0 over the prefix's range).
 */
export type Condition = AbsentCondition | UnchangedCondition | EmptyPrefixCondition;
export interface AbsentCondition {
  readonly key: string;
  readonly absent: true;
}
export interface UnchangedCondition {
  readonly key: string;
  readonly modRevision: number;
}

/** No key starts with `prefix` (e.g. "a block has no address": nothing under ips/<pool>/<block>/). */
export interface EmptyPrefixCondition {
  readonly prefix: string;
  readonly empty: true;
}

export type Write = Put | Delete;
export interface Put {
  readonly key: string;
  readonly value: string;
}
export interface Delete {
  readonly key: string;
  readonly delete: true;
}

export interface Commit {
  readonly conditions: readonly Condition[];
  readonly writes: readonly Write[];
}

export type CommitResult =
  | { readonly ok: true; readonly revision: number }
  /**
   * No write happened. `current` holds, read atomically with the failed compare, every condition
   * key that exists now (absent keys are missing from the map): the caller learns what changed
   * without another round trip. Prefix conditions add nothing to it.
   */
  | { readonly ok: false; readonly revision: number; readonly current: ReadonlyMap<string, Entry> };

export interface Listing {
  /** Sorted by key. */
  readonly entries: readonly Entry[];
  /** The store revision the listing was read at. */
  readonly revision: number;
}

export interface Store {
  readonly kind: 'etcd' | 'file' | 'memory';
  /** The given keys (at most MAX_COMMIT_OPS), read in one consistent snapshot; missing keys are absent. */
  get(keys: readonly string[]): Promise<Map<string, Entry>>;
  /** Every key under a prefix, read in one consistent snapshot. */
  list(prefix: string): Promise<Listing>;
  /** Applies every write if every condition holds, else nothing. */
  commit(commit: Commit): Promise<CommitResult>;
  close(): Promise<void>;
}

/**
 * Most conditions, and most writes, one commit may carry: etcd's default --max-txn-ops. Every
 * store accepts at least this many; callers split larger work into several commits.
 */
export const MAX_COMMIT_OPS = 128;

/** Keys may not repeat within one commit's writes (etcd refuses it; the others follow suit). */
export function duplicateWriteKey(commit: Commit): string | undefined {
  const seen = new Set<string>();
  for (const w of commit.writes) {
    if (seen.has(w.key)) return w.key;
    seen.add(w.key);
  }
  return undefined;
}

export const isAbsentCondition = (c: Condition): c is AbsentCondition => 'absent' in c;

export const isEmptyPrefixCondition = (c: Condition): c is EmptyPrefixCondition => 'empty' in c;

/** The key a condition is about (for a prefix condition, the prefix). */
export const conditionKey = (c: Condition): string => (isEmptyPrefixCondition(c) ? c.prefix : c.key);

export const isDelete = (w: Write): w is Delete => 'delete' in w;
