import { renameSync, statSync } from 'node:fs';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/logger.ts';
import { Lab, waitFor } from '../test/lab/index.ts';
import {
  briefRotationOnInode,
  fakeContainer,
  fileSinkNode,
  messages,
  readRecords,
  type testConfig,
  writeLines,
} from '../test/support/log-shipper/harness.ts';
import { KubeletLikeWriter } from '../test/support/log-shipper/kubelet-writer.ts';
import { createLogsMetrics, type LogsMetrics } from './metrics.ts';
import { runPipeline } from './pipeline.ts';
import type { LogRecord } from './record.ts';
import { createFileSink } from './sink/file.ts';
import type { Sink } from './sink/index.ts';
import { sinkError } from './sink/sink.ts';

/**
 * The reader falls behind the kubelet's rotation (the sink stalls): every rotated file is read, in
 * order, plain or gzipped, partial lines cut by a rotation are joined, and what the kubelet deletes
 * before it was read is counted as lost.
 */

const lab = new Lab();
afterEach(() => lab.cleanup());

/** A file sink whose sends wait while paused: the reader falls behind at the in-flight cap. */
function gatedSink(inner: Sink) {
  let gate: Promise<void> | undefined;
  let open: () => void = () => {};
  const sink: Sink = {
    name: inner.name,
    open: () => inner.open(),
    close: () => inner.close(),
    async send(records) {
      while (gate !== undefined) await gate;
      await inner.send(records);
    },
  };
  return {
    sink,
    pause() {
      gate ??= new Promise((resolve) => {
        open = () => {
          gate = undefined;
          resolve();
        };
      });
    },
    resume: () => open(),
  };
}

async function setup() {
  const node = await fileSinkNode(lab, 'logs-behind', {
    flushTimeout: '200ms',
    // Small: a paused sink stops the reader within the first file.
    maxInflightBytes: '16KiB',
    batch: { wait: '20ms', maxBytes: '8KiB' },
  });
  return { ...node, metrics: createLogsMetrics(new Registry()) };
}

function run(config: ReturnType<typeof testConfig>, metrics: LogsMetrics, sink: Sink) {
  const abort = new AbortController();
  let ready: () => void = () => {};
  const isReady = new Promise<void>((r) => (ready = r));
  const done = runPipeline(
    { node: config.node.name, dataDir: config.dataDir, logs: config.logs, pods: config.pods },
    {
      log: createLogger((process.env['TEST_LOG'] ?? 'silent') as 'silent'),
      metrics,
      signal: abort.signal,
      setReady: (r) => r && ready(),
      sink,
    },
  );
  done.catch(() => {});
  lab.defer('stop the pipeline', async () => {
    abort.abort();
    await done.catch(() => {});
  });
  return {
    ready: isReady,
    async stop() {
      abort.abort();
      await done;
    },
  };
}

function tally(records: LogRecord[]) {
  const seen = new Map<string, number>();
  for (const r of records) seen.set(r.message, (seen.get(r.message) ?? 0) + 1);
  return seen;
}

async function counter(metrics: LogsMetrics, name: 'linesLost' | 'bytesLost'): Promise<number> {
  return (await metrics[name].get()).values.reduce((a, v) => a + v.value, 0);
}

const batchOf = (prefix: string, from: number, n: number, pad: string) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${from + i} ${pad}`);

describe('log shipper: a reader behind the kubelet rotation', () => {
  it('reads every rotated file in order, plain or gzipped, and joins partials cut by a rotation', async () => {
    const { root, pods, out, config, metrics } = await setup();
    const c = fakeContainer(root, pods, 'shop', 'web-1', 'app');
    const gated = gatedSink(createFileSink(out));
    const writer = new KubeletLikeWriter(c.file, { maxBytes: 48 * 1024, maxFiles: 6 });
    const running = run(config, metrics, gated.sink);
    await running.ready;
    const pad = 'x'.repeat(100);
    writer.lines(batchOf('a', 0, 50, pad));
    await waitFor(() => readRecords(out).length >= 50, { what: 'the first lines' });

    // Stalled: the reader stops at the in-flight cap within the live file, which is rotated four
    // times meanwhile (the older rotations gzipped), a P/F line straddling each rotation.
    gated.pause();
    let n = 50;
    for (let r = 0; r < 4; r++) {
      for (let b = 0; b < 8; b++) {
        writer.lines(batchOf('a', n, 20, pad));
        n += 20;
      }
      writer.straddling(`straddle-${r} ${'p'.repeat(300)}`, 150);
    }
    writer.lines(batchOf('a', n, 20, pad));
    expect(writer.rotations.length).toBe(4);
    expect(writer.deleted).toEqual([]);
    await new Promise((r) => setTimeout(r, 500));
    gated.resume();

    const expected = writer.written;
    await waitFor(() => readRecords(out).length >= expected.length, {
      what: `${expected.length} records`,
      timeoutMs: 20_000,
    });
    await new Promise((r) => setTimeout(r, 300));
    await running.stop();
    const got = readRecords(out);
    const seen = tally(got);
    const missing = expected.filter((m) => !seen.has(m));
    const dupes = [...seen].filter(([, k]) => k > 1).map(([m]) => m.slice(0, 20));
    expect({ missing: missing.map((m) => m.slice(0, 20)).slice(0, 10), dupes: dupes.slice(0, 10) }).toEqual({
      missing: [],
      dupes: [],
    });
    expect(got.length).toBe(expected.length);
    expect(got.filter((r) => r.partial)).toEqual([]);
    // In order: the sequence numbers of full lines only grow.
    const seq = got.filter((r) => r.message.startsWith('a-')).map((r) => Number(r.message.split(/[- ]/)[1]));
    expect(seq).toEqual([...seq].sort((x, y) => x - y));
    expect(await counter(metrics, 'linesLost')).toBe(0);
  });

  it('counts the lines of files the kubelet deleted before they were read, and loses none that are still on disk', async () => {
    const { root, pods, out, config, metrics } = await setup();
    const c = fakeContainer(root, pods, 'shop', 'web-2', 'app');
    const writer = new KubeletLikeWriter(c.file, { maxBytes: 20 * 1024, maxFiles: 4 });
    const pad = 'y'.repeat(100);
    const gated = gatedSink(createFileSink(out));
    const first = run(config, metrics, gated.sink);
    await first.ready;
    writer.lines(batchOf('b', 0, 20, pad));
    await waitFor(() => readRecords(out).length >= 20, { what: 'the first lines' });
    gated.pause();
    let n = 20;
    while (writer.rotations.length < 2) {
      writer.lines(batchOf('b', n, 20, pad));
      n += 20;
    }
    // Stopped while behind: the checkpoints say where each file was left.
    await new Promise((r) => setTimeout(r, 300));
    await first.stop();
    gated.resume();
    // While the module is down, the kubelet rotates on and deletes beyond its file count.
    while (writer.deleted.length < 2) {
      writer.lines(batchOf('b', n, 20, pad));
      n += 20;
    }
    const deleted = writer.deletedMessages();
    const onDisk = writer.written.filter((m) => !deleted.has(m));

    const second = run(config, metrics, createFileSink(out));
    await second.ready;
    const present = () => {
      const seen = new Set(readRecords(out).map((r) => r.message));
      return onDisk.filter((m) => !seen.has(m));
    };
    await waitFor(() => present().length === 0 || undefined, {
      what: 'every line still on disk',
      timeoutMs: 20_000,
    }).catch(() => {
      throw new Error(`lost ${present().length} lines still on disk, e.g. ${present().slice(0, 3)}`);
    });
    await second.stop();
    const shipped = new Set(readRecords(out).map((r) => r.message));
    const unshipped = [...deleted].filter((m) => !shipped.has(m)).length;
    expect(unshipped).toBeGreaterThan(0);
    const lost = await counter(metrics, 'linesLost');
    // Estimated from the bytes left and the average line: within a fifth of the truth.
    expect(lost).toBeGreaterThan(unshipped * 0.8);
    expect(lost).toBeLessThan(unshipped * 1.2 + 5);
  });
});

describe('log shipper: a file read whose last lines are in flight, and its inode given to another', () => {
  it('reads a rotation missed between two looks on that inode', async (ctx) => {
    const { root, pods, out, config, metrics } = await setup();
    const c = fakeContainer(root, pods, 'shop', 'web-4', 'app');
    const gated = gatedSink(createFileSink(out));
    const running = run(config, metrics, gated.sink);
    await running.ready;
    writeLines(c.file, 'a', 0, 20);
    await waitFor(() => readRecords(out).length >= 20, { what: 'the first lines' });
    // The sink stalls; the file gets more lines and is rotated: read to its end and closed, its
    // last lines in flight, so its checkpoint stays until they are acknowledged.
    gated.pause();
    const readIno = statSync(c.file).ino;
    writeLines(c.file, 'a', 20, 40);
    const first = `${c.file}.20261204-100001`;
    renameSync(c.file, first);
    writeLines(c.file, 'a', 40, 60);
    await new Promise((r) => setTimeout(r, 1000));

    // The kubelet gzips the first rotation, freeing its inode, and rotates twice; the file between
    // the two rotations gets that inode.
    if (!briefRotationOnInode(c.file, first, readIno, [60, 80, 100])) {
      gated.resume();
      ctx.skip();
    }
    await new Promise((r) => setTimeout(r, 300));
    gated.resume();

    await waitFor(() => readRecords(out).length >= 100, { what: '100 records', timeoutMs: 10_000 }).catch(
      () => {},
    );
    await new Promise((r) => setTimeout(r, 300));
    await running.stop();
    const got = readRecords(out).map((r) => r.message);
    expect(messages(0, 100).filter((m) => !got.includes(m))).toEqual([]);
    expect(got).toEqual(messages(0, 100));
  });
});

describe('log shipper: a sink outage longer than giveUpAfter', () => {
  it('does not restart the module: files the kubelet compresses and deletes meanwhile are still read', async () => {
    const { root, pods, out, config, metrics } = await setup();
    const c = fakeContainer(root, pods, 'shop', 'web-3', 'app');
    const writer = new KubeletLikeWriter(c.file, { maxBytes: 16 * 1024, maxFiles: 3 });
    const inner = createFileSink(out);
    let down = false;
    const sink: Sink = {
      name: inner.name,
      open: () => inner.open(),
      close: () => inner.close(),
      async send(records) {
        if (down) throw sinkError('file', 'EIO', new Error('disk gone'));
        await inner.send(records);
      },
    };
    const retrying = {
      ...config,
      logs: { ...config.logs, retry: { initialBackoff: 50, maxBackoff: 200, giveUpAfter: 300 } },
    };
    const running = run(retrying, metrics, sink);
    await running.ready;
    const pad = 'z'.repeat(100);
    writer.lines(batchOf('c', 0, 20, pad));
    await waitFor(() => readRecords(out).length >= 20, { what: 'the first lines' });
    down = true;
    let n = 20;
    // Past giveUpAfter, the kubelet rotates on: the files the reader had not reached are gzipped
    // and deleted (3 files kept).
    const until = Date.now() + 1000;
    while (Date.now() < until || writer.deleted.length < 2) {
      writer.lines(batchOf('c', n, 20, pad));
      n += 20;
      await new Promise((r) => setTimeout(r, 60));
    }
    down = false;
    await waitFor(() => readRecords(out).length >= writer.written.length, {
      what: `${writer.written.length} records`,
      timeoutMs: 20_000,
    });
    await running.stop();
    const seen = tally(readRecords(out));
    expect(writer.written.filter((m) => !seen.has(m))).toEqual([]);
    expect(await counter(metrics, 'linesLost')).toBe(0);
  });
});
