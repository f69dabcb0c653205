import { describe, expect, it } from 'vitest';
import type { CniRequest } from '../cni/protocol.ts';
import { CniHandlers } from '../cni/server/handlers.ts';
import { Ipam } from '../ipam/ipam.ts';
import { addPool } from '../ipam/pools.ts';
import { handleRecordSchema, parseRecord } from '../ipam/records.ts';
import type { NetnsRunner } from '../net/exec.ts';
import type { Segments } from '../net/segment.ts';
import { MemoryStore } from '../store/memory.ts';
import { netnsSource } from './liveness.ts';
import { NodeGc } from './node.ts';

/** What the node GC needs from the CNI verbs: the netns on the ADD's record, the runtime's valid list. */

const conf = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: '1.1.0',
    name: 'net',
    type: 'macvlan',
    ipam: { type: 'nodeward', pool: 'p' },
    ...extra,
  });

const request = (
  command: CniRequest['command'],
  containerID: string,
  netns: string,
  config = conf(),
): CniRequest => ({
  v: 1,
  command,
  containerID,
  netns,
  ifName: 'eth0',
  args: 'K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod',
  path: '/opt/cni/bin',
  config,
});

describe('CNI verbs feeding the IPAM GC', () => {
  it('ADD records the netns; GC passes the valid attachments on; the node GC frees what neither shows alive', async () => {
    const store = new MemoryStore();
    await addPool(store, { name: 'p', cidr: '10.3.0.0/28', gateway: '10.3.0.1' });
    const ipam = new Ipam({ store });
    const handlers = new CniHandlers({
      ipam,
      store,
      segments: { predict: () => undefined } as unknown as Segments,
      host: {} as NetnsRunner,
      node: 'n1',
      journalDir: '/nonexistent',
    });
    await handlers.add(request('ADD', 'alive', '/proc/self/ns/net'));
    await handlers.add(request('ADD', 'dead', '/proc/self/ns/gone-dead'));
    const h = (await store.get(['handles/alive/eth0'])).get('handles/alive/eth0')!;
    expect(parseRecord(handleRecordSchema, h).netns).toBe('/proc/self/ns/net');

    const seen: string[][] = [];
    handlers.onValidAttachments = (list) => seen.push(list.map((a) => a.containerID));
    const valid = [{ containerID: 'alive', ifname: 'eth0' }];
    await handlers.gc(request('GC', '', '', conf({ 'cni.dev/valid-attachments': valid })));
    expect(seen).toEqual([['alive']]);
    // The GC verb itself already released "dead" (the runtime did not list it).
    expect((await store.list('handles/')).entries.map((e) => e.key)).toEqual(['handles/alive/eth0']);

    // Without a GC verb, the node GC finds the same leak through the netns, two observations apart.
    await handlers.add(request('ADD', 'dead', '/proc/self/ns/gone-dead'));
    let t = 0;
    const gc = new NodeGc({ store, node: 'n1', graceMs: 1000, sources: [netnsSource()], now: () => t });
    expect((await gc.round()).released).toEqual([]);
    t = 1000;
    expect((await gc.round()).released).toEqual(['handles/dead/eth0']);
    expect((await store.list('handles/')).entries.map((e) => e.key)).toEqual(['handles/alive/eth0']);
  });
});
