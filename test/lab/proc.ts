import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { which } from './bin.ts';
import { onLastResort } from './lastresort.ts';
import { type ProcEntry, serviceProcesses, signal } from './procs.ts';
import type { Lab } from './scope.ts';

export interface ServiceSpec {
  /** Used for the log file name and in error messages. */
  name: string;
  command: string;
  args: readonly string[];
  /**
   * The service's private directory: the log goes here, and any process whose command line names
   * it is treated as part of the service when stopping it.
   */
  dir: string;
  env?: NodeJS.ProcessEnv;
  /** How long stop() waits after SIGTERM before SIGKILL. */
  stopGraceMs?: number;
  lab: Lab;
}

export interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

// setpriv --pdeathsig makes the kernel SIGKILL the service if the test process dies without
// running any handler (SIGKILL, OOM, a runner that kills its workers).
const setpriv = which('setpriv');

/** A long-running process in its own process group, with its output in <dir>/<name>.log. */
export class Service {
  readonly name: string;
  readonly pid: number;
  readonly dir: string;
  readonly logPath: string;
  readonly exited: Promise<ServiceExit>;
  readonly #marker: string;
  readonly #graceMs: number;
  #exit: ServiceExit | undefined;
  #stopping: Promise<ServiceExit> | undefined;
  readonly #forget: () => void;

  constructor(spec: ServiceSpec, child: ChildProcess, logPath: string) {
    if (child.pid === undefined) throw new Error(`${spec.name}: failed to start ${spec.command}`);
    this.name = spec.name;
    this.pid = child.pid;
    this.dir = spec.dir;
    this.logPath = logPath;
    this.#marker = spec.dir.endsWith('/') ? spec.dir : `${spec.dir}/`;
    this.#graceMs = spec.stopGraceMs ?? 3000;
    // Nothing may outlive the tests, even when they exit without cleaning up.
    this.#forget = onLastResort(() => this.killNow());
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, sig) => {
        this.#exit = { code, signal: sig };
        resolve(this.#exit);
      });
    });
  }

  /** The exit status once the leader process has exited. */
  get exitStatus(): ServiceExit | undefined {
    return this.#exit;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The last lines of the service's log, for error messages. */
  logTail(lines = 30): string {
    return readTail(this.logPath, lines);
  }

  /** SIGTERM to the process group, SIGKILL to everything of the service after the grace period. */
  stop(graceMs = this.#graceMs): Promise<ServiceExit> {
    this.#stopping ??= this.#terminate('SIGTERM', graceMs);
    return this.#stopping;
  }

  /** SIGKILL at once, like a crash: for tests of what survives one. */
  kill(): Promise<ServiceExit> {
    this.#stopping ??= this.#terminate('SIGKILL', 0);
    return this.#stopping;
  }

  /** Sends sig to the service's process group (SIGSTOP/SIGCONT make a hung service, say). */
  signal(sig: NodeJS.Signals): void {
    // Once the leader is reaped and its group empty, the kernel may hand the number to a stranger.
    if (this.#exit === undefined || this.#processes().some((p) => p.pgid === this.pid))
      signal(-this.pid, sig);
  }

  /** Synchronous SIGKILL of everything of the service, for the exit handler. */
  killNow(): void {
    this.signal('SIGKILL');
    for (const p of this.#processes()) signal(p.pid, 'SIGKILL');
  }

  #processes(): ProcEntry[] {
    return serviceProcesses(this.pid, this.#marker);
  }

  async #terminate(first: NodeJS.Signals, graceMs: number): Promise<ServiceExit> {
    if (first === 'SIGKILL') this.killNow();
    else this.signal(first);
    if (!(await this.#quiet(graceMs))) {
      await this.#killEscapees();
      this.killNow();
      if (!(await this.#quiet(5000))) {
        const left = this.#processes().map((p) => `${p.pid} ${p.cmdline}`);
        throw new Error(
          `${this.name}: still running after SIGKILL: ${left.join('; ') || 'leader not reaped'}`,
        );
      }
    }
    this.#forget();
    return this.exited;
  }

  /**
   * SIGKILLs what escaped the process group before the group itself, and waits for them to be
   * reaped: killed together with their parent they would be orphans, and orphans linger as
   * <defunct> until this machine's PID 1 gets round to reaping them, seconds later.
   */
  async #killEscapees(): Promise<void> {
    const escapees = this.#processes().filter((p) => p.pgid !== this.pid);
    for (const p of escapees) signal(p.pid, 'SIGKILL');
    const deadline = Date.now() + 500;
    while (escapees.some((p) => existsSync(`/proc/${p.pid}`)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async #quiet(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.#exit !== undefined && this.#processes().length === 0) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Starts a service and registers it with the lab, which stops it at cleanup. */
export function startService(spec: ServiceSpec): Service {
  const logPath = join(spec.dir, `${spec.name}.log`);
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    writeSync(fd, `--- ${new Date().toISOString()} $ ${spec.command} ${spec.args.join(' ')}\n`);
    const [command, args] = setpriv
      ? [setpriv, ['--pdeathsig', 'KILL', '--', spec.command, ...spec.args]]
      : [spec.command, [...spec.args]];
    child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env: spec.env ?? process.env });
  } finally {
    closeSync(fd);
  }
  // A service the test forgot to stop must not keep the runner alive; the exit handler kills it.
  child.unref();
  const service = new Service(spec, child, logPath);
  spec.lab.defer(`${spec.name} (pid ${service.pid})`, () => service.stop());
  return service;
}

function readTail(path: string, lines: number): string {
  try {
    const size = statSync(path).size;
    const length = Math.min(size, 16_384);
    const buf = Buffer.alloc(length);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, buf, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    return buf
      .toString('utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd();
  } catch (err) {
    return `(no log: ${err instanceof Error ? err.message : String(err)})`;
  }
}
