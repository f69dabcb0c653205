import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * A runtime-like driver for tests and the bench: runs the shim as its own process with the CNI_*
 * environment and the network config on stdin, as libcni does.
 */

export const SHIM_SOURCE = resolve(import.meta.dirname, '../../../ipam-cni/cni/shim/main.ts');

export interface ShimRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly json: Record<string, unknown> | undefined;
  readonly ms: number;
}

export interface ShimCall {
  readonly command: string;
  readonly containerID?: string;
  readonly netns?: string;
  readonly ifName?: string;
  readonly args?: string;
  readonly path?: string;
  readonly conf: unknown;
  /** argv of the plugin; default: the TypeScript source run by this Node. */
  readonly argv?: readonly string[];
  readonly env?: Record<string, string>;
}

export function runPlugin(call: ShimCall): Promise<ShimRun> {
  const argv = call.argv ?? [process.execPath, SHIM_SOURCE];
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    CNI_COMMAND: call.command,
    CNI_PATH: call.path ?? '/usr/lib/cni',
    ...(call.containerID === undefined ? {} : { CNI_CONTAINERID: call.containerID }),
    ...(call.netns === undefined ? {} : { CNI_NETNS: call.netns }),
    ...(call.ifName === undefined ? {} : { CNI_IFNAME: call.ifName }),
    ...(call.args === undefined ? {} : { CNI_ARGS: call.args }),
    ...call.env,
  };
  const started = performance.now();
  return new Promise((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', fail);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8');
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      done({
        code,
        stdout,
        stderr: Buffer.concat(err).toString('utf8'),
        json,
        ms: performance.now() - started,
      });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(typeof call.conf === 'string' ? call.conf : JSON.stringify(call.conf));
  });
}
