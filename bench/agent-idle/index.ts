import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../test/lab/ports.ts';
import { agentArgv, agentEnv, buildAgentImage } from '../lib/agent-image.ts';
import { cpuSeconds, rssBytes } from '../lib/proc-stats.ts';
import { type Bench, metric } from '../types.ts';

const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';

async function waitHttp(url: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await sleep(100);
  }
  throw new Error(`${url} did not answer`);
}

/**
 * The agent at rest on the embedded default (logs + metrics modules running, nothing to ship, not
 * scraped) beside node_exporter at rest, measured over the same window.
 */
const bench: Bench = {
  description: 'idle CPU and memory of the agent (bundle) vs node_exporter, same window',
  async run({ quick, log }) {
    if (!existsSync(NODE_EXPORTER))
      throw new Error(`${NODE_EXPORTER} missing: apt-get install prometheus-node-exporter`);
    buildAgentImage();
    const dir = mkdtempSync(join(tmpdir(), 'nodeward-bench-idle-'));
    const children: ChildProcess[] = [];
    try {
      const [ourPort, anchorPort] = [await freePort(), await freePort()];
      const ours = spawn(
        process.execPath,
        agentArgv(['--listen', `127.0.0.1:${ourPort}`, '--log-level', 'warn']),
        {
          cwd: dir,
          env: agentEnv(),
          stdio: 'ignore',
        },
      );
      const anchor = spawn(
        NODE_EXPORTER,
        ['--no-collector.systemd', `--web.listen-address=127.0.0.1:${anchorPort}`],
        {
          stdio: 'ignore',
        },
      );
      children.push(ours, anchor);
      await Promise.all([
        waitHttp(`http://127.0.0.1:${ourPort}/readyz`),
        waitHttp(`http://127.0.0.1:${anchorPort}/`),
      ]);
      const settle = quick ? 3_000 : 10_000;
      const window = quick ? 20_000 : 60_000;
      log(`settling ${settle / 1000}s, then measuring ${window / 1000}s`);
      await sleep(settle);
      const before = [cpuSeconds(ours.pid!), cpuSeconds(anchor.pid!)];
      await sleep(window);
      const after = [cpuSeconds(ours.pid!), cpuSeconds(anchor.pid!)];
      const pct = (i: number) => ((after[i]! - before[i]!) / (window / 1000)) * 100;
      const mib = (pid: number) => rssBytes(pid) / 2 ** 20;
      const anchorName = 'node_exporter (idle)';
      return [
        metric({
          name: 'idle CPU',
          unit: '% of a core',
          ours: pct(0),
          anchor: pct(1),
          anchorName,
          better: 'lower',
          goal: 0.5,
          goalOf: 'ours',
        }),
        metric({
          name: 'idle RSS',
          unit: 'MiB',
          ours: mib(ours.pid!),
          anchor: mib(anchor.pid!),
          anchorName,
          better: 'lower',
          goal: 90,
          goalOf: 'ours',
        }),
      ];
    } finally {
      for (const c of children) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
