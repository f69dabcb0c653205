import { appendFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FSWatcher } from 'chokidar';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lab, waitFor } from '../test/lab/index.ts';
import {
  criLine,
  messages,
  restartFor,
  shippedThenStopped,
  writeLines,
} from '../test/support/log-shipper/harness.ts';

/**
 * The kubelet rotates while the shipper is starting: the live file it just opened is renamed
 * before its path's rotations are listed, and the next 0.log is followed before restart recovery
 * puts the file rotated while the shipper was down in its place. Seen in
 * test/logs-rotation-crash.test.ts under load: the renamed file had no rotation stamp, so the
 * recovered (older) file was read after it, and the lines a rotation cut in two (CRI P and F parts)
 * were joined with the wrong files: 2–4 lines lost. The interleaving is forced here through the
 * directory listings of the two (their stacks tell them apart) and a change event of the watch.
 */

type Hook = (dir: string, caller: 'append' | 'catchUp' | 'recovery') => Promise<void>;
let hook: Hook | undefined;
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const readdir = async (...args: Parameters<typeof fs.readdir>) => {
    const stack = new Error().stack ?? '';
    const caller = stack.includes('restart-recovery')
      ? 'recovery'
      : stack.includes('catchUp')
        ? 'catchUp'
        : stack.includes('append')
          ? 'append'
          : undefined;
    if (hook && caller) await hook(String(args[0]), caller);
    return fs.readdir(...args);
  };
  return { ...fs, readdir, default: { ...fs, readdir } };
});

/** The discovery's watcher (real chokidar), to raise a change event at a chosen moment. */
let watcher: FSWatcher | undefined;
vi.mock('chokidar', async (importOriginal) => {
  const chokidar = await importOriginal<typeof import('chokidar')>();
  const watch: typeof chokidar.watch = (...args) => {
    watcher = chokidar.watch(...args);
    return watcher;
  };
  return { ...chokidar, watch, default: { ...chokidar.default, watch } };
});

const lab = new Lab();
afterEach(() => {
  hook = undefined;
  return lab.cleanup();
});

describe('log shipper: a rotation while restart recovery places the files rotated meanwhile', () => {
  it('reads them in rotation order, lines cut by a rotation joined across it', async () => {
    const { out, module, container: a } = await shippedThenStopped(lab, 'logs-restart-order', 'web-1');

    // While stopped: more lines, the last one cut by a rotation; the new 0.log goes on with it.
    const cut = (file: string, message: string) =>
      appendFileSync(file, criLine(message.slice(0, 6), 'stdout', 'P'));
    writeLines(a.file, 'a', 100, 150);
    cut(a.file, 'first-straddle');
    renameSync(a.file, `${a.file}.20261204-100001`);
    appendFileSync(a.file, criLine('first-straddle'.slice(6)));
    writeLines(a.file, 'a', 150, 200);

    const dir = dirname(a.file);
    let renamed = false;
    let caughtUp = false;
    hook = async (listed, caller) => {
      if (listed !== dir) return;
      if (caller === 'append' && !renamed) {
        // The file just opened as live is rotated before the listing, a line cut across.
        renamed = true;
        cut(a.file, 'second-straddle');
        renameSync(a.file, `${a.file}.20261204-100002`);
        appendFileSync(a.file, criLine('second-straddle'.slice(6)));
        writeLines(a.file, 'a', 200, 250);
      } else if (caller === 'catchUp') {
        caughtUp = true;
      } else if (caller === 'recovery' && renamed && !caughtUp) {
        // The runtime writes on, and the watch reports it: the new 0.log is followed before
        // recovery goes on (chokidar's event, raised here at the moment the race needs).
        writeLines(a.file, 'a', 250, 260);
        watcher?.emit('change', a.link);
        await waitFor(() => caughtUp, { what: 'the new 0.log followed', timeoutMs: 5000 });
        await new Promise((r) => setTimeout(r, 300));
      }
    };
    const got = await restartFor(module, lab, out, 262);

    expect({ renamed, caughtUp }).toEqual({ renamed: true, caughtUp: true });
    const expected = [
      ...messages(0, 150),
      'first-straddle',
      ...messages(150, 200),
      'second-straddle',
      ...messages(200, 260),
    ];
    expect(expected.filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(expected);
  });
});
