import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { buildTimexHelper } from '../../agent/metrics/timex/build.ts';
import type { AuditReport } from '../../ipam-cni/ipam/audit.ts';
import type { PoolUsage } from '../../ipam-cni/ipam/usage.ts';
import { type CliResult, cleanEnv, NODEWARD } from '../cli.ts';
import {
  CONTAINERD_BINARIES,
  type Containerd,
  type Etcd,
  freePort,
  type KafkaMock,
  type KubeletLite,
  type KubeletLiteOptions,
  Lab,
  type LitePod,
  LOG_WRITER,
  type LogRotationPolicy,
  networkCondition,
  REFERENCE_PLUGINS,
  run,
  runOk,
  type Service,
  skipReason,
  startContainerd,
  startEtcd,
  startKafka,
  startKubeletLite,
  startService,
  tempDir,
  waitFor,
} from '../lab/index.ts';

/**
 * One Kubernetes node without a kubelet, for the end-to-end scenarios of test/e2e: the reference
 * `portmap`, `bandwidth` (and `loopback`, which containerd's CRI needs for the pod's lo) copied into
 * a lab CNI bin dir, our shim (build/nodeward-cni) put there by the real `nodeward cni install` as
 * the DaemonSet's init container does, containerd from test/lab on those dirs (pod netns under
 * /var/run/netns, as on a default node), a 3-member etcd, the librdkafka mock broker, IPAM pools
 * added with `nodeward ipam pool add` (mode none: a bridge nw-<pool> in the host namespace, which
 * holds the gateway, so the host reaches its pods), kubelet-lite, and `nodeward agent` as a process
 * with the network, logs and metrics modules on. Everything is torn down by the Lab, pods first
 * while the agent still serves their DELs.
 */

export const ROOT = resolve(import.meta.dirname, '../..');
export const SHIM = join(ROOT, 'build/nodeward-cni');
/** What the lab CNI bin dir gets from /usr/lib/cni (loopback: containerd's CRI sets up lo with it). */
export const CHAINED_PLUGINS = ['portmap', 'bandwidth', 'loopback'] as const;
/** The port the workloads listen on (busybox nc answering "ok"). */
export const LISTEN_PORT = 8080;

/** Why the e2e suite cannot run here, or undefined. */
export function e2eSkipReason(): string | undefined {
  const reason = skipReason({
    root: true,
    binaries: [...CONTAINERD_BINARIES, 'nsenter', 'etcd', 'etcdctl', 'kcat', 'npm'],
  });
  const missing = CHAINED_PLUGINS.filter((p) => !existsSync(join(REFERENCE_PLUGINS, p)));
  const plugins = missing.length ? `missing in ${REFERENCE_PLUGINS}: ${missing.join(', ')}` : undefined;
  const all = [reason, plugins].filter(Boolean).join('; ');
  return all || undefined;
}

// ---------------------------------------------------------------------------------------------
// The shim

/** Every source file of the shim's bundle: relative imports followed from its entry. */
function shimSources(): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/from\s+'(\.{1,2}\/[^']+\.ts)'/g)) visit(resolve(dirname(file), m[1]!));
  };
  visit(join(ROOT, 'ipam-cni/cni/shim/main.ts'));
  seen.add(join(ROOT, 'deploy/build-cni.ts'));
  return [...seen];
}

function shimIsFresh(): boolean {
  if (!existsSync(SHIM)) return false;
  const built = statSync(SHIM).mtimeMs;
  return shimSources().every((f) => statSync(f).mtimeMs <= built);
}

const BUILD_LOCK = join(tmpdir(), 'nodeward-e2e-build-cni.lock');

/**
 * build/nodeward-cni, built with `npm run build:cni` when it is missing or older than its sources
 * (as podman.test.ts does when it is missing). Test files run in parallel workers: one builds, the
 * others wait on a lock directory.
 */
export async function ensureShim(): Promise<string> {
  const deadline = Date.now() + 240_000;
  while (!shimIsFresh()) {
    let locked = false;
    try {
      mkdirSync(BUILD_LOCK);
      locked = true;
    } catch {
      // Someone else builds; a lock left by a process that died is taken over.
      try {
        const pid = Number(readFileSync(join(BUILD_LOCK, 'pid'), 'utf8'));
        const age = Date.now() - statSync(BUILD_LOCK).mtimeMs;
        if ((pid > 0 && !existsSync(`/proc/${pid}`)) || age > 180_000)
          rmSync(BUILD_LOCK, { recursive: true });
      } catch {
        // No pid yet: the builder is just starting.
      }
    }
    if (locked) {
      try {
        writeFileSync(join(BUILD_LOCK, 'pid'), String(process.pid));
        if (!shimIsFresh())
          await runOk('npm', ['run', '--silent', 'build:cni'], { cwd: ROOT, timeoutMs: 180_000 });
      } finally {
        rmSync(BUILD_LOCK, { recursive: true, force: true });
      }
      break;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${BUILD_LOCK} to build the shim`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return SHIM;
}

/**
 * `nodeward <args>` as operators and init containers run it (a Node 24 process from source), with a
 * deadline that allows for a loaded machine (test/cli.ts's runCli allows 30 s).
 */
export async function nodeward(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  const r = await run(process.execPath, [NODEWARD, ...args], { env: cleanEnv(), cwd: ROOT, timeoutMs });
  return { code: r.code, stdout: r.stdout, stderr: r.signal ? `${r.stderr}(killed: ${r.signal})` : r.stderr };
}

// ---------------------------------------------------------------------------------------------
// Addresses

const subnetsTaken = new Set<string>();

/** n random 10.x.y (first three octets) whose /24 no route of this host covers. */
export async function freeSubnets(n: number): Promise<string[]> {
  const routes = (await runOk('ip', ['-4', '-o', 'route', 'show', 'table', 'all']))
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((p) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(p));
  const toInt = (ip: string) => ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const out: string[] = [];
  while (out.length < n) {
    const [a, b] = randomBytes(2);
    const base = `10.${128 + (a! % 127)}.${b}`;
    if (subnetsTaken.has(base)) continue;
    const lo = toInt(`${base}.0`);
    const hi = lo + 255;
    const clash = routes.some((r) => {
      const [ip = '', bits = '32'] = r.split('/');
      const size = 2 ** (32 - Number(bits));
      const start = toInt(ip) - (toInt(ip) % size);
      return start <= hi && start + size - 1 >= lo;
    });
    if (clash) continue;
    subnetsTaken.add(base);
    out.push(base);
  }
  return out;
}

export interface LabPool {
  readonly name: string;
  readonly cidr: string;
  readonly gateway: string;
  /** The n-th address of the /24, e.g. address(200) = 10.x.y.200. */
  address(n: number): string;
  /** nw-<pool>: the segment's bridge in the host namespace (mode none). */
  readonly bridge: string;
  contains(ip: string): boolean;
}

export function labPool(name: string, base: string): LabPool {
  return {
    name,
    cidr: `${base}.0/24`,
    gateway: `${base}.1`,
    address: (n) => `${base}.${n}`,
    bridge: `nw-${name}`,
    contains: (ip) => ip.startsWith(`${base}.`) && ip !== `${base}.0` && ip !== `${base}.255`,
  };
}

// ---------------------------------------------------------------------------------------------
// The node

export interface NodeOptions {
  lab: Lab;
  /** IPAM pools to add (the first is the conflist's pool). Default 1. */
  pools?: number;
  /** network.cni.stickyStatefulSets. Default false. */
  stickyStatefulSets?: boolean;
  rotation?: Partial<LogRotationPolicy>;
  sandboxRetry?: KubeletLiteOptions['sandboxRetry'];
  /**
   * As the DaemonSet does: `cni install --no-conflist`, and the agent writes the conflist once it
   * is ready and removes it when it stops (network.cni.conflist). Default false: `cni install`
   * writes it.
   */
  agentWritesConflist?: boolean;
}

/** A record as the log shipper writes it into Kafka. */
export interface ShippedRecord {
  time: string;
  stream: string;
  message: string;
  partial?: true;
  truncated?: true;
  parse_error?: true;
  labels: Record<string, unknown> & {
    namespace?: string;
    pod?: string;
    container?: string;
    deployment?: string;
  };
  file: string;
  offset: number;
}

/** A line of `nodeward ipam sticky -o json`: pod is `<namespace>/<pod>[/<ifName>]`. */
export interface StickyRecord {
  pod: string;
  pool: string;
  ip: string;
}

export interface E2eNode {
  readonly dir: string;
  readonly nodeName: string;
  readonly etcd: Etcd;
  readonly kafka: KafkaMock;
  readonly containerd: Containerd;
  readonly kubelet: KubeletLite;
  readonly pools: readonly LabPool[];
  readonly binDir: string;
  readonly confDir: string;
  /** What `cni install` printed. */
  readonly installOutput: string;
  readonly conflistPath: string;
  readonly socket: string;
  readonly journalDir: string;
  readonly configPath: string;
  /** http://127.0.0.1:<port> of the agent (the same port across restarts). */
  readonly agentUrl: string;
  /** The running agent process (a new one after each startAgent). */
  readonly agent: Service;
  /** Starts `nodeward agent` (again) and waits for /readyz 200. */
  startAgent(): Promise<Service>;
  /** SIGKILL of the agent's process group: a crash. */
  killAgent(): Promise<void>;
  /** SIGTERM and the grace period, as the kubelet stops a pod; resolves once it exited. */
  stopAgent(): Promise<void>;
  /** containerd's NetworkReady condition (CRI Status). */
  networkReady(): Promise<{ ready: boolean; message: string }>;
  /** `nodeward <args>` against this node's IPAM store. */
  ipamCli(args: string[]): Promise<CliResult>;
  ipamCheck(): Promise<AuditReport>;
  ipamShow(): Promise<PoolUsage[]>;
  ipamSticky(): Promise<StickyRecord[]>;
  /** GET /metrics of the agent: samples by series name. */
  scrape(): Promise<Map<string, MetricSample[]>>;
  /** Every record of logs.<namespace>, read back with kcat ([] while the topic does not exist). */
  records(namespace: string): Promise<ShippedRecord[]>;
  /** DELs waiting in the journal (the shim's, or the agent's pending teardowns). */
  journal(): string[];
  /** Where the set-up's time went. */
  readonly setupTimes: string;
}

export async function startNode(opts: NodeOptions): Promise<E2eNode> {
  const { lab } = opts;
  const t = phases('set-up');
  const suffix = randomBytes(3).toString('hex');
  const dir = await tempDir('e2e', lab);
  const agentDir = join(dir, 'agent');
  const binDir = join(dir, 'cni', 'bin');
  const confDir = join(dir, 'cni', 'net.d');
  const socket = join(dir, 'run', 'cni.sock');
  const journalDir = join(dir, 'cni-journal');
  const networkName = `e2e-${suffix}`;
  await Promise.all([agentDir, binDir, confDir].map((d) => mkdir(d, { recursive: true })));
  const bases = await freeSubnets(opts.pools ?? 1);
  const pools = bases.map((base, i) => labPool(`e2e${suffix}${String.fromCharCode(97 + i)}`, base));
  // After the agent has stopped (registered first, so it runs late): the bridges it made.
  lab.defer('pool bridges', async () => {
    for (const p of pools) await run('ip', ['link', 'del', p.bridge]);
  });

  for (const p of CHAINED_PLUGINS) {
    copyFileSync(join(REFERENCE_PLUGINS, p), join(binDir, p));
    chmodSync(join(binDir, p), 0o755);
  }
  // containerd runs before the network is installed, as on a node the DaemonSet comes to later:
  // its CRI picks the conflist up when `cni install` writes it.
  const [etcd, kafka, , { containerd, kubelet }] = await Promise.all([
    startEtcd({ lab, members: 3 }),
    startKafka({ lab }),
    ensureShim(),
    (async () => {
      const containerd = await startContainerd({
        lab,
        cniBinDir: binDir,
        cniConfDir: confDir,
        netnsUnderStateDir: false,
      });
      const kubelet = await startKubeletLite({
        lab,
        containerd,
        nodeName: `e2e-node-${suffix}`,
        ...(opts.rotation ? { rotation: opts.rotation } : {}),
        sandboxRetry: { attempts: 5, delayMs: 300, ...opts.sandboxRetry },
      });
      return { containerd, kubelet };
    })(),
  ]);
  t.mark('etcd, kafka, shim, containerd, kubelet-lite');

  const ipamFlags = [
    '--set',
    'network.ipam.store=etcd',
    '--set',
    `network.etcd.endpoints=${etcd.endpoints.join(',')}`,
  ];
  const ipamCli = (args: string[]) => nodeward([...args, ...ipamFlags]);
  const cliOk = async (args: string[]) => {
    const r = await ipamCli(args);
    if (r.code !== 0) throw new Error(`nodeward ${args.join(' ')}: exit ${r.code}\n${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const cniSets = {
    'network.cni.socket': socket,
    'network.cni.journalDir': journalDir,
    'network.cni.pool': pools[0]!.name,
    'network.cni.networkName': networkName,
  };
  const conflistPath = join(confDir, '10-nodeward.conflist');
  const timexHelper = join(agentDir, 'bin', 'nodeward-timex');
  buildTimexHelper(timexHelper);
  const port = await freePort();
  const agentUrl = `http://127.0.0.1:${port}`;
  const configPath = join(agentDir, 'agent.yaml');
  const config = {
    node: { name: kubelet.nodeName },
    dataDir: join(agentDir, 'data'),
    http: { listen: `127.0.0.1:${port}` },
    shutdown: { deadline: '10s' },
    pods: kubelet.podsConfig({ pollInterval: '1s' }),
    network: {
      enabled: true,
      cni: {
        socket,
        journalDir,
        pool: pools[0]!.name,
        networkName,
        stickyStatefulSets: opts.stickyStatefulSets ?? false,
        ...(opts.agentWritesConflist ? { conflist: { dir: confDir, binDir } } : {}),
      },
      ipam: { store: 'etcd' },
      etcd: { endpoints: etcd.endpoints },
    },
    logs: {
      root: kubelet.containerLogRoot,
      sink: 'kafka',
      kafka: { brokers: kafka.brokers },
      pollInterval: '100ms',
      rescanInterval: '2s',
      checkpointInterval: '250ms',
      batch: { wait: '50ms' },
    },
    metrics: {
      // The image's adjtimex helper, built for this node.
      timex: { helper: timexHelper },
      containers: {
        source: 'cgroups',
        cgroupRoot: '/sys/fs/cgroup',
        dockerSocket: join(agentDir, 'no-docker.sock'),
      },
    },
  };
  // JSON is YAML.
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);

  // Every agent process ever started, stopped together at the right moment of the teardown.
  const agentLab = new Lab();
  lab.defer('agent processes', () => agentLab.cleanup());
  let agent: Service | undefined;
  const startAgent = async () => {
    if (agent?.running) throw new Error('the agent is still running');
    const service = startService({
      lab: agentLab,
      name: 'agent',
      dir: agentDir,
      command: process.execPath,
      args: [NODEWARD, 'agent', '--config', configPath],
      env: cleanEnv({ KAFKAJS_NO_PARTITIONER_WARNING: '1' }),
      stopGraceMs: 15_000,
    });
    agent = service;
    await waitFor(
      async () => {
        const res = await fetch(`${agentUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.status === 200;
      },
      {
        what: `the agent to be ready at ${agentUrl}/readyz`,
        timeoutMs: 60_000,
        intervalMs: 100,
        services: [service],
      },
    );
    return service;
  };
  const parallel = Date.now();
  const finished: string[] = [];
  const done = (what: string) => finished.push(`${what} at ${((Date.now() - parallel) / 1000).toFixed(1)}s`);
  // The pools (an operator's `ipam pool add`), the DaemonSet's init container (`cni install`) and
  // the agent, at once: the agent needs neither until the first pod.
  const [, installOutput] = await Promise.all([
    Promise.all(
      pools.map(async (p) => {
        const spec = join(dir, `pool-${p.name}.json`);
        await writeFile(
          spec,
          JSON.stringify({ name: p.name, cidr: p.cidr, gateway: p.gateway, segment: { mode: 'none' } }),
        );
        await cliOk(['ipam', 'pool', 'add', spec]);
      }),
    ).then(() => done('pool add')),
    // As the DaemonSet's init container: `nodeward cni install` with the node's settings.
    (async () => {
      const args = ['cni', 'install', '--bin-dir', binDir, '--conf-dir', confDir, '--binary', SHIM];
      if (opts.agentWritesConflist) args.push('--no-conflist');
      for (const [k, v] of Object.entries(cniSets)) args.push('--set', `${k}=${v}`);
      const r = await nodeward(args);
      if (r.code !== 0) throw new Error(`nodeward cni install: exit ${r.code}\n${r.stderr}${r.stdout}`);
      done('cni install');
      return r.stdout;
    })(),
    startAgent().then(() => done('agent ready')),
  ]);
  t.mark(`pool add, cni install, agent (${finished.join(', ')})`);
  // Newest, so first at cleanup: pods go while the agent still serves their DELs.
  lab.defer('kubelet-lite pods', () => kubelet.close());

  return {
    dir,
    nodeName: kubelet.nodeName,
    etcd,
    kafka,
    containerd,
    kubelet,
    pools,
    binDir,
    confDir,
    installOutput,
    conflistPath,
    socket,
    journalDir,
    configPath,
    agentUrl,
    get agent() {
      if (!agent) throw new Error('no agent started');
      return agent;
    },
    startAgent,
    killAgent: async () => {
      await agent?.kill();
    },
    stopAgent: async () => {
      await agent?.stop();
    },
    networkReady: () => networkCondition(containerd.cri),
    ipamCli,
    ipamCheck: () => ipamCheckWith(ipamCli),
    ipamShow: async () => JSON.parse(await cliOk(['ipam', 'show', '-o', 'json'])) as PoolUsage[],
    ipamSticky: async () => JSON.parse(await cliOk(['ipam', 'sticky', '-o', 'json'])) as StickyRecord[],
    scrape: () => scrapeAgent(agentUrl),
    records: (namespace) => shippedRecords(kafka, `logs.${namespace}`),
    setupTimes: t.text(),
    journal: () => (existsSync(journalDir) ? readdirSync(journalDir).filter((f) => !f.includes('.tmp')) : []),
  };
}

// ---------------------------------------------------------------------------------------------
// Workloads and probes

/**
 * The workload's command: busybox nc answering "ok" on LISTEN_PORT in the background, and the lab's
 * log writer in the foreground (its env: LINES, RATE, LENGTH, LONG_EVERY, LONG_LENGTH, PREFIX…).
 */
export function listenAndLog(): string[] {
  return ['/bin/sh', '-c', `nc -ll -p ${LISTEN_PORT} -e echo ok & exec /bin/sh ${LOG_WRITER}`];
}

/** The IPv4 addresses of eth0 inside the pod's network namespace. */
export async function podAddresses(pod: LitePod, nodePath = (p: string) => p): Promise<string[]> {
  if (!pod.netns) throw new Error(`pod ${pod.name} has no netns`);
  const netns = nodePath(pod.netns);
  const out = await runOk('nsenter', [`--net=${netns}`, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
  return [...out.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
}

/** `nodeward ipam check -o json` (exit 1: problems found, still a report). */
export async function ipamCheckWith(cli: (args: string[]) => Promise<CliResult>): Promise<AuditReport> {
  const r = await cli(['ipam', 'check', '-o', 'json']);
  if (r.code !== 0 && r.code !== 1) throw new Error(`nodeward ipam check: exit ${r.code}\n${r.stderr}`);
  return JSON.parse(r.stdout) as AuditReport;
}

/** GET /metrics of an agent: samples by series name. */
export async function scrapeAgent(agentUrl: string): Promise<Map<string, MetricSample[]>> {
  const res = await fetch(`${agentUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`);
  return parseSamples(await res.text());
}

/** Every record of a topic as the log shipper wrote it, read back with kcat ([] before the topic exists). */
export async function shippedRecords(kafka: KafkaMock, topic: string): Promise<ShippedRecord[]> {
  let got: Awaited<ReturnType<KafkaMock['readTopic']>>;
  try {
    got = await kafka.readTopic(topic, { timeoutMs: 20_000 });
  } catch (err) {
    if (/Unknown topic|UNKNOWN_TOPIC/i.test(String(err))) return [];
    throw err;
  }
  return got.map((r) => JSON.parse(r.value ?? 'null') as ShippedRecord);
}

/** What a TCP server at host:port sends before it closes (from this process: the host namespace). */
export function tcpRead(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host, port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${host}:${port}: no answer within ${timeoutMs} ms (got ${JSON.stringify(data)})`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      data += d;
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolvePromise(data);
    });
  });
}

/** Polls tcpRead until it answers "ok" (the listener starts a moment after the container). */
export async function waitTcpOk(host: string, port: number, what: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await tcpRead(host, port)).trim() === 'ok', {
    what,
    timeoutMs,
    intervalMs: 100,
  });
}

/** What host:port answers when asked from inside the pod's network namespace (the host's busybox nc). */
export async function tcpReadFromPod(pod: LitePod, host: string, port: number): Promise<string> {
  if (!pod.netns) throw new Error(`pod ${pod.name} has no netns`);
  const r = await run('nsenter', [`--net=${pod.netns}`, 'busybox', 'nc', '-w', '3', host, String(port)], {
    timeoutMs: 10_000,
  });
  return r.stdout;
}

/** Host-side interfaces enslaved to a bridge (the pods' veth ends). */
export async function bridgePorts(bridge: string): Promise<string[]> {
  const r = await run('ip', ['-o', 'link', 'show', 'master', bridge]);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]!.split('@')[0]!);
}

/** Runs fn over items with at most `limit` at once; resolves with the results in order. */
export async function inBatches<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += limit) {
    out.push(...(await Promise.all(items.slice(i, i + limit).map((item, k) => fn(item, i + k)))));
  }
  return out;
}

/** `<prefix> <stream> <seq> xxx…`: the log writer's line → its parts. */
export function parseLine(message: string): { prefix: string; stream: string; seq: number } | undefined {
  const m = /^(\S+) (stdout|stderr) (\d{6}) /.exec(message);
  return m ? { prefix: m[1]!, stream: m[2]!, seq: Number(m[3]) } : undefined;
}

/** A random lowercase suffix for names (namespaces, pods). */
export function randomSuffix(bytes = 3): string {
  return randomBytes(bytes).toString('hex');
}

export interface MetricSample {
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format → samples by series name (histogram parts under their own names). */
export function parseSamples(text: string): Map<string, MetricSample[]> {
  const out = new Map<string, MetricSample[]>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = sample.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const [, name = '', rawLabels = '', rawValue = ''] = m;
    const labels: Record<string, string> = {};
    label.lastIndex = 0;
    while (label.lastIndex < rawLabels.length) {
      const l = label.exec(rawLabels);
      if (!l) throw new Error(`bad labels in ${line}`);
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    const list = out.get(name) ?? [];
    list.push({ labels, value: Number(rawValue) });
    out.set(name, list);
  }
  return out;
}

/** Wall-clock phases of a scenario, printed at its end: where the suite's time goes. */
export function phases(name: string): { mark(phase: string): void; text(): string; report(): string } {
  let last = Date.now();
  const marks: string[] = [];
  return {
    mark(phase) {
      const now = Date.now();
      marks.push(`${phase} ${((now - last) / 1000).toFixed(1)}s`);
      last = now;
      if (process.env['NODEWARD_E2E_VERBOSE']) console.info(`[e2e] ${name}: ${marks.at(-1)}`);
    },
    text: () => `${name}: ${marks.join(', ')}`,
    report() {
      const text = `[e2e] ${name}: ${marks.join(', ')}`;
      console.info(text);
      return text;
    },
  };
}
