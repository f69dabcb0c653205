import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { selfSignedCertificate } from './certs.ts';
import { runOk } from './exec.ts';
import { startService } from './proc.ts';
import type { Lab } from './scope.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

/**
 * librdkafka's mock broker behind TLS. The mock only speaks plaintext and advertises
 * 127.0.0.1:<its port> in its metadata, so a client that bootstraps through a TLS front-end must
 * find TLS at that very address. The broker therefore runs in a network namespace of its own
 * (its 127.0.0.1:<port> is not ours), and in ours a TLS server listens on 127.0.0.1:<the same
 * port>, forwarding the decrypted stream over a veth pair to a plain forwarder inside the
 * namespace, which hands it to the broker. Every byte stays on loopback or in our namespace.
 */

export interface KafkaTls {
  /** host:port the clients use (TLS). */
  readonly broker: string;
  /** The TLS server's self-signed certificate: the CA file a client must trust. */
  readonly caFile: string;
  /** Every record of a topic, read with kcat over TLS (an independent client). */
  readTopic(topic: string): Promise<{ key: string | null; value: string | null }[]>;
}

const addressesOf = () => {
  // A random /30 in 10.231.0.0/16 for the veth pair.
  const base = randomInt(0, 1 << 14) * 4;
  const octets = (n: number) => `10.231.${n >> 8}.${n & 255}`;
  return { host: octets(base + 1), inner: octets(base + 2) };
};

export async function startKafkaTls({ lab }: { lab: Lab }): Promise<KafkaTls> {
  const dir = await tempDir('kafka-tls', lab);
  const id = randomBytes(3).toString('hex');
  const netns = `nwkt-${id}`;
  const [hostIf, innerIf] = [`nwkt${id}h`, `nwkt${id}i`];
  const { host, inner } = addressesOf();
  await runOk('ip', ['netns', 'add', netns]);
  lab.defer(`netns ${netns}`, () => runOk('ip', ['netns', 'del', netns]).then(() => {}));
  await runOk('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  await runOk('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', innerIf, 'netns', netns]);
  lab.defer(`veth ${hostIf}`, () =>
    runOk('ip', ['link', 'del', hostIf]).then(
      () => {},
      () => {},
    ),
  );
  await runOk('ip', ['addr', 'add', `${host}/30`, 'dev', hostIf]);
  await runOk('ip', ['link', 'set', hostIf, 'up']);
  await runOk('ip', ['-n', netns, 'addr', 'add', `${inner}/30`, 'dev', innerIf]);
  await runOk('ip', ['-n', netns, 'link', 'set', innerIf, 'up']);

  const broker = startService({
    lab,
    name: 'kcat-mock-tls',
    dir,
    command: 'ip',
    // biome-ignore format: one flag and its value per line
    args: [
      'netns', 'exec', netns,
      'kcat', '-b', '127.0.0.1:1', '-X', 'test.mock.num.brokers=1', '-C', '-t', 'keepalive', '-o', 'end', '-q',
    ],
  });
  const port = Number(
    await waitFor(
      async () => /replaced with 127\.0\.0\.1:(\d+)/.exec(await readFile(broker.logPath, 'utf8'))?.[1],
      {
        what: 'the mock broker in its namespace to announce its port',
        services: [broker],
      },
    ),
  );
  // Inside the namespace: the veth address → the broker on the namespace's loopback.
  const forward = `require('net').createServer((c) => { const u = require('net').connect(${port}, '127.0.0.1'); c.pipe(u).pipe(c); c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); }).listen(${port}, '${inner}', () => console.log('forwarding'))`;
  const forwarder = startService({
    lab,
    name: 'kafka-tls-forwarder',
    dir,
    command: 'ip',
    args: ['netns', 'exec', netns, process.execPath, '-e', forward],
  });
  await waitFor(async () => (await readFile(forwarder.logPath, 'utf8')).includes('forwarding'), {
    what: 'the forwarder in the namespace',
    services: [forwarder],
  });

  // Ours: TLS on 127.0.0.1:<port> → the forwarder.
  const caFile = join(dir, 'broker.crt');
  const keyFile = join(dir, 'broker.key');
  selfSignedCertificate(caFile, keyFile);
  const sockets = new Set<Socket>();
  const server = createTlsServer(
    { cert: readFileSync(caFile), key: readFileSync(keyFile) },
    (c: TLSSocket) => {
      const u = connect(port, inner);
      sockets.add(c).add(u);
      c.pipe(u).pipe(c);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
      c.on('close', () => sockets.delete(c));
      u.on('close', () => sockets.delete(u));
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  lab.defer('kafka TLS front-end', async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const bootstrap = `127.0.0.1:${port}`;
  return {
    broker: bootstrap,
    caFile,
    async readTopic(topic) {
      // biome-ignore format: one flag and its value per line
      const out = await runOk('kcat', [
        '-C', '-b', bootstrap, '-X', 'security.protocol=ssl', '-X', `ssl.ca.location=${caFile}`,
        '-t', topic, '-o', 'beginning', '-e', '-J', '-q',
      ]);
      return out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => {
          const e = JSON.parse(l) as { key: string | null; payload: string | null };
          return { key: e.key, value: e.payload };
        });
    },
  };
}
