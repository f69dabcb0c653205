import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { networkSchema } from '../../shared/config/index.ts';
import { freePorts, Lab, runOk, skipReason, startService, tempDir, waitFor } from '../../test/lab/index.ts';
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

async function makeCerts(
  dir: string,
): Promise<Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>> {
  const f = (n: string) => join(dir, n);
  await runOk('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-subj',
    '/CN=nodeward-test-ca',
  ]);
  const sign = async (name: string, cn: string, ext: string) => {
    await writeFile(f(`${name}.ext`), ext);
    await runOk('openssl', [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
    ]);
    await runOk('openssl', [
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-out',
      f(`${name}.crt`),
      '-extfile',
      f(`${name}.ext`),
    ]);
  };
  await sign(
    'server',
    '127.0.0.1',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  await sign('client', 'nodeward', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}

describe.skipIf(reason)('etcd with TLS, client certificates and auth (real etcd)', () => {
  it('allocates with the right certificate and password; says why without them', async () => {
    const dir = await tempDir('etcd-tls', lab);
    const certs = await makeCerts(dir);
    const [clientPort, peerPort] = await freePorts(2);
    const clientUrl = `https://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const service = startService({
      lab,
      name: 'etcd-tls',
      dir,
      command: 'etcd',
      // biome-ignore format: one flag and its value per line
      args: [
        '--name', 'tls',
        '--data-dir', join(dir, 'data'),
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', `tls=${peerUrl}`,
        '--cert-file', certs.serverCert,
        '--key-file', certs.serverKey,
        '--trusted-ca-file', certs.ca,
        '--client-cert-auth',
        '--logger', 'zap',
      ],
    });
    const ctl = (args: string[], user?: string) =>
      runOk('etcdctl', [
        `--endpoints=${clientUrl}`,
        `--cacert=${certs.ca}`,
        `--cert=${certs.clientCert}`,
        `--key=${certs.clientKey}`,
        '--dial-timeout=2s',
        ...(user ? [`--user=${user}`] : []),
        ...args,
      ]);
    const answers = async () => {
      await ctl(['endpoint', 'health']);
      return true;
    };
    await waitFor(answers, {
      what: 'etcd with TLS healthy',
      timeoutMs: 20_000,
      services: [service],
    });
    const rootPw = randomBytes(8).toString('hex');
    const userPw = randomBytes(8).toString('hex');
    const prefix = '/nodeward-tls/';
    await ctl(['user', 'add', `root:${rootPw}`]);
    await ctl(['role', 'add', 'nodeward-ipam']);
    await ctl(['role', 'grant-permission', '--prefix=true', 'nodeward-ipam', 'readwrite', prefix]);
    await ctl(['user', 'add', `nodeward:${userPw}`]);
    await ctl(['user', 'grant-role', 'nodeward', 'nodeward-ipam']);
    await ctl(['auth', 'enable']);

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
