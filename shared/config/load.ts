import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { NodewardError } from '../errors.ts';
import { formatPath, shapeOf } from './keys.ts';
import { applyOverrides, envOverrides, flagOverrides, type Override } from './overrides.ts';
import { type Config, configSchema } from './schema.ts';
import { shown } from './units.ts';

export interface LoadOptions {
  /** Path of the YAML file; none means the embedded default. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** `--set key.path=value` flags, applied last. */
  sets?: readonly string[];
}

/** The file's YAML as a plain object; an empty file is an empty config. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new NodewardError('CONFIG_UNREADABLE', `${file}: cannot read config file (${reason})`, {
      cause: err,
    });
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const at = first.linePos?.[0] ? `:${first.linePos[0].line}:${first.linePos[0].col}` : '';
    const what = first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new NodewardError('CONFIG_UNREADABLE', `${file}${at}: invalid YAML: ${what}`, { cause: first });
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new NodewardError(
      'CONFIG_INVALID',
      `${file}: expected a mapping of config keys at the top level, got ${Array.isArray(value) ? 'a list' : shown(value)}`,
    );
  }
  return value as Record<string, unknown>;
}

/** Keys an earlier release had, and where they live now: an upgrade names the new place. */
const MOVED_KEYS: Record<string, string> = {
  'logs.kubelet': 'pods.kubelet, with pods.source: kubelet',
  'metrics.alerts.alertmanagerUrl': 'metrics.alerts.alertmanagers[].url',
};

function unknownKeyText(path: PropertyKey[]): string {
  const moved = MOVED_KEYS[path.join('.')];
  return moved ? `unknown key (moved to ${moved})` : 'unknown key';
}

function describeIssue(issue: z.core.$ZodIssue): { path: readonly PropertyKey[]; text: string } {
  switch (issue.code) {
    case 'unrecognized_keys': {
      const key = issue.keys[0]!;
      return { path: [...issue.path, key], text: unknownKeyText([...issue.path, key]) };
    }
    case 'invalid_type': {
      const got =
        issue.input === undefined
          ? 'nothing'
          : `${Array.isArray(issue.input) ? 'a list' : typeof issue.input} ${JSON.stringify(issue.input) ?? ''}`.trim();
      return { path: issue.path, text: `expected ${issue.expected}, got ${got}` };
    }
    case 'invalid_value':
      return {
        path: issue.path,
        text: `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${shown(issue.input)}`,
      };
    default:
      return { path: issue.path, text: issue.message };
  }
}

/**
 * Every problem with its key path, one per line, e.g.
 * `logs.kafka.brokers[1]: expected host:port, got "kafka" (from NODEWARD_LOGS__KAFKA__BROKERS)`.
 */
export function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  overrides: readonly Override[] = [],
): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys' && issue.keys.length > 1) {
      for (const key of issue.keys)
        lines.push(`${formatPath([...issue.path, key])}: ${unknownKeyText([...issue.path, key])}`);
      continue;
    }
    const { path, text } = describeIssue(issue);
    const dotted = formatPath(path);
    const from = overrides.findLast((o) => dotted.startsWith(o.path.join('.')));
    lines.push(`${dotted}: ${text}${from ? ` (from ${from.source})` : ''}`);
  }
  return lines;
}

/**
 * A section written with all its keys commented out (`node:` alone) is YAML null: read it as an
 * empty section, as an operator means it, rather than rejecting it.
 */
function dropEmptySections(raw: unknown, schema: Parameters<typeof shapeOf>[0]): void {
  const shape = shapeOf(schema);
  if (!shape || raw === null || typeof raw !== 'object' || Array.isArray(raw)) return;
  const obj = raw as Record<string, unknown>;
  for (const [key, child] of Object.entries(shape)) {
    if (obj[key] === null && shapeOf(child)) delete obj[key];
    else dropEmptySections(obj[key], child);
  }
}

/** Validates a raw config object (file content plus overrides already applied). */
export function parseConfig(raw: unknown, overrides: readonly Override[] = [], origin = 'config'): Config {
  dropEmptySections(raw, configSchema);
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const lines = formatIssues(result.error.issues, overrides);
  throw new NodewardError('CONFIG_INVALID', `invalid ${origin}:\n  ${lines.join('\n  ')}`, {
    details: { problems: lines },
  });
}

/** File (or the embedded default), then NODEWARD_* env, then --set flags; validated once. */
export function loadConfig(options: LoadOptions = {}): Config {
  const raw = options.file ? readConfigFile(options.file) : {};
  const overrides = [...envOverrides(options.env ?? {}), ...flagOverrides(options.sets ?? [])];
  applyOverrides(raw, overrides);
  return parseConfig(raw, overrides, options.file ?? 'embedded default config');
}
