import { NodewardError } from '../../shared/errors.ts';
import { cidrContains, formatCidr, parseIp } from './addr.ts';
import { type Pool, unusableReason } from './pool.ts';
import { type Labels, selectorMismatch } from './selector.ts';

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
 */

export const POOL_ANNOTATION = 'nodeward.io/ipam-pool';
export const IP_ANNOTATION = 'nodeward.io/ip';

export interface PoolSelection {
  /** Pod annotation nodeward.io/ipam-pool. */
  readonly annotationPool?: string | undefined;
  /** runtimeConfig.ips[0] or pod annotation nodeward.io/ip. */
  readonly requestedIP?: string | undefined;
  /** Namespace annotation nodeward.io/ipam-pool. */
  readonly namespacePool?: string | undefined;
  /** The CNI network config's pool. */
  readonly networkPool?: string | undefined;
}

export interface Subject {
  readonly namespace: string;
  readonly node: string;
  readonly namespaceLabels: Labels;
  readonly nodeLabels: Labels;
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

/** Why `pool` may not serve `subject`, or undefined. */
export function admissionProblem(pool: Pool, subject: Subject): string | undefined {
  const ns = selectorMismatch(pool.spec.namespaceSelector, subject.namespaceLabels);
  if (ns) return `its namespaceSelector does not admit namespace ${subject.namespace}: ${ns}`;
  const node = selectorMismatch(pool.spec.nodeSelector, subject.nodeLabels);
  if (node) return `its nodeSelector does not admit node ${subject.node}: ${node}`;
  return undefined;
}

export function checkAdmitted(pool: Pool, subject: Subject, source: Source): void {
  const problem = admissionProblem(pool, subject);
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
    const preferred = [selection.namespacePool, selection.networkPool].find((n) =>
      holding.some((p) => p.name === n),
    );
    if (preferred !== undefined) return finish(holding.find((p) => p.name === preferred)!, 'requested-ip');
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
  if (selection.namespacePool !== undefined)
    return finish(named(pools, selection.namespacePool, 'namespace'), 'namespace');
  if (selection.networkPool !== undefined)
    return finish(named(pools, selection.networkPool, 'network'), 'network');
  throw new NodewardError(
    'POOL_NOT_FOUND',
    `no pool for pod in namespace ${subject.namespace}: set the pod annotation ${POOL_ANNOTATION}, a namespace default, or the network config's pool`,
  );
}
