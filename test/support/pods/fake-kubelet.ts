import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { V1Pod, V1PodList } from '../../../shared/pods/pod.ts';
import { selfSignedCertificate } from '../../lab/certs.ts';

/**
 * For tests only: a stand-in for the kubelet's `GET /pods` (there is no kubelet in the test lab).
 * It serves what the real kubelet serves there — a core/v1 PodList (`{"kind":"PodList",
 * "apiVersion":"v1","metadata":{},"items":[…]}`), each item a full v1 Pod with metadata
 * (ownerReferences, pod-template-hash label, creationTimestamp), spec (nodeName, containers) and
 * status (phase, containerStatuses with `containerd://<id>`) — over HTTPS with a bearer token
 * (401 otherwise), like port 10250. It can be switched to failing modes.
 */

export interface FakePodSpec {
  namespace: string;
  name: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The controller: e.g. { kind: 'ReplicaSet', name: 'web-7d9f8c6b5' }. */
  owner?: { kind: string; name: string };
  /** `image` defaults to registry.local/app:1 (spec and status, as the kubelet shows both). */
  containers?: { name: string; id?: string; restartCount?: number; lastId?: string; image?: string }[];
  node?: string;
  created?: Date;
}

/** A v1 Pod the way the kubelet's /pods shows a running pod. */
export function v1Pod(spec: FakePodSpec): V1Pod & Record<string, unknown> {
  const uid = spec.uid ?? randomUUID();
  const containers = spec.containers ?? [{ name: 'app' }];
  return {
    metadata: {
      name: spec.name,
      namespace: spec.namespace,
      uid,
      resourceVersion: String(1000 + Math.floor(Math.random() * 1000)),
      creationTimestamp: (spec.created ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z'),
      labels: spec.labels ?? {},
      annotations: {
        'kubernetes.io/config.seen': new Date().toISOString(),
        'kubernetes.io/config.source': 'api',
        ...spec.annotations,
      },
      ...(spec.owner
        ? {
            ownerReferences: [
              {
                apiVersion: spec.owner.kind === 'Job' ? 'batch/v1' : 'apps/v1',
                kind: spec.owner.kind,
                name: spec.owner.name,
                uid: randomUUID(),
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          }
        : {}),
    } as V1Pod['metadata'] & Record<string, unknown>,
    spec: {
      nodeName: spec.node ?? 'node-1',
      containers: containers.map((c) => ({
        name: c.name,
        image: c.image ?? 'registry.local/app:1',
        resources: {},
      })),
      restartPolicy: 'Always',
      serviceAccountName: 'default',
    } as V1Pod['spec'] & Record<string, unknown>,
    status: {
      phase: 'Running',
      hostIP: '10.0.0.1',
      podIP: '10.244.0.10',
      startTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      containerStatuses: containers.map((c) => ({
        name: c.name,
        state: { running: { startedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } },
        ...(c.lastId
          ? { lastState: { terminated: { exitCode: 1, containerID: `containerd://${c.lastId}` } } }
          : {}),
        ready: true,
        restartCount: c.restartCount ?? 0,
        image: c.image ?? 'registry.local/app:1',
        imageID: `registry.local/app@sha256:${'0'.repeat(64)}`,
        containerID: `containerd://${c.id ?? randomBytes(32).toString('hex')}`,
        started: true,
      })),
    } as V1Pod['status'] & Record<string, unknown>,
  };
}

export type FakeKubeletMode = 'ok' | 'down' | 'bad_json' | 'unauthorized';

export interface FakeKubelet {
  readonly url: string;
  readonly tokenFile: string;
  readonly caFile: string;
  /** The `pods` config section that reads it (source kubelet, url, token, CA), plus `extra` keys. */
  podsConfig(extra?: Record<string, unknown>): {
    source: 'kubelet';
    kubelet: { url: string; tokenFile: string; caFile: string } & Record<string, unknown>;
  };
  /** Pods listed, by uid; edit freely. */
  readonly pods: Map<string, V1Pod>;
  mode: FakeKubeletMode;
  /** GET /pods answered so far (any mode). */
  requests: number;
  add(spec: FakePodSpec): V1Pod;
  remove(uid: string): void;
  close(): Promise<void>;
}

/**
 * Starts the fake kubelet on a free loopback port. `dir` receives its self-signed certificate
 * (the CA file) and the token file. `tls: false` serves plain HTTP.
 */
export async function startFakeKubelet(dir: string, opts: { tls?: boolean } = {}): Promise<FakeKubelet> {
  const token = randomBytes(16).toString('hex');
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${token}\n`);
  const caFile = join(dir, 'kubelet.crt');
  const keyFile = join(dir, 'kubelet.key');
  const tls = opts.tls ?? true;
  const pods = new Map<string, V1Pod>();
  const state = { mode: 'ok' as FakeKubeletMode, requests: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/pods' || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    state.requests++;
    if (state.mode === 'down') {
      req.socket.destroy();
      return;
    }
    if (state.mode === 'unauthorized' || req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('Unauthorized');
      return;
    }
    if (state.mode === 'bad_json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"PodList","items":[');
      return;
    }
    const list: V1PodList & { metadata: object } = {
      kind: 'PodList',
      apiVersion: 'v1',
      metadata: {},
      items: [...pods.values()],
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list));
  };
  let server: Server;
  if (tls) {
    selfSignedCertificate(caFile, keyFile);
    server = createHttpsServer({ cert: readFileSync(caFile), key: readFileSync(keyFile) }, handler);
  } else {
    server = createHttpServer(handler);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/pods`;
  return {
    url,
    tokenFile,
    caFile,
    podsConfig: (extra = {}) => ({ source: 'kubelet', kubelet: { url, tokenFile, caFile, ...extra } }),
    pods,
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    get requests() {
      return state.requests;
    },
    set requests(n) {
      state.requests = n;
    },
    add(spec) {
      const pod = v1Pod(spec);
      pods.set(pod.metadata!.uid!, pod);
      return pod;
    },
    remove(uid) {
      pods.delete(uid);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
