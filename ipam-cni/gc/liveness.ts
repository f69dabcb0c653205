import { existsSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { dirname } from 'node:path';
import type { HandleRecord } from '../ipam/records.ts';

/**
 * Evidence that an attachment is alive. Each source answers per attachment: true (alive), false
 * (dead) or undefined (cannot tell). The node GC frees an attachment only when no source says
 * alive and at least one says dead — so a source that cannot see a container never frees it.
 */

export interface Attachment {
  readonly containerID: string;
  readonly ifName: string;
  readonly handle: HandleRecord;
}

export type Verdict = (a: Attachment) => boolean | undefined;

export interface LivenessSource {
  readonly name: string;
  /** A verdict for this round; undefined when the source has nothing to say now. */
  snapshot(): Promise<Verdict | undefined>;
}

/**
 * The netns recorded at ADD: gone from the filesystem → the sandbox is gone. But only where this
 * process can see the runtime's netns directory at all: an agent whose container lacks the
 * /run/netns mount would see every pod's netns "gone". So a missing path counts as dead only when
 * its directory exists and holds something (a node with pods has their netns files there);
 * otherwise the source cannot tell.
 */
export function netnsSource(fs: NetnsFs = { exists: existsSync, entries: safeReaddir }): LivenessSource {
  return {
    name: 'netns',
    async snapshot() {
      const visible = new Map<string, boolean>();
      const dirVisible = (dir: string) => {
        let v = visible.get(dir);
        if (v === undefined) {
          v = (fs.entries(dir)?.length ?? 0) > 0;
          visible.set(dir, v);
        }
        return v;
      };
      return (a) => {
        const netns = a.handle.netns;
        if (netns === undefined) return undefined;
        if (fs.exists(netns)) return true;
        return dirVisible(dirname(netns)) ? false : undefined;
      };
    },
  };
}

export interface NetnsFs {
  exists(path: string): boolean;
  /** The names in a directory, or undefined when it cannot be read. */
  entries(dir: string): string[] | undefined;
}

function safeReaddir(dir: string): string[] | undefined {
  try {
    return readdirSync(dir);
  } catch {
    return undefined;
  }
}

/**
 * The attachments the runtime called valid in its last CNI GC (cni.dev/valid-attachments) of
 * each network. The runtime's list is authoritative for what it manages on that network: listed →
 * alive, not listed → dead. Only a list received after the attachment was created counts against
 * it, and only a list of the network the attachment was made on (a record naming no network
 * gets no verdict).
 */
export class ValidAttachments implements LivenessSource {
  readonly name = 'cni-gc';
  readonly #valid = new Map<string, { at: number; keys: Set<string> }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  note(network: string, list: readonly { containerID: string; ifname: string }[]): void {
    this.#valid.set(network, {
      at: this.#now(),
      keys: new Set(list.map((a) => `${a.containerID}/${a.ifname}`)),
    });
  }

  async snapshot(): Promise<Verdict | undefined> {
    if (this.#valid.size === 0) return undefined;
    const lists = new Map(this.#valid);
    return (a) => {
      const valid = a.handle.network === undefined ? undefined : lists.get(a.handle.network);
      if (!valid) return undefined;
      if (valid.keys.has(`${a.containerID}/${a.ifName}`)) return true;
      return Date.parse(a.handle.since) < valid.at ? false : undefined;
    };
  }
}

/**
 * Docker's containers (any state) over its socket. Only ever says "alive": a node whose pods run
 * under containerd may have an unrelated dockerd, so absence from Docker proves nothing.
 */
export function dockerSource(
  socketPath: string,
  exists: (path: string) => boolean = existsSync,
): LivenessSource {
  return {
    name: 'docker',
    async snapshot() {
      if (!exists(socketPath)) return undefined;
      const ids = await dockerContainerIds(socketPath).catch(() => undefined);
      if (!ids) return undefined;
      return (a) => (ids.has(a.containerID) ? true : undefined);
    },
  };
}

function dockerContainerIds(socketPath: string): Promise<Set<string>> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/containers/json?all=1', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`docker answered ${res.statusCode}`);
          const list = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Id?: unknown }[];
          resolve(new Set(list.map((c) => String(c.Id))));
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('docker did not answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}
