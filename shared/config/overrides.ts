import { parse as parseYaml } from 'yaml';
import { NodewardError } from '../errors.ts';
import { kindOf, shapeOf } from './keys.ts';
import { configSchema } from './schema.ts';

/** One value set from outside the config file, with where it came from for error messages. */
export interface Override {
  path: string[];
  value: unknown;
  source: string;
}

export const ENV_PREFIX = 'NODEWARD_';
/** Env vars with the prefix that are not config keys. */
const ENV_RESERVED = new Set(['NODEWARD_CONFIG']);

/** `backoffInitial` → `BACKOFF_INITIAL`, the env spelling of a key. */
export function envSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function invalid(source: string, message: string): NodewardError {
  return new NodewardError('CONFIG_INVALID', `${source}: ${message}`, { details: { source } });
}

/** Text from env or a flag, typed the way the target key expects. */
function typedValue(path: string[], text: string): unknown {
  let schema = configSchema as Parameters<typeof kindOf>[0];
  for (const key of path) schema = shapeOf(schema)![key]!;
  const kind = kindOf(schema);
  if (kind === 'string' || kind === 'enum') return text;
  if (kind === 'array') {
    const trimmed = text.trim();
    if (trimmed.startsWith('[')) return parseYaml(trimmed);
    return trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim());
  }
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

/** Resolves key names against the schema, so a typo is an error instead of a silent no-op. */
function resolvePath(
  names: string[],
  match: (key: string, name: string) => boolean,
  source: string,
): string[] {
  const path: string[] = [];
  let schema = configSchema as Parameters<typeof shapeOf>[0];
  for (const name of names) {
    const shape = shapeOf(schema);
    const key = shape && Object.keys(shape).find((k) => match(k, name));
    if (!shape || !key) {
      const where = path.length ? path.join('.') : 'the top level';
      const allowed = shape
        ? `; keys under ${where}: ${Object.keys(shape).join(', ')}`
        : ` (${where} is not a section)`;
      throw invalid(source, `no config key "${[...path, name].join('.')}"${allowed}`);
    }
    path.push(key);
    schema = shape[key]!;
  }
  if (shapeOf(schema)) throw invalid(source, `"${path.join('.')}" is a section; set one of its keys`);
  return path;
}

/** NODEWARD_LOGS__KAFKA__BROKERS=a:9092,b:9092 → logs.kafka.brokers. `__` separates levels. */
export function envOverrides(env: NodeJS.ProcessEnv): Override[] {
  const out: Override[] = [];
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || ENV_RESERVED.has(name) || text === undefined) continue;
    const names = name.slice(ENV_PREFIX.length).split('__');
    const path = resolvePath(names, (key, seg) => envSegment(key) === seg, name);
    out.push({ path, value: typedValue(path, text), source: name });
  }
  return out;
}

/** `--set logs.kafka.brokers=a:9092,b:9092`. */
export function flagOverrides(sets: readonly string[]): Override[] {
  return sets.map((set) => {
    const source = `--set ${set}`;
    const eq = set.indexOf('=');
    if (eq <= 0) throw invalid(source, 'expected key.path=value');
    const path = resolvePath(set.slice(0, eq).split('.'), (key, name) => key === name, source);
    return { path, value: typedValue(path, set.slice(eq + 1)), source };
  });
}

/** Writes each override into the raw config object (before validation, so it is validated too). */
export function applyOverrides(raw: Record<string, unknown>, overrides: readonly Override[]): void {
  for (const { path, value } of overrides) {
    let node = raw;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path.at(-1)!] = value;
  }
}
