import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { fixture } from '../../test/support/metrics/testing.ts';
import { isAbsent, readKernelFile, readKernelFileSync } from './procfs.ts';

describe('readKernelFile', () => {
  it('re-reads a held procfs file from the start: the current text each time', async () => {
    const first = await readKernelFile('/proc', 'uptime');
    await sleep(30);
    const second = await readKernelFile('/proc', 'uptime');
    expect(Number(second.split(' ')[0])).toBeGreaterThan(Number(first.split(' ')[0]));
  });

  it('reads a file longer than one seq_file page whole, as readFileSync does', async () => {
    // /proc/self/mountinfo is several pages wherever containers run (and a page or so elsewhere).
    // Compared only when the table did not change meanwhile (labs mount things beside us).
    for (let attempt = 0; attempt < 10; attempt++) {
      const before = readFileSync('/proc/self/mountinfo', 'utf8');
      const ours = await readKernelFile('/proc', 'self/mountinfo');
      if (readFileSync('/proc/self/mountinfo', 'utf8') !== before) continue;
      expect(ours).toBe(before);
      return;
    }
    throw new Error('the mount table kept changing');
  });

  it('is absent as readFileSync says it (ENOENT), under procfs and under a fixture root', async () => {
    await expect(readKernelFile('/proc', 'no-such-file')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(readKernelFile(fixture('host/proc'), 'no-such-file')).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(await readKernelFile(fixture('host/proc'), 'loadavg')).toBe(
      readFileSync(`${fixture('host/proc')}/loadavg`, 'utf8'),
    );
  });
});

describe('readKernelFileSync of a path that is absent', () => {
  it('says ENOENT each time, and reads the file once it appears (a module loaded later)', () => {
    const root = mkdtempSync(join(tmpdir(), 'nodeward-absent-'));
    try {
      for (let i = 0; i < 3; i++) {
        let error: unknown;
        try {
          readKernelFileSync(root, 'net', 'bonding_masters');
        } catch (err) {
          error = err;
        }
        expect(isAbsent(error), `attempt ${i}: ${String(error)}`).toBe(true);
        expect(String(error)).toContain('bonding_masters');
      }
      mkdirSync(join(root, 'net'));
      writeFileSync(join(root, 'net', 'bonding_masters'), 'bond0\n');
      expect(readKernelFileSync(root, 'net', 'bonding_masters')).toBe('bond0\n');
      rmSync(join(root, 'net'), { recursive: true });
      expect(() => readKernelFileSync(root, 'net', 'bonding_masters')).toThrow(/ENOENT/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
