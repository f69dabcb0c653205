import { lstat, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { NodewardError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * The discover stage: which `*.log` paths exist directly under the root (kubelet symlinks, or plain
 * files). chokidar reports changes as they happen; a periodic rescan repairs whatever a watch
 * missed (an overflowed inotify queue, a directory replaced under it).
 */

export interface DiscoveryEvents {
  added(path: string): void;
  removed(path: string): void;
  /** Written to: a hint to read now rather than at the next poll. */
  changed(path: string): void;
}

export interface Discovery {
  /** Watches the root; resolves with the paths present once the initial scan is complete. */
  start(): Promise<string[]>;
  stop(): Promise<void>;
}

const isLogName = (name: string) => name.endsWith('.log');

export function createDiscovery(
  root: string,
  rescanInterval: number,
  events: DiscoveryEvents,
  log: Logger,
): Discovery {
  const dir = resolve(root);
  const known = new Set<string>();
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let started = false;

  const add = (path: string) => {
    if (known.has(path)) return;
    known.add(path);
    if (started) events.added(path);
  };
  const remove = (path: string) => {
    if (known.delete(path)) events.removed(path);
  };
  // chokidar follows the symlink and reports `unlink` when its target goes away, which the
  // kubelet's rotation does for a moment (0.log renamed, the runtime not yet reopened): the
  // link itself is still there, so the path stays known and its chain of files goes on.
  const unlinked = (path: string) => {
    lstat(path).then(
      () => events.changed(path),
      () => remove(path),
    );
  };

  async function rescan(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      log.warn({ err, root: dir, code: 'IO' }, 'cannot list the log root');
      return;
    }
    const present = new Set(names.filter(isLogName).map((n) => join(dir, n)));
    for (const path of present) add(path);
    for (const path of [...known]) if (!present.has(path)) remove(path);
  }

  return {
    async start() {
      const w = watch(dir, {
        depth: 0,
        ignoreInitial: false,
        // Symlinks are followed: a write to the pod's file is reported under the link's path.
        followSymlinks: true,
        ignored: (path) => path !== dir && !isLogName(path),
      });
      watcher = w;
      w.on('add', add);
      w.on('unlink', unlinked);
      w.on('change', (path) => {
        // Before start() returns, the initial paths are opened by the caller, as initial files.
        if (!started) known.add(path);
        else if (known.has(path)) events.changed(path);
        else add(path);
      });
      w.on('error', (err) =>
        log.warn({ err, root: dir, code: 'IO' }, 'log root watch error; the rescan covers it'),
      );
      await new Promise<void>((ready, fail) => {
        w.once('ready', ready);
        w.once('error', (err) =>
          fail(
            new NodewardError('IO', `cannot watch the log root ${dir}: ${(err as Error).message}`, {
              cause: err,
            }),
          ),
        );
      });
      await rescan();
      started = true;
      timer = setInterval(() => void rescan(), rescanInterval);
      timer.unref();
      return [...known];
    },
    async stop() {
      clearInterval(timer);
      started = false;
      await watcher?.close();
      watcher = undefined;
    },
  };
}
