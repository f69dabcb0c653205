import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, type FamilyType, family, type Labels } from '../collector.ts';

const SCRAPE_ERROR = family(
  'node_textfile_scrape_error',
  'gauge',
  '1 if there was an error opening or reading a file, 0 otherwise',
);
const MTIME = family(
  'node_textfile_mtime_seconds',
  'gauge',
  'Unixtime mtime of textfiles successfully read.',
);

export interface TextFamily {
  name: string;
  type: FamilyType;
  help: string | undefined;
  samples: { labels: Record<string, string>; value: number }[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const META = new RegExp(`^#\\s+(HELP|TYPE)\\s+(${NAME})(?:\\s+(.*))?$`);
const SAMPLE = new RegExp(`^(${NAME})\\s*(?:\\{(.*)\\})?\\s*(\\S+)(?:\\s+(\\S+))?\\s*$`);
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

const unescapeText = (s: string) => s.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));

function parseValue(text: string): number {
  if (/^[+-]?inf$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(text)) return Number.NaN;
  const v = Number(text);
  if (text === '' || Number.isNaN(v)) throw new Error(`bad value ${JSON.stringify(text)}`);
  return v;
}

/**
 * The Prometheus text format (0.0.4) as a *.prom file holds it. Histogram and summary families
 * become their series (`_bucket`, `_sum`, `_count`, quantiles) as untyped families of those names:
 * Prometheus stores the same series either way. A sample with a timestamp rejects the whole file,
 * as node_exporter does.
 */
export function parseTextFormat(text: string): Map<string, TextFamily> {
  const families = new Map<string, TextFamily>();
  const declared = new Map<string, { type?: FamilyType | 'histogram' | 'summary'; help?: string }>();
  const meta = (name: string) => {
    let m = declared.get(name);
    if (!m) {
      m = {};
      declared.set(name, m);
    }
    return m;
  };
  /** The family a sample name belongs to: itself, or a histogram/summary it is a series of. */
  const owner = (name: string) => {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    const t = declared.get(base)?.type;
    if (base !== name && (t === 'histogram' || t === 'summary')) return base;
    return name;
  };
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = META.exec(line);
      if (!m) continue;
      const entry = meta(m[2]!);
      if (m[1] === 'HELP') entry.help = unescapeText(m[3] ?? '');
      else {
        const type = (m[3] ?? '').trim();
        if (!['counter', 'gauge', 'untyped', 'histogram', 'summary'].includes(type))
          throw new Error(`line ${i + 1}: unknown type ${JSON.stringify(type)}`);
        entry.type = type as FamilyType;
      }
      continue;
    }
    const s = SAMPLE.exec(line);
    if (!s) throw new Error(`line ${i + 1}: not a sample: ${JSON.stringify(line)}`);
    const [, name, rawLabels = '', rawValue, timestamp] = s;
    if (timestamp !== undefined) throw new Error(`line ${i + 1}: client-side timestamps are not supported`);
    const labels: Record<string, string> = {};
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < rawLabels.length && rawLabels.slice(LABEL.lastIndex).trim() !== '') {
      const l = LABEL.exec(rawLabels);
      if (!l) throw new Error(`line ${i + 1}: bad labels in ${JSON.stringify(line)}`);
      labels[l[1]!] = unescapeText(l[2]!);
    }
    const parent = owner(name!);
    const info = declared.get(parent);
    const composite = info?.type === 'histogram' || info?.type === 'summary';
    const type: FamilyType = composite ? 'untyped' : ((info?.type as FamilyType | undefined) ?? 'untyped');
    let f = families.get(name!);
    if (!f) {
      f = { name: name!, type, help: composite ? undefined : info?.help, samples: [] };
      families.set(name!, f);
    }
    f.samples.push({ labels, value: parseValue(rawValue!) });
  }
  return families;
}

interface Parsed {
  mtimeMs: number;
  size: number;
  families: Map<string, TextFamily>;
}

/**
 * *.prom files of textfile.directory (cron jobs and the like write them), exposed as they are, with
 * node_exporter's node_textfile_mtime_seconds and node_textfile_scrape_error. A file is parsed
 * again only when its mtime or size changes.
 */
export function createTextfileCollector(settings: MetricsConfig): Collector {
  const dir = settings.textfile.directory;
  const cache = new Map<string, Parsed>();
  const families = new Map<string, Family>();
  const familyOf = (name: string, type: FamilyType, help: string) => {
    const key = `${name}\u0000${type}\u0000${help}`;
    let f = families.get(key);
    if (!f) {
      f = family(name, type, help);
      families.set(key, f);
    }
    return f;
  };
  return {
    families: [SCRAPE_ERROR, MTIME],
    dynamic: true,
    async collect(emit) {
      let errored = false;
      const read: { path: string; mtime: number; families: Map<string, TextFamily> }[] = [];
      let names: string[] = [];
      if (dir !== '') {
        try {
          names = readdirSync(dir)
            .filter((n) => n.endsWith('.prom'))
            .sort();
        } catch {
          errored = true;
        }
      }
      const seen = new Set<string>();
      for (const name of names) {
        const path = join(dir, name);
        seen.add(path);
        try {
          const st = statSync(path);
          let parsed = cache.get(path);
          if (parsed?.mtimeMs !== st.mtimeMs || parsed.size !== st.size) {
            parsed = {
              mtimeMs: st.mtimeMs,
              size: st.size,
              families: parseTextFormat(readFileSync(path, 'utf8')),
            };
            cache.set(path, parsed);
          }
          read.push({ path, mtime: Math.floor(st.mtimeMs / 1000), families: parsed.families });
        } catch {
          cache.delete(path);
          errored = true;
        }
      }
      for (const path of cache.keys()) if (!seen.has(path)) cache.delete(path);

      // One family per name over all files; HELP defaults to the files it came from.
      const merged = new Map<
        string,
        { type: FamilyType; help?: string; files: string[]; samples: TextFamily['samples'] }
      >();
      for (const { path, families: fs } of read) {
        for (const f of fs.values()) {
          const m = merged.get(f.name);
          if (!m) merged.set(f.name, { type: f.type, help: f.help, files: [path], samples: [...f.samples] });
          else if (m.type !== f.type) errored = true;
          else {
            m.files.push(path);
            m.samples.push(...f.samples);
          }
        }
      }
      for (const [name, m] of merged) {
        const f = familyOf(name, m.type, m.help ?? `Metric read from ${m.files.join(', ')}`);
        // Every series carries every label name of its family, empty where it has none.
        const all = new Set(m.samples.flatMap((s) => Object.keys(s.labels)));
        for (const s of m.samples) {
          const labels: Record<string, string> = {};
          for (const l of [...all].sort()) labels[l] = s.labels[l] ?? '';
          emit(f, s.value, labels as Labels);
        }
      }
      for (const { path, mtime } of read) emit(MTIME, mtime, { file: path });
      emit(SCRAPE_ERROR, errored ? 1 : 0);
    },
  };
}
