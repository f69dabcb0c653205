import { stringify } from 'yaml';
import { descriptionOf, shapeOf } from './keys.ts';
import { configSchema } from './schema.ts';

/** Keys whose default depends on the machine: commented out, so the example stays portable. */
const MACHINE_DEFAULTS = new Set(['node.name']);

type Schema = Parameters<typeof shapeOf>[0];

function comment(text: string | undefined, indent: string): string[] {
  return text ? text.split('\n').map((l) => `${indent}# ${l}`) : [];
}

function scalar(value: unknown): string {
  return stringify(value, { flow: true }).trimEnd();
}

function render(schema: Schema, defaults: Record<string, unknown>, path: string[], depth: number): string[] {
  const indent = '  '.repeat(depth);
  const lines: string[] = [];
  for (const [key, child] of Object.entries(shapeOf(schema) ?? {})) {
    const keyPath = [...path, key];
    if (depth === 0 && lines.length > 0) lines.push('');
    lines.push(...comment(descriptionOf(child), indent));
    if (shapeOf(child)) {
      lines.push(
        `${indent}${key}:`,
        ...render(child, defaults[key] as Record<string, unknown>, keyPath, depth + 1),
      );
    } else {
      // Unset optional keys and machine-dependent defaults are shown commented out.
      const value = defaults[key];
      const line = value === undefined ? `${key}:` : `${key}: ${scalar(value)}`;
      const commented = value === undefined || MACHINE_DEFAULTS.has(keyPath.join('.'));
      lines.push(commented ? `${indent}# ${line}` : `${indent}${line}`);
    }
  }
  return lines;
}

/** A config file with every key at its default and its description above it, from the schema. */
export function renderExampleConfig(): string {
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  const header = [
    '# nodeward configuration: every key, at its default, with what it does.',
    '# Generated from the schema by `nodeward config example`; every key is optional.',
    '# Durations are milliseconds or strings like "10s"; sizes are bytes or strings like "16MiB".',
    '# Any key can be set from the environment, e.g. logs.kafka.brokers as NODEWARD_LOGS__KAFKA__BROKERS.',
    '',
  ];
  return `${[...header, ...render(configSchema, defaults, [], 0)].join('\n')}\n`;
}
