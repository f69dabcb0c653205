import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { importBusybox, Lab, startDockerd } from '../../test/lab/index.ts';
import { freePort } from '../../test/lab/ports.ts';
import { agentArgv, agentEnv, buildAgentImage } from '../lib/agent-image.ts';
import { cpuSeconds, rssBytes } from '../lib/proc-stats.ts';
import { type Bench, median, metric, percentile } from '../types.ts';
import { startIdleContainers } from './containers.ts';

const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';

interface ScrapeResult {
  wallMs: number;
  /** Bytes on the wire (gzip, as Prometheus asks for it). */
  bytes: number;
}

/** One GET /metrics as Prometheus makes it (Accept-Encoding: gzip), timed to the last byte. */
function scrape(port: number): Promise<ScrapeResult> {
  return new Promise((done, fail) => {
    const start = performance.now();
    const req = request(
      { host: '127.0.0.1', port, path: '/metrics', headers: { 'accept-encoding': 'gzip' } },
      (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) fail(new Error(`scrape of :${port} answered ${res.statusCode}`));
          else done({ wallMs: performance.now() - start, bytes });
        });
      },
    );
    req.on('error', fail);
    req.end();
  });
}

async function scrapeText(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

async function waitUntil(what: string, probe: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await probe().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Scrapes one after another, the way a Prometheus scrapes a target, and charges the target's CPU
 * (user+system from /proc/<pid>/stat, 10 ms ticks — hence many scrapes) to the scrapes.
 */
async function measure(pid: number, port: number, scrapes: number) {
  for (let i = 0; i < 5; i++) await scrape(port); // warm-up: JIT, first reads, caches
  const cpuBefore = cpuSeconds(pid);
  const results: ScrapeResult[] = [];
  for (let i = 0; i < scrapes; i++) results.push(await scrape(port));
  const cpuMs = ((cpuSeconds(pid) - cpuBefore) * 1000) / scrapes;
  const walls = results.map((r) => r.wallMs);
  return {
    cpuMs,
    wallP50: median(walls),
    wallP99: percentile(walls, 99),
    bytes: median(results.map((r) => r.bytes)),
  };
}

const countSeries = (text: string, prefix: string) =>
  text.split('\n').filter((l) => l.startsWith(prefix) && !l.startsWith('#')).length;

/**
 * One scrape of our agent (host collectors + N busybox containers on the lab's dockerd) against
 * node_exporter's host-only scrape in the same run. cAdvisor — the anchor for the container half —
 * is not packaged here, so the container series are charged to us against nothing: the goal is that
 * our whole scrape costs no more CPU than node_exporter's host part alone. A second agent with its
 * container half off gives the like-for-like host comparison in the same rounds.
 */
const bench: Bench = {
  description: 'one scrape: ours (host + N containers) vs node_exporter (host only); CPU, wall, bytes; idle',
  async run({ quick, log }) {
    buildAgentImage();
    if (!existsSync(NODE_EXPORTER))
      throw new Error(`${NODE_EXPORTER} missing: apt-get install prometheus-node-exporter`);
    const containers = quick ? 10 : 50;
    const scrapes = quick ? 100 : 300;
    const idleWindow = quick ? 20_000 : 60_000;
    const lab = new Lab();
    const children: ChildProcess[] = [];
    try {
      log(`starting dockerd and ${containers} busybox containers`);
      const dockerd = await startDockerd({ lab });
      await importBusybox(dockerd.socketPath);
      await startIdleContainers(dockerd, containers, 'bench');

      const [ourPort, hostPort, anchorPort] = [await freePort(), await freePort(), await freePort()];
      const startOurs = (port: number, ...set: string[]) =>
        spawn(
          process.execPath,
          agentArgv([
            '--listen',
            `127.0.0.1:${port}`,
            '--log-level',
            'warn',
            '--set',
            'logs.enabled=false',
            ...set.flatMap((kv) => ['--set', kv]),
          ]),
          { cwd: dockerd.dir, env: agentEnv(), stdio: ['ignore', 'ignore', 'inherit'] },
        );
      const ours = startOurs(
        ourPort,
        `metrics.containers.dockerSocket=${dockerd.socketPath}`,
        'metrics.containers.source=docker',
      );
      // The same agent with its container half off: its host part against node_exporter's, like for like.
      const oursHost = startOurs(hostPort, 'metrics.containers.enabled=false');
      const anchor = spawn(
        NODE_EXPORTER,
        ['--no-collector.systemd', `--web.listen-address=127.0.0.1:${anchorPort}`],
        {
          stdio: 'ignore',
        },
      );
      children.push(ours, oursHost, anchor);
      await waitUntil('node_exporter', async () => (await scrapeText(anchorPort)).length > 0);
      await waitUntil('our host-only agent', async () => (await scrapeText(hostPort)).includes('node_load1'));
      await waitUntil(`all ${containers} containers in our scrape`, async () => {
        const text = await scrapeText(ourPort);
        return countSeries(text, 'container_memory_usage_bytes{') === containers;
      });
      const ourText = await scrapeText(ourPort);
      const anchorText = await scrapeText(anchorPort);
      log(
        `series: ours ${countSeries(ourText, '')} (${countSeries(ourText, 'container_')} container_*), node_exporter ${countSeries(anchorText, '')}; cAdvisor: not packaged here, no container anchor`,
      );

      // Idle first: the agent at rest with its containers known, as on a node between scrapes.
      log(`idle: ${idleWindow / 1000}s unscraped, ${containers} containers known`);
      await sleep(3000);
      const before = [cpuSeconds(ours.pid!), cpuSeconds(anchor.pid!)];
      await sleep(idleWindow);
      const after = [cpuSeconds(ours.pid!), cpuSeconds(anchor.pid!)];
      const pct = (i: number) => ((after[i]! - before[i]!) / (idleWindow / 1000)) * 100;
      const idleRss = [rssBytes(ours.pid!) / 2 ** 20, rssBytes(anchor.pid!) / 2 ** 20];

      // Interleaved rounds, so drift on a shared machine hits both alike.
      const rounds = 5;
      const a = { cpu: [] as number[], wall: [] as number[], bytes: 0 };
      const h = { cpu: [] as number[] };
      const o = { cpu: [] as number[], wall: [] as number[], bytes: 0 };
      for (let r = 0; r < rounds; r++) {
        const mo = await measure(ours.pid!, ourPort, Math.ceil(scrapes / rounds));
        const ma = await measure(anchor.pid!, anchorPort, Math.ceil(scrapes / rounds));
        const mh = await measure(oursHost.pid!, hostPort, Math.ceil(scrapes / rounds));
        log(
          `round ${r + 1}: ours ${mo.cpuMs.toFixed(2)} ms CPU, p50 ${mo.wallP50.toFixed(2)} ms; node_exporter ${ma.cpuMs.toFixed(2)} ms CPU, p50 ${ma.wallP50.toFixed(2)} ms; ours host only ${mh.cpuMs.toFixed(2)} ms CPU`,
        );
        h.cpu.push(mh.cpuMs);
        o.cpu.push(mo.cpuMs);
        o.wall.push(mo.wallP50);
        o.bytes = mo.bytes;
        a.cpu.push(ma.cpuMs);
        a.wall.push(ma.wallP50);
        a.bytes = ma.bytes;
      }

      const anchorName = 'node_exporter (host only)';
      return [
        metric({
          name: 'scrape_cpu_ms',
          unit: `ms CPU / scrape (ours: host + ${containers} containers)`,
          ours: median(o.cpu),
          anchor: median(a.cpu),
          anchorName,
          better: 'lower',
          goal: 1,
        }),
        metric({
          name: 'scrape_cpu_ms_host_only',
          unit: 'ms CPU / scrape (ours: host only, containers off)',
          ours: median(h.cpu),
          anchor: median(a.cpu),
          anchorName,
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'scrape_wall_ms',
          unit: 'ms p50',
          ours: median(o.wall),
          anchor: median(a.wall),
          anchorName,
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'scrape_bytes',
          unit: 'bytes gzip',
          ours: o.bytes,
          anchor: a.bytes,
          anchorName,
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'scrape_series',
          unit: 'samples',
          ours: countSeries(ourText, ''),
          anchor: countSeries(anchorText, ''),
          anchorName,
          better: 'higher',
          goal: null,
        }),
        metric({
          name: 'idle_cpu_pct',
          unit: '% of a core',
          ours: pct(0),
          anchor: pct(1),
          anchorName: 'node_exporter (idle)',
          better: 'lower',
          goal: 0.5,
          goalOf: 'ours',
        }),
        metric({
          name: 'idle_rss_mib',
          unit: 'MiB',
          ours: idleRss[0]!,
          anchor: idleRss[1]!,
          anchorName: 'node_exporter (idle)',
          better: 'lower',
          goal: 90,
          goalOf: 'ours',
        }),
        metric({
          name: 'rss_after_scrapes_mib',
          unit: `MiB after ${scrapes} back-to-back scrapes`,
          ours: rssBytes(ours.pid!) / 2 ** 20,
          anchor: rssBytes(anchor.pid!) / 2 ** 20,
          anchorName,
          better: 'lower',
          goal: null,
        }),
      ];
    } finally {
      for (const c of children) c.kill('SIGKILL');
      await lab.cleanup();
    }
  },
};

export default bench;
