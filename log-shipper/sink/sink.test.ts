import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { NodewardError } from '../../shared/errors.ts';
import { Lab, tempDir } from '../../test/lab/index.ts';
import { createFileSink } from './file.ts';
import { createStdoutSink } from './stdout.ts';

const lab = new Lab();
afterEach(() => lab.cleanup());
const records = [
  { topic: 't', key: 'k', value: '{"message":"one"}' },
  { topic: 't', key: 'k', value: '{"message":"two"}' },
];

describe('sinks', () => {
  it('file: appends JSON lines, creating the directory, across reopenings', async () => {
    const path = join(await tempDir('sink', lab), 'deep', 'out.jsonl');
    for (let i = 0; i < 2; i++) {
      const sink = createFileSink(path);
      await sink.open();
      await sink.send(records);
      await sink.send([]);
      await sink.close();
    }
    expect(readFileSync(path, 'utf8')).toBe('{"message":"one"}\n{"message":"two"}\n'.repeat(2));
  });

  it('file: a sink that cannot open fails with a retriable registry code and the errno', async () => {
    const dir = await tempDir('sink', lab);
    const sink = createFileSink(dir); // a directory cannot be opened for appending
    const err = await sink.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NodewardError);
    expect(err).toMatchObject({
      code: 'SINK_UNAVAILABLE',
      retriable: true,
      details: { sink: 'file', reason: 'EISDIR' },
    });
  });

  it('stdout: writes JSON lines and resolves once the stream took them', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const sink = createStdoutSink(out);
    await sink.open();
    await sink.send(records);
    expect(text).toBe('{"message":"one"}\n{"message":"two"}\n');
  });
});
