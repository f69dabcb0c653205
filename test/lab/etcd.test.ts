import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import { skipReason } from './bin.ts';
import { startEtcd } from './etcd.ts';
import { Lab } from './scope.ts';
import { waitFor } from './wait.ts';

const reason = skipReason({ binaries: ['etcd', 'etcdctl'] });
if (reason) console.warn(`[lab] etcd tests skipped: ${reason} (install etcd-server etcd-client)`);

describe('etcd lab', () => {
  const lab = new Lab();
  const clients: Etcd3[] = [];
  const client = (hosts: string[]) => {
    const c = new Etcd3({ hosts });
    clients.push(c);
    return c;
  };
  afterAll(async () => {
    for (const c of clients) c.close();
    await lab.cleanup();
  });

  it.skipIf(reason)('one member: a put is read back through etcd3', async () => {
    const etcd = await startEtcd({ lab, members: 1 });
    const c = client(etcd.endpoints);
    await c.put('/lab/one').value('v1');
    expect(await c.get('/lab/one').string()).toBe('v1');
    await etcd.stop();
  });

  it.skipIf(reason)('three members: writes go on without the killed leader, which rejoins', async () => {
    const etcd = await startEtcd({ lab, members: 3 });
    const c = client(etcd.endpoints);
    await c.put('/lab/before').value('1');

    const leader = await etcd.leader();
    await etcd.kill(leader);
    expect(etcd.member(leader).service?.exitStatus?.signal).toBe('SIGKILL');
    const next = await waitFor(
      async () => {
        const current = await etcd.leader();
        return current !== leader && current;
      },
      {
        what: 'the survivors to elect a new leader',
        timeoutMs: 15_000,
      },
    );
    expect(next).not.toBe(leader);
    await c.put('/lab/during').value('2');

    await etcd.restart(leader);
    // A linearizable read served by the restarted member alone returns the write it missed only
    // once it is back in the cluster and has caught up.
    const solo = client([etcd.endpoints[leader]!]);
    expect(await solo.get('/lab/during').string()).toBe('2');
    const status = await etcd.status();
    expect(status.map((s) => s.index).sort()).toEqual([0, 1, 2]);
    expect(new Set(status.map((s) => s.leaderId)).size).toBe(1);
  });
});
