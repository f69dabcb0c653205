import { CNI } from '../../../shared/errors.ts';
import { poolsPrefix } from '../../ipam/keys.ts';
import { CniError } from '../spec.ts';
import type { HandlerDeps } from './handler-deps.ts';

/**
 * STATUS: available while the IPAM store answers in time, the network's pool has a free address
 * (as of the last usage read) and every segment's links are up.
 */
export async function networkStatus(deps: HandlerDeps): Promise<void> {
  const timeout = deps.statusTimeoutMs ?? 2000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      deps.store.list(poolsPrefix),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
      }),
    ]);
  } catch (err) {
    throw new CniError(CNI.notAvailable, `the IPAM store is unreachable: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  const pool =
    deps.defaultPool === undefined ? undefined : deps.poolUsage?.()?.find((u) => u.pool === deps.defaultPool);
  if (pool && BigInt(pool.used + pool.kept) >= BigInt(pool.total)) {
    throw new CniError(
      CNI.notAvailable,
      `pool ${pool.pool} is full: ${pool.used} of ${pool.total} addresses in use${pool.kept ? `, ${pool.kept} kept for sticky pods` : ''}`,
    );
  }
  const broken = (deps.health?.() ?? []).filter((h) => !h.bridgeUp || !h.uplinkUp);
  if (broken.length > 0) {
    throw new CniError(
      CNI.notAvailable,
      `segment links are down: ${broken.map((h) => `${h.segment} (${h.bridge}${h.uplink ? `, ${h.uplink}` : ''})`).join(', ')}`,
    );
  }
}
