import { NodewardError } from '../../shared/errors.ts';
import { cidrContains, formatCidr, parseIp } from './addr.ts';
import { type Pool, unusableReason } from './pool.ts';
import { type LabelSelector, type Labels, selectorMismatch } from './selector.ts';

/**
 * Which pool serves a pod, in this order:
 *  1. a pool named explicitly by the caller (admin, tests);
 *  2. the pod annotation `nodeward.io/ipam-pool`;
 *  3. the pool that contains the requested IP (`runtimeConfig.ips` / annotation `nodeward.io/ip`),
 *     preferring the namespace default and then the network's pool when several contain it;
 *  4. the namespace default (namespace annotation `nodeward.io/ipam-pool`);
 *  5. the network's configured pool.
 * Whatever step chose it, the pool must admit the pod's namespace and node: annotations are written
 * by whoever may create pods, and a pool may be a privileged VLAN. A pool that does not admit the
 * pod is an error saying why — never a silent fall-through to the next step.
 *
 * Namespace labels and annotations and node labels come from the API server (AdmissionMetadata).
 * Labels that are not known fail closed, and only where they matter: a pool whose selector has a
 * requirement is refused — with a retriable POD_METADATA_UNAVAILABLE (CNI 11) while the API server
 * is away or has not told us yet, with POOL_NOT_ALLOWED when this agent has no API server to ask —
 * and a namespace whose default pool cannot be read stops step 4 the same way; pools without
 * selectors, annotations and requested IPs are served as before.
 */

export const POOL_ANNOTATION = 'nodeward.io/ipam-pool';
export const IP_ANNOTATION = 'nodeward.io/ip';

/** Metadata the agent could not learn: why, and whether asking again later may help. */
export class Unknown {
  readonly why: string;
  readonly retriable: boolean;
  constructor(why: string, retriable: boolean) {
    this.why = why;
    this.retriable = retriable;
  }
}

/** A namespace's or node's metadata as the API server has it, or why it is not known. */
export type MetadataLookup =
  | { readonly found: true; readonly labels: Labels; readonly annotations: Labels }
  | { readonly found: false; readonly retriable: boolean; readonly why: string };

/** Where the Ipam learns what admission needs (the agent: watches of Namespaces and its Node). */
export interface AdmissionMetadata {
  namespace(name: string): Promise<MetadataLookup>;
  node(name: string): Promise<MetadataLookup>;
  /** Whether a namespace's annotation names its default pool (network.ipam.namespaceDefaults; default true). */
  readonly namespaceDefaults?: boolean | undefined;
}

export interface PoolSelection {
  /** Pod annotation nodeward.io/ipam-pool. */
  readonly annotationPool?: string | undefined;
  /** runtimeConfig.ips[0] or pod annotation nodeward.io/ip. */
  readonly requestedIP?: string | undefined;
  /** Namespace annotation nodeward.io/ipam-pool; Unknown when the namespace cannot be read. */
  readonly namespacePool?: string | Unknown | undefined;
  /** The CNI network config's pool. */
  readonly networkPool?: string | undefined;
}

export interface Subject {
  readonly namespace: string;
  readonly node: string;
  readonly namespaceLabels: Labels | Unknown;
  readonly nodeLabels: Labels | Unknown;
}

/** A pool as selection sees it: draining pools are being removed and serve nobody. */
export interface PoolChoice {
  readonly pool: Pool;
  readonly draining: boolean;
}

export type Source = 'explicit' | 'annotation' | 'requested-ip' | 'namespace' | 'network' | 'sticky';

export interface Selected {
  readonly pool: Pool;
  readonly source: Source;
  readonly ip: bigint | undefined;
}

const SOURCE_TEXT: Record<Source, string> = {
  explicit: 'named in the request',
  annotation: `pod annotation ${POOL_ANNOTATION}`,
  'requested-ip': 'the pool of the requested IP',
  namespace: `namespace default (annotation ${POOL_ANNOTATION})`,
  network: "the network config's pool",
  sticky: "the pod's sticky address",
};

interface Refusal {
  readonly problem: string;
  /** Set when the refusal is for labels not known: the pool may admit the pod once they are. */
  readonly unknown?: Unknown;
}

/** A selector with at least one requirement: it cannot be decided without labels. */
export const needsLabels = (selector: LabelSelector | undefined): boolean =>
  Object.keys(selector?.matchLabels ?? {}).length + (selector?.matchExpressions?.length ?? 0) > 0;

function selectorRefusal(
  selector: LabelSelector | undefined,
  labels: Labels | Unknown,
  what: 'namespace' | 'node',
  name: string,
): Refusal | undefined {
  if (labels instanceof Unknown) {
    if (!needsLabels(selector)) return undefined;
    return {
      problem: `its ${what}Selector needs the labels of ${what} ${name}, which are not known: ${labels.why}`,
      unknown: labels,
    };
  }
  const mismatch = selectorMismatch(selector, labels);
  if (mismatch) return { problem: `its ${what}Selector does not admit ${what} ${name}: ${mismatch}` };
  return undefined;
}

function refusal(pool: Pool, subject: Subject): Refusal | undefined {
  return (
    selectorRefusal(pool.spec.namespaceSelector, subject.namespaceLabels, 'namespace', subject.namespace) ??
    selectorRefusal(pool.spec.nodeSelector, subject.nodeLabels, 'node', subject.node)
  );
}

/** Why `pool` may not serve `subject`, or undefined. */
export function admissionProblem(pool: Pool, subject: Subject): string | undefined {
  return refusal(pool, subject)?.problem;
}

/** Labels not known yet but expected: retry later (CNI 11), the pod is neither admitted nor refused. */
function metadataUnavailable(message: string, details: Record<string, string>): NodewardError {
  return new NodewardError('POD_METADATA_UNAVAILABLE', `${message}; retry`, { details });
}

export function checkAdmitted(pool: Pool, subject: Subject, source: Source): void {
  const refused = refusal(pool, subject);
  if (refused?.unknown?.retriable) {
    throw metadataUnavailable(
      `pool ${pool.name} (${SOURCE_TEXT[source]}) cannot be checked yet: ${refused.problem}`,
      { pool: pool.name, source, namespace: subject.namespace, node: subject.node },
    );
  }
  const problem = refused?.problem;
  if (problem) {
    throw new NodewardError(
      'POOL_NOT_ALLOWED',
      `pool ${pool.name} (${SOURCE_TEXT[source]}) may not be used: ${problem}`,
      {
        details: { pool: pool.name, source, namespace: subject.namespace, node: subject.node },
      },
    );
  }
}

export function checkUsable(pool: Pool, ip: bigint): void {
  const reason = unusableReason(pool, ip);
  if (reason) {
    throw new NodewardError('IP_UNUSABLE', `requested IP ${reason}; pick an address inside its ranges`, {
      details: { pool: pool.name },
    });
  }
}

export function parseRequestedIP(text: string): bigint {
  const a = parseIp(text);
  if (!a) {
    throw new NodewardError(
      'IPAM_REQUEST_INVALID',
      `requested IP ${JSON.stringify(text)} is not an IPv4 or IPv6 address`,
    );
  }
  return a.value;
}

function named(pools: ReadonlyMap<string, PoolChoice>, name: string, source: Source): Pool {
  const choice = pools.get(name);
  if (!choice || choice.draining) {
    const state = choice ? 'is being removed' : 'does not exist';
    throw new NodewardError(
      'POOL_NOT_FOUND',
      `pool ${name} (${SOURCE_TEXT[source]}) ${state}; see \`nodeward ipam pool list\``,
      {
        details: { pool: name, source },
      },
    );
  }
  return choice.pool;
}

export function selectPool(
  pools: ReadonlyMap<string, PoolChoice>,
  selection: PoolSelection & { readonly explicitPool?: string | undefined },
  subject: Subject,
): Selected {
  const requested = selection.requestedIP === undefined ? undefined : parseIp(selection.requestedIP);
  if (selection.requestedIP !== undefined && !requested) parseRequestedIP(selection.requestedIP); // throws
  const finish = (pool: Pool, source: Source): Selected => {
    checkAdmitted(pool, subject, source);
    if (requested) {
      if (requested.family !== pool.family) {
        throw new NodewardError(
          'IP_UNUSABLE',
          `requested IP ${selection.requestedIP} is IPv${requested.family}, pool ${pool.name} is IPv${pool.family}`,
          {
            details: { pool: pool.name },
          },
        );
      }
      checkUsable(pool, requested.value);
    }
    return { pool, source, ip: requested?.value };
  };

  if (selection.explicitPool !== undefined)
    return finish(named(pools, selection.explicitPool, 'explicit'), 'explicit');
  if (selection.annotationPool !== undefined)
    return finish(named(pools, selection.annotationPool, 'annotation'), 'annotation');
  if (requested) {
    const holding = [...pools.values()]
      .filter(
        (c) =>
          !c.draining && c.pool.family === requested.family && cidrContains(c.pool.cidr, requested.value),
      )
      .map((c) => c.pool);
    // The namespace default is preferred among several pools holding the address: while it cannot
    // be read, the choice cannot be made.
    if (holding.length > 1 && selection.namespacePool instanceof Unknown)
      throwIfRetriable(selection.namespacePool, subject);
    const preferred = [selection.namespacePool, selection.networkPool].find(
      (n) => typeof n === 'string' && holding.some((p) => p.name === n),
    );
    if (preferred !== undefined) return finish(holding.find((p) => p.name === preferred)!, 'requested-ip');
    // A pool that may admit the pod once its labels are known could change the answer: wait for them.
    const undecided = holding.find((p) => refusal(p, subject)?.unknown?.retriable);
    if (undecided) return finish(undecided, 'requested-ip'); // throws POD_METADATA_UNAVAILABLE
    const admitted = holding.filter((p) => admissionProblem(p, subject) === undefined);
    if (admitted.length === 1) return finish(admitted[0]!, 'requested-ip');
    if (admitted.length > 1) {
      throw new NodewardError(
        'IPAM_REQUEST_INVALID',
        `requested IP ${selection.requestedIP} is in several pools (${admitted.map((p) => `${p.name} ${formatCidr(p.cidr)}`).join(', ')}); name one with the pod annotation ${POOL_ANNOTATION}`,
      );
    }
    if (holding[0]) return finish(holding[0], 'requested-ip'); // throws POOL_NOT_ALLOWED with the reason
    throw new NodewardError(
      'IP_UNUSABLE',
      `requested IP ${selection.requestedIP} is in no pool; see \`nodeward ipam pool list\``,
    );
  }
  if (selection.namespacePool instanceof Unknown) throwIfRetriable(selection.namespacePool, subject);
  else if (selection.namespacePool !== undefined)
    return finish(named(pools, selection.namespacePool, 'namespace'), 'namespace');
  if (selection.networkPool !== undefined)
    return finish(named(pools, selection.networkPool, 'network'), 'network');
  throw new NodewardError(
    'POOL_NOT_FOUND',
    `no pool for pod in namespace ${subject.namespace}: set the pod annotation ${POOL_ANNOTATION}, a namespace default, or the network config's pool`,
  );
}

/**
 * The namespace default pool cannot be read: a retriable error when the namespace may yet be
 * learned — serving the network's pool instead could put the pod on the wrong segment for its
 * whole life. Without an API server to ask (not retriable) there are no namespace defaults.
 */
function throwIfRetriable(unknown: Unknown, subject: Subject): void {
  if (!unknown.retriable) return;
  throw metadataUnavailable(
    `the default pool of namespace ${subject.namespace} (annotation ${POOL_ANNOTATION}) cannot be read: ${unknown.why}`,
    { namespace: subject.namespace, node: subject.node },
  );
}
