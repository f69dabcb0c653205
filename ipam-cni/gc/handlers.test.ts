import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CniRequest } from '../cni/protocol.ts';
import { CniHandlers } from '../cni/server/handlers.ts';
import { Ipam } from '../ipam/ipam.ts';
import { addPool } from '../ipam/pools.ts';
import { handleRecordSchema, parseRecord } from '../ipam/records.ts';
import type { NetnsRunner } from '../net/exec.ts';
import type { Segments } from '../net/segment.ts';
import { MemoryStore } from '../store/memory.ts';
import type { Commit, CommitResult } from '../store/store.ts';
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
    handlers.onValidAttachments = (network, list) => seen.push([network, ...list.map((a) => a.containerID)]);
    const valid = [{ containerID: 'alive', ifname: 'eth0' }];
    await handlers.gc(request('GC', '', '', conf({ 'cni.dev/valid-attachments': valid })));
    expect(seen).toEqual([['net', 'alive']]);
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

  it("GC of one network releases only its own attachments, never another network's nor an ADD in flight", async () => {
    const store = new GatedStore();
    await addPool(store, { name: 'p', cidr: '10.3.0.0/28', gateway: '10.3.0.1' });
    const handlers = new CniHandlers({
      ipam: new Ipam({ store }),
      store,
      segments: { predict: () => undefined } as unknown as Segments,
      host: {} as NetnsRunner,
      node: 'n1',
      journalDir: '/nonexistent',
    });
    const other = conf({ name: 'other' });
    await handlers.add(request('ADD', 'mine', '/proc/self/ns/net'));
    await handlers.add(request('ADD', 'theirs', '/proc/self/ns/net', other));
    // A record from before networks were recorded: no network of ours can judge it.
    await new Ipam({ store }).allocate({
      containerID: 'legacy',
      ifName: 'eth0',
      pod: 'old',
      namespace: 'ns',
      node: 'n1',
      pool: 'p',
    });
    const stored = async (id: string) =>
      parseRecord(handleRecordSchema, (await store.get([`handles/${id}/eth0`])).get(`handles/${id}/eth0`)!);
    expect((await stored('mine')).network).toBe('net');
    expect((await stored('theirs')).network).toBe('other');

    // An ADD whose address is written but which has not answered yet.
    let open!: () => void;
    store.gate = new Promise<void>((r) => {
      open = r;
    });
    const inFlight = handlers.add(request('ADD', 'flying', '/proc/self/ns/net'));
    while (!(await store.get(['handles/flying/eth0'])).has('handles/flying/eth0'))
      await new Promise((r) => setTimeout(r, 5));

    // The runtime lists nothing valid on "net": only net's answered attachments go.
    store.gate = undefined;
    await handlers.gc(request('GC', '', '', conf({ 'cni.dev/valid-attachments': [] })));
    open();
    await inFlight;
    expect((await store.list('handles/')).entries.map((e) => e.key).sort()).toEqual([
      'handles/flying/eth0',
      'handles/legacy/eth0',
      'handles/theirs/eth0',
    ]);
  });

  it("containerd's second DEL (RemovePodSandbox: empty CNI_NETNS, no prevResult) succeeds and frees nothing twice", async () => {
    const store = new MemoryStore();
    await addPool(store, { name: 'p', cidr: '10.3.0.0/28', gateway: '10.3.0.1' });
    const journalDir = mkdtempSync(join(tmpdir(), 'nw-deldel-'));
    const handlers = new CniHandlers({
      ipam: new Ipam({ store }),
      store,
      segments: { predict: () => undefined } as unknown as Segments,
      host: {} as NetnsRunner,
      node: 'n1',
      journalDir,
    });
    try {
      const withUid = (containerID: string, uid: string): CniRequest => ({
        ...request('ADD', containerID, '/proc/self/ns/net'),
        args: `IgnoreUnknown=1;K8S_POD_UID=${uid};K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=${containerID}`,
      });
      const first = await handlers.add(withUid('sandbox1', 'uid-1'));
      const record = parseRecord(
        handleRecordSchema,
        (await store.get(['handles/sandbox1/eth0'])).get('handles/sandbox1/eth0')!,
      );
      expect(record).toMatchObject({ network: 'net', podUid: 'uid-1', netns: '/proc/self/ns/net' });
      // StopPodSandbox: DEL with the netns and the prevResult.
      await handlers.del({
        ...withUid('sandbox1', 'uid-1'),
        command: 'DEL',
        config: conf({ prevResult: first }),
      });
      await handlers.teardowns.idle();
      // The same pod re-created (a new sandbox, a new UID) takes the freed address meanwhile.
      const second = await handlers.add(withUid('sandbox2', 'uid-2'));
      expect(JSON.stringify(second)).toBe(JSON.stringify(first).replace(/sandbox1/g, 'sandbox2'));
      // RemovePodSandbox of the old sandbox: DEL again, no netns, no prevResult.
      await handlers.del({ ...withUid('sandbox1', 'uid-1'), command: 'DEL', netns: '' });
      await handlers.teardowns.idle();
      const left = await store.list('handles/');
      expect(left.entries.map((e) => e.key)).toEqual(['handles/sandbox2/eth0']);
      expect(parseRecord(handleRecordSchema, left.entries[0]!)).toMatchObject({ podUid: 'uid-2' });
      expect(readdirSync(journalDir)).toEqual([]);
    } finally {
      rmSync(journalDir, { recursive: true, force: true });
    }
  });
});

/** A store whose commit of the handle "flying", once applied, waits for `gate`: an ADD held after its write, before its answer. */
class GatedStore extends MemoryStore {
  gate: Promise<void> | undefined;
  override async commit(commit: Commit): Promise<CommitResult> {
    const result = await super.commit(commit);
    if (this.gate && result.ok && commit.writes.some((w) => w.key === 'handles/flying/eth0')) await this.gate;
    return result;
  }
}
