import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Collector, Labels } from '../../../agent/metrics/collector.ts';
import { buildTimexHelper } from '../../../agent/metrics/timex/build.ts';
import { type MetricsConfig, metricsSchema } from '../../../shared/config/index.ts';

/** Helpers for the metrics tests; not used at run time. */

export const fixture = (...path: string[]) =>
  fileURLToPath(new URL(['../../../agent/metrics/fixtures', ...path].join('/'), import.meta.url));

const FIXTURES = fixture();

/**
 * Settings with defaults, reading procfs from a fixture tree — and sysfs from the tree's `sys`
 * beside it (fixtures/host/proc → fixtures/host/sys), and adjtimex(2) through the tree's
 * `bin/nodeward-timex` (a script with fixed output), so no test reads this machine by chance.
 */
export function settingsFor(procRoot: string, overrides: Record<string, unknown> = {}): MetricsConfig {
  const tree =
    procRoot.startsWith(FIXTURES) && procRoot.endsWith('/proc')
      ? procRoot.slice(0, -'/proc'.length)
      : undefined;
  return metricsSchema.parse({
    procRoot,
    ...(tree ? { sysRoot: `${tree}/sys`, timex: { helper: `${tree}/bin/nodeward-timex` } } : {}),
    ...overrides,
  });
}

/**
 * The real adjtimex helper (agent/metrics/timex/nodeward-timex.c), compiled into a fresh temp dir
 * for tests on this machine's kernel; `remove` deletes the dir.
 */
export function compileTimexHelper(): { helper: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nodeward-timex-'));
  const helper = join(dir, 'nodeward-timex');
  try {
    buildTimexHelper(helper);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { helper, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestSample {
  name: string;
  value: number;
  labels: Labels;
}

/** One collection of one collector, as a flat list. */
export async function collectSamples(collector: Collector): Promise<TestSample[]> {
  const out: TestSample[] = [];
  await collector.collect((family, value, labels = {}) => {
    out.push({ name: family.name, value, labels });
  });
  return out;
}

/** The value of the one sample with this name (and labels), failing loudly if there is not exactly one. */
export function sampleValue(samples: TestSample[], name: string, labels: Labels = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]!.value;
}

export interface ExposedFamily {
  help?: string;
  type?: string;
  samples: { labels: Record<string, string>; value: number }[];
}

/**
 * A strict reader of the Prometheus text format (0.0.4) as our registry writes it: every sample
 * must follow its family's HELP and TYPE, names and label names must be valid, values must parse.
 */
export function parseExposition(text: string): Map<string, ExposedFamily> {
  const families = new Map<string, ExposedFamily>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const meta = new RegExp(`^# (HELP|TYPE) (${name}) (.*)$`);
  const sample = new RegExp(`^(${name})(?:\\{(.*)\\})? (\\S+)$`);
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;
  let current: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = meta.exec(line);
    if (m) {
      const [, kind, fam, rest] = m;
      const entry = families.get(fam!) ?? { samples: [] };
      if (kind === 'HELP') entry.help = rest;
      else entry.type = rest;
      families.set(fam!, entry);
      current = fam;
      continue;
    }
    const s = sample.exec(line);
    if (!s) throw new Error(`not an exposition line: ${line}`);
    const [, fam, rawLabels = '', rawValue] = s;
    if (fam !== current) throw new Error(`sample of ${fam} outside its family (${current})`);
    const labels: Record<string, string> = {};
    label.lastIndex = 0;
    while (label.lastIndex < rawLabels.length) {
      const l = label.exec(rawLabels);
      if (!l) throw new Error(`bad labels in ${line}`);
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    const value = Number(rawValue);
    if (Number.isNaN(value) && rawValue !== 'NaN') throw new Error(`bad value in ${line}`);
    families.get(fam!)!.samples.push({ labels, value });
  }
  for (const [fam, entry] of families) {
    if (entry.help === undefined || !['counter', 'gauge', 'untyped'].includes(entry.type ?? '')) {
      throw new Error(`${fam}: missing HELP or TYPE`);
    }
    const keys = entry.samples.map((s) => JSON.stringify(Object.entries(s.labels).sort()));
    if (new Set(keys).size !== keys.length) throw new Error(`${fam}: duplicate series`);
  }
  return families;
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: import('node:http').IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A small HTTP receiver standing in for a push target or Alertmanager: it records each request
 * and answers with the next status of `statuses` (the last one repeats).
 */
export async function startReceiver(statuses: number[] = [200]) {
  const { createServer } = await import('node:http');
  const requests: ReceivedRequest[] = [];
  let answered = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      const status = statuses[Math.min(answered++, statuses.length - 1)]!;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status >= 400 ? `status ${status}\n` : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Snappy block decompression, for tests only: the agent compresses, never decompresses. */
export function snappyUncompress(input: Uint8Array): Buffer {
  let pos = 0;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    const b = input[pos++]!;
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  const out = Buffer.alloc(length);
  let o = 0;
  while (pos < input.length) {
    const tag = input[pos++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >>> 2;
      if (len >= 60) {
        const bytes = len - 59;
        len = 0;
        for (let i = 0; i < bytes; i++) len += input[pos++]! * 256 ** i;
      }
      len += 1;
      out.set(input.subarray(pos, pos + len), o);
      pos += len;
      o += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      len = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | input[pos++]!;
    } else if (kind === 2) {
      len = (tag >>> 2) + 1;
      offset = input[pos]! | (input[pos + 1]! << 8);
      pos += 2;
    } else {
      len = (tag >>> 2) + 1;
      offset = Buffer.from(input.subarray(pos, pos + 4)).readUInt32LE(0);
      pos += 4;
    }
    if (offset === 0 || offset > o) throw new Error(`snappy: bad offset ${offset} at ${o}`);
    for (let i = 0; i < len; i++, o++) out[o] = out[o - offset]!;
  }
  if (o !== length) throw new Error(`snappy: ${o} bytes decoded, ${length} announced`);
  return out;
}
