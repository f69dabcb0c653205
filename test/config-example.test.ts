import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, leaves, renderExampleConfig } from '../shared/config/index.ts';
import { runCli } from './cli.ts';

const EXAMPLE = resolve(import.meta.dirname, '../deploy/config.example.yaml');
const PRODUCTION = resolve(import.meta.dirname, '../deploy/config.production.yaml');

describe('deploy/config.example.yaml', () => {
  it('passes `nodeward config check`', async () => {
    expect(await runCli(['config', 'check', EXAMPLE])).toMatchObject({ code: 0, stdout: `${EXAMPLE}: ok\n` });
  });

  it('covers every key of the schema, each with its description above it', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    // Unset and machine-dependent keys are present but commented out; read them as if they were set.
    const doc = parse(text.replace(/^(\s*)# ([a-z][A-Za-z0-9]*:( .*)?)$/gm, '$1$2')) as Record<
      string,
      unknown
    >;
    const missing = leaves(configSchema)
      .map((l) => l.path)
      .filter((path) => {
        let node: unknown = doc;
        for (const key of path) {
          if (node === null || typeof node !== 'object' || !(key in node)) return true;
          node = (node as Record<string, unknown>)[key];
        }
        return false;
      })
      .map((p) => p.join('.'));
    expect(missing).toEqual([]);
  });

  it('is the current output of `nodeward config example` (regenerate it after changing the schema)', () => {
    expect(readFileSync(EXAMPLE, 'utf8')).toBe(renderExampleConfig());
  });
});

describe('deploy/config.production.yaml (the DaemonSet ConfigMap)', () => {
  it('passes `nodeward config check`', async () => {
    expect(await runCli(['config', 'check', PRODUCTION])).toMatchObject({ code: 0 });
  });
});
