import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Self time of a V8 .cpuprofile by pipeline stage, from the script each sampled function lives in,
 * restricted to the measured span. Only the main thread is sampled: gzip runs on the libuv pool
 * and part of GC on helper threads.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Labels, pod rules and routes, and the followed files that wire the stages together. */
const ENRICH_ROUTE =
  /log-shipper\/(enrich|route|pod-rules|token-bucket|file-labels|followed-files?|line-counts|timed-multiline|restart-recovery|rotated-files)\.ts|shared\/pods/;

const STAGES: [string, (url: string, fn: string) => boolean][] = [
  [
    'read (tail, discover, fs)',
    (u) => /log-shipper\/(tail|discover|identity)\.ts|chokidar|node:internal\/fs|node:fs/.test(u),
  ],
  ['parse', (u) => /log-shipper\/(parse|multiline)\.ts/.test(u)],
  ['enrich + route', (u) => ENRICH_ROUTE.test(u)],
  ['encode (record JSON)', (u) => /log-shipper\/record\.ts/.test(u)],
  ['batch + deliver', (u) => /log-shipper\/(batch|deliver|inflight|pipeline|checkpoint)\.ts/.test(u)],
  [
    'compress (gzip)',
    (u) =>
      /kafkajs\/src\/protocol\/message\/compression|platformatic\/kafka\/dist\/protocol\/compression|node:zlib/.test(
        u,
      ),
  ],
  ['kafkajs: encode + send', (u) => /kafkajs/.test(u)],
  [
    '@platformatic/kafka: encode + send',
    (u) => /@platformatic\/(kafka|dynamic-buffer|wasm-utils)|@node-rs\/crc32|fastq|mnemonist/.test(u),
  ],
  ['Buffer alloc + copy (client encoder)', (u) => /node:internal\/buffer|node:buffer/.test(u)],
  ['garbage collector', (_u, f) => f === '(garbage collector)'],
  [
    'socket + streams (node)',
    (u) => /node:internal\/(net|stream|streams|tls|timers)|node:net|node:stream|node:events/.test(u),
  ],
  ['native, not attributed', (_u, f) => f === '(program)'],
  ['idle', (_u, f) => f === '(idle)'],
];

/** `window`: [start, end] in µs of the monotonic clock (process.hrtime), the measured span. */
export function cpuSplit(dir: string, processCpuSeconds: number, window: [number, number]): string[] {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) return ['no .cpuprofile written'];
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  const others = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (node === undefined || t < window[0] || t > window[1]) continue;
    const { url, functionName } = node.callFrame;
    const stage = STAGES.find(([, match]) => match(url, functionName))?.[0] ?? 'other (V8, Node internals)';
    selfUs.set(stage, (selfUs.get(stage) ?? 0) + dt);
    if (stage.startsWith('other')) {
      const key = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '')}`;
      others.set(key, (others.get(key) ?? 0) + dt);
    }
  }
  const idle = selfUs.get('idle') ?? 0;
  selfUs.delete('idle');
  const busy = [...selfUs.values()].reduce((a, b) => a + b, 0) / 1e6;
  // Shares of the sampled main-thread time: the sampler counts wall time between samples, which on
  // a busy 2-core machine includes preemption, so absolute seconds would overstate.
  const lines = [
    `CPU split, measured span of a profiled run (process ${processCpuSeconds.toFixed(2)} CPU-s; shares of ${busy.toFixed(2)} s sampled on the main thread, ${(idle / 1e6).toFixed(2)} s idle not counted):`,
  ];
  for (const [stage, us] of [...selfUs].sort((a, b) => b[1] - a[1]))
    lines.push(`  ${stage.padEnd(38)} ${((us / 1e6 / busy) * 100).toFixed(1).padStart(5)} %`);
  const top = [...others].sort((a, b) => b[1] - a[1]).slice(0, 4);
  lines.push(
    `    other, largest: ${top.map(([k, us]) => `${k.trim()} ${((us / 1e6 / busy) * 100).toFixed(1)} %`).join('; ')}`,
  );
  return lines;
}
