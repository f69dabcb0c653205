import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { logsSchema } from '../../shared/config/index.ts';
import { runOk } from '../../test/lab/exec.ts';
import { Lab, skipReason, startKafka, tempDir } from '../../test/lab/index.ts';
import { freePort } from '../../test/lab/ports.ts';
import { type Service, startService } from '../../test/lab/proc.ts';
import { type FakeKubelet, startFakeKubelet } from '../../test/support/pods/fake-kubelet.ts';
import { AGENT_BUNDLE, agentEnv, agentNodeArgs, buildAgentImage } from '../lib/agent-image.ts';
import { cpuSeconds } from '../lib/proc-stats.ts';
import { type Bench, type BenchMetric, median, metric } from '../types.ts';
import { cpuSplit } from './profile.ts';

/**
 * Log shipping, ours vs rsyslog (imfile → omkafka), into the same librdkafka mock broker in the
 * same run: 200-byte CRI lines in 50 files (10 namespaces × 5 pods), gzip on both sides, one
 * shipper at a time (2 cores: running both at once would measure the contention).
 *
 * Each shipper is started on an empty directory and, once ready, 50 symlinks to the already
 * written files appear in it (the kubelet's /var/log/containers): the clock starts then, and stops
 * when the broker's end offsets add up to the line count. CPU is user+system of the shipper's
 * process over that window (/proc/<pid>/stat), so start-up is not counted for either. Ours labels
 * every line with pod metadata from a kubelet-shaped /pods (shared/pods/fake-kubelet.ts) and ships
 * a JSON record (≈ 2.5× the line); rsyslog ships the raw line. Afterwards every topic is read back
 * with kcat and each line's sequence number counted: lost_lines must be 0. Topics are per
 * namespace for both (40 partitions), which keeps every partition far under the mock's ≈ 5 MB
 * retention once gzipped; the low watermarks are checked to prove it.
 *
 * Ours runs once per Kafka client library (logs.kafka.client; BENCH_KAFKA_CLIENTS, default
 * "kafkajs,platformatic"): the metrics under their plain names are the configuration default's
 * client, the others' come as `<metric>_<client>`, all against the same rsyslog anchor.
 *
 * Full runs alternate 3 rounds of each and report medians (this 2-core machine is shared: single
 * runs vary up to 2× in wall time); --quick runs one round of 100k lines. A last, profiled run of
 * ours per client (`--cpu-prof`) prints where the main thread's time goes, by stage
 * (bench/logs/profile.ts).
 */

type KafkaClient = ReturnType<typeof logsSchema.parse>['kafka']['client'];
const KAFKA_CLIENTS: readonly KafkaClient[] = ['kafkajs', 'platformatic'];

/**
 * The agent run as ours: the bundle the image runs (`npm run build`, made at the start), with the
 * image's Node flags; BENCH_NODEWARD=agent/bin/nodeward.ts runs the sources instead.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const NODEWARD = process.env['BENCH_NODEWARD'] ? resolve(ROOT, process.env['BENCH_NODEWARD']) : AGENT_BUNDLE;
const NAMESPACES = 10;
const PODS_PER_NAMESPACE = 5;
const LINE_BYTES = 200;

interface Layout {
  files: { ns: string; pod: string; uid: string; id: string; file: string }[];
  lines: number;
  bytes: number;
}

/** Lines like an access log: some repetition, some entropy, a sequence number to count them by. */
function writeFiles(dir: string, total: number): Layout {
  const files: Layout['files'] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    for (let p = 0; p < PODS_PER_NAMESPACE; p++) {
      const ns = `ns${n}`;
      const pod = `web${p}-5f7c9d8b4-${randomBytes(3).toString('hex').slice(0, 5)}`;
      const uid = randomUUID();
      const id = randomBytes(32).toString('hex');
      const d = join(dir, 'pods', `${ns}_${pod}_${uid}`, 'app');
      mkdirSync(d, { recursive: true });
      files.push({ ns, pod, uid, id, file: join(d, '0.log') });
    }
  }
  const perFile = Math.ceil(total / files.length);
  let bytes = 0;
  const base = Date.now();
  for (let f = 0; f < files.length; f++) {
    const parts: string[] = [];
    for (let i = 0; i < perFile; i++) {
      const seq = f * perFile + i;
      const ts = new Date(base + seq).toISOString().replace('Z', '123456Z');
      const head = `${ts} stdout F level=info seq=${seq} msg="GET /api/v1/items/${(seq * 7919) % 1_000_003} HTTP/1.1" status=200 latency_ms=${seq % 937} user=${((seq * 2654435761) >>> 0).toString(16)} pad=`;
      parts.push(`${head}${'x'.repeat(Math.max(0, LINE_BYTES - 1 - head.length))}\n`);
    }
    const text = parts.join('');
    bytes += Buffer.byteLength(text);
    writeFileSync(files[f]!.file, text);
  }
  return { files, lines: perFile * files.length, bytes };
}

function linkAll(layout: Layout, root: string): void {
  for (const f of layout.files) symlinkSync(f.file, join(root, `${f.pod}_${f.ns}_app-${f.id}.log`));
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function peakRssMiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

interface Run {
  name: string;
  /** The measured span in µs of the monotonic clock, as V8's profiler stamps its samples. */
  window: [number, number];
  seconds: number;
  cpu: number;
  peakRssMiB: number;
  lost: number;
  trimmed: boolean;
}

async function endOffsets(kafka: Kafka, topics: string[]): Promise<{ high: number; trimmed: boolean }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    let high = 0;
    let trimmed = false;
    for (const topic of topics) {
      try {
        for (const p of await admin.fetchTopicOffsets(topic)) {
          high += Number(p.high);
          if (Number(p.low) > 0) trimmed = true;
        }
      } catch {
        // not created yet
      }
    }
    return { high, trimmed };
  } finally {
    await admin.disconnect();
  }
}

/** Waits until `lines` records are on the topics; returns the seconds since `t0`. */
async function untilDelivered(
  kafka: Kafka,
  topics: string[],
  lines: number,
  t0: number,
  service: Service,
  limitMs: number,
) {
  for (;;) {
    const { high } = await endOffsets(kafka, topics);
    if (process.env['BENCH_TRACE'])
      process.stderr.write(`  [${((performance.now() - t0) / 1000).toFixed(2)} s] ${high}\n`);
    if (high >= lines) return (performance.now() - t0) / 1000;
    if (!service.running) throw new Error(`${service.name} exited; see ${service.logPath}`);
    if (performance.now() - t0 > limitMs)
      throw new Error(`${service.name}: only ${high} of ${lines} lines after ${limitMs} ms`);
    await sleep(50);
  }
}

/** Reads every topic back with kcat: how many distinct sequence numbers are missing. */
async function countLost(bootstrap: string, topics: string[], lines: number, json: boolean): Promise<number> {
  const seen = new Uint8Array(lines);
  for (const topic of topics) {
    const out = await runOk(
      'kcat',
      ['-C', '-b', bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n'],
      {
        timeoutMs: 120_000,
      },
    ).catch(() => '');
    for (const line of out.split('\n')) {
      if (line === '') continue;
      const text = json ? (JSON.parse(line) as { message: string }).message : line;
      const m = / seq=(\d+) /.exec(` ${text}`);
      if (m) seen[Number(m[1])] = 1;
    }
  }
  let lost = 0;
  for (let i = 0; i < lines; i++) if (seen[i] === 0) lost++;
  return lost;
}

async function fakeKubelet(lab: Lab, dir: string, layout: Layout): Promise<FakeKubelet> {
  const kubeletDir = join(dir, 'kubelet');
  mkdirSync(kubeletDir, { recursive: true });
  const kubelet = await startFakeKubelet(kubeletDir);
  lab.defer('stop the fake kubelet', () => kubelet.close());
  for (const f of layout.files) {
    kubelet.add({
      namespace: f.ns,
      name: f.pod,
      uid: f.uid,
      labels: { app: f.pod.split('-')[0]!, 'pod-template-hash': '5f7c9d8b4' },
      owner: { kind: 'ReplicaSet', name: `${f.pod.split('-')[0]}-5f7c9d8b4` },
      containers: [{ name: 'app', id: f.id }],
    });
  }
  return kubelet;
}

interface OursVariant {
  /** Also the topic prefix and the directory name. */
  name: string;
  client: KafkaClient;
  kubelet: FakeKubelet;
  nodeArgs?: string[];
  /** Read the topics back and count lost lines. */
  verify: boolean;
}

async function runOurs(
  lab: Lab,
  dir: string,
  layout: Layout,
  brokers: string[],
  kafka: Kafka,
  log: (l: string) => void,
  v: OursVariant,
): Promise<Run> {
  const root = join(dir, `containers-${v.name}`);
  mkdirSync(root, { recursive: true });
  const kubelet = v.kubelet;
  const port = await freePort();
  const config = join(dir, `${v.name}.yaml`);
  writeFileSync(
    config,
    JSON.stringify({
      node: { name: 'bench-node' },
      dataDir: join(dir, `${v.name}-data`),
      log: { level: 'warn' },
      http: { listen: `127.0.0.1:${port}` },
      metrics: { enabled: false },
      logs: {
        root,
        sink: 'kafka',
        kafka: {
          client: v.client,
          brokers,
          topic: `${v.name}.{namespace}`,
          compression: 'gzip',
          // For experiments with the sink's settings: BENCH_KAFKA_CONFIG='{"inFlight":4}'.
          ...(JSON.parse(process.env['BENCH_KAFKA_CONFIG'] ?? '{}') as object),
        },
        podLabels: ['app'],
        // For experiments with the pipeline's settings: BENCH_LOGS_CONFIG='{"maxInflightBytes":"1MiB"}'.
        ...(JSON.parse(process.env['BENCH_LOGS_CONFIG'] ?? '{}') as object),
      },
      pods: {
        source: 'kubelet',
        kubelet: { url: kubelet.url, tokenFile: kubelet.tokenFile, caFile: kubelet.caFile },
      },
    }),
  );
  const home = join(dir, v.name);
  mkdirSync(home, { recursive: true });
  const service = startService({
    lab,
    name: `nodeward-${v.name}`,
    dir: home,
    command: process.execPath,
    args: [...(v.nodeArgs ?? []), NODEWARD, 'agent', '--config', config],
    env: agentEnv(),
    stopGraceMs: 15_000,
  });
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (!service.running) throw new Error(`nodeward exited; see ${service.logPath}`);
    await sleep(50);
  }
  const topics = Array.from({ length: NAMESPACES }, (_, n) => `${v.name}.ns${n}`);
  const idleRss = rssMiB(service.pid);
  const cpu0 = cpuSeconds(service.pid);
  const t0 = performance.now();
  const w0 = Number(process.hrtime.bigint() / 1000n);
  linkAll(layout, root);
  const seconds = await untilDelivered(kafka, topics, layout.lines, t0, service, 300_000);
  const cpu = cpuSeconds(service.pid) - cpu0;
  const window: [number, number] = [w0, Number(process.hrtime.bigint() / 1000n)];
  const peak = peakRssMiB(service.pid);
  const scrape = await fetch(`http://127.0.0.1:${port}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  // What the peak is made of: V8's heap (reserved, live at the end) and Buffers outside it.
  const gauge = (name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(scrape);
    return m ? Number(m[1]) / 2 ** 20 : Number.NaN;
  };
  log(
    `${v.name} (${v.client}): ${layout.lines} lines in ${seconds.toFixed(2)} s, ${cpu.toFixed(2)} CPU-s, peak RSS ${peak.toFixed(0)} MiB (idle before ${idleRss.toFixed(0)}; after: heap total ${gauge('nodejs_heap_size_total_bytes').toFixed(0)}, used ${gauge('nodejs_heap_size_used_bytes').toFixed(0)}, external ${gauge('nodejs_external_memory_bytes').toFixed(0)} MiB)`,
  );
  const errors = scrape.split('\n').filter((l) => l.startsWith('nodeward_logs_sink_errors_total'));
  if (errors.length > 0) log(`${v.name}: sink errors (batches retried): ${errors.join('; ')}`);
  await service.stop();
  const { trimmed } = await endOffsets(kafka, topics);
  const lost = v.verify ? await countLost(brokers.join(','), topics, layout.lines, true) : 0;
  return { name: v.name, window, seconds, cpu, peakRssMiB: peak, lost, trimmed };
}

async function runRsyslog(
  lab: Lab,
  dir: string,
  layout: Layout,
  brokers: string[],
  kafka: Kafka,
  log: (l: string) => void,
  name: string,
): Promise<Run> {
  const root = join(dir, `containers-${name}`);
  const work = join(dir, name);
  mkdirSync(root, { recursive: true });
  mkdirSync(work, { recursive: true });
  const inputs = Array.from(
    { length: NAMESPACES },
    (_, n) => `input(type="imfile" File="${root}/*_ns${n}_*.log" Tag="ns${n}" ruleset="k")`,
  ).join('\n');
  const conf = join(work, 'rsyslog.conf');
  writeFileSync(
    conf,
    `global(workDirectory="${work}")
module(load="imfile" mode="${process.env['RS_MODE'] ?? 'inotify'}")
module(load="omkafka")
template(name="line" type="string" string="%msg%")
template(name="topic" type="string" string="${name}.%syslogtag%")
${inputs}
ruleset(name="k") {
  action(type="omkafka" broker=[${brokers.map((b) => `"${b}"`).join(',')}] dynatopic="on" topic="topic" template="line"
         confParam=["compression.codec=gzip"${process.env['RS_CONF'] ?? ''}])
}
`,
  );
  const pidFile = join(work, 'rsyslogd.pid');
  const service = startService({
    lab,
    name: 'rsyslogd',
    dir: work,
    command: 'rsyslogd',
    args: ['-n', '-f', conf, '-i', pidFile],
  });
  for (let i = 0; ; i++) {
    try {
      readFileSync(pidFile);
      break;
    } catch {
      if (!service.running || i > 200) throw new Error(`rsyslogd did not start; see ${service.logPath}`);
      await sleep(25);
    }
  }
  await sleep(300);
  const topics = Array.from({ length: NAMESPACES }, (_, n) => `${name}.ns${n}`);
  const cpu0 = cpuSeconds(service.pid);
  const t0 = performance.now();
  linkAll(layout, root);
  const seconds = await untilDelivered(kafka, topics, layout.lines, t0, service, 300_000);
  const cpu = cpuSeconds(service.pid) - cpu0;
  const peak = peakRssMiB(service.pid);
  log(
    `${name}: ${layout.lines} lines in ${seconds.toFixed(2)} s, ${cpu.toFixed(2)} CPU-s, peak RSS ${peak.toFixed(0)} MiB`,
  );
  await service.stop();
  const { trimmed } = await endOffsets(kafka, topics);
  const lost = await countLost(brokers.join(','), topics, layout.lines, false);
  return { name, window: [0, 0], seconds, cpu, peakRssMiB: peak, lost, trimmed };
}

/** Median seconds, CPU and peak RSS over rounds; the worst loss. */
function medianRun(runs: Run[]): Run {
  return {
    name: runs[0]!.name,
    window: [0, 0],
    seconds: median(runs.map((r) => r.seconds)),
    cpu: median(runs.map((r) => r.cpu)),
    peakRssMiB: median(runs.map((r) => r.peakRssMiB)),
    lost: Math.max(...runs.map((r) => r.lost)),
    trimmed: runs.some((r) => r.trimmed),
  };
}

const bench: Bench = {
  description: 'CRI lines with pod metadata → Kafka (librdkafka mock), ours vs rsyslog imfile→omkafka, gzip',
  async run({ quick, log }): Promise<BenchMetric[]> {
    const missing = skipReason({ binaries: ['kcat', 'rsyslogd', 'openssl'] });
    if (missing) throw new Error(`bench logs needs ${missing}`);
    process.env['KAFKAJS_NO_PARTITIONER_WARNING'] = '1';
    if (process.env['BENCH_NODEWARD'] === undefined) buildAgentImage();
    const lab = new Lab();
    try {
      const lines = quick ? 100_000 : 500_000;
      const dir = await tempDir('bench-logs', lab);
      const layout = writeFiles(dir, lines);
      log(
        `${layout.lines} lines of ${LINE_BYTES} B in ${layout.files.length} files (${(layout.bytes / 2 ** 20).toFixed(0)} MiB)`,
      );
      const mock = await startKafka({ lab });
      const kafka = new Kafka({ brokers: mock.brokers, logLevel: logLevel.NOTHING });
      const kubelet = await fakeKubelet(lab, dir, layout);
      // Rounds alternate the two: this machine is shared, and single runs vary by 2× in wall time.
      const rounds = quick ? 1 : 3;
      const clients = (process.env['BENCH_KAFKA_CLIENTS'] ?? KAFKA_CLIENTS.join(','))
        .split(',')
        .filter((c) => c !== '')
        .map((c) => {
          if (!(KAFKA_CLIENTS as readonly string[]).includes(c))
            throw new Error(`BENCH_KAFKA_CLIENTS: unknown client ${c} (known: ${KAFKA_CLIENTS.join(', ')})`);
          return c as KafkaClient;
        });
      if (clients.length === 0) throw new Error('BENCH_KAFKA_CLIENTS names no client');
      const byDefault = logsSchema.parse({}).kafka.client;
      const primary = clients.includes(byDefault) ? byDefault : (clients[0] as KafkaClient);
      const anchors: Run[] = [];
      const ourRuns = new Map<KafkaClient, Run[]>(clients.map((c) => [c, []]));
      for (let r = 1; r <= rounds; r++) {
        anchors.push(await runRsyslog(lab, dir, layout, mock.brokers, kafka, log, `rsyslog${r}`));
        for (const client of clients) {
          ourRuns.get(client)?.push(
            await runOurs(lab, dir, layout, mock.brokers, kafka, log, {
              name: `${client}${r}`,
              client,
              kubelet,
              verify: true,
              nodeArgs: agentNodeArgs(),
            }),
          );
        }
      }
      const anchor = medianRun(anchors);
      // Where our CPU goes: a second run under the V8 sampling profiler (main thread only; gzip
      // runs on the libuv pool with kafkajs, GC partly on helper threads: the rest of the CPU time).
      for (const client of clients) {
        const profDir = join(dir, `profile-${client}`);
        const profiled = await runOurs(lab, dir, layout, mock.brokers, kafka, log, {
          name: `profiled-${client}`,
          client,
          kubelet,
          nodeArgs: [...agentNodeArgs(), '--cpu-prof', `--cpu-prof-dir=${profDir}`],
          verify: false,
        });
        log(`profile of ours with ${client}:`);
        for (const line of cpuSplit(profDir, profiled.cpu, profiled.window)) log(line);
      }
      for (const r of [...anchors, ...[...ourRuns.values()].flat()]) {
        if (r.trimmed)
          log(`WARNING ${r.name}: the mock trimmed a partition (low watermark > 0): lost_lines overstates`);
        log(`${r.name}: lost ${r.lost} of ${layout.lines} (read back with kcat)`);
      }
      if (rounds > 1) log(`median of ${rounds} rounds each (lost: the worst round)`);
      const anchorName = 'rsyslog imfile→omkafka';
      const perM = (r: Run) => (r.cpu / layout.lines) * 1e6;
      const mib = layout.bytes / 2 ** 20;
      const metrics: BenchMetric[] = [];
      for (const client of [primary, ...clients.filter((c) => c !== primary)]) {
        const ours = medianRun(ourRuns.get(client) ?? []);
        const suffix = client === primary ? '' : `_${client}`;
        for (const m of clientMetrics(ours)) metrics.push({ ...m, name: `${m.name}${suffix}` });
      }
      return metrics;
      function clientMetrics(ours: Run): BenchMetric[] {
        return [
          metric({
            name: 'lines_per_s',
            unit: 'lines/s',
            ours: layout.lines / ours.seconds,
            anchor: layout.lines / anchor.seconds,
            anchorName,
            better: 'higher',
            goal: 1,
          }),
          metric({
            name: 'mib_per_s',
            unit: 'MiB/s of input',
            ours: mib / ours.seconds,
            anchor: mib / anchor.seconds,
            anchorName,
            better: 'higher',
            goal: null,
          }),
          metric({
            name: 'cpu_s_per_million_lines',
            unit: 'CPU-s',
            ours: perM(ours),
            anchor: perM(anchor),
            anchorName,
            better: 'lower',
            goal: 1,
          }),
          metric({
            name: 'peak_rss_mib',
            unit: 'MiB',
            ours: ours.peakRssMiB,
            anchor: anchor.peakRssMiB,
            anchorName,
            better: 'lower',
            goal: null,
          }),
          metric({
            name: 'lost_lines',
            unit: 'lines',
            ours: ours.lost,
            anchor: anchor.lost,
            anchorName,
            better: 'lower',
            goal: 0,
            goalOf: 'ours',
          }),
        ];
      }
    } finally {
      await lab.cleanup();
    }
  },
};

export default bench;
