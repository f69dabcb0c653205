/**
 * Where a scrape's CPU goes, in-process (not a bench: no anchor). Starts the lab's dockerd with N
 * busybox containers, builds the metrics module as the agent does (docker source, all host
 * collectors), and times the exposition + gzip (what GET /metrics does) per scrape, then the
 * container collector alone. Run with `--cpu-prof` for a V8 profile of the scrape loop:
 *
 *   node_modules/.bin/node --cpu-prof --cpu-prof-dir=/tmp/prof bench/metrics/profile.ts 50 500
 */
import { createExpositionWriter, gzipExposition } from '../../agent/exposition.ts';
import { createMetrics } from '../../agent/metrics/index.ts';
import { buildTimexHelper } from '../../agent/metrics/timex/build.ts';
import { metricsSchema } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logger.ts';
import { importBusybox, Lab, startDockerd, waitFor } from '../../test/lab/index.ts';
import { TIMEX_HELPER } from '../lib/agent-image.ts';
import { startIdleContainers } from './containers.ts';

const containers = Number(process.argv[2] ?? 50);
const scrapes = Number(process.argv[3] ?? 300);

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const lab = new Lab();
try {
  const dockerd = await startDockerd({ lab });
  await importBusybox(dockerd.socketPath);
  await startIdleContainers(dockerd, containers, 'prof');
  // The timex helper where the image has it: a missing one costs a failed spawn per scrape.
  buildTimexHelper(TIMEX_HELPER);
  const settings = metricsSchema.parse({
    containers: { source: 'docker', dockerSocket: dockerd.socketPath },
    timex: { helper: TIMEX_HELPER },
  });
  const metrics = createMetrics(settings, { log: createLogger('silent'), node: 'prof' });
  const controller = new AbortController();
  const running = metrics.run(controller.signal);
  await waitFor(async () => metrics.source!.list().length === containers, {
    what: 'containers listed',
    timeoutMs: 30_000,
  });
  const render = createExpositionWriter();
  const scrape = async () => gzipExposition((await render([metrics.registry])).body);
  for (let i = 0; i < 20; i++) await scrape();
  const text = await metrics.registry.metrics();
  const c0 = cpuMs();
  for (let i = 0; i < scrapes; i++) await scrape();
  const whole = (cpuMs() - c0) / scrapes;
  const c1 = cpuMs();
  for (let i = 0; i < scrapes; i++) await metrics.scrape();
  const collect = (cpuMs() - c1) / scrapes;
  console.log(
    JSON.stringify({
      containers,
      samples: text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length,
      bytes: text.length,
      scrapeCpuMs: Number(whole.toFixed(3)),
      collectOnlyCpuMs: Number(collect.toFixed(3)),
    }),
  );
  controller.abort();
  await running;
} finally {
  await lab.cleanup();
}
