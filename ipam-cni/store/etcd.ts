import { readFile } from 'node:fs/promises';
import { Etcd3, type IKeyValue, type IOptions, type IRequestOp, isRecoverableError } from 'etcd3';
import { NodewardError } from '../../shared/errors.ts';
import { checkCommitShape } from './kv-state.ts';
import {
  type Commit,
  type CommitResult,
  type Entry,
  isAbsentCondition,
  isDelete,
  isEmptyPrefixCondition,
  type Listing,
  MAX_COMMIT_OPS,
  type Store,
} from './store.ts';

/**
 * The cluster-wide store: etcd v3. Every commit is ONE etcd transaction whose compares are the
 * commit's conditions (createRevision == 0 for "absent", modRevision == seen otherwise) and whose
 * failure branch reads the condition keys back — so a lost race costs no extra round trip. Nothing
 * is cached here: every read goes to etcd (linearizable), correctness never rests on local state.
 *
 * The client is created once and kept: after an outage its channels reconnect by themselves, and
 * calls fail fast (STORE_UNAVAILABLE, retriable) while etcd is away instead of hanging — every
 * unary call carries a deadline.
 */

export interface EtcdStoreOptions {
  endpoints: readonly string[];
  /** Prepended to every key, e.g. "/nodeward/ipam/v1/". */
  prefix: string;
  tls?: { ca?: string; cert?: string; key?: string };
  username?: string;
  password?: string;
  /** How long connecting to a member may take. */
  dialTimeoutMs: number;
  /** Deadline of each call. */
  requestTimeoutMs: number;
}

/** Keys per page of a listing: stays far below gRPC's 4 MiB message limit with IPAM's small values. */
const PAGE = 1000;

const enc = (s: string) => Buffer.from(s, 'utf8');

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export class EtcdStore implements Store {
  readonly kind = 'etcd';
  readonly client: Etcd3;
  readonly #prefix: string;
  readonly #endpoints: readonly string[];

  private constructor(client: Etcd3, options: EtcdStoreOptions) {
    this.client = client;
    this.#prefix = options.prefix;
    this.#endpoints = options.endpoints;
  }

  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    if (options.endpoints.length === 0) {
      throw new NodewardError('CONFIG_INVALID', 'network.etcd.endpoints is empty: list the etcd client URLs');
    }
    const config: IOptions = {
      hosts: [...options.endpoints],
      dialTimeout: options.dialTimeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + options.requestTimeoutMs }),
    };
    const { tls } = options;
    if (tls?.ca || tls?.cert || tls?.key) {
      const read = async (what: string, path: string | undefined) => {
        if (!path) return undefined;
        try {
          return await readFile(path);
        } catch (err) {
          throw new NodewardError('CONFIG_INVALID', `cannot read network.etcd.tls.${what} ${path}`, {
            cause: err,
          });
        }
      };
      const ca = await read('ca', tls.ca);
      const privateKey = await read('key', tls.key);
      const certChain = await read('cert', tls.cert);
      config.credentials = {
        // null (not typed by etcd3, accepted by grpc's createSsl): trust the system roots.
        rootCertificate: ca ?? (null as unknown as Buffer),
        ...(privateKey ? { privateKey } : {}),
        ...(certChain ? { certChain } : {}),
      };
    }
    if (options.username !== undefined) {
      config.auth = { username: options.username, password: options.password ?? '' };
    }
    return new EtcdStore(new Etcd3(config), options);
  }

  async get(keys: readonly string[]): Promise<Map<string, Entry>> {
    const out = new Map<string, Entry>();
    if (keys.length === 0) return out;
    if (keys.length > MAX_COMMIT_OPS) {
      throw new NodewardError(
        'INTERNAL',
        `a read of ${keys.length} keys; the limit is ${MAX_COMMIT_OPS} (list a prefix instead)`,
      );
    }
    // One read-only transaction: every key from the same revision, in one round trip.
    const res = await this.#call('read', () =>
      this.client.kv.txn({ success: keys.map((k) => ({ request_range: { key: enc(this.#prefix + k) } })) }),
    );
    for (const r of res.responses) for (const kv of r.response_range.kvs) this.#add(out, kv);
    return out;
  }

  async list(prefix: string): Promise<Listing> {
    const start = enc(this.#prefix + prefix);
    const end = prefixEnd(start);
    const entries: Entry[] = [];
    let key = start;
    let revision: string | undefined;
    // Pages pinned to the first page's revision: one consistent snapshot of any size.
    for (;;) {
      const res = await this.#call('list', () =>
        this.client.kv.range({ key, range_end: end, limit: PAGE, ...(revision ? { revision } : {}) }),
      );
      revision ??= res.header.revision;
      for (const kv of res.kvs) entries.push(this.#entry(kv));
      const last = res.kvs.at(-1);
      if (!res.more || !last) break;
      key = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { entries, revision: Number(revision) };
  }

  async commit(commit: Commit): Promise<CommitResult> {
    checkCommitShape(commit);
    const compare = commit.conditions.map((c) =>
      isEmptyPrefixCondition(c)
        ? {
            // Over a range, etcd compares every key in it; an empty range compares as createRevision 0.
            key: enc(this.#prefix + c.prefix),
            range_end: prefixEnd(enc(this.#prefix + c.prefix)),
            target: 'Create' as const,
            result: 'Equal' as const,
            create_revision: 0,
          }
        : isAbsentCondition(c)
          ? {
              key: enc(this.#prefix + c.key),
              target: 'Create' as const,
              result: 'Equal' as const,
              create_revision: 0,
            }
          : {
              key: enc(this.#prefix + c.key),
              target: 'Mod' as const,
              result: 'Equal' as const,
              mod_revision: c.modRevision,
            },
    );
    const success: IRequestOp[] = commit.writes.map((w) =>
      isDelete(w)
        ? { request_delete_range: { key: enc(this.#prefix + w.key) } }
        : { request_put: { key: enc(this.#prefix + w.key), value: enc(w.value) } },
    );
    const failure: IRequestOp[] = commit.conditions
      .filter((c) => !isEmptyPrefixCondition(c))
      .map((c) => ({ request_range: { key: enc(this.#prefix + (c as { key: string }).key) } }));
    const res = await this.#call('commit', () => this.client.kv.txn({ compare, success, failure }));
    const revision = Number(res.header.revision);
    if (res.succeeded) return { ok: true, revision };
    const current = new Map<string, Entry>();
    for (const r of res.responses) for (const kv of r.response_range.kvs) this.#add(current, kv);
    return { ok: false, revision, current };
  }

  async close(): Promise<void> {
    this.client.close();
  }

  /** The key prefix every key of this store sits under (leases and elections write beside it). */
  get keyPrefix(): string {
    return this.#prefix;
  }

  /** Maps an etcd3 error to STORE_* as the other calls do (for callers using `client` directly). */
  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.#call(what, fn);
  }

  #entry(kv: IKeyValue): Entry {
    return {
      key: kv.key.toString('utf8').slice(this.#prefix.length),
      value: kv.value.toString('utf8'),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
    };
  }

  #add(map: Map<string, Entry>, kv: IKeyValue): void {
    const e = this.#entry(kv);
    map.set(e.key, e);
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storeError(err, what, this.#endpoints);
    }
  }
}

const UNAVAILABLE = new Set([
  'GRPCUnavailableError',
  'GRPCDeadlineExceededError',
  'GRPCCancelledError',
  'GRPCInternalError',
  'GRPCGenericError',
  'GRPCConnectFailedError',
  'BrokenCircuitError',
  'IsolatedCircuitError',
]);
const DENIED = new Set([
  'GRPCUnauthenticatedError',
  'EtcdAuthenticationFailedError',
  'EtcdPermissionDeniedError',
  'EtcdInvalidAuthTokenError',
  'EtcdRoleNotGrantedError',
]);

/** etcd3's error classes as registry codes: callers branch on the code, never on etcd3's types. */
export function storeError(err: unknown, what: string, endpoints: readonly string[]): NodewardError {
  if (err instanceof NodewardError) return err;
  const name = (err as Error | null)?.constructor?.name ?? '';
  const message = err instanceof Error ? err.message : String(err);
  const where = endpoints.join(',');
  const recoverable = err instanceof Error && isRecoverableError(err);
  // gRPC reports a refused TLS handshake (no or wrong client certificate, unknown CA) only as "no
  // connection established": say where to look when the endpoints use TLS.
  const tlsHint = endpoints.some((e) => e.startsWith('https://'))
    ? '. If etcd is up, check the TLS settings: network.etcd.tls.ca must be the CA of the server certificate, and an etcd with --client-cert-auth needs a client certificate it trusts (network.etcd.tls.cert and .key)'
    : '';
  if (DENIED.has(name)) {
    return new NodewardError(
      'STORE_DENIED',
      `etcd at ${where} refused the IPAM ${what} (${message}); check network.etcd.username/password, the client certificate and the user's role on the key prefix`,
      { cause: err, details: { endpoints } },
    );
  }
  if (
    UNAVAILABLE.has(name) ||
    recoverable ||
    (err as { isBrokenCircuitError?: boolean })?.isBrokenCircuitError
  ) {
    return new NodewardError(
      'STORE_UNAVAILABLE',
      `etcd at ${where} did not answer the IPAM ${what} (${message}); retry later (a write is one transaction: applied whole or not at all, and a retried ADD finds its own allocation)${tlsHint}`,
      { cause: err, details: { endpoints } },
    );
  }
  return new NodewardError('INTERNAL', `etcd ${what} failed: ${message}`, {
    cause: err,
    details: { endpoints },
  });
}
