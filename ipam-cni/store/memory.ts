import { NodewardError } from '../../shared/errors.ts';
import { applyCommit, emptyState, getKeys, type KvState, listPrefix } from './kv-state.ts';
import type { Commit, CommitResult, Entry, Listing, Store } from './store.ts';

/** The in-memory store: unit tests, and the reference the conformance suite is easiest to read against. */
export class MemoryStore implements Store {
  readonly kind = 'memory';
  readonly #state: KvState = emptyState();
  #closed = false;

  // Each call yields to the event loop like a real store would, so callers' interleavings are
  // exercised in unit tests too.
  async get(keys: readonly string[]): Promise<Map<string, Entry>> {
    await this.#turn();
    return getKeys(this.#state, keys);
  }

  async list(prefix: string): Promise<Listing> {
    await this.#turn();
    return listPrefix(this.#state, prefix);
  }

  async commit(commit: Commit): Promise<CommitResult> {
    await this.#turn();
    return applyCommit(this.#state, commit);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async #turn(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.#closed) throw new NodewardError('INTERNAL', 'the IPAM store was used after close()');
  }
}
