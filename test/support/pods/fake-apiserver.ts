import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import type { V1Pod } from '../../../shared/pods/pod.ts';
import { selfSignedCertificate } from '../../lab/certs.ts';
import { type FakePodSpec, v1Pod } from './fake-kubelet.ts';

/**
 * For tests only: a stand-in for the API server's core/v1 pods collection (there is no
 * kube-apiserver in the test lab), answering what the real one answers to an agent:
 *
 * - `GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`: a PodList
 *   (`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"<rv>"},"items":[…]}`),
 *   filtered by the field selector when one is given (all pods otherwise, as the real server);
 * - the same with `watch=true&resourceVersion=<rv>`: a chunked stream of one JSON object per line,
 *   `{"type":"ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK","object":{…Pod…}}`, first every event after
 *   <rv>, then live ones, ended after `timeoutSeconds`; bookmarks (`allowWatchBookmarks=true`)
 *   carry only `metadata.resourceVersion`; a version older than the server's window gets
 *   `{"type":"ERROR","object":{"kind":"Status",…,"reason":"Expired","code":410}}` and the end;
 * - a bearer token (401 with a Status body otherwise), over HTTPS with a self-signed certificate.
 *
 * Every change bumps one cluster-wide resourceVersion, as etcd's revision does.
 */

export interface FakeApiServer {
  /** Base URL, e.g. https://127.0.0.1:PORT */
  readonly url: string;
  readonly tokenFile: string;
  readonly caFile: string;
  /** The `pods` config section that reads it, plus `extra` keys under pods.apiserver. */
  podsConfig(extra?: Record<string, unknown>): {
    source: 'apiserver';
    apiserver: { url: string; tokenFile: string; caFile: string } & Record<string, unknown>;
  };
  /** Requests answered so far, by kind, and the resourceVersion each watch started from. */
  readonly requests: { list: number; watch: number; watchFrom: string[]; listFrom: string[] };
  /** The cluster's current resourceVersion. */
  readonly resourceVersion: string;
  /** Watches open now. */
  readonly watching: number;
  mode: 'ok' | 'down' | 'unauthorized';
  add(spec: FakePodSpec): V1Pod;
  /** A MODIFIED event after `change` edited the stored pod. */
  update(uid: string, change: (pod: V1Pod) => void): void;
  /** A DELETED event; the pod is gone from lists. */
  remove(uid: string): void;
  /** Sends a BOOKMARK to every open watch. */
  bookmark(): void;
  /** Forgets the event history: watches from any version older than the current one get 410 Expired. */
  compact(): void;
  /** Writes a line that is not a watch event to every open watch (a broken proxy), keeping them open. */
  sendRaw(line: string): void;
  /** Answers every watch with 410 Expired from now on, whatever its version (a misbehaving server). */
  expireEverything(): void;
  /** Cuts every open watch, as an API server restart or a load balancer does. */
  dropWatches(): void;
  close(): Promise<void>;
}

interface WatchEventRecord {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  pod: V1Pod;
}

interface Watcher {
  res: ServerResponse;
  node: string | undefined;
  bookmarks: boolean;
}

const nodeOf = (pod: V1Pod) => pod.spec?.nodeName;

export async function startFakeApiServer(dir: string): Promise<FakeApiServer> {
  const token = randomBytes(16).toString('hex');
  const tokenFile = join(dir, 'apiserver-token');
  writeFileSync(tokenFile, `${token}\n`);
  const caFile = join(dir, 'apiserver.crt');
  const keyFile = join(dir, 'apiserver.key');
  selfSignedCertificate(caFile, keyFile);

  const pods = new Map<string, V1Pod>();
  const history: WatchEventRecord[] = [];
  const watchers = new Set<Watcher>();
  const sockets = new Set<Socket>();
  const requests = { list: 0, watch: 0, watchFrom: [] as string[], listFrom: [] as string[] };
  let rv = 100;
  let oldest = 0;
  let mode: FakeApiServer['mode'] = 'ok';

  const status = (res: ServerResponse, code: number, reason: string, message: string) =>
    res.writeHead(code, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message,
        reason,
        code,
      }),
    );
  const line = (res: ServerResponse, event: object) => res.write(`${JSON.stringify(event)}\n`);
  const matches = (w: { node: string | undefined }, pod: V1Pod) =>
    w.node === undefined || nodeOf(pod) === w.node;

  const publish = (type: WatchEventRecord['type'], pod: V1Pod) => {
    rv++;
    pod.metadata = { ...pod.metadata, resourceVersion: String(rv) };
    const copy = structuredClone(pod);
    history.push({ rv, type, pod: copy });
    for (const w of watchers) if (matches(w, copy)) line(w.res, { type, object: copy });
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://fake');
    if (url.pathname !== '/api/v1/pods' || req.method !== 'GET') {
      status(res, 404, 'NotFound', 'the server could not find the requested resource');
      return;
    }
    if (mode === 'down') {
      req.socket.destroy();
      return;
    }
    if (mode === 'unauthorized' || req.headers.authorization !== `Bearer ${token}`) {
      status(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    const selector = url.searchParams.get('fieldSelector');
    let node: string | undefined;
    if (selector !== null) {
      const m = /^spec\.nodeName=(.*)$/.exec(selector);
      if (!m) {
        status(res, 400, 'BadRequest', `unable to parse requirement: ${selector}`);
        return;
      }
      node = m[1];
    }
    const watch = url.searchParams.get('watch');
    if (watch !== 'true' && watch !== '1') {
      requests.list++;
      requests.listFrom.push(url.searchParams.get('resourceVersion') ?? '');
      const items = [...pods.values()].filter((p) => matches({ node }, p));
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          kind: 'PodList',
          apiVersion: 'v1',
          metadata: { resourceVersion: String(rv) },
          items,
        }),
      );
      return;
    }
    requests.watch++;
    requests.watchFrom.push(url.searchParams.get('resourceVersion') ?? '');
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // The real server answers a watch's headers at once, before any event.
    res.flushHeaders();
    if (from < oldest) {
      line(res, {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${from} (${oldest})`,
          reason: 'Expired',
          code: 410,
        },
      });
      res.end();
      return;
    }
    const w: Watcher = { res, node, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' };
    for (const e of history) if (e.rv > from && matches(w, e.pod)) line(res, { type: e.type, object: e.pod });
    watchers.add(w);
    const seconds = Number(url.searchParams.get('timeoutSeconds') ?? '1800');
    const timer = setTimeout(() => res.end(), seconds * 1000);
    res.on('close', () => {
      clearTimeout(timer);
      watchers.delete(w);
    });
  };

  const server = createServer({ cert: readFileSync(caFile), key: readFileSync(keyFile) }, handler);
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    tokenFile,
    caFile,
    podsConfig: (extra = {}) => ({ source: 'apiserver', apiserver: { url, tokenFile, caFile, ...extra } }),
    requests,
    get resourceVersion() {
      return String(rv);
    },
    get watching() {
      return watchers.size;
    },
    get mode() {
      return mode;
    },
    set mode(m) {
      mode = m;
    },
    add(spec) {
      const pod = v1Pod(spec);
      pods.set(pod.metadata!.uid!, pod);
      publish('ADDED', pod);
      return pod;
    },
    update(uid, change) {
      const pod = pods.get(uid);
      if (!pod) throw new Error(`no pod ${uid}`);
      change(pod);
      publish('MODIFIED', pod);
    },
    remove(uid) {
      const pod = pods.get(uid);
      if (!pod) return;
      pods.delete(uid);
      publish('DELETED', pod);
    },
    bookmark() {
      for (const w of watchers)
        if (w.bookmarks)
          line(w.res, {
            type: 'BOOKMARK',
            object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(rv) } },
          });
    },
    compact() {
      oldest = rv;
      history.length = 0;
    },
    sendRaw(text) {
      for (const w of watchers) w.res.write(`${text}\n`);
    },
    expireEverything() {
      oldest = Number.POSITIVE_INFINITY;
    },
    dropWatches() {
      for (const w of watchers) w.res.socket?.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
