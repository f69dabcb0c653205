import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * The Node flags the agent image starts the bundle with (deploy/Dockerfile's ENTRYPOINT, between
 * `node` and the script), so that a bench measures the agent as production runs it.
 * BENCH_NODE_ARGS replaces them for experiments ("" runs with none).
 */
export function agentNodeArgs(): string[] {
  const override = process.env['BENCH_NODE_ARGS'];
  if (override !== undefined) return override.split(' ').filter((a) => a !== '');
  const dockerfile = readFileSync(resolve(import.meta.dirname, '../../deploy/Dockerfile'), 'utf8');
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  if (entrypoint === undefined) throw new Error('deploy/Dockerfile has no ENTRYPOINT ["node", …] line');
  const argv = JSON.parse(entrypoint) as string[];
  return argv.slice(1, -1);
}
