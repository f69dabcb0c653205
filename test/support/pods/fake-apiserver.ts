import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../../../shared/kube/index.ts';
import type { V1Pod } from '../../../shared/pods/pod.ts';
import { selfSignedCertificate } from '../../lab/certs.ts';
import { type FakePodSpec, v1Pod } from './fake-kubelet.ts';

/**
 * For tests only: a stand-in for the API server's core/v1 pods, namespaces and nodes collections
 * (there is no kube-apiserver in the test lab), answering what the real one answers to an agent:
 *
 * - `GET /api/v1/<pods|namespaces|nodes>`: a list (`{"kind":"PodList","apiVersion":"v1",
 *   "metadata":{"resourceVersion":"<rv>"},"items":[…]}`), filtered by the field selector when one
 *   is given (pods: spec.nodeName, metadata.name, metadata.namespace; namespaces and nodes:
 *   metadata.name; any other field is a 400, as the real server's "field label not supported");
 * - the same with `watch=true&resourceVersion=<rv>`: a chunked stream of one JSON object per line,
 *   `{"type":"ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK","object":{…}}`, first every event after
 *   <rv>, then live ones, ended after `timeoutSeconds`; bookmarks (`allowWatchBookmarks=true`)
 *   carry only `metadata.resourceVersion`; a version older than the server's window gets
 *   `{"type":"ERROR","object":{"kind":"Status",…,"reason":"Expired","code":410}}` and the end;
 * - `GET /api/v1/<namespaces|nodes>/<name>`: the object, or a 404 NotFound Status naming it;
 * - a bearer token (401 with a Status body otherwise), over HTTPS with a self-signed certificate.
 *
 * Every change bumps one cluster-wide resourceVersion, as etcd's revision does. Namespaces carry
 * the `kubernetes.io/metadata.name` label and nodes the `kubernetes.io/hostname`, `…/os` and
 * `…/arch` labels the real control plane and kubelet set.
 */

export type FakeKind = 'pods' | 'namespaces' | 'nodes';

/** A Namespace or Node to create: name, labels and annotations (the usual labels are added). */
export interface FakeObjectSpec {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** What any object here has: metadata, and whatever else its kind carries. */
export type FakeObject = KubeObject & Record<string, unknown>;

interface Requests {
  list: number;
  watch: number;
  /** The resourceVersion each watch started from. */
  watchFrom: string[];
  /** The resourceVersion each list asked for ('' for none: a consistent read). */
  listFrom: string[];
  /** The field selector of each list and watch ('' for none). */
  selectors: string[];
}

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
  /** Pod requests answered so far. */
  readonly requests: Requests;
  /** Requests answered so far for one collection. */
  requestsOf(kind: FakeKind): Requests;
  /** The cluster's current resourceVersion. */
  readonly resourceVersion: string;
  /** Watches open now (of pods, or of `kind`). */
  readonly watching: number;
  watchingOf(kind: FakeKind): number;
  mode: 'ok' | 'down' | 'unauthorized';
  add(spec: FakePodSpec): V1Pod;
  /** A MODIFIED event after `change` edited the stored pod. */
  update(uid: string, change: (pod: V1Pod) => void): void;
  /** A DELETED event; the pod is gone from lists. */
  remove(uid: string): void;
  addNamespace(spec: FakeObjectSpec): FakeObject;
  updateNamespace(name: string, change: (ns: FakeObject) => void): void;
  removeNamespace(name: string): void;
  addNode(spec: FakeObjectSpec): FakeObject;
  updateNode(name: string, change: (node: FakeObject) => void): void;
  removeNode(name: string): void;
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
  /**
   * Open watches get nothing more, and their connections stay open: a connection a NAT or load
   * balancer dropped without telling either end. Watches opened later work.
   */
  muteWatches(): void;
  close(): Promise<void>;
}

interface WatchEventRecord {
  rv: number;
  kind: FakeKind;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: FakeObject;
}

type Filter = (o: FakeObject) => boolean;

interface Watcher {
  res: ServerResponse;
  kind: FakeKind;
  filter: Filter;
  bookmarks: boolean;
}

const KINDS: Record<FakeKind, { kind: string; fields: Record<string, (o: FakeObject) => unknown> }> = {
  pods: {
    kind: 'Pod',
    fields: {
      'spec.nodeName': (o) => (o as V1Pod).spec?.nodeName,
      'metadata.name': (o) => o.metadata?.name,
      'metadata.namespace': (o) => o.metadata?.namespace,
    },
  },
  namespaces: { kind: 'Namespace', fields: { 'metadata.name': (o) => o.metadata?.name } },
  nodes: { kind: 'Node', fields: { 'metadata.name': (o) => o.metadata?.name } },
};

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/** A cluster-scoped object's metadata: `labels` and `annotations` are what the system sets, then the spec's. */
function metadataOf(
  spec: FakeObjectSpec,
  labels: Record<string, string>,
  annotations: Record<string, string>,
) {
  return {
    name: spec.name,
    uid: randomUUID(),
    creationTimestamp: now(),
    labels: { ...labels, ...spec.labels },
    annotations: { ...annotations, ...spec.annotations },
  } as FakeObject['metadata'];
}

/** A Namespace as the API server shows one: Active, with the label the control plane sets. */
function v1Namespace(spec: FakeObjectSpec): FakeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: metadataOf(spec, { 'kubernetes.io/metadata.name': spec.name }, {}),
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

/** A Node as a kubelet registers one: Ready, with the well-known labels. */
function v1Node(spec: FakeObjectSpec): FakeObject {
  const labels = {
    'beta.kubernetes.io/arch': 'amd64',
    'beta.kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
    'kubernetes.io/hostname': spec.name,
    'kubernetes.io/os': 'linux',
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: metadataOf(spec, labels, { 'node.alpha.kubernetes.io/ttl': '0' }),
    spec: {},
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now() }],
      nodeInfo: { kubeletVersion: 'v1.31.0', containerRuntimeVersion: 'containerd://1.7.22' },
    },
  };
}

/**
 * A fake API server in a temporary directory of its own; `defer` receives its shutdown and the
 * directory's removal (a test's cleanup list).
 */
export async function tempFakeApiServer(
  defer: (cleanup: () => Promise<void> | void) => void,
): Promise<FakeApiServer> {
  const dir = mkdtempSync(join(tmpdir(), 'nodeward-apiserver-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  const api = await startFakeApiServer(dir);
  defer(() => api.close());
  return api;
}

export async function startFakeApiServer(dir: string): Promise<FakeApiServer> {
  const token = randomBytes(16).toString('hex');
  const tokenFile = join(dir, 'apiserver-token');
  writeFileSync(tokenFile, `${token}\n`);
  const caFile = join(dir, 'apiserver.crt');
  const keyFile = join(dir, 'apiserver.key');
  selfSignedCertificate(caFile, keyFile);

  /** Pods by uid, namespaces and nodes by name. */
  const stores: Record<FakeKind, Map<string, FakeObject>> = {
    pods: new Map(),
    namespaces: new Map(),
    nodes: new Map(),
  };
  const history: WatchEventRecord[] = [];
  const watchers = new Set<Watcher>();
  const sockets = new Set<Socket>();
  const newRequests = (): Requests => ({ list: 0, watch: 0, watchFrom: [], listFrom: [], selectors: [] });
  const requests: Record<FakeKind, Requests> = {
    pods: newRequests(),
    namespaces: newRequests(),
    nodes: newRequests(),
  };
  let rv = 100;
  let oldest = 0;
  let mode: FakeApiServer['mode'] = 'ok';

  const status = (res: ServerResponse, code: number, reason: string, message: string, details?: object) =>
    res.writeHead(code, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message,
        reason,
        ...(details ? { details } : {}),
        code,
      }),
    );
  const line = (res: ServerResponse, event: object) => res.write(`${JSON.stringify(event)}\n`);

  const publish = (kind: FakeKind, type: WatchEventRecord['type'], object: FakeObject) => {
    rv++;
    object.metadata = { ...object.metadata, resourceVersion: String(rv) };
    const copy = structuredClone(object);
    history.push({ rv, kind, type, object: copy });
    for (const w of watchers) if (w.kind === kind && w.filter(copy)) line(w.res, { type, object: copy });
  };

  /** `a=x,b=y` (also `a==x`) as a filter; a field the collection does not index is an error. */
  const parseSelector = (kind: FakeKind, selector: string | null): Filter | string => {
    if (selector === null || selector === '') return () => true;
    const tests: Filter[] = [];
    for (const requirement of selector.split(',')) {
      const m = /^([^=!]+)==?(.*)$/.exec(requirement);
      const field = m ? KINDS[kind].fields[m[1]!] : undefined;
      if (!m || !field) return `field label not supported: ${m?.[1] ?? requirement}`;
      const want = m[2];
      tests.push((o) => field(o) === want);
    }
    return (o) => tests.every((t) => t(o));
  };

  const getOne = (res: ServerResponse, kind: FakeKind, name: string) => {
    const object = [...stores[kind].values()].find((o) => o.metadata?.name === name);
    if (object) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(object));
    else status(res, 404, 'NotFound', `${kind} "${name}" not found`, { name, kind });
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://fake');
    const m = /^\/api\/v1\/(pods|namespaces|nodes)(?:\/([^/]+))?$/.exec(url.pathname);
    if (!m || req.method !== 'GET' || (m[1] === 'pods' && m[2] !== undefined)) {
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
    const kind = m[1] as FakeKind;
    if (m[2] !== undefined) {
      getOne(res, kind, decodeURIComponent(m[2]));
      return;
    }
    const selector = url.searchParams.get('fieldSelector');
    const filter = parseSelector(kind, selector);
    if (typeof filter === 'string') {
      status(res, 400, 'BadRequest', filter);
      return;
    }
    const counts = requests[kind];
    counts.selectors.push(selector ?? '');
    const watch = url.searchParams.get('watch');
    if (watch !== 'true' && watch !== '1') {
      counts.list++;
      counts.listFrom.push(url.searchParams.get('resourceVersion') ?? '');
      const items = [...stores[kind].values()].filter(filter);
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          kind: `${KINDS[kind].kind}List`,
          apiVersion: 'v1',
          metadata: { resourceVersion: String(rv) },
          items,
        }),
      );
      return;
    }
    counts.watch++;
    counts.watchFrom.push(url.searchParams.get('resourceVersion') ?? '');
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
    const w: Watcher = {
      res,
      kind,
      filter,
      bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
    };
    for (const e of history)
      if (e.rv > from && e.kind === kind && filter(e.object)) line(res, { type: e.type, object: e.object });
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

  const put = (kind: FakeKind, key: string, object: FakeObject) => {
    if (stores[kind].has(key)) throw new Error(`${kind} ${key} exists`);
    stores[kind].set(key, object);
    publish(kind, 'ADDED', object);
    return object;
  };
  const change = (kind: FakeKind, key: string, edit: (o: FakeObject) => void) => {
    const object = stores[kind].get(key);
    if (!object) throw new Error(`no ${kind} ${key}`);
    edit(object);
    publish(kind, 'MODIFIED', object);
  };
  const drop = (kind: FakeKind, key: string) => {
    const object = stores[kind].get(key);
    if (!object) return;
    stores[kind].delete(key);
    publish(kind, 'DELETED', object);
  };
  const open = (kind: FakeKind) => [...watchers].filter((w) => w.kind === kind).length;

  return {
    url,
    tokenFile,
    caFile,
    podsConfig: (extra = {}) => ({ source: 'apiserver', apiserver: { url, tokenFile, caFile, ...extra } }),
    requests: requests.pods,
    requestsOf: (kind) => requests[kind],
    get resourceVersion() {
      return String(rv);
    },
    get watching() {
      return open('pods');
    },
    watchingOf: open,
    get mode() {
      return mode;
    },
    set mode(m) {
      mode = m;
    },
    add(spec) {
      const pod = v1Pod(spec);
      return put('pods', pod.metadata!.uid!, pod) as V1Pod;
    },
    update: (uid, edit) => change('pods', uid, edit as (o: FakeObject) => void),
    remove: (uid) => drop('pods', uid),
    addNamespace: (spec) => put('namespaces', spec.name, v1Namespace(spec)),
    updateNamespace: (name, edit) => change('namespaces', name, edit),
    removeNamespace: (name) => drop('namespaces', name),
    addNode: (spec) => put('nodes', spec.name, v1Node(spec)),
    updateNode: (name, edit) => change('nodes', name, edit),
    removeNode: (name) => drop('nodes', name),
    bookmark() {
      for (const w of watchers)
        if (w.bookmarks)
          line(w.res, {
            type: 'BOOKMARK',
            object: { kind: KINDS[w.kind].kind, apiVersion: 'v1', metadata: { resourceVersion: String(rv) } },
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
    muteWatches() {
      watchers.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
