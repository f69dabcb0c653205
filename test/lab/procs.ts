import { readdirSync, readFileSync } from 'node:fs';

export interface ProcEntry {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  cmdline: string;
}

/** A synchronous snapshot of /proc (synchronous so the process 'exit' handler can use it). */
export function processTable(): ProcEntry[] {
  const table: ProcEntry[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // comm may contain spaces and parentheses: the fields we need follow the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      table.push({ pid, state: rest[0] ?? '', ppid: Number(rest[1]), pgid: Number(rest[2]), cmdline });
    } catch {
      // The process exited while we were reading it.
    }
  }
  return table;
}

/**
 * Live (non-zombie) processes that belong to a service: its process group, the descendants of its
 * leader, and anything whose command line names the service's private directory. The last catches
 * what escapes the group (containerd and its shims start their own sessions and outlive dockerd).
 */
export function serviceProcesses(leader: number, marker: string): ProcEntry[] {
  const table = processTable().filter((p) => p.state !== 'Z' && p.pid !== process.pid);
  const children = new Map<number, number[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const descendants = new Set<number>();
  const queue = [leader];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    for (const child of children.get(pid) ?? []) {
      if (!descendants.has(child)) {
        descendants.add(child);
        queue.push(child);
      }
    }
  }
  return table.filter(
    (p) => p.pid === leader || p.pgid === leader || descendants.has(p.pid) || p.cmdline.includes(marker),
  );
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}
