import type { Allocation } from '../../ipam/ipam.ts';
import type { CniVersion } from '../spec.ts';

/**
 * CNI results in the shape of the requested version. 1.0.0 and 1.1.0 share one shape here (1.1.0
 * only adds optional fields); 0.4.0 has `version` on each IP.
 */

export interface ResultInterface {
  name: string;
  mac: string;
  sandbox?: string;
  mtu?: number;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: ResultInterface[];
  ips: { address: string; gateway?: string; interface?: number; version?: '4' | '6' }[];
  routes: { dst: string; gw?: string }[];
  dns: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

const DEFAULT_ROUTE = { 4: '0.0.0.0/0', 6: '::/0' } as const;

/** The routes a pod gets: default via the pool gateway, then the pool's own. */
export function podRoutes(a: Allocation): { dst: string; gw?: string }[] {
  return [
    ...(a.gateway ? [{ dst: DEFAULT_ROUTE[a.family], gw: a.gateway }] : []),
    ...a.routes.map((r) => ({ dst: r.dst, ...(r.gw ? { gw: r.gw } : {}) })),
  ];
}

export function buildResult(
  version: CniVersion,
  a: Allocation,
  interfaces: ResultInterface[] | undefined,
): CniResult {
  const containerIndex = interfaces ? interfaces.findIndex((i) => i.sandbox !== undefined) : -1;
  const ip = {
    ...(version === '0.4.0' ? { version: String(a.family) as '4' | '6' } : {}),
    address: `${a.ip}/${a.prefixLength}`,
    ...(a.gateway ? { gateway: a.gateway } : {}),
    ...(containerIndex >= 0 ? { interface: containerIndex } : {}),
  };
  const dns = a.dns
    ? {
        ...(a.dns.nameservers.length ? { nameservers: a.dns.nameservers } : {}),
        ...(a.dns.domain ? { domain: a.dns.domain } : {}),
        ...(a.dns.search.length ? { search: a.dns.search } : {}),
        ...(a.dns.options.length ? { options: a.dns.options } : {}),
      }
    : {};
  return {
    cniVersion: version,
    ...(interfaces ? { interfaces } : {}),
    ips: [ip],
    routes: podRoutes(a),
    dns,
  };
}
