import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Lab, tempDir } from '../../test/lab/index.ts';
import type { Attachment } from './liveness.ts';
import { netnsSource, ValidAttachments } from './liveness.ts';

const lab = new Lab();
afterAll(() => lab.cleanup());

const attachment = (netns: string | undefined, network?: string, containerID = 'c1'): Attachment => ({
  containerID,
  ifName: 'eth0',
  handle: {
    pool: 'p',
    ip: '10.0.0.2',
    since: new Date(0).toISOString(),
    ...(netns ? { netns } : {}),
    ...(network ? { network } : {}),
  } as never,
});

describe('netns evidence', () => {
  it('says alive for a netns that exists, dead for one missing from a directory that holds others', async () => {
    const dir = await tempDir('netns', lab);
    const runNetns = join(dir, 'netns');
    mkdirSync(runNetns);
    writeFileSync(join(runNetns, 'cni-alive'), '');
    const verdict = (await netnsSource().snapshot())!;
    expect(verdict(attachment(join(runNetns, 'cni-alive')))).toBe(true);
    expect(verdict(attachment(join(runNetns, 'cni-gone')))).toBe(false);
    expect(verdict(attachment(undefined))).toBeUndefined();
  });

  it('cannot tell when the directory is missing or empty: an agent without the /run/netns mount frees nothing', async () => {
    const dir = await tempDir('netns-unseen', lab);
    mkdirSync(join(dir, 'empty'));
    const verdict = (await netnsSource().snapshot())!;
    // As inside a container whose /run has no netns directory, or an empty one not the host's.
    expect(verdict(attachment(join(dir, 'missing', 'cni-1234')))).toBeUndefined();
    expect(verdict(attachment(join(dir, 'empty', 'cni-1234')))).toBeUndefined();
  });

  it("the runtime list of one network judges only that network's attachments", async () => {
    const valid = new ValidAttachments(() => 1000);
    valid.note('pods', [{ containerID: 'listed', ifname: 'eth0' }]);
    const verdict = (await valid.snapshot())!;
    expect(verdict(attachment(undefined, 'pods', 'listed'))).toBe(true);
    expect(verdict(attachment(undefined, 'pods', 'unlisted'))).toBe(false);
    // Multus' second network, and records from before networks were recorded: no verdict.
    expect(verdict(attachment(undefined, 'storage-net', 'unlisted'))).toBeUndefined();
    expect(verdict(attachment(undefined, undefined, 'unlisted'))).toBeUndefined();
  });
});
