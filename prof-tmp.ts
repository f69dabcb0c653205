import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { importBusybox, Lab, startDockerd } from './test/lab/index.ts';
import { freePort } from './test/lab/ports.ts';
import { agentArgv, buildAgentImage } from './bench/lib/agent-image.ts';
import { startIdleContainers } from './bench/metrics/containers.ts';
import { cpuSeconds } from './bench/lib/proc-stats.ts';
buildAgentImage();
const lab = new Lab();
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const get = (port: number) => fetch(`http://127.0.0.1:${port}/metrics`, { headers: { 'accept-encoding': 'gzip' } }).then((r) => r.arrayBuffer());
try {
  const dockerd = await startDockerd({ lab });
  await importBusybox(dockerd.socketPath);
  await startIdleContainers(dockerd, 50, 'prof');
  const variants = (process.env.VARIANTS ?? '').split(';');
  const N = Number(process.env.N ?? 500);
  for (let round = 0; round < Number(process.env.ROUNDS ?? 1); round++)
    for (const v of variants) {
      const [flags = '', envs = ''] = v.split('|');
      const env = { ...process.env };
      for (const kv of envs.split(' ').filter(Boolean)) env[kv.split('=')[0]!] = kv.split('=')[1];
      const port = await freePort();
      const ours = spawn(process.execPath, [...flags.split(' ').filter(Boolean), ...agentArgv(['--listen', `127.0.0.1:${port}`, '--log-level', 'warn', '--set', 'logs.enabled=false', '--set', `metrics.containers.dockerSocket=${dockerd.socketPath}`, '--set', 'metrics.containers.source=docker'])], { cwd: '/tmp', env, stdio: ['ignore', process.env.OUT ? require('node:fs').openSync(process.env.OUT, 'w') : 'ignore', 'inherit'] });
      for (;;) {
        const t = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '');
        if ((t.match(/^container_memory_usage_bytes\{/gm) ?? []).length === 50) break;
        await sleep(300);
      }
      await get(port);
      await sleep(Number(process.env.IDLE ?? 15000));
      const idle = rssMiB(ours.pid!);
      for (let i = 0; i < 20; i++) await get(port);
      const perf = process.env.PERF ? spawn('perf', ['record', '-F', '4000', '-g', '-o', '/tmp/perf.data', '-p', String(ours.pid)], { stdio: 'ignore' }) : process.env.STRACE ? spawn('strace', ['-f', ...(process.env.STRACE === 'c' ? ['-c'] : ['-Z', '-e', 'trace=openat,pread64,access,statx,newfstatat,read,getdents64']), '-o', '/tmp/strace.txt', '-p', String(ours.pid)], { stdio: 'ignore' }) : undefined;
      if (perf) await sleep(1000);
      const c0 = cpuSeconds(ours.pid!);
      for (let i = 0; i < N; i++) await get(port);
      if (perf) { perf.kill('SIGINT'); await new Promise((r) => perf.on('exit', r)); }
      console.log(JSON.stringify(v).padEnd(50), 'ms CPU/scrape', (((cpuSeconds(ours.pid!) - c0) * 1000) / N).toFixed(2), 'idle rss', idle.toFixed(1), 'after', rssMiB(ours.pid!).toFixed(1));
      if (process.env.DUR) { const acc = new Map(); for (let i = 0; i < 50; i++) { const t = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()); for (const m of t.matchAll(/^nodeward_scrape_collector_duration_seconds\{collector="([^"]+)"\} (\S+)$/gm)) acc.set(m[1], (acc.get(m[1]) ?? 0) + Number(m[2]) * 1000 / 50); } console.log([...acc].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(3)}`).join('\n')); }
      ours.kill('SIGTERM');
      await new Promise((r) => ours.on('exit', r));
    }
} finally {
  await lab.cleanup();
}
