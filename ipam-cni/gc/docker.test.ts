import { afterAll, describe, expect, it } from 'vitest';
import { importBusybox, Lab, skipReason, startDockerd } from '../../test/lab/index.ts';
import { Ipam } from '../ipam/ipam.ts';
import { addPool } from '../ipam/pools.ts';
import { MemoryStore } from '../store/memory.ts';
import { dockerSource, netnsSource } from './liveness.ts';
import { NodeGc } from './node.ts';

/** The Docker liveness source against a private dockerd: a container Docker lists is never collected. */

const reason = skipReason({ root: true, binaries: ['dockerd', 'containerd', 'busybox', 'tar', 'umount'] });
if (reason) console.warn(`[lab] IPAM GC docker test skipped: ${reason} (install docker.io busybox-static)`);

const lab = new Lab();
afterAll(() => lab.cleanup());

describe.skipIf(reason)('IPAM GC with Docker as a liveness source', () => {
  it('keeps an address whose container Docker still lists, even with its netns gone', async () => {
    const dockerd = await startDockerd({ lab });
    await importBusybox(dockerd.socketPath);
    // Created, not running: Docker still knows it (a restarting container has no netns for a while).
    const id = (await dockerd.docker(['create', '--network', 'none', 'local/busybox', 'true'])).trim();
    const store = new MemoryStore();
    await addPool(store, { name: 'p', cidr: '10.4.0.0/28', gateway: '10.4.0.1' });
    const ipam = new Ipam({ store });
    const base = { ifName: 'eth0', pod: 'p', namespace: 'ns', node: 'n1', pool: 'p' };
    await ipam.allocate({ ...base, containerID: id, netns: '/proc/self/ns/gone-a' });
    await ipam.allocate({ ...base, containerID: 'f'.repeat(64), netns: '/proc/self/ns/gone-b' });
    let t = 0;
    const gc = new NodeGc({
      store,
      node: 'n1',
      graceMs: 1000,
      sources: [netnsSource(), dockerSource(dockerd.socketPath)],
      now: () => t,
    });
    await gc.round();
    t = 1000;
    expect((await gc.round()).released).toEqual([`handles/${'f'.repeat(64)}/eth0`]);
    expect((await store.list('handles/')).entries.map((e) => e.key)).toEqual([`handles/${id}/eth0`]);
    // Once Docker forgets it, the netns evidence stands alone and it goes too.
    await dockerd.docker(['rm', '--force', id]);
    await gc.round();
    t = 2000;
    expect((await gc.round()).released).toEqual([`handles/${id}/eth0`]);
    // A socket that does not exist says nothing (and does not fail the round).
    const none = dockerSource('/nonexistent/docker.sock');
    expect(await none.snapshot()).toBeUndefined();
  }, 120_000);
});
