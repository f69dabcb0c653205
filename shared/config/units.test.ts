import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { duration, hostPort, size } from './units.ts';

const messages = (schema: z.ZodType, value: unknown) =>
  schema.safeParse(value).error?.issues.map((i) => i.message);

describe('config value types', () => {
  it('reads durations in ms, s, m, h and plain milliseconds', () => {
    const d = duration();
    expect(['500ms', '10s', '1.5s', '15m', '1h', 250].map((v) => d.parse(v))).toEqual([
      500, 10_000, 1500, 900_000, 3_600_000, 250,
    ]);
    expect(messages(d, '10 parsecs')).toEqual([
      'expected a duration like "500ms", "10s" or "15m", got "10 parsecs"',
    ]);
    expect(messages(d, -1)).toEqual(['expected a duration like "500ms", "10s" or "15m", got -1']);
  });

  it('reads sizes in decimal and binary units', () => {
    const s = size();
    expect(['64KiB', '16MiB', '1GB', '512', 4096].map((v) => s.parse(v))).toEqual([
      65_536, 16_777_216, 1e9, 512, 4096,
    ]);
    expect(messages(s, '3 bananas')).toEqual(['expected a size like "64KiB" or "16MiB", got "3 bananas"']);
  });

  it('accepts host:port and [v6]:port, rejects the rest', () => {
    const h = hostPort();
    expect(['kafka-0.kafka:9092', '127.0.0.1:1', '[::1]:9560'].map((v) => h.parse(v))).toEqual([
      'kafka-0.kafka:9092',
      '127.0.0.1:1',
      '[::1]:9560',
    ]);
    for (const bad of ['kafka', 'h:0', 'h:70000', ':9092', 9092])
      expect(h.safeParse(bad).success).toBe(false);
  });
});
