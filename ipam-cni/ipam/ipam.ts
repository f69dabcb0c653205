import { NodewardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Entry, Store } from '../store/store.ts';
import { type Family, formatCidr, formatIp, parseIp } from './addr.ts';
import { handleKey, ipKey, stickyKey } from './keys.ts';
import type { IpamObserver } from './metrics.ts';
import { holdsGateway, type PoolSpec } from './pool.ts';
import { readPools, type StoredPool, storedPool } from './pools.ts';
import {
  handleRecordSchema,
  type IpRecord,
  ipRecordSchema,
  parseRecord,
  stickyRecordSchema,
} from './records.ts';
import {
  type AdmissionMetadata,
  checkAdmitted,
  checkUsable,
  type MetadataLookup,
  needsLabels,
  POOL_ANNOTATION,
  type PoolSelection,
  parseRequestedIP,
  type Selected,
  type Subject,
  selectPool,
  Unknown,
} from './select.ts';
import type { Labels } from './selector.ts';
import { ipConflict, PoolWriter, Reprepare, type WriteOutcome, type WriteRequest } from './writer.ts';

/**
 * The IPAM service: allocate and release addresses for pod interfaces. Stateless towards the
 * store — what it caches (pools, each node's view of its blocks) only shapes its guesses; every
 * write is one transaction whose compares decide. Allocations on one node and pool are grouped
 * into one transaction per round (writer.ts).
 */

export interface IpamOptions {
  readonly store: Store;
  /** Compare-and-swap races one allocation may lose before IPAM_CONTENTION. */
  readonly conflictRetries?: number;
  /** Most allocations written by one transaction. */
  readonly batchSize?: number;
  /** Age after which a node's view of its blocks is read again (to reuse what others released). */
  readonly viewMaxAgeMs?: number;
  readonly now?: () => Date;
  readonly log?: Logger;
  /** Allocation latency and lost races (metrics.ts). */
  readonly observer?: IpamObserver | undefined;
  /**
   * Namespace labels and annotations (default pool) and node labels for pool admission, when the
   * request does not carry them. Absent: pools whose selectors need labels are refused.
   */
  readonly metadata?: AdmissionMetadata | undefined;
}

export interface AllocateRequest {
  readonly containerID: string;
  readonly ifName: string;
  readonly pod: string;
  readonly namespace: string;
  readonly node: string;
  /** The container's network namespace path (CNI_NETNS): recorded for the node GC's liveness check. */
  readonly netns?: string | undefined;
  /**
   * The CNI network (the conf's name): CNI GC of one network touches only its own attachments
   * (Multus, or a second IPAM-only network, share this store).
   */
  readonly network?: string | undefined;
  /** K8S_POD_UID: tells a re-created pod of the same name from the old one. */
  readonly podUid?: string | undefined;
  /** Use this pool (still subject to its selectors); else `selection` decides. */
  readonly pool?: string | undefined;
  readonly selection?: PoolSelection | undefined;
  /** A specific address; the same as `selection.requestedIP`. */
  readonly requestedIP?: string | undefined;
  /** The pod is a StatefulSet's: it keeps its address across re-creation (namespace/pod/ifName). */
  readonly sticky?: boolean | undefined;
  /** The namespace's labels; absent: from IpamOptions.metadata when a pool's selector needs them. */
  readonly namespaceLabels?: Labels | undefined;
  /** The node's labels; absent: from IpamOptions.metadata when a pool's selector needs them. */
  readonly nodeLabels?: Labels | undefined;
}

/** What the CNI result needs. */
export interface Allocation {
  readonly pool: string;
  readonly ip: string;
  readonly family: Family;
  /** The pool's CIDR: pods see the whole segment as on-link. */
  readonly cidr: string;
  readonly prefixLength: number;
  readonly gateway: string | undefined;
  readonly routes: PoolSpec['routes'];
  readonly dns: PoolSpec['dns'];
  readonly segment: PoolSpec['segment'];
  /** The node holds `gateway` on the segment's bridge (pool.ts holdsGateway). */
  readonly nodeGateway: boolean;
  readonly containerID: string;
  readonly ifName: string;
  /** True when the handle existed already (a repeated ADD). */
  readonly existing: boolean;
}

export interface Released {
  readonly released: boolean;
  readonly pool?: string;
  readonly ip?: string;
  /** The address stays reserved for a sticky pod. */
  readonly kept?: boolean;
}

type Prepared =
  | { readonly kind: 'existing'; readonly allocation: Allocation }
  | { readonly kind: 'write'; readonly pool: StoredPool; readonly write: WriteRequest };

const KEY_PART = /^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/;

function checkPart(name: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || !KEY_PART.test(value) || value.length > max) {
    throw new NodewardError(
      'IPAM_REQUEST_INVALID',
      `${name} must be 1-${max} characters of letters, digits, "_", ".", ":", "@" or "-" (starting with a letter or digit), got ${JSON.stringify(value)}`,
      { details: { field: name } },
    );
  }
  return value;
}

export class Ipam {
  readonly #store: Store;
  readonly #retries: number;
  readonly #batchSize: number;
  readonly #viewMaxAgeMs: number;
  readonly #now: () => Date;
  readonly #log: Logger | undefined;
  readonly #observer: IpamObserver | undefined;
  readonly #metadata: AdmissionMetadata | undefined;
  #pools: Map<string, StoredPool> | undefined;
  #poolsRead: Promise<Map<string, StoredPool>> | undefined;
  readonly #writers = new Map<string, PoolWriter>();

  constructor(options: IpamOptions) {
    this.#store = options.store;
    this.#retries = options.conflictRetries ?? 10;
    this.#batchSize = options.batchSize ?? 32;
    this.#viewMaxAgeMs = options.viewMaxAgeMs ?? 30_000;
    this.#now = options.now ?? (() => new Date());
    this.#log = options.log;
    this.#observer = options.observer;
    this.#metadata = options.metadata;
  }

  /**
   * An address for (containerID, ifName). Idempotent: while the handle exists, the same address
   * comes back (`existing: true`) whatever the rest of the request says.
   */
  async allocate(request: AllocateRequest): Promise<Allocation> {
    if (!this.#observer) return this.#allocate(request);
    const started = performance.now();
    let ok = false;
    try {
      const a = await this.#allocate(request);
      ok = true;
      return a;
    } finally {
      this.#observer.allocated((performance.now() - started) / 1000, ok);
    }
  }

  async #allocate(request: AllocateRequest): Promise<Allocation> {
    const containerID = checkPart('containerID', request.containerID, 253);
    const ifName = checkPart('ifName', request.ifName, 15);
    checkPart('pod', request.pod, 253);
    checkPart('namespace', request.namespace, 63);
    checkPart('node', request.node, 253);
    for (let attempt = 0; ; attempt++) {
      try {
        const prepared = await this.#prepare(request, attempt > 0);
        if (prepared.kind === 'existing') return prepared.allocation;
        const outcome = await this.#writer(request.node, prepared.pool.pool.name).submit(prepared.write);
        return await this.#allocation(outcome, containerID, ifName);
      } catch (err) {
        if (!(err instanceof Reprepare)) throw err;
        this.#observer?.conflict();
        if (attempt >= this.#retries) {
          throw new NodewardError(
            'IPAM_CONTENTION',
            `allocation for ${containerID}/${ifName} kept racing with pool or sticky changes (${err.message}); retry`,
          );
        }
        this.#log?.debug({ containerID, ifName, why: err.message }, 'ipam: preparing the allocation again');
      }
    }
  }

  /** Frees the address of (containerID, ifName). An unknown handle is a success (DEL forgives). */
  async release(containerID: string, ifName: string): Promise<Released> {
    checkPart('containerID', containerID, 253);
    checkPart('ifName', ifName, 15);
    const hKey = handleKey(containerID, ifName);
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      const handleEntry = (await this.#store.get([hKey])).get(hKey);
      if (!handleEntry) return { released: false };
      const handle = parseRecord(handleRecordSchema, handleEntry);
      const iKey = ipKey(handle.pool, handle.block, handle.ip);
      // The handle and ip keys are written by one transaction, so an untouched pair shares its
      // modRevision: the release needs no second read in the usual case.
      let ipEntry: Entry | undefined = {
        key: iKey,
        value: '',
        createRevision: 0,
        modRevision: handleEntry.modRevision,
      };
      // Whether the pod keeps its address: as written with the handle, unless the ip record was
      // changed since (an admin released the sticky address while the container ran).
      let sticky = handle.sticky;
      if (attempt > 0) {
        ipEntry = (await this.#store.get([iKey])).get(iKey);
        const holder = ipEntry && parseRecord(ipRecordSchema, ipEntry);
        sticky = holder?.sticky ?? false;
        // Not ours (rewritten by hand, or left from before a crash): leave it, drop the handle.
        if (holder && (holder.containerID !== containerID || holder.ifName !== ifName)) ipEntry = undefined;
      }
      // A sticky pod keeps its address: the ip key stays, held by no container.
      const kept: IpRecord = {
        containerID: null,
        ifName,
        pod: handle.pod,
        namespace: handle.namespace,
        node: handle.node,
        since: this.#now().toISOString(),
        sticky: true,
      };
      const result = await this.#store.commit({
        conditions: [
          { key: hKey, modRevision: handleEntry.modRevision },
          ...(ipEntry ? [{ key: iKey, modRevision: ipEntry.modRevision }] : []),
        ],
        writes: [
          { key: hKey, delete: true },
          ...(ipEntry
            ? [sticky ? { key: iKey, value: JSON.stringify(kept) } : { key: iKey, delete: true as const }]
            : []),
        ],
      });
      if (result.ok) {
        const stored = this.#pools?.get(handle.pool);
        const a = parseIp(handle.ip);
        if (stored && a) this.#writers.get(`${handle.node}\u0000${handle.pool}`)?.forget(stored, a.value);
        return { released: true, pool: handle.pool, ip: handle.ip, kept: sticky && ipEntry !== undefined };
      }
      if (!result.current.has(hKey)) return { released: false }; // released meanwhile by someone else
    }
    throw new NodewardError(
      'IPAM_CONTENTION',
      `release of ${containerID}/${ifName} kept conflicting with concurrent changes; retry`,
    );
  }

  /** The pool records, read again from the store. */
  async pools(): Promise<Map<string, StoredPool>> {
    return this.#readPools(true);
  }

  async #readPools(force: boolean): Promise<Map<string, StoredPool>> {
    if (this.#pools && !force) return this.#pools;
    // Concurrent allocations after a change share one read.
    this.#poolsRead ??= readPools(this.#store).finally(() => {
      this.#poolsRead = undefined;
    });
    this.#pools = await this.#poolsRead;
    return this.#pools;
  }

  #learnPool(name: string, entry: Entry | undefined): void {
    if (!this.#pools) return;
    if (entry) this.#pools.set(name, storedPool(entry));
    else this.#pools.delete(name);
  }

  #writer(node: string, pool: string): PoolWriter {
    const key = `${node}\u0000${pool}`;
    let w = this.#writers.get(key);
    if (!w) {
      w = new PoolWriter({
        store: this.#store,
        node,
        poolName: pool,
        pools: { get: (name) => this.#pools?.get(name), learn: (name, e) => this.#learnPool(name, e) },
        batchSize: this.#batchSize,
        conflictRetries: this.#retries,
        onConflict: () => this.#observer?.conflict(),
        viewMaxAgeMs: this.#viewMaxAgeMs,
        now: this.#now,
      });
      this.#writers.set(key, w);
    }
    return w;
  }

  async #prepare(request: AllocateRequest, again: boolean): Promise<Prepared> {
    const requestedIP = request.requestedIP ?? request.selection?.requestedIP;
    const hKey = handleKey(request.containerID, request.ifName);
    const sKey = stickyKey(request.namespace, request.pod, request.ifName);
    const sticky = request.sticky === true;
    const baseOf = (subject: Subject) => ({
      containerID: request.containerID,
      ifName: request.ifName,
      pod: request.pod,
      namespace: request.namespace,
      node: request.node,
      netns: request.netns,
      network: request.network,
      podUid: request.podUid,
      subject,
      sticky,
    });

    let pools = await this.#readPools(again);
    let admission = await this.#admission(request, pools);
    if (sticky) {
      const found = await this.#store.get([hKey, sKey]);
      const handle = found.get(hKey);
      if (handle) return { kind: 'existing', allocation: await this.#existing(handle, request) };
      const stickyEntry = found.get(sKey);
      if (stickyEntry)
        return this.#prepareSticky(stickyEntry, request, baseOf(admission.subject), requestedIP, pools);
    }

    const select = () =>
      selectPool(
        pools,
        {
          ...request.selection,
          requestedIP,
          explicitPool: request.pool,
          namespacePool: admission.namespacePool,
        },
        admission.subject,
      );
    let selected: Selected;
    try {
      try {
        selected = select();
      } catch (err) {
        // A pool added since the cache was read: read once more before saying it does not exist.
        if (!(err instanceof NodewardError && err.code === 'POOL_NOT_FOUND') || again) throw err;
        pools = await this.#readPools(true);
        admission = await this.#admission(request, pools);
        selected = select();
      }
    } catch (err) {
      // A repeated ADD whose pool changed since, or whose pool cannot be checked now (its
      // selectors need labels the API server has not given us): the handle still answers.
      const handle =
        err instanceof NodewardError && (!err.retriable || err.code === 'POD_METADATA_UNAVAILABLE')
          ? (await this.#store.get([hKey])).get(hKey)
          : undefined;
      if (handle) return { kind: 'existing', allocation: await this.#existing(handle, request) };
      throw err;
    }
    const stored = pools.get(selected.pool.name)!;
    return {
      kind: 'write',
      pool: stored,
      write: {
        ...baseOf(admission.subject),
        ip: selected.ip,
        reservedModRevision: undefined,
        createSticky: sticky,
      },
    };
  }

  /**
   * What admission knows of the pod's namespace and node: the request's own labels and namespace
   * default when it gives them (tests, admin), else the metadata source — asked only when some pool
   * has a selector that needs those labels, or when the namespace default may decide (no explicit
   * pool, no pod annotation), so an agent whose pools select nothing never watches its Node.
   */
  async #admission(
    request: AllocateRequest,
    pools: ReadonlyMap<string, StoredPool>,
  ): Promise<{ subject: Subject; namespacePool: string | Unknown | undefined }> {
    const choices = [...pools.values()].filter((c) => !c.draining).map((c) => c.pool.spec);
    const metadata = this.#metadata;
    const namespaceDefault =
      (metadata?.namespaceDefaults ?? true) &&
      request.selection?.namespacePool === undefined &&
      request.pool === undefined &&
      request.selection?.annotationPool === undefined;
    const askNamespace =
      (request.namespaceLabels === undefined && choices.some((p) => needsLabels(p.namespaceSelector))) ||
      namespaceDefault;
    const askNode = request.nodeLabels === undefined && choices.some((p) => needsLabels(p.nodeSelector));
    const [ns, node] = await Promise.all([
      askNamespace ? metadata?.namespace(request.namespace) : undefined,
      askNode ? metadata?.node(request.node) : undefined,
    ]);
    const unknownOf = (what: string, l: MetadataLookup | undefined): Labels | Unknown => {
      if (l === undefined)
        return metadata
          ? new Unknown(
              `not looked up (no pool needed the ${what} labels when the request was prepared)`,
              true,
            )
          : new Unknown(
              `this agent reads no ${what} labels (the network module reads them from the API server with pods.source: apiserver)`,
              false,
            );
      return l.found ? l.labels : new Unknown(l.why, l.retriable);
    };
    return {
      subject: {
        namespace: request.namespace,
        node: request.node,
        namespaceLabels: request.namespaceLabels ?? unknownOf('namespace', ns),
        nodeLabels: request.nodeLabels ?? unknownOf('node', node),
      },
      namespacePool:
        request.selection?.namespacePool ??
        (ns === undefined || !namespaceDefault
          ? undefined
          : ns.found
            ? ns.annotations[POOL_ANNOTATION]
            : new Unknown(ns.why, ns.retriable)),
    };
  }

  /** A sticky pod that had an address: the same one, if it is still usable and not taken. */
  async #prepareSticky(
    stickyEntry: Entry,
    request: AllocateRequest,
    base: Omit<WriteRequest, 'ip' | 'reservedModRevision' | 'createSticky'>,
    requestedIP: string | undefined,
    pools: Map<string, StoredPool>,
  ): Promise<Prepared> {
    const record = parseRecord(stickyRecordSchema, stickyEntry);
    const who = `${request.namespace}/${request.pod}`;
    const stored = pools.get(record.pool) ?? (await this.#readPools(true)).get(record.pool);
    if (!stored || stored.draining) {
      throw new NodewardError(
        'POOL_NOT_FOUND',
        `pool ${record.pool} of the sticky address ${record.ip} of pod ${who} is gone; release the sticky address to get a new one`,
        {
          details: { pool: record.pool },
        },
      );
    }
    checkAdmitted(stored.pool, base.subject, 'sticky');
    const ip = parseIp(record.ip);
    if (!ip) throw parseRecord(stickyRecordSchema, { ...stickyEntry, value: '{}' });
    if (requestedIP !== undefined && parseRequestedIP(requestedIP) !== ip.value) {
      throw new NodewardError(
        'IP_CONFLICT',
        `pod ${who} keeps IP ${record.ip} (sticky) but asks for ${requestedIP}; release the sticky address (\`nodeward ipam release --sticky ${who}\`) to change it`,
        { details: { pool: record.pool, ip: record.ip } },
      );
    }
    checkUsable(stored.pool, ip.value);
    const iKey = ipKey(record.pool, record.block, record.ip);
    const ipEntry = (await this.#store.get([iKey])).get(iKey);
    let reservedModRevision: number | undefined;
    if (ipEntry) {
      const holder = parseRecord(ipRecordSchema, ipEntry);
      if (holder.containerID !== null) throw ipConflict(record.pool, record.ip, holder);
      reservedModRevision = ipEntry.modRevision;
    }
    return {
      kind: 'write',
      pool: stored,
      write: { ...base, ip: ip.value, reservedModRevision, createSticky: false },
    };
  }

  async #existing(handleEntry: Entry, request: AllocateRequest): Promise<Allocation> {
    const handle = parseRecord(handleRecordSchema, handleEntry);
    return this.#allocation({ kind: 'existing', handle }, request.containerID, request.ifName);
  }

  async #allocation(outcome: WriteOutcome, containerID: string, ifName: string): Promise<Allocation> {
    let stored: StoredPool | undefined;
    let ip: string;
    if (outcome.kind === 'allocated') {
      stored = outcome.pool;
      ip = formatIp(stored.pool.family, outcome.ip);
    } else {
      ip = outcome.handle.ip;
      stored =
        (await this.#readPools(false)).get(outcome.handle.pool) ??
        (await this.#readPools(true)).get(outcome.handle.pool);
      if (!stored) {
        throw new NodewardError(
          'POOL_NOT_FOUND',
          `the address ${ip} of ${containerID}/${ifName} is in pool ${outcome.handle.pool}, which no longer exists; release it and add the interface again`,
        );
      }
    }
    const { pool } = stored;
    return {
      pool: pool.name,
      ip,
      family: pool.family,
      cidr: formatCidr(pool.cidr),
      prefixLength: pool.cidr.prefix,
      gateway: pool.spec.gateway,
      routes: pool.spec.routes,
      dns: pool.spec.dns,
      segment: pool.spec.segment,
      nodeGateway: holdsGateway(pool.spec),
      containerID,
      ifName,
      existing: outcome.kind === 'existing',
    };
  }
}
