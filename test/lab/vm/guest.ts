/**
 * The guest daemon: PID 1's boot.sh runs it inside a lab VM (Node 24 from node_modules, this repo
 * over 9p, bundled by bundle.ts). It answers the host over the virtio-serial port named by argv[2] with JSON lines
 * (rpc.ts): run commands, keep background processes, call the CNI shim as a runtime does, and run
 * the CNI agent as a process of its own (guest-agent.ts) that can be stopped, killed and started
 * again. Never run on the host: it kills process groups and owns the VM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  openSync,
  readdirSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { resolve } from 'node:path';
import { runPlugin, SHIM_SOURCE, type ShimCall } from '../../support/ipam-cni/run-plugin.ts';
import { run } from '../exec.ts';
import { LineClient, serveLines } from './rpc.ts';

const portName = process.argv[2] ?? 'nw.ctl';
/** Where agent logs go: the share, so the host can read them after a failure. */
const logDir = process.argv[3] ?? '/tmp';

function portDevice(name: string): string {
  for (const dev of readdirSync('/sys/class/virtio-ports')) {
    if (readFileSync(`/sys/class/virtio-ports/${dev}/name`, 'utf8').trim() === name) return `/dev/${dev}`;
  }
  throw new Error(`no virtio port named ${name}`);
}

// A virtio port opens once: one fd for both directions.
const fd = openSync(portDevice(portName), 'r+');
const out = createWriteStream('', { fd, autoClose: false });
const send = (line: string) => out.write(line);

interface Background {
  child: ChildProcess;
  log: string;
  exited: Promise<{ code: number | null; signal: string | null }>;
}
const background = new Map<string, Background>();

function startBackground(name: string, argv: readonly string[]): Background {
  if (background.has(name)) throw new Error(`background ${name} exists`);
  const log = `/tmp/bg-${name}.log`;
  const logFd = openSync(log, 'w');
  // Its own process group: stopped as a whole, helpers included.
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  child.once('error', () => {});
  const bg = { child, log, exited };
  background.set(name, bg);
  return bg;
}

async function stopBackground(name: string, signal: NodeJS.Signals = 'SIGTERM') {
  const bg = background.get(name);
  if (!bg) throw new Error(`no background ${name}`);
  background.delete(name);
  if (bg.child.exitCode === null && bg.child.signalCode === null) {
    try {
      process.kill(-bg.child.pid!, signal);
    } catch {}
  }
  // A busy VM may take seconds to schedule the process's exit (ping printing its statistics).
  const timer = setTimeout(() => {
    try {
      process.kill(-bg.child.pid!, 'SIGKILL');
    } catch {}
  }, 30_000);
  const status = await bg.exited;
  clearTimeout(timer);
  return { ...status, output: readFileSync(bg.log, 'utf8') };
}

// The CNI agent as its own process; its stdin/stdout carry JSON lines, its stderr goes to a log.
// Both it and the shim run as the host bundled them (bundle.ts); from source when run unbundled.
const AGENT = process.env['NW_AGENT'] ?? resolve(import.meta.dirname, 'guest-agent.ts');
const SHIM = process.env['NW_SHIM'] ?? SHIM_SOURCE;
let agent: { child: ChildProcess; rpc: LineClient; exited: Promise<unknown> } | undefined;
let agentStarts = 0;

async function startAgent(options: unknown): Promise<unknown> {
  if (agent) throw new Error('the agent runs already');
  const log = `${logDir}/agent-${++agentStarts}.log`;
  const logFd = openSync(log, 'w');
  const child = spawn(process.execPath, [AGENT, JSON.stringify(options)], {
    detached: true,
    stdio: ['pipe', 'pipe', logFd],
  });
  closeSync(logFd);
  const rpc = new LineClient(child.stdout!, (l) => child.stdin!.write(l), `agent ${agentStarts}`);
  const exited = new Promise((r) => child.once('exit', r));
  child.stdin!.on('error', () => {});
  agent = { child, rpc, exited };
  try {
    return await rpc.notice(
      (n): n is { ready: unknown } => typeof n === 'object' && n !== null && 'ready' in n,
      290_000,
      () => (child.exitCode !== null ? `exited ${child.exitCode}: ${readFileSync(log, 'utf8')}` : undefined),
    );
  } catch (err) {
    child.kill('SIGKILL');
    agent = undefined;
    throw err;
  }
}

async function stopAgent(signal: 'SIGTERM' | 'SIGKILL'): Promise<unknown> {
  const a = agent;
  if (!a) throw new Error('no agent');
  agent = undefined;
  a.child.kill(signal);
  const status = await a.exited;
  a.rpc.close();
  return status;
}

const handlers = {
  ping: () => ({ uptime: readFileSync('/proc/uptime', 'utf8').split(' ')[0] }),
  exec: (a: { argv: string[]; input?: string; timeoutMs?: number }) =>
    run(a.argv[0]!, a.argv.slice(1), {
      ...(a.input === undefined ? {} : { input: a.input }),
      timeoutMs: a.timeoutMs ?? 60_000,
    }),
  spawn: (a: { name: string; argv: string[] }) => ({ pid: startBackground(a.name, a.argv).child.pid }),
  stop: (a: { name: string; signal?: NodeJS.Signals }) => stopBackground(a.name, a.signal),
  cni: (call: ShimCall) => runPlugin({ ...call, argv: [process.execPath, SHIM] }),
  'agent.start': startAgent,
  'agent.stop': (a: { signal?: 'SIGTERM' | 'SIGKILL' }) => stopAgent(a.signal ?? 'SIGTERM'),
  'agent.call': (a: { op: string; args?: unknown; timeoutMs?: number }) => {
    if (!agent) throw new Error('no agent');
    return agent.rpc.call(a.op, a.args, a.timeoutMs ?? 60_000);
  },
  shutdown: async () => {
    if (agent) await stopAgent('SIGKILL').catch(() => {});
    for (const name of [...background.keys()]) await stopBackground(name, 'SIGKILL').catch(() => {});
    setTimeout(() => process.exit(0), 50);
    return true;
  },
};

serveLines(createReadStream('', { fd, autoClose: false }), send, handlers);
const uptime = readFileSync('/proc/uptime', 'utf8').split(' ')[0];
send(
  `${JSON.stringify({ hello: { node: process.version, uptime, kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim() } })}\n`,
);
process.on('exit', () => {
  try {
    writeSync(fd, `${JSON.stringify({ bye: process.exitCode ?? 0 })}\n`);
  } catch {}
});
