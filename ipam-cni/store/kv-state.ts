import { NodewardError } from '../../shared/errors.ts';
import {
  type Commit,
  type CommitResult,
  duplicateWriteKey,
  type Entry,
  isAbsentCondition,
  isDelete,
  isEmptyPrefixCondition,
  type Listing,
  MAX_COMMIT_OPS,
} from './store.ts';

/**
 * The key-value state the memory and file stores keep, and the commit rule both apply — one
 * implementation of the semantics etcd gives the third store.
 */
export interface KvState {
  revision: number;
  entries: Map<string, Entry>;
}

export const emptyState = (): KvState => ({ revision: 0, entries: new Map() });

/** Refuses what etcd refuses, so a caller bug shows up with every store, not only in production. */
export function checkCommitShape(commit: Commit): void {
  if (commit.conditions.length > MAX_COMMIT_OPS || commit.writes.length > MAX_COMMIT_OPS) {
    throw new NodewardError(
      'INTERNAL',
      `a commit carries ${commit.conditions.length} conditions and ${commit.writes.length} writes; the limit is ${MAX_COMMIT_OPS} each`,
    );
  }
  for (const c of commit.conditions) {
    if (isEmptyPrefixCondition(c) && c.prefix === '') {
      throw new NodewardError('INTERNAL', 'an empty-prefix condition needs a non-empty prefix');
    }
  }
  const dup = duplicateWriteKey(commit);
  if (dup !== undefined) throw new NodewardError('INTERNAL', `a commit writes key ${dup} twice`);
}

/** Applies `commit` to `state` in place when its conditions hold. */
export function applyCommit(state: KvState, commit: Commit): CommitResult {
  checkCommitShape(commit);
  const holds = commit.conditions.every((c) => {
    if (isEmptyPrefixCondition(c)) {
      for (const k of state.entries.keys()) if (k.startsWith(c.prefix)) return false;
      return true;
    }
    const e = state.entries.get(c.key);
    return isAbsentCondition(c) ? e === undefined : e !== undefined && e.modRevision === c.modRevision;
  });
  if (!holds) {
    const current = new Map<string, Entry>();
    for (const c of commit.conditions) {
      if (isEmptyPrefixCondition(c)) continue;
      const e = state.entries.get(c.key);
      if (e) current.set(c.key, e);
    }
    return { ok: false, revision: state.revision, current };
  }
  // As etcd: a commit that changes nothing (no writes, or only deletes of absent keys) does not
  // create a revision.
  const revision = state.revision + 1;
  let changed = false;
  for (const w of commit.writes) {
    if (isDelete(w)) {
      changed = state.entries.delete(w.key) || changed;
    } else {
      const before = state.entries.get(w.key);
      state.entries.set(w.key, {
        key: w.key,
        value: w.value,
        createRevision: before?.createRevision ?? revision,
        modRevision: revision,
      });
      changed = true;
    }
  }
  if (!changed) return { ok: true, revision: state.revision };
  state.revision = revision;
  return { ok: true, revision };
}

export function getKeys(state: KvState, keys: readonly string[]): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const k of keys) {
    const e = state.entries.get(k);
    if (e) out.set(k, e);
  }
  return out;
}

export function listPrefix(state: KvState, prefix: string): Listing {
  const entries = [...state.entries.values()]
    .filter((e) => e.key.startsWith(prefix))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { entries, revision: state.revision };
}
