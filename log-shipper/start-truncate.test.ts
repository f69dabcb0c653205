import { truncateSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Lab, waitFor } from '../test/lab/index.ts';
import {
  fakeContainer,
  fileSinkModule,
  readRecords,
  startRun,
  writeLines,
} from '../test/support/log-shipper/harness.ts';

/** readFrom: end at the very first start only; copytruncate regrown past the offset between two polls. */

const lab = new Lab();
afterEach(() => lab.cleanup());

const setup = (logs: Record<string, unknown> = {}) => fileSinkModule(lab, 'logs-start', logs);

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

describe('log shipper: where reading starts', () => {
  it('reads from the end only at the very first start: a pod that appeared while the module was down is read whole', async () => {
    const { root, pods, out, module } = await setup({ readFrom: 'end' });
    const a = fakeContainer(root, pods, 'shop', 'web-1', 'app');
    writeLines(a.file, 'old', 0, 20);
    const run1 = startRun(module, lab);
    await run1.ready;
    writeLines(a.file, 'a', 0, 10);
    await waitFor(() => readRecords(out).length >= 10, { what: 'the lines after the start' });
    await run1.stop();

    // While stopped: a new pod, and more lines in the old one.
    const b = fakeContainer(root, pods, 'shop', 'web-2', 'app');
    writeLines(b.file, 'b', 0, 30);
    writeLines(a.file, 'a', 10, 20);
    const run2 = startRun(module, lab);
    await run2.ready;
    await waitFor(() => readRecords(out).length >= 50, { what: '50 lines' });
    await new Promise((r) => setTimeout(r, 300));
    await run2.stop();
    expect(readRecords(out).map((r) => r.message)).toEqual(
      expect.arrayContaining([...range('a', 0, 20), ...range('b', 0, 30)]),
    );
    expect(readRecords(out)).toHaveLength(50);
  });

  it('notices a copytruncate written past the old offset between two polls, and reads the new content from its start', async () => {
    const { root, pods, out, module } = await setup({ pollInterval: '400ms' });
    const a = fakeContainer(root, pods, 'shop', 'web-3', 'app');
    writeLines(a.file, 'a', 0, 20);
    const run = startRun(module, lab);
    await run.ready;
    await waitFor(() => readRecords(out).length >= 20, { what: 'the first lines' });
    await new Promise((r) => setTimeout(r, 100));
    // Copied away and truncated, then written again, longer than before, before the next poll.
    truncateSync(a.file, 0);
    writeLines(a.file, 'after-truncate', 0, 40);
    await waitFor(() => readRecords(out).length >= 60, { what: '60 lines', timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 500));
    await run.stop();
    const got = readRecords(out);
    expect(got.map((r) => r.message)).toEqual([...range('a', 0, 20), ...range('after-truncate', 0, 40)]);
    expect(got.filter((r) => r.parse_error)).toEqual([]);
  });
});
