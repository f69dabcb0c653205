import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from './exec.ts';
import { freePorts } from './ports.ts';
import { type Service, startService } from './proc.ts';
import type { Lab } from './scope.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

/**
 * etcd as production runs it: TLS with a CA made here (openssl), a client certificate it demands
 * (--client-cert-auth), and authentication on: root, and a user `nodeward` whose role covers only
 * one prefix. One member.
 */

export interface EtcdCerts {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export interface SecureEtcd {
  /** https://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly certs: EtcdCerts;
  readonly rootPassword: string;
  /** The user nodeward, limited to `prefix`. */
  readonly username: string;
  readonly password: string;
  readonly prefix: string;
  readonly service: Service;
  /** etcdctl with the CA and client certificate (and `user:password` when given). */
  ctl(args: string[], user?: string): Promise<string>;
}

export async function makeEtcdCerts(dir: string): Promise<EtcdCerts> {
  const f = (n: string) => join(dir, n);
  // biome-ignore format: one flag and its value per line
  await runOk('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-keyout', f('ca.key'), '-out', f('ca.crt'), '-subj', '/CN=nodeward-test-ca',
  ]);
  const sign = async (name: string, cn: string, ext: string) => {
    await writeFile(f(`${name}.ext`), ext);
    // biome-ignore format: one flag and its value per line
    await runOk('openssl', [
      'req', '-newkey', 'rsa:2048', '-nodes',
      '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`,
    ]);
    // biome-ignore format: one flag and its value per line
    await runOk('openssl', [
      'x509', '-req', '-in', f(`${name}.csr`),
      '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1',
      '-out', f(`${name}.crt`), '-extfile', f(`${name}.ext`),
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

export async function startSecureEtcd(opts: { lab: Lab; prefix?: string }): Promise<SecureEtcd> {
  const { lab } = opts;
  const prefix = opts.prefix ?? '/nodeward/';
  const dir = await tempDir('etcd-tls', lab);
  const certs = await makeEtcdCerts(dir);
  const [clientPort, peerPort] = await freePorts(2);
  const endpoint = `https://127.0.0.1:${clientPort}`;
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
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
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
      `--endpoints=${endpoint}`,
      `--cacert=${certs.ca}`,
      `--cert=${certs.clientCert}`,
      `--key=${certs.clientKey}`,
      '--dial-timeout=2s',
      ...(user ? [`--user=${user}`] : []),
      ...args,
    ]);
  await waitFor(
    async () => {
      await ctl(['endpoint', 'health']);
      return true;
    },
    { what: 'etcd with TLS healthy', timeoutMs: 20_000, services: [service] },
  );
  const rootPassword = randomBytes(8).toString('hex');
  const password = randomBytes(8).toString('hex');
  await ctl(['user', 'add', `root:${rootPassword}`]);
  await ctl(['role', 'add', 'nodeward-ipam']);
  await ctl(['role', 'grant-permission', '--prefix=true', 'nodeward-ipam', 'readwrite', prefix]);
  await ctl(['user', 'add', `nodeward:${password}`]);
  await ctl(['user', 'grant-role', 'nodeward', 'nodeward-ipam']);
  await ctl(['auth', 'enable']);
  return { endpoint, certs, rootPassword, username: 'nodeward', password, prefix, service, ctl };
}
