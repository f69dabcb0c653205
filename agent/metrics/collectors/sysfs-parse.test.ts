import { describe, expect, it } from 'vitest';
import { fixture } from '../../../test/support/metrics/testing.ts';
import { listFiles, parseInt64, parseUint, utf8 } from './sysfs-parse.ts';

describe('sysfs values as procfs parses them', () => {
  it('parses unsigned integers as Go does with base 0 (hex statistics) and base 10', () => {
    expect(parseUint('0x1a3f5c2')).toBe(0x1a3f5c2n);
    expect(parseUint('0xffffffffffffffff')).toBe(2n ** 64n - 1n);
    expect(parseUint('0x10000000000000000')).toBeUndefined();
    expect(parseUint('017')).toBe(15n);
    expect(parseUint('0')).toBe(0n);
    expect(parseUint('08')).toBeUndefined();
    expect(parseUint('12 ')).toBeUndefined();
    expect(parseUint('017', 10)).toBe(17n);
    expect(parseUint('0x10', 10)).toBeUndefined();
    expect(parseInt64('-672000')).toBe(-672000);
    expect(parseInt64('+5')).toBe(5);
    expect(parseInt64('N/A')).toBeUndefined();
  });

  it('decodes label text as UTF-8, invalid bytes as U+FFFD', () => {
    expect(utf8(Buffer.from('Société', 'utf8').toString('latin1'))).toBe('Société');
    expect(utf8('\xff')).toBe('\ufffd');
  });

  it('lists only the regular files of a directory', () => {
    const files = listFiles(fixture('host/sys/class/power_supply/BAT0'));
    expect(files).toContain('uevent');
    expect(files).not.toContain('power');
    expect(listFiles(fixture('host/sys/class/no-such-class'))).toBeUndefined();
  });
});
