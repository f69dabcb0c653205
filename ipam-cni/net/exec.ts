import { spawn } from 'node:child_process';
import { NodewardError } from '../../shared/errors.ts';

/**
 * iproute2 as the agent runs it: argument arrays, never a shell; many commands per process through
 * `ip -b -` / `bridge -b -`; inside a network namespace through `nsenter --net=<path>`.
 */

export interface ToolResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runTool(command: string, args: readonly string[], input?: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** One batch line: words joined by spaces, so no word may hold whitespace (names are validated). */
export function batchLine(words: readonly string[]): string {
  for (const w of words) {
    if (w === '' || /\s/.test(w))
      throw new NodewardError('INTERNAL', `bad iproute2 argument ${JSON.stringify(w)}`);
  }
  return words.join(' ');
}

export class IpError extends Error {
  readonly stderr: string;
  constructor(message: string, stderr: string) {
    super(message);
    this.name = 'IpError';
    this.stderr = stderr;
  }
  get notFound(): boolean {
    return /Cannot find device|does not exist|No such device|No such file or directory|Cannot open network namespace/i.test(
      this.stderr,
    );
  }
  get exists(): boolean {
    return /File exists/i.test(this.stderr);
  }
}

/** Where commands run: the agent's own netns, or one given by path. */
export interface NetnsRunner {
  /** `ip [global...] -b -` with these commands; resolves with stdout, rejects with IpError. */
  ip(
    commands: readonly (readonly string[])[],
    options?: { json?: boolean; details?: boolean; force?: boolean; family?: 4 | 6 },
  ): Promise<string>;
  /** `bridge -b -` with these commands. */
  bridge(commands: readonly (readonly string[])[], options?: { json?: boolean }): Promise<string>;
}

const NAMED_NETNS = /^\/(?:var\/)?run\/netns\/([A-Za-z0-9][A-Za-z0-9_.-]*)$/;

/** The name of a netns under /run/netns (what runtimes and `ip netns add` make), else undefined. */
export function netnsName(netns: string | undefined): string | undefined {
  return netns === undefined ? undefined : NAMED_NETNS.exec(netns)?.[1];
}

export function netnsRunner(netns: string | undefined): NetnsRunner {
  const exec = async (tool: string, globals: string[], commands: readonly (readonly string[])[]) => {
    const input = `${commands.map(batchLine).join('\n')}\n`;
    const argv = [...globals, '-b', '-'];
    // A netns named in /run/netns (what runtimes and `ip netns add` make): `ip -n` enters it
    // itself, one exec less than nsenter.
    const named = netnsName(netns);
    const res = named
      ? await runTool(tool, ['-n', named, ...argv], input)
      : netns
        ? await runTool('nsenter', [`--net=${netns}`, '--', tool, ...argv], input)
        : await runTool(tool, argv, input);
    if (res.code !== 0) {
      const where = netns ? ` in ${netns}` : '';
      throw new IpError(`${tool}${where}: ${res.stderr.trim() || `exit ${res.code}`}`, res.stderr);
    }
    return res.stdout;
  };
  return {
    ip: (commands, o = {}) =>
      exec(
        'ip',
        [
          ...(o.json ? ['-j'] : []),
          ...(o.details ? ['-d'] : []),
          ...(o.force ? ['-force'] : []),
          ...(o.family ? [`-${o.family}`] : []),
        ],
        commands,
      ),
    bridge: (commands, o = {}) => exec('bridge', o.json ? ['-j'] : [], commands),
  };
}

/** The JSON documents of a `-j -b -` run: one per command, one per line. */
export function jsonLines<T>(stdout: string): T[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

export interface LinkInfo {
  ifname: string;
  address?: string;
  mtu?: number;
  flags?: string[];
  operstate?: string;
  master?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
  /** With `ip -d`: the lower device (VLAN), and the kind and its settings. */
  link?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number } };
}
