import { describe, expect, it } from 'vitest';
import { FLAG_PARSE_ERROR, FLAG_PARTIAL, FLAG_TRUNCATED } from './parse.ts';
import { createEncoder, RecordArena } from './record.ts';

const labels = { node: 'n1', namespace: 'shop', pod: 'web-7d9f-x2k', pod_labels: { app: 'w"eb' } };
const file = '/var/log/pods/shop_web_0b7c/nginx/0.log';

describe('record encoder', () => {
  it('writes the documented JSON, flags only when set, any message as valid UTF-8 JSON', () => {
    const encode = createEncoder(labels, file, new RecordArena(4096));
    const messages = [
      'GET / 200',
      '',
      'quotes " and \\ backslash, tab \t, NUL \u0000, newline \n',
      'naïve – 日本語 – 🚀',
      'lone surrogate \ud800 here',
    ];
    for (const message of messages) {
      const value = encode('2024-05-01T10:00:00.123456789Z', 'stdout', message, 0, 1234);
      expect(Buffer.isBuffer(value)).toBe(true);
      expect(JSON.parse(value.toString('utf8'))).toEqual({
        time: '2024-05-01T10:00:00.123456789Z',
        stream: 'stdout',
        message,
        labels,
        file,
        offset: 1234,
      });
    }
    const flagged = encode('t', 'unknown', 'm', FLAG_PARTIAL | FLAG_PARSE_ERROR | FLAG_TRUNCATED, 0);
    expect(JSON.parse(flagged.toString())).toEqual({
      time: 't',
      stream: 'unknown',
      message: 'm',
      partial: true,
      parse_error: true,
      truncated: true,
      labels,
      file,
      offset: 0,
    });
    expect(flagged.toString()).toBe(
      `{"time":"t","stream":"unknown","message":"m","partial":true,"parse_error":true,"truncated":true,"labels":${JSON.stringify(labels)},"file":${JSON.stringify(file)},"offset":0}`,
    );
  });

  it('records written across many chunks keep their bytes (a chunk is never reused)', () => {
    const arena = new RecordArena(1024);
    const encode = createEncoder(labels, file, arena);
    const values: Buffer[] = [];
    // Some records larger than a chunk: they get a chunk of their own.
    for (let i = 0; i < 300; i++)
      values.push(encode(`t${i}`, 'stderr', `line ${i} ${'x'.repeat(i % 7 === 0 ? 2000 : i)}`, 0, i));
    values.forEach((value, i) => {
      const record = JSON.parse(value.toString()) as { time: string; message: string; offset: number };
      expect(record.time).toBe(`t${i}`);
      expect(record.offset).toBe(i);
      expect(record.message.startsWith(`line ${i} `)).toBe(true);
    });
  });
});
