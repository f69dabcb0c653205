import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { AuditReport } from '../../ipam-cni/ipam/audit.ts';
import { type Containerd, networkCondition, startContainerd } from '../lab/containerd.ts';
import { REFERENCE_PLUGINS } from '../lab/cri/cni.ts';
import { type SecureEtcd, startSecureEtcd } from '../lab/etcd-tls.ts';
import { run } from '../lab/exec.ts';
import { type KafkaMock, startKafka } from '../lab/kafka.ts';
import { type KubeletLite, type LitePod, startKubeletLite } from '../lab/kubelet-lite.ts';
import { type K8sObject, type Overlay, podSpecOf, renderKustomization } from '../lab/kustomize.ts';
import { type ManifestPod, runManifestPod } from '../lab/manifest-pod.ts';
import { freePort } from '../lab/ports.ts';
import type { Lab } from '../lab/scope.ts';
import { tempDir } from '../lab/tmp.ts';
import { waitFor } from '../lab/wait.ts';
import { agentImageArchive, buildAgent } from './agent-image.ts';
import {
  CHAINED_PLUGINS,
  freeSubnets,
  ipamCheckWith,
  type LabPool,
  labPool,
  nodeward,
  type parseSamples,
  podAddresses,
  ROOT,
  type ShippedRecord,
  scrapeAgent,
  shippedRecords,
} from './node.ts';

/**
 * A node that runs nodeward the way Kubernetes does: the manifests of deploy/ rendered (with the
 * lab's overlay: its config in the ConfigMap, its image, its port), the DaemonSet's pod run by the
 * kubelet stand-in over containerd's CRI from the agent image (test/e2e/agent-image.ts). containerd
 * has a node of its own (ContainerdOptions.nodeFs): /etc/cni/net.d, /opt/cni/bin, /var/log,
 * /run/nodeward, /var/lib/nodeward, /run/netns, /var/lib/cni and /var/lib/docker/containers are
 * lab dirs there, so the manifests' hostPaths and the production config's paths are used as they
 * are. etcd runs with TLS, client certificates and auth, its client Secret made as deploy/README.md
 * says. The lab's overlay of the production config: loopback etcd and Kafka, the kubelet stand-in
 * as pod source, a free loopback port instead of 0.0.0.0:9560, the lab's pool.
 */

export const IMAGE = 'nodeward.lab/nodeward';
const NODE_DIRS = [
  '/etc/cni/net.d',
  '/opt/cni/bin',
  '/var/log',
  '/run/nodeward',
  '/var/lib/nodeward',
  '/run/netns',
  '/var/lib/cni',
  '/var/lib/docker/containers',
] as const;
const PRODUCTION_PORT = 9560;

/** The parts of config.production.yaml the lab's overlay changes. */
interface ProductionConfig {
  http: Record<string, unknown>;
  network: Record<string, unknown> & { cni: Record<string, unknown> };
  logs: Record<string, unknown> & { kafka: Record<string, unknown> };
  [key: string]: unknown;
}

export interface DaemonSetNode {
  readonly lab: Lab;
  /** TLS with client certificates and auth, as the production config expects it. */
  readonly etcd: SecureEtcd;
  readonly kafka: KafkaMock;
  readonly containerd: Containerd;
  readonly kubelet: KubeletLite;
  readonly pool: LabPool;
  readonly port: number;
  readonly agentUrl: string;
  /** The node path of a file, as this process reaches it. */
  nodePath(path: string): string;
  /** The production config with the lab's overlay, as a JS object (edit and pass to render). */
  labConfig(): Record<string, unknown>;
  /** kustomize of deploy/ with the lab's overlay: config, image tag (default 1). */
  render(opts?: { config?: Record<string, unknown>; tag?: string }): Promise<K8sObject[]>;
  /** Tags the built image as IMAGE:<tag> (a new version of the same content). */
  tagImage(tag: string): Promise<void>;
  /** The agent pod now (undefined when none runs). */
  readonly agentPod: ManifestPod | undefined;
  /** Runs the DaemonSet's pod from `objects` and waits until it is ready. */
  install(objects: K8sObject[]): Promise<ManifestPod>;
  /**
   * The DaemonSet controller's rolling update on one node (maxSurge 0): when the pod template
   * differs from the running pod's, the old pod is stopped with its grace period, then the new one
   * started; resolves once it is ready. Returns whether it rolled.
   */
  rollout(objects: K8sObject[]): Promise<boolean>;
  /** `kubectl delete`: the agent pod stopped with its grace period. */
  uninstall(): Promise<void>;
  networkReady(): Promise<{ ready: boolean; message: string }>;
  ipamCheck(): Promise<AuditReport>;
  scrape(): Promise<ReturnType<typeof parseSamples>>;
  records(topic: string): Promise<ShippedRecord[]>;
  /** The pod's eth0 IPv4 addresses (its netns entered through the node's mount namespace). */
  podAddresses(pod: LitePod): Promise<string[]>;
  /** The agent container's log so far (for failure messages). */
  agentLog(): string;
}

export async function startDaemonSetNode(lab: Lab): Promise<DaemonSetNode> {
  const suffix = randomBytes(3).toString('hex');
  const dir = await tempDir('ds-node', lab);
  const nodeFs: Record<string, string> = {};
  for (const p of NODE_DIRS) {
    nodeFs[p] = join(dir, 'node', p.slice(1).replaceAll('/', '-'));
    await mkdir(nodeFs[p]!, { recursive: true });
  }
  // The reference plugins the conflist chains, where a node has them.
  for (const p of CHAINED_PLUGINS) {
    copyFileSync(join(REFERENCE_PLUGINS, p), join(nodeFs['/opt/cni/bin']!, p));
    chmodSync(join(nodeFs['/opt/cni/bin']!, p), 0o755);
  }
  const [base] = await freeSubnets(1);
  const pool = labPool(`ds${suffix}`, base!);
  lab.defer('pool bridge', async () => {
    await run('ip', ['link', 'del', pool.bridge]);
  });
  const imageDir = await tempDir('ds-image', lab);
  const [etcd, kafka, containerd, archive] = await Promise.all([
    startSecureEtcd({ lab }),
    startKafka({ lab }),
    startContainerd({
      lab,
      cniBinDir: '/opt/cni/bin',
      cniConfDir: '/etc/cni/net.d',
      netnsUnderStateDir: false,
      nodeFs,
    }),
    buildAgent().then(() => agentImageArchive(`${IMAGE}:1`, imageDir)),
  ]);
  await containerd.importImage(archive);
  // The agent goes after the workload pods (cleanup runs newest first): their DELs get an answer.
  let uninstall = async () => {};
  lab.defer('agent pod', () => uninstall());
  const kubelet = await startKubeletLite({
    lab,
    containerd,
    nodeName: `ds-node-${suffix}`,
    logRoot: { test: nodeFs['/var/log']!, node: '/var/log' },
    // Pods wait while the network is not ready (no conflist): a rollout's gap, the kubelet's
    // pod workers retry on every sync.
    sandboxRetry: { attempts: 300, delayMs: 200 },
  });

  // An operator's `ipam pool add`, from outside the node, with the same client certificate.
  // biome-ignore format: one flag and its value per line
  const etcdFlags = [
    '--set', 'network.ipam.store=etcd',
    '--set', `network.etcd.endpoints=${etcd.endpoint}`,
    '--set', `network.etcd.tls.ca=${etcd.certs.ca}`,
    '--set', `network.etcd.tls.cert=${etcd.certs.clientCert}`,
    '--set', `network.etcd.tls.key=${etcd.certs.clientKey}`,
    '--set', `network.etcd.username=${etcd.username}`,
    '--set', `network.etcd.password=${etcd.password}`,
  ];
  const spec = join(dir, 'pool.json');
  await writeFile(
    spec,
    JSON.stringify({ name: pool.name, cidr: pool.cidr, gateway: pool.gateway, segment: { mode: 'none' } }),
  );
  const added = await nodeward(['ipam', 'pool', 'add', spec, ...etcdFlags]);
  if (added.code !== 0) throw new Error(`ipam pool add: ${added.stderr}`);

  const etcdSecret = {
    'ca.crt': readFileSync(etcd.certs.ca, 'utf8'),
    'client.crt': readFileSync(etcd.certs.clientCert, 'utf8'),
    'client.key': readFileSync(etcd.certs.clientKey, 'utf8'),
    password: etcd.password,
  };
  const port = await freePort();
  const agentUrl = `http://127.0.0.1:${port}`;
  const production = parseYaml(
    readFileSync(join(ROOT, 'deploy/config.production.yaml'), 'utf8'),
  ) as ProductionConfig;
  const labConfig = () => {
    const c = structuredClone(production);
    c.http = { ...c.http, listen: `127.0.0.1:${port}` };
    c.network.cni['pool'] = pool.name;
    // Mode none pools: no uplink NIC on this machine.
    delete c.network.cni['uplink'];
    // TLS files from the Secret as the production config names them; the password from its env.
    c.network['etcd'] = {
      ...(c.network['etcd'] as object),
      endpoints: [etcd.endpoint],
      username: etcd.username,
    };
    // The kubelet stand-in's /pods; its token file through the host root the pod mounts.
    c['pods'] = {
      source: 'kubelet',
      kubelet: { url: kubelet.url, tokenFile: `/host/root${kubelet.tokenFile}`, pollInterval: '1s' },
    };
    c.logs = {
      ...c.logs,
      kafka: { ...c.logs.kafka, brokers: kafka.brokers },
      pollInterval: '100ms',
      rescanInterval: '2s',
      checkpointInterval: '250ms',
    };
    return c as Record<string, unknown>;
  };
  const render = async (opts: { config?: Record<string, unknown>; tag?: string } = {}) => {
    const overlay: Overlay = {
      generatorFiles: {
        'nodeward-config': { 'config.yaml': `${JSON.stringify(opts.config ?? labConfig(), null, 2)}\n` },
      },
      images: [{ name: 'nodeward', newName: IMAGE, newTag: opts.tag ?? '1' }],
      // The operator's `kubectl create secret generic nodeward-etcd-client` (deploy/README.md).
      secrets: { 'nodeward-etcd-client': etcdSecret },
    };
    const objects = await renderKustomization(join(ROOT, 'deploy'), overlay);
    // The lab's port instead of 9560 (two labs on one machine; loopback only).
    const ds = objects.find((o) => o.kind === 'DaemonSet')!;
    const text = JSON.stringify(podSpecOf(ds))
      .replaceAll(`"port":${PRODUCTION_PORT}`, `"port":${port}`)
      .replaceAll(`"containerPort":${PRODUCTION_PORT}`, `"containerPort":${port}`);
    (ds['spec'] as { template: { spec: unknown } }).template.spec = JSON.parse(text);
    return objects;
  };

  let agentPod: ManifestPod | undefined;
  let runningTemplate = '';
  const templateOf = (objects: K8sObject[]) =>
    JSON.stringify((objects.find((o) => o.kind === 'DaemonSet')!['spec'] as { template: unknown }).template);
  const agentLog = () => {
    if (!agentPod) return '';
    try {
      return readFileSync(agentPod.logOf('agent'), 'utf8');
    } catch {
      return '';
    }
  };
  const install = async (objects: K8sObject[]) => {
    if (agentPod) throw new Error('an agent pod runs already');
    const pod = await runManifestPod({
      lab,
      containerd,
      kubelet,
      objects,
      workload: 'nodeward',
      stopAtCleanup: false,
    });
    agentPod = pod;
    runningTemplate = templateOf(objects);
    await waitFor(() => pod.ready(), {
      what: `the agent pod ${pod.name} to be ready (readiness probe on ${agentUrl}/readyz)`,
      timeoutMs: 90_000,
      intervalMs: 200,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n--- agent log ---\n${agentLog().slice(-6000)}`);
    });
    return pod;
  };
  uninstall = async () => {
    const pod = agentPod;
    agentPod = undefined;
    await pod?.stop();
  };

  return {
    lab,
    etcd,
    kafka,
    containerd,
    kubelet,
    pool,
    port,
    agentUrl,
    nodePath: containerd.nodePath,
    labConfig,
    render,
    tagImage: async (tag) => {
      await containerd.ctr(['images', 'tag', '--force', `${IMAGE}:1`, `${IMAGE}:${tag}`]);
    },
    get agentPod() {
      return agentPod;
    },
    install,
    rollout: async (objects) => {
      if (agentPod && templateOf(objects) === runningTemplate) return false;
      await uninstall();
      await install(objects);
      return true;
    },
    uninstall,
    networkReady: () => networkCondition(containerd.cri),
    ipamCheck: () => ipamCheckWith((args) => nodeward([...args, ...etcdFlags])),
    scrape: () => scrapeAgent(agentUrl),
    records: (topic) => shippedRecords(kafka, topic),
    podAddresses: (pod) => podAddresses(pod, containerd.nodePath),
    agentLog,
  };
}

/** The files of a node dir (as the node sees it), [] when it does not exist. */
export function nodeDirEntries(node: DaemonSetNode, path: string): string[] {
  const p = node.nodePath(path);
  return existsSync(p) ? readdirSync(p) : [];
}
