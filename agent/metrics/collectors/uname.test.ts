import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createUnameCollector } from './uname.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('uname', () => {
  it("emits node_uname_info with node_exporter's six labels", async () => {
    const u = {
      sysname: 'Linux',
      release: '6.1.0',
      version: '#1 SMP',
      machine: 'x86_64',
      nodename: 'node-a',
      domainname: '(none)',
    };
    const collector = createUnameCollector(settingsFor(fixture('bare/proc')), async () => u);
    expect(await collectSamples(collector)).toEqual([{ name: 'node_uname_info', value: 1, labels: u }]);
  });

  it('reads the domain name from procfs, and says (none) when it is absent, like uname(2)', async () => {
    const [host] = await collectSamples(createUnameCollector(settingsFor(fixture('host/proc'))));
    expect(host!.labels.domainname).toBe(read('host/proc/sys/kernel/domainname').trim());
    const [bare] = await collectSamples(createUnameCollector(settingsFor(fixture('bare/proc'))));
    expect(bare!.labels.domainname).toBe('(none)');
  });
});
