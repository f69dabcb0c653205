import { afterAll, describe, expect, it } from 'vitest';
import { networkSchema } from '../../shared/config/index.ts';
import { startSecureEtcd } from '../../test/lab/etcd-tls.ts';
import { Lab, skipReason, tempDir } from '../../test/lab/index.ts';
import { Presence } from '../gc/presence.ts';
import { Ipam } from '../ipam/ipam.ts';
import { addPool } from '../ipam/pools.ts';
import type { EtcdStore } from './etcd.ts';
import { openIpamStore } from './open.ts';
import type { Store } from './store.ts';

/**
 * The etcd connection as production runs it: TLS with a CA the test makes (openssl), a client
 * certificate etcd demands (--client-cert-auth), authentication on (root + a user whose role
 * covers only nodeward's prefix) — and the store opened from network.etcd.* config, as the agent
 * opens it.
 */

const reason = skipReason({ binaries: ['etcd', 'etcdctl', 'openssl'] });
if (reason)
  console.warn(`[lab] etcd TLS/auth test skipped: ${reason} (install etcd-server etcd-client openssl)`);

const lab = new Lab();
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close().catch(() => undefined);
  await lab.cleanup();
});

describe.skipIf(reason)('etcd with TLS, client certificates and auth (real etcd)', () => {
  it('allocates with the right certificate and password; says why without them', async () => {
    const secure = await startSecureEtcd({ lab, prefix: '/nodeward-tls/' });
    const { certs, ctl, prefix } = secure;
    const clientUrl = secure.endpoint;
    const rootPw = secure.rootPassword;
    const userPw = secure.password;
    const dir = await tempDir('etcd-tls-store', lab);

    const open = async (etcd: Record<string, unknown>) => {
      const network = networkSchema.parse({
        enabled: true,
        ipam: { store: 'etcd' },
        etcd: { endpoints: [clientUrl], prefix, dialTimeout: '2s', requestTimeout: '3s', ...etcd },
      });
      const s = await openIpamStore({ dataDir: dir, network });
      stores.push(s);
      return s;
    };
    const tls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };

    // As production runs it: CA, client certificate, user and password from network.etcd.*.
    const store = await open({ tls, username: 'nodeward', password: userPw });
    await addPool(store, { name: 'secure', cidr: '10.77.0.0/28', gateway: '10.77.0.1' });
    const ipam = new Ipam({ store });
    const a = await ipam.allocate({
      containerID: 'c1',
      ifName: 'eth0',
      pod: 'p',
      namespace: 'ns',
      node: 'n1',
      pool: 'secure',
    });
    expect(a.ip).toBe('10.77.0.2');
    // Leases and the GC election work through the same authenticated client.
    const presence = new Presence(store as EtcdStore, 'n1', 5);
    expect(await presence.tryLead()).toBe(true);
    await presence.close();
    // Read back by another client: the record is in etcd under the prefix.
    expect(
      await ctl(['get', '--prefix', '--keys-only', `${prefix}ipam/v1/handles/`], `root:${rootPw}`),
    ).toContain('handles/c1/eth0');

    // A wrong password: STORE_DENIED, which says what to check.
    const denied = await open({ tls, username: 'nodeward', password: 'wrong' });
    await expect(denied.list('pools/')).rejects.toMatchObject({
      code: 'STORE_DENIED',
      message: expect.stringContaining('network.etcd.username/password'),
    });
    // Outside its role's prefix: refused as well.
    const outside = await open({ tls, username: 'nodeward', password: userPw });
    await expect(
      (outside as EtcdStore).call('read', () => (outside as EtcdStore).client.get('/elsewhere/x').string()),
    ).rejects.toMatchObject({ code: 'STORE_DENIED' });
    // No client certificate: the TLS handshake fails; the error names the endpoint, not a hang.
    const noCert = await open({ tls: { ca: certs.ca }, username: 'nodeward', password: userPw });
    const err = await noCert.list('pools/').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: expect.stringMatching(/^STORE_(UNAVAILABLE|DENIED)$/) });
    expect((err as Error).message).toContain(clientUrl.replace('https://', ''));
    expect((err as Error).message).toContain('network.etcd.tls.cert');
  }, 60_000);
});
