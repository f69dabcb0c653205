import { randomBytes, randomUUID } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { createLogsModule } from '../../../log-shipper/index.ts';
import type { LogRecord } from '../../../log-shipper/record.ts';
import type { Sink, SinkRecord } from '../../../log-shipper/sink/index.ts';
import { type Config, type ConfigInput, configSchema } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logger.ts';
import type { AgentModule } from '../../../shared/module.ts';
import { type Lab, tempDir, waitFor } from '../../lab/index.ts';

/**
 * Test helpers shaped like a kubelet node: /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log and
 * the /var/log/containers/<pod>_<ns>_<container>-<id>.log symlink to it; CRI lines; a module run
 * that can be stopped and started again like the supervisor does.
 */

export interface FakeContainer {
  namespace: string;
  pod: string;
  uid: string;
  container: string;
  id: string;
  /** The symlink under the root. */
  link: string;
  /** The file the runtime writes: <pods>/<ns>_<pod>_<uid>/<container>/0.log. */
  file: string;
}

export function fakeContainer(
  root: string,
  pods: string,
  namespace: string,
  pod: string,
  container = 'app',
  known: { uid?: string; id?: string } = {},
): FakeContainer {
  const uid = known.uid ?? randomUUID();
  const id = known.id ?? randomBytes(32).toString('hex');
  const dir = join(pods, `${namespace}_${pod}_${uid}`, container);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, '0.log');
  appendFileSync(file, '');
  const link = join(root, `${pod}_${namespace}_${container}-${id}.log`);
  symlinkSync(file, link);
  return { namespace, pod, uid, container, id, link, file };
}

export function criLine(
  message: string,
  stream: 'stdout' | 'stderr' = 'stdout',
  tag: 'F' | 'P' = 'F',
): string {
  return `${new Date().toISOString()} ${stream} ${tag} ${message}\n`;
}

export function dockerLine(message: string, stream: 'stdout' | 'stderr' = 'stdout'): string {
  return `${JSON.stringify({ log: `${message}\n`, stream, time: new Date().toISOString() })}\n`;
}

/** Appends lines `${prefix}-${from}` … `${prefix}-${to - 1}`, CRI unless told docker. */
export function writeLines(
  file: string,
  prefix: string,
  from: number,
  to: number,
  format: 'cri' | 'docker' = 'cri',
): void {
  const line = format === 'cri' ? criLine : dockerLine;
  let text = '';
  for (let i = from; i < to; i++) text += line(`${prefix}-${i}`);
  appendFileSync(file, text);
}

export function testConfig(input: ConfigInput): Config {
  return configSchema.parse(input);
}

export interface Running {
  ready: Promise<void>;
  /** Aborts the run and waits for it to resolve (rejects with the run's error). */
  stop(): Promise<void>;
  /** The run's outcome, for runs expected to fail. */
  done: Promise<void>;
}

/**
 * Runs the module until stop(). The lab stops it too, before it removes the temp dirs: a test that
 * fails half-way must not leave a run writing checkpoints into a deleted directory.
 */
export function startRun(module: AgentModule, lab: Lab): Running {
  const abort = new AbortController();
  let readyNow: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    readyNow = resolve;
  });
  const done = module.run({
    signal: abort.signal,
    setReady: (r) => {
      if (r) readyNow();
    },
  });
  done.catch(() => {});
  lab.defer('stop the logs module run', async () => {
    abort.abort();
    await done.catch(() => {});
  });
  return {
    ready: Promise.race([ready, done.then(() => Promise.reject(new Error('run ended before ready')))]),
    done,
    async stop() {
      abort.abort();
      await done;
    },
  };
}

/** The records a file sink wrote, in order (none while the file does not exist yet). */
export function readRecords(path: string): LogRecord[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogRecord);
}

/** Opens a sink, sends `records` in one batch, closes it (also when the send fails). */
export async function sendOnce(sink: Sink, records: readonly SinkRecord[]): Promise<void> {
  await sink.open();
  try {
    await sink.send(records);
  } finally {
    await sink.close();
  }
}

/** The values read back equal the values sent, in any order (partitions interleave). */
export function sameValues(got: readonly { value: string | null }[], sent: readonly SinkRecord[]): void {
  expect(got.map((r) => r.value).sort()).toEqual(sent.map((r) => r.value.toString()).sort());
}

/**
 * A temp node for a file-sink run: `containers/` (the root, created), `pods/`, `out.jsonl` and a
 * config polling fast (50 ms), checkpointing every 100 ms; `logs` overrides any of it.
 */
export async function fileSinkNode(lab: Lab, prefix: string, logs: Record<string, unknown> = {}) {
  const dir = await tempDir(prefix, lab);
  const root = join(dir, 'containers');
  const out = join(dir, 'out.jsonl');
  mkdirSync(root, { recursive: true });
  const config = testConfig({
    node: { name: `node-${prefix}` },
    dataDir: join(dir, 'data'),
    logs: {
      root,
      sink: 'file',
      file: { path: out },
      pollInterval: '50ms',
      rescanInterval: '500ms',
      rotateWait: '300ms',
      checkpointInterval: '100ms',
      batch: { wait: '20ms' },
      ...logs,
    },
  });
  return { dir, root, pods: join(dir, 'pods'), out, config };
}

/** fileSinkNode plus the logs module on its config, logging nothing. */
export async function fileSinkModule(lab: Lab, prefix: string, logs: Record<string, unknown> = {}) {
  const node = await fileSinkNode(lab, prefix, logs);
  return { ...node, module: createLogsModule({ config: node.config, log: createLogger('silent') }) };
}

/** The kubelet's compression of a rotated file: `<file>.gz` written beside it, then the plain file removed. */
export function gzipAway(rotated: string): void {
  writeFileSync(`${rotated}.tmp`, gzipSync(readFileSync(rotated)));
  renameSync(`${rotated}.tmp`, `${rotated}.gz`);
  unlinkSync(rotated);
}

/**
 * A restart scenario's first half: one container (shop/<pod>) whose first 100 lines `a-0`…`a-99`
 * were shipped by a run that then stopped, its checkpoint written.
 */
export async function shippedThenStopped(lab: Lab, prefix: string, pod: string) {
  const node = await fileSinkModule(lab, prefix);
  const container = fakeContainer(node.root, node.pods, 'shop', pod, 'app');
  writeLines(container.file, 'a', 0, 100);
  const run = startRun(node.module, lab);
  await run.ready;
  await waitFor(() => readRecords(node.out).length >= 100, { what: 'the first 100 lines' });
  await run.stop();
  return { ...node, container };
}

/**
 * Runs the module again until the output holds `expected` records (10 s at most) and a moment
 * longer (so that a line shipped twice shows too); the messages in the output, in order.
 */
export async function restartFor(
  module: AgentModule,
  lab: Lab,
  out: string,
  expected: number,
): Promise<string[]> {
  const run = startRun(module, lab);
  await run.ready;
  await waitFor(() => readRecords(out).length >= expected, {
    what: `${expected} lines`,
    timeoutMs: 10_000,
  }).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  await run.stop();
  return readRecords(out).map((r) => r.message);
}

/** `a-<from>` … `a-<to - 1>`, as writeLines(file, 'a', from, to) wrote them. */
export function messages(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `a-${from + i}`);
}

/**
 * ext4 gives a new file the lowest free inode of its group, so a freed one is soon given again:
 * files created here take the lower free ones (and are kept) until one gets `ino`, which is then
 * freed for the next file. False when the filesystem does not hand it out (tmpfs, or taken).
 */
export function freeForNextFile(dir: string, ino: number): boolean {
  for (let i = 0; i < 200; i++) {
    const probe = join(dir, `inode-probe-${i}`);
    writeFileSync(probe, '');
    const got = statSync(probe).ino;
    if (got === ino) {
      unlinkSync(probe);
      return true;
    }
    if (got > ino) return false;
  }
  return false;
}

/**
 * The kubelet at once (a shipper in this process cannot look in between): `first`, a rotation of
 * `file`, gzipped (its inode freed); the live file rotated to `.20261204-100002`; a file with
 * lines `a-<from>`… that lives under the path only until the next rotation, to `.20261204-100003`,
 * on inode `ino` where the filesystem gives it; a new live file with `a-<mid>`… `a-<to - 1>`.
 * Undefined when the brief file did not get `ino` (not ext4, or another process took it first).
 */
export function briefRotationOnInode(
  file: string,
  first: string,
  ino: number,
  [from, mid, to]: [number, number, number],
): string | undefined {
  gzipAway(first);
  renameSync(file, `${file}.20261204-100002`);
  const freed = freeForNextFile(dirname(file), ino);
  writeLines(file, 'a', from, mid);
  const brief = `${file}.20261204-100003`;
  renameSync(file, brief);
  writeLines(file, 'a', mid, to);
  if (!freed || statSync(brief).ino !== ino) {
    console.warn(
      `[lab] the filesystem did not give inode ${ino} to the next file: the test that needs it skips`,
    );
    return undefined;
  }
  return brief;
}
