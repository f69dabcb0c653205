import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AgentProcess, startAgentProcess, tempDir } from './cli.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function start(
  args: string[] = [],
  env: Record<string, string> = {},
  /** Prepares the working directory before the agent starts. */
  prepare: (cwd: string) => void = () => {},
): Promise<{ agent: AgentProcess; cwd: string }> {
  const dir = tempDir();
  cleanups.push(() => dir.remove());
  prepare(dir.path);
  const agent = await startAgentProcess(args, { cwd: dir.path, env });
  cleanups.push(() => agent.kill());
  return { agent, cwd: dir.path };
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const metricValue = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('nodeward agent on the embedded default', () => {
  it('answers /healthz, /readyz and /metrics, and stops on SIGTERM with status 0 within the deadline', async () => {
    const { agent } = await start(['--set', 'shutdown.deadline=5s']);
    const health = await fetch(`${agent.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');

    const ready = await poll('readiness', async () => {
      const r = await fetch(`${agent.url}/readyz`);
      return r.status === 200 ? r.json() : undefined;
    });
    expect(ready).toEqual({
      ready: true,
      modules: {
        network: { enabled: false },
        logs: { enabled: true, ready: true },
        metrics: { enabled: true, ready: true },
      },
    });

    const metrics = await fetch(`${agent.url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await metrics.text();
    expect(metricValue(text, 'nodeward_module_up{module="logs"}')).toBe(1);
    expect(metricValue(text, 'nodeward_module_ready{module="metrics"}')).toBe(1);
    expect(metricValue(text, 'nodeward_module_restarts_total{module="logs"}')).toBe(0);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^node_load1 \d/m);

    const gz = await fetch(`${agent.url}/metrics`, { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(await gz.text()).toContain('nodeward_build_info');

    const { code, ms } = await agent.signal('SIGTERM');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
    expect(agent.stderr()).toContain('"msg":"stopped"');
  });

  it('stops on SIGINT with status 0', async () => {
    const { agent } = await start();
    expect((await agent.signal('SIGINT')).code).toBe(0);
  });

  it('restarts a failing module with backoff, counts it, and says why it is not ready', async () => {
    // Cause: the logs root is a regular file, so the log shipper cannot watch it. Made before the
    // agent starts: the shipper creates a missing root itself.
    const { agent } = await start(
      ['--set', 'supervisor.backoffInitial=50ms', '--set', 'supervisor.backoffMax=200ms'],
      { NODEWARD_LOGS__ROOT: 'not-a-directory' },
      (cwd) => writeFileSync(join(cwd, 'not-a-directory'), 'x'),
    );
    const text = await poll('two restarts', async () => {
      const t = await (await fetch(`${agent.url}/metrics`)).text();
      return (metricValue(t, 'nodeward_module_restarts_total{module="logs"}') ?? 0) >= 2 ? t : undefined;
    });
    expect(text).toMatch(/^nodeward_errors_total\{module="logs",code="[A-Z_]+"\} [1-9]/m);
    const r = await fetch(`${agent.url}/readyz`);
    expect(r.status).toBe(503);
    const body = (await r.json()) as {
      ready: boolean;
      modules: Record<string, { ready?: boolean; reason?: string }>;
    };
    expect(body.ready).toBe(false);
    expect(body.modules['logs']?.reason).toMatch(/^failed with [A-Z_]+: .*; restarting in \d+ ms$/);
    expect(body.modules['metrics']?.ready).toBe(true);
    expect(agent.stderr()).toContain('"msg":"module failed; restarting"');
    expect((await agent.signal('SIGTERM')).code).toBe(0);
  });

  it('exits with status 2 and the key path when the config is invalid', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    await expect(
      startAgentProcess([], { cwd: dir.path, env: { NODEWARD_SHUTDOWN__DEADLINE: 'soon' } }),
    ).rejects.toThrow(
      /exited with 2 before listening:\nnodeward: invalid embedded default config:\n {2}shutdown\.deadline: expected a duration like "500ms", "10s" or "15m", got "soon" \(from NODEWARD_SHUTDOWN__DEADLINE\)/,
    );
  });

  it('exits with status 2 saying what to set when the API-server pod source has no address', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    await expect(
      startAgentProcess(['--set', 'pods.source=apiserver'], {
        cwd: dir.path,
        // Outside a pod: no in-cluster address to fall back on.
        env: { KUBERNETES_SERVICE_HOST: '' },
      }),
    ).rejects.toThrow(
      /exited with 2 before listening:\nnodeward: pods\.apiserver\.url is empty and KUBERNETES_SERVICE_HOST is not set/,
    );
  });

  it('exits with status 69 naming http.listen when the port is taken', async () => {
    const { agent } = await start();
    const taken = agent.url.replace('http://', '');
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    await expect(startAgentProcess(['--listen', taken], { cwd: dir.path })).rejects.toThrow(
      new RegExp(
        `exited with 69 before listening:[\\s\\S]*cannot listen on ${taken.replaceAll('.', '\\.')} \\(http\\.listen\\): EADDRINUSE`,
      ),
    );
  });
});
