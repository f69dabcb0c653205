import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startService } from './proc.ts';
import { processTable } from './procs.ts';
import { Lab } from './scope.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

describe('services', () => {
  const lab = new Lab();
  let labDir = '';
  afterAll(async () => {
    await lab.cleanup();
    expect(existsSync(labDir)).toBe(false);
  });

  const processesNaming = (dir: string) =>
    processTable().filter((p) => p.state !== 'Z' && p.cmdline.includes(dir));

  it('stop() sends SIGTERM to the whole process group and waits for all of it', async () => {
    const dir = await tempDir('proc', lab);
    labDir = dir;
    // The shell waits for its child, so it only exits early if the group signal reached the child.
    const svc = startService({
      lab,
      name: 'group',
      dir,
      command: 'sh',
      args: ['-c', `trap 'wait; exit 0' TERM; sleep 300 & wait`],
      stopGraceMs: 5000,
    });
    const child = await waitFor(
      () => processTable().find((p) => p.ppid === svc.pid && p.cmdline === 'sleep 300'),
      {
        what: 'the grandchild sleep',
      },
    );
    const started = Date.now();
    await svc.stop();
    expect(Date.now() - started).toBeLessThan(4000);
    expect(svc.exitStatus).toEqual({ code: 0, signal: null });
    expect(existsSync(`/proc/${child.pid}`)).toBe(false);
  });

  it('escalates to SIGKILL and kills processes that left the group but name the service dir', async () => {
    const dir = await tempDir('proc', lab);
    await writeFile(join(dir, 'follow'), '');
    // setsid puts tail in its own session, out of reach of a group signal; its argument names dir.
    const svc = startService({
      lab,
      name: 'escapee',
      dir,
      command: 'sh',
      args: ['-c', `trap '' TERM; setsid tail -f ${join(dir, 'follow')} & wait`],
      stopGraceMs: 300,
    });
    const tail = await waitFor(() => processesNaming(dir).find((p) => p.cmdline.startsWith('tail')), {
      what: 'the escaped tail',
    });
    expect(tail.pgid).not.toBe(svc.pid);
    await svc.stop();
    expect(processesNaming(dir)).toEqual([]);
    expect(existsSync(`/proc/${tail.pid}`)).toBe(false);
  });

  it('waitFor fails with the log tail on timeout, and at once when the service exits', async () => {
    const dir = await tempDir('proc', lab);
    const idle = startService({
      lab,
      name: 'idle',
      dir,
      command: 'sh',
      args: ['-c', 'echo marker-in-log; exec sleep 300'],
    });
    await waitFor(() => idle.logTail().includes('marker-in-log'), { what: 'the log line' });
    await expect(waitFor(() => false, { what: 'never', timeoutMs: 200, services: [idle] })).rejects.toThrow(
      /timed out after 200 ms waiting for never[\s\S]*marker-in-log/,
    );

    const dying = startService({ lab, name: 'dying', dir, command: 'sh', args: ['-c', 'echo boom; exit 3'] });
    const started = Date.now();
    await expect(
      waitFor(() => false, { what: 'never', timeoutMs: 10_000, services: [dying] }),
    ).rejects.toThrow(/dying exited \(code 3\)[\s\S]*boom/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
