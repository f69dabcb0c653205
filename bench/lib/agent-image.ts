import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { buildTimexHelper } from '../../agent/metrics/timex/build.ts';
import { imageCommand } from '../../deploy/layout.ts';

/**
 * The agent as the image runs it, for the benches: the bundle (`npm run build`), the timex helper
 * beside it, and the Node flags and ENV of deploy/Dockerfile.
 */

const ROOT = resolve(import.meta.dirname, '../..');
export const AGENT_BUNDLE = resolve(ROOT, 'build/nodeward.mjs');
export const TIMEX_HELPER = resolve(ROOT, 'build/bin/nodeward-timex');

/** Builds the bundle and the timex helper (a few seconds; before any measurement). */
export function buildAgentImage(): void {
  execFileSync(process.execPath, [resolve(ROOT, 'deploy/build.ts')], { stdio: 'ignore' });
  buildTimexHelper(TIMEX_HELPER);
}

/**
 * The Node flags the image starts the bundle with (the ENTRYPOINT, between `node` and the
 * script). BENCH_NODE_ARGS replaces them for experiments ("" runs with none).
 */
export function agentNodeArgs(): string[] {
  const override = process.env['BENCH_NODE_ARGS'];
  if (override !== undefined) return override.split(' ').filter((a) => a !== '');
  return imageCommand().entrypoint.slice(1, -1);
}

/** The environment the image gives the agent (deploy/Dockerfile's ENV) over this process's. */
export function agentEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...imageCommand().env };
}

/** Arguments of `process.execPath` for `nodeward agent <args>` as the image runs it. */
export function agentArgv(args: readonly string[]): string[] {
  return [
    ...agentNodeArgs(),
    AGENT_BUNDLE,
    'agent',
    '--set',
    `metrics.timex.helper=${TIMEX_HELPER}`,
    ...args,
  ];
}
