import { describe, expect, it } from 'vitest';
import { snappyUncompress } from '../../../test/support/metrics/testing.ts';
import { maxCompressedLength, snappyCompress } from './snappy.ts';

function random(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('snappy block compressor', () => {
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from('a')],
    ['short literal (< 17 bytes)', Buffer.from('hello, snappy!')],
    ['60- and 61-byte literals', random(61)],
    ['a 300-byte random literal (2-byte length)', random(300)],
    ['a run (overlapping copies)', Buffer.alloc(5000, 'x')],
    ['text with repeats', Buffer.from('node_cpu_seconds_total{cpu="0",mode="idle"} 1\n'.repeat(400))],
    ['random, several 64 KiB blocks', random(200_000, 7)],
    [
      'repetitive, several 64 KiB blocks',
      Buffer.from('container_memory_rss{id="/docker/abc"} 12345\n'.repeat(5000)),
    ],
  ];
  for (const [name, input] of cases) {
    it(`round-trips ${name}`, () => {
      const compressed = snappyCompress(input);
      expect(compressed.length).toBeLessThanOrEqual(maxCompressedLength(input.length));
      expect(snappyUncompress(compressed).equals(input)).toBe(true);
    });
  }

  it('compresses repetitive text', () => {
    const text = Buffer.from('node_network_receive_bytes_total{device="eth0"} 370349559\n'.repeat(1000));
    expect(snappyCompress(text).length).toBeLessThan(text.length / 10);
  });

  it('starts with the uncompressed length as a varint', () => {
    expect([...snappyCompress(Buffer.alloc(300, 1)).subarray(0, 2)]).toEqual([0xac, 0x02]);
  });
});
