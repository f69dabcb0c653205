import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from './exec.ts';
import { freePorts } from './ports.ts';
import { type Service, startService } from './proc.ts';
import type { Lab } from './scope.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

export interface EtcdOptions {
  lab: Lab;
  members?: number;
  /**
   * Raft timing. The defaults (100/1000 ms) make a leader failover take ≈ 2 s here; 50/500 halve
   * that and still leave ten heartbeats per election timeout, enough headroom on two loaded cores.
   */
  heartbeatMs?: number;
  electionMs?: number;
}

export interface EtcdMember {
  readonly index: number;
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dir: string;
  readonly service: Service | undefined;
}

/** One member's view from `etcdctl endpoint status`. IDs stay strings: they are 64-bit. */
export interface EtcdStatus {
  index: number;
  memberId: string;
  leaderId: string;
  raftTerm: number;
  raftIndex: number;
  raftAppliedIndex: number;
  isLearner: boolean;
}

export interface Etcd {
  /** Client URLs (http://127.0.0.1:port), one per member, for etcd3's `hosts`. */
  readonly endpoints: string[];
  member(i: number): EtcdMember;
  /** SIGKILL member i (a crash, not a clean shutdown). */
  kill(i: number): Promise<void>;
  /** Starts member i again on its old data dir and ports, and waits until it serves. */
  restart(i: number): Promise<void>;
  /** Status of the running members (or of the given ones). */
  status(members?: readonly number[]): Promise<EtcdStatus[]>;
  /** Index of the member the running members agree is leader. */
  leader(): Promise<number>;
  etcdctl(args: readonly string[], endpoints?: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

interface MemberState {
  index: number;
  name: string;
  clientUrl: string;
  peerUrl: string;
  dir: string;
  service: Service | undefined;
}

export async function startEtcd(opts: EtcdOptions): Promise<Etcd> {
  const { lab } = opts;
  const count = opts.members ?? 1;
  const root = await tempDir('etcd', lab);
  const ports = await freePorts(2 * count);
  const token = `nodeward-${randomBytes(4).toString('hex')}`;
  const members: MemberState[] = [];
  for (let i = 0; i < count; i++) {
    const dir = join(root, `m${i}`);
    await mkdir(dir);
    members.push({
      index: i,
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
      dir,
      service: undefined,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');

  const launch = (m: MemberState, state: 'new' | 'existing'): Service => {
    m.service = startService({
      lab,
      name: `etcd-${m.name}`,
      dir: m.dir,
      command: 'etcd',
      // biome-ignore format: one flag and its value per line
      args: [
        '--name', m.name,
        '--data-dir', join(m.dir, 'data'),
        '--listen-client-urls', m.clientUrl,
        '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl,
        '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', state,
        '--initial-cluster-token', token,
        '--heartbeat-interval', String(opts.heartbeatMs ?? 50),
        '--election-timeout', String(opts.electionMs ?? 500),
        '--logger', 'zap',
      ],
    });
    return m.service;
  };

  const running = () => members.filter((m) => m.service?.running);
  const get = (i: number): MemberState => {
    const m = members[i];
    if (!m) throw new Error(`etcd has no member ${i} (members: ${count})`);
    return m;
  };
  const waitHealthy = (ms: readonly MemberState[]) =>
    Promise.all(
      ms.map((m) =>
        waitFor(() => healthy(m.clientUrl), {
          what: `etcd ${m.name} healthy at ${m.clientUrl}`,
          timeoutMs: 20_000,
          services: ms.flatMap((x) => (x.service ? [x.service] : [])),
        }),
      ),
    );

  const etcdctl = (args: readonly string[], endpoints?: readonly string[]) =>
    runOk('etcdctl', [
      `--endpoints=${(endpoints ?? running().map((m) => m.clientUrl)).join(',')}`,
      '--dial-timeout=2s',
      '--command-timeout=5s',
      ...args,
    ]);

  const status = async (which?: readonly number[]): Promise<EtcdStatus[]> => {
    const targets = which ? which.map(get) : running();
    const out = await etcdctl(
      ['endpoint', 'status', '-w', 'fields'],
      targets.map((m) => m.clientUrl),
    );
    return parseStatusFields(out, (endpoint) => targets.find((m) => m.clientUrl === endpoint)?.index ?? -1);
  };

  // One at a time: a new member first asks its peers whether it was bootstrapped already, and a
  // peer whose port is open but not yet serving holds that question for a full second.
  for (const m of members) {
    const service = launch(m, 'new');
    await waitFor(() => answers(`${m.peerUrl}/members`), {
      what: `etcd ${m.name} serving peers at ${m.peerUrl}`,
      timeoutMs: 20_000,
      services: [service],
    });
  }
  await waitHealthy(members);

  return {
    endpoints: members.map((m) => m.clientUrl),
    member: (i) => {
      const m = get(i);
      return { ...m };
    },
    kill: async (i) => {
      await get(i).service?.kill();
    },
    restart: async (i) => {
      const m = get(i);
      if (m.service?.running) throw new Error(`etcd ${m.name} is still running`);
      launch(m, 'existing');
      await waitHealthy([m]);
    },
    status,
    leader: async () => {
      const all = await status();
      const leaders = new Set(all.map((s) => s.leaderId));
      const leader = all.find((s) => s.memberId === s.leaderId);
      if (leaders.size !== 1 || !leader) throw new Error(`no agreed leader: ${JSON.stringify(all)}`);
      return leader.index;
    },
    etcdctl,
    stop: async () => {
      await Promise.all(members.map((m) => m.service?.stop()));
    },
  };
}

async function answers(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return true;
}

async function healthy(clientUrl: string): Promise<boolean> {
  const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { health?: unknown };
  return res.ok && body.health === 'true';
}

/** Parses `etcdctl endpoint status -w fields`: `"Key" : value` lines, "Endpoint" last per member. */
export function parseStatusFields(out: string, indexOf: (endpoint: string) => number): EtcdStatus[] {
  const result: EtcdStatus[] = [];
  let fields = new Map<string, string>();
  for (const line of out.split('\n')) {
    const match = /^"(\w+)" : (.*)$/.exec(line.trim());
    if (!match) continue;
    const [, key = '', raw = ''] = match;
    const value = raw.replace(/^"(.*)"$/, '$1');
    if (key !== 'Endpoint') {
      fields.set(key, value);
      continue;
    }
    result.push({
      index: indexOf(value),
      memberId: fields.get('MemberID') ?? '',
      leaderId: fields.get('Leader') ?? '',
      raftTerm: Number(fields.get('RaftTerm')),
      raftIndex: Number(fields.get('RaftIndex')),
      raftAppliedIndex: Number(fields.get('RaftAppliedIndex')),
      isLearner: fields.get('IsLearner') === 'true',
    });
    fields = new Map();
  }
  return result;
}
