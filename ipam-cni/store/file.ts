import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, realpath, rename, stat, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodewardError } from '../../shared/errors.ts';
import { applyCommit, emptyState, getKeys, type KvState, listPrefix } from './kv-state.ts';
import type { Commit, CommitResult, Entry, Listing, Store } from './store.ts';

/**
 * The node-local store (the embedded default, no etcd): the whole key space in one JSON file,
 * `state.json`, replaced on every commit by writing a temporary file, fsyncing it, renaming it
 * over the old one and fsyncing the directory. A crash leaves the old state or the new one, never
 * a mix (and perhaps a temporary file, removed at the next open). Readers need no lock: rename
 * swaps the whole file at once.
 *
 * Writers — the agent and the `nodeward ipam` CLI may commit at the same time — take a lock for
 * the read-check-write of a commit. The lock is an abstract unix socket bound under a name derived
 * from the store's real path: binding is atomic, and the kernel releases it when its process dies,
 * so a crashed writer can never leave the store locked (a lock file can: deciding it is stale and
 * taking it over is itself a race). Abstract sockets belong to a network namespace: processes
 * sharing a store must share one — true of the agent (hostNetwork), `kubectl exec` into its pod
 * and a shell on the node.
 */

const FORMAT = 'nodeward-ipam-state';
const VERSION = 1;
const STATE = 'state.json';
const TMP = /^\.state\.json\.tmp-(\d+)-[0-9a-f]+$/;
/** Leftover temporary files older than this are removed at open even if their pid was reused. */
const STALE_TMP_MS = 10 * 60_000;
/** How long a commit waits for the lock before giving up (STORE_UNAVAILABLE, retriable). */
const LOCK_TIMEOUT_MS = 10_000;

interface StateFile {
  format: typeof FORMAT;
  version: typeof VERSION;
  revision: number;
  /** [key, value, createRevision, modRevision] */
  entries: [string, string, number, number][];
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !isErrno(err, 'ESRCH');
  }
}

function listen(name: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err) => (isErrno(err, 'EADDRINUSE') ? resolve(undefined) : reject(err)));
    server.listen({ path: name }, () => resolve(server));
  });
}

export class FileStore implements Store {
  readonly kind = 'file';
  readonly dir: string;
  readonly #path: string;
  readonly #lockName: string;
  /** Commits of this process go one at a time (the lock would only make them poll each other). */
  #tail: Promise<unknown> = Promise.resolve();
  #cache: { id: string; state: KvState } | undefined;
  #closed = false;

  private constructor(dir: string, lockName: string) {
    this.dir = dir;
    this.#path = join(dir, STATE);
    this.#lockName = lockName;
  }

  /** Opens (creating if needed) the store directory. */
  static async open(dir: string): Promise<FileStore> {
    let real: string;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      real = await realpath(dir);
    } catch (err) {
      throw ioError(`cannot create the IPAM store directory ${dir}`, err);
    }
    const digest = createHash('sha256').update(real).digest('hex').slice(0, 40);
    const store = new FileStore(dir, `\0nodeward-ipam-file-store-${digest}`);
    await store.#removeLeftovers();
    await store.#read(); // fail at open, not at the first allocation, if the state is unreadable
    return store;
  }

  async get(keys: readonly string[]): Promise<Map<string, Entry>> {
    return getKeys(await this.#read(), keys);
  }

  async list(prefix: string): Promise<Listing> {
    return listPrefix(await this.#read(), prefix);
  }

  commit(commit: Commit): Promise<CommitResult> {
    const run = this.#tail.then(() => this.#locked(() => this.#commit(commit)));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
  }

  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    let server: Server | undefined;
    for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
      server = await listen(this.#lockName).catch((err: unknown) => {
        throw ioError(`cannot take the lock of the IPAM store ${this.dir}`, err);
      });
      if (server) break;
      if (Date.now() > deadline) {
        throw new NodewardError(
          'STORE_UNAVAILABLE',
          `the IPAM file store ${this.dir} stayed locked by another process (agent or \`nodeward ipam\`) for ${LOCK_TIMEOUT_MS / 1000}s; retry`,
          { details: { dir: this.dir } },
        );
      }
      await sleep(wait * (0.5 + Math.random()));
    }
    try {
      return await fn();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  async #commit(commit: Commit): Promise<CommitResult> {
    const state = await this.#read();
    const next: KvState = { revision: state.revision, entries: new Map(state.entries) };
    const result = applyCommit(next, commit);
    if (!result.ok || result.revision === state.revision) return result;
    await this.#write(next);
    return result;
  }

  async #write(state: KvState): Promise<void> {
    const body: StateFile = {
      format: FORMAT,
      version: VERSION,
      revision: state.revision,
      entries: [...state.entries.values()].map((e) => [e.key, e.value, e.createRevision, e.modRevision]),
    };
    const tmp = join(this.dir, `.${STATE}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(body)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.#path);
      const dh = await open(this.dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw ioError(`cannot write the IPAM store file ${this.#path}`, err);
    }
  }

  async #removeLeftovers(): Promise<void> {
    for (const name of await readdir(this.dir)) {
      const m = TMP.exec(name);
      if (!m) continue;
      const path = join(this.dir, name);
      const age = Date.now() - (await stat(path).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (!pidAlive(Number(m[1])) || age > STALE_TMP_MS) await unlink(path).catch(() => undefined);
    }
  }

  /** The current state; parsed again only when the file was replaced. */
  async #read(): Promise<KvState> {
    if (this.#closed) throw new NodewardError('INTERNAL', 'the IPAM store was used after close()');
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(this.#path, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return emptyState();
      throw ioError(`cannot read the IPAM store file ${this.#path}`, err);
    }
    try {
      // Identity of the file this descriptor holds: a rename replaces the inode.
      const st = await fh.stat({ bigint: true });
      const id = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
      if (this.#cache?.id === id) return this.#cache.state;
      const state = parseState(await fh.readFile('utf8'), this.#path);
      this.#cache = { id, state };
      return state;
    } catch (err) {
      if (err instanceof NodewardError) throw err;
      throw ioError(`cannot read the IPAM store file ${this.#path}`, err);
    } finally {
      await fh.close();
    }
  }
}

function parseState(text: string, path: string): KvState {
  let body: Partial<StateFile>;
  try {
    body = JSON.parse(text) as Partial<StateFile>;
  } catch (err) {
    throw corrupt(path, 'it is not JSON', err);
  }
  if (body.format !== FORMAT || body.version !== VERSION) {
    throw corrupt(path, `expected format ${FORMAT} version ${VERSION}, got ${body.format} ${body.version}`);
  }
  const revision = body.revision;
  if (typeof revision !== 'number' || !Array.isArray(body.entries)) {
    throw corrupt(path, 'its revision or entries are missing');
  }
  const entries = new Map<string, Entry>();
  for (const [key, value, createRevision, modRevision] of body.entries) {
    entries.set(key, { key, value, createRevision, modRevision });
  }
  return { revision, entries };
}

function corrupt(path: string, why: string, cause?: unknown): NodewardError {
  return new NodewardError(
    'STORE_CORRUPT',
    `the IPAM store file ${path} is unusable (${why}); move it aside to fall back to the previous revision, then run \`nodeward ipam check\``,
    { cause, details: { path } },
  );
}

function ioError(message: string, cause: unknown): NodewardError {
  const code = (cause as NodeJS.ErrnoException | null)?.code;
  return new NodewardError('IO', `${message}${code ? ` (${code})` : ''}`, { cause });
}
