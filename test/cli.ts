import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The nodeward CLI run as operators run it: a separate Node 24 process from source. */
export const NODEWARD = resolve(import.meta.dirname, '../agent/bin/nodeward.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Env without the test runner's NODEWARD_* so a developer's shell cannot change the outcome. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NODEWARD_')));
  return { ...env, ...extra };
}

export function runCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [NODEWARD, ...args],
      { env: cleanEnv(options.env), cwd: options.cwd, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
        done({ code: typeof code === 'number' ? code : null, stdout, stderr });
      },
    );
  });
}

export function tempDir(prefix = 'nodeward-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface AgentProcess {
  child: ChildProcess;
  /** Base URL of its HTTP endpoint, e.g. http://127.0.0.1:41234. */
  url: string;
  stderr(): string;
  /** Sends a signal and resolves with the exit code and how long the exit took. */
  signal(sig: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
  kill(): void;
}

/** Starts `nodeward agent` on port 0 and learns its address from the "agent listening" log line. */
export async function startAgentProcess(
  args: string[],
  options: { env?: Record<string, string>; cwd: string; entry?: string },
): Promise<AgentProcess> {
  const child = spawn(
    process.execPath,
    [options.entry ?? NODEWARD, 'agent', '--listen', '127.0.0.1:0', ...args],
    {
      env: cleanEnv(options.env),
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  child.stdout.resume();
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`agent did not start:\n${err}`)), 20_000);
    const check = () => {
      const m = /"address":"([\d.]+:\d+)".*"msg":"agent listening"/.exec(err);
      if (m) {
        clearTimeout(timer);
        child.stderr.off('data', check);
        ok(`http://${m[1]}`);
      }
    };
    child.stderr.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`agent exited with ${code} before listening:\n${err}`));
    });
  });
  return {
    child,
    url,
    stderr: () => err,
    async signal(sig) {
      const started = Date.now();
      const exited = once(child, 'exit') as Promise<[number | null]>;
      child.kill(sig);
      const [code] = await exited;
      return { code, ms: Date.now() - started };
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
