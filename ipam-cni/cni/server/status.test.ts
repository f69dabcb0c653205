import { describe, expect, it } from 'vitest';
import { Ipam } from '../../ipam/ipam.ts';
import { addPool } from '../../ipam/pools.ts';
import { usageReport } from '../../ipam/usage.ts';
import { MemoryStore } from '../../store/memory.ts';
import { CniError } from '../spec.ts';
import type { HandlerDeps } from './handler-deps.ts';
import { networkStatus } from './status.ts';

const statusOf = async (deps: Partial<HandlerDeps>) => {
  try {
    await networkStatus(deps as HandlerDeps);
    return { code: 0 };
  } catch (err) {
    return err instanceof CniError ? { code: err.code, msg: err.message } : { code: -1, msg: String(err) };
  }
};

describe('STATUS', () => {
  it('answers 50 while the network pool is full, 0 again once an address is free', async () => {
    const store = new MemoryStore();
    // A /29 with its gateway: 5 addresses for pods.
    await addPool(store, { name: 'small', cidr: '10.9.0.0/29', gateway: '10.9.0.1' });
    const ipam = new Ipam({ store });
    let usage = await usageReport(store);
    const deps = { store, defaultPool: 'small', poolUsage: () => usage };
    const total = Number(usage[0]!.total);
    for (let i = 0; i < total; i++) {
      expect(await statusOf(deps)).toEqual({ code: 0 });
      await ipam.allocate({
        containerID: `c${i}`,
        ifName: 'eth0',
        pod: `p${i}`,
        namespace: 'ns',
        node: 'n1',
        pool: 'small',
      });
      usage = await usageReport(store);
    }
    expect(await statusOf(deps)).toEqual({
      code: 50,
      msg: `pool small is full: ${total} of ${total} addresses in use`,
    });
    // Another pool being full is not this network's business.
    expect(await statusOf({ ...deps, defaultPool: 'other' })).toEqual({ code: 0 });
    await ipam.release('c0', 'eth0');
    usage = await usageReport(store);
    expect(await statusOf(deps)).toEqual({ code: 0 });
  });

  it('answers 50 when the store does not answer in time', async () => {
    const store = new MemoryStore();
    const stuck = { ...store, list: () => new Promise<never>(() => {}) } as unknown as MemoryStore;
    expect(await statusOf({ store: stuck, statusTimeoutMs: 50 })).toEqual({
      code: 50,
      msg: 'the IPAM store is unreachable: no answer within 50 ms',
    });
  });
});
