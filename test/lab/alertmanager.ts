import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { selfSignedCertificate } from './certs.ts';
import { freePort } from './ports.ts';
import { type Service, startService } from './proc.ts';
import type { Lab } from './scope.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

/** The basic-auth user of an Alertmanager started with `basicAuth: true`. */
export const ALERTMANAGER_LAB_USER = { username: 'nodeward', password: 'nodeward-lab' };
// bcrypt of the password at cost 4 (Alertmanager's web config takes only hashes; cost 4 keeps
// each request fast). Made with Python's crypt.crypt(password, mksalt(METHOD_BLOWFISH, rounds=16)).
const LAB_PASSWORD_BCRYPT = '$2b$04$fxRMfY1/DetOQsQZHfs8o.giWOWc7WJ1DG9P07/PylDkyE5rGTiYe';

export interface AlertmanagerOptions {
  lab: Lab;
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (its file is `caFile`). */
  tls?: boolean;
  /** Require HTTP basic auth as ALERTMANAGER_LAB_USER. */
  basicAuth?: boolean;
}

/** An alert as GET /api/v2/alerts returns it (gettableAlert). */
export interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  status: { state: 'active' | 'suppressed' | 'unprocessed' };
}

/** One webhook notification Alertmanager sent (its webhook payload, version 4). */
export interface AmNotification {
  status: 'firing' | 'resolved';
  alerts: {
    status: 'firing' | 'resolved';
    labels: Record<string, string>;
    annotations: Record<string, string>;
  }[];
}

export interface Alertmanager {
  /** Base URL (http:// or https://127.0.0.1:<port>). */
  readonly url: string;
  /** The self-signed certificate with `tls: true`: the CA file a client must trust. */
  readonly caFile: string | undefined;
  readonly service: Service;
  /** GET /api/v2/alerts: the alerts it holds as active (a resolved alert is no longer listed). */
  alerts(): Promise<AmAlert[]>;
  /**
   * Every notification it has sent so far, to a webhook receiver of the lab: firing and, with
   * send_resolved, resolved — Alertmanager's own view of an alert's life, after grouping.
   */
  readonly notifications: readonly AmNotification[];
  stop(): Promise<void>;
}

/**
 * Debian's prometheus-alertmanager (0.25) on a free port, clustering off, routing every alert in a
 * group of its own to a webhook receiver of ours within about a second (group_wait 0s,
 * group_interval 1s), resolved ones included.
 */
export async function startAlertmanager(opts: AlertmanagerOptions): Promise<Alertmanager> {
  const { lab } = opts;
  const dir = await tempDir('alertmanager', lab);

  const notifications: AmNotification[] = [];
  const webhook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      notifications.push(JSON.parse(Buffer.concat(chunks).toString()) as AmNotification);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  lab.defer('alertmanager webhook', () => new Promise((resolve) => webhook.close(resolve)));
  const hook = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/`;

  const configFile = join(dir, 'alertmanager.yml');
  // JSON is YAML.
  await writeFile(
    configFile,
    JSON.stringify({
      route: {
        receiver: 'lab',
        group_by: ['...'],
        group_wait: '0s',
        group_interval: '1s',
        repeat_interval: '1h',
      },
      receivers: [{ name: 'lab', webhook_configs: [{ url: hook, send_resolved: true }] }],
    }),
  );
  const web: Record<string, unknown> = {};
  let caFile: string | undefined;
  if (opts.tls) {
    caFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    selfSignedCertificate(caFile, keyFile);
    web['tls_server_config'] = { cert_file: caFile, key_file: keyFile };
  }
  if (opts.basicAuth) web['basic_auth_users'] = { [ALERTMANAGER_LAB_USER.username]: LAB_PASSWORD_BCRYPT };
  const webFile = join(dir, 'web.yml');
  await writeFile(webFile, JSON.stringify(web));

  const port = await freePort();
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const service = startService({
    lab,
    name: 'alertmanager',
    dir,
    command: 'prometheus-alertmanager',
    args: [
      `--config.file=${configFile}`,
      `--web.config.file=${webFile}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // No gossip: one instance is one Alertmanager, as each member of an HA pair is to a sender.
      '--cluster.listen-address=',
    ],
  });
  const ca = caFile ? readFileSync(caFile) : undefined;
  const auth = opts.basicAuth
    ? `Basic ${Buffer.from(`${ALERTMANAGER_LAB_USER.username}:${ALERTMANAGER_LAB_USER.password}`).toString('base64')}`
    : undefined;
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const target = new URL(path, url);
    const options = { headers: auth ? { authorization: auth } : {}, timeout: 2000, ...(ca ? { ca } : {}) };
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, options, resolve);
      req.once('error', reject).once('timeout', () => req.destroy(new Error(`GET ${target} timed out`)));
      req.end();
    });
    let body = '';
    for await (const chunk of res) body += String(chunk);
    return { status: res.statusCode ?? 0, body };
  };
  await waitFor(async () => (await get('/-/ready')).status === 200, {
    what: `alertmanager ready at ${url}`,
    timeoutMs: 20_000,
    services: [service],
  });

  return {
    url,
    caFile,
    service,
    notifications,
    async alerts() {
      const { status, body } = await get('/api/v2/alerts');
      if (status !== 200) throw new Error(`GET ${url}/api/v2/alerts answered ${status}: ${body}`);
      return JSON.parse(body) as AmAlert[];
    },
    stop: async () => {
      await service.stop();
    },
  };
}
