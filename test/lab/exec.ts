import { spawn } from 'node:child_process';

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command with an argument array (never a shell) and resolves with its exit status and
 * output whatever the status; rejects only when it cannot be started.
 */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 30_000,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    // A command that exits without reading its stdin makes the write fail with EPIPE; its exit
    // status is what matters.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input);
  });
}

/** Like run(), but rejects on a non-zero exit with the command line and its stderr. */
export async function runOk(
  command: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<string> {
  const res = await run(command, args, opts);
  if (res.code !== 0) {
    const status = res.signal ? `signal ${res.signal}` : `exit ${res.code}`;
    throw new Error(
      `${command} ${args.join(' ')} failed (${status}): ${res.stderr.trim() || res.stdout.trim()}`,
    );
  }
  return res.stdout;
}
