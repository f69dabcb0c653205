import { afterAll, describe, expect, it } from 'vitest';
import { skipReason } from './bin.ts';
import { run } from './exec.ts';
import { kernelHasVlan, kernelHasVxlan, listNetns, type NetLab, startNetLab } from './netlab.ts';
import { Lab } from './scope.ts';

const tools = skipReason({ root: true, binaries: ['ip', 'bridge', 'nsenter', 'ping'] });
const vxlan = tools ? undefined : await kernelHasVxlan();
const reason = tools ?? (vxlan?.ok === false ? vxlan.reason : undefined);
if (reason)
  console.warn(`[lab] netlab tests skipped: ${reason} (install iproute2 iputils-ping, run as root)`);

describe('netlab', () => {
  const lab = new Lab();
  const created: string[] = [];
  let net: NetLab | undefined;
  afterAll(async () => {
    created.push(...(net?.namespaces() ?? []));
    await lab.cleanup();
    const left = (await listNetns()).filter((n) => created.includes(n));
    expect(left).toEqual([]);
  });

  it.skipIf(reason)('segment 100 spans both hosts; segment 200 on the same subnet stays apart', async () => {
    net = await startNetLab({ lab });
    await Promise.all([net.addSegment(100), net.addSegment(200)]);
    // Segment 200 reuses 100's subnet on purpose: only the segments keep them apart, not routing.
    const a = await net.addContainer('h1', 100, '198.51.100.1/24');
    const b = await net.addContainer('h2', 100, '198.51.100.2/24');
    const c = await net.addContainer('h1', 200, '198.51.100.3/24');
    const d = await net.addContainer('h2', 200, '198.51.100.4/24');
    created.push(...net.namespaces());
    for (const name of created) expect(name).toContain(net.suffix);

    const ping = (netns: string, ip: string, waitS: number) =>
      net!.exec(netns, ['ping', '-n', '-c', '1', '-W', String(waitS), ip]);
    const [ab, ba, dc] = await Promise.all([
      ping(a, '198.51.100.2', 3),
      ping(b, '198.51.100.1', 3),
      ping(d, '198.51.100.3', 3),
    ]);
    expect(ab.code, ab.stdout + ab.stderr).toBe(0);
    expect(ba.code, ba.stdout + ba.stderr).toBe(0);
    expect(dc.code, dc.stdout + dc.stderr).toBe(0);

    const [ca, cb] = await Promise.all([ping(c, '198.51.100.1', 1), ping(c, '198.51.100.2', 1)]);
    expect(ca.code, 'segment 200 reached 100 on the same host').not.toBe(0);
    expect(cb.code, 'segment 200 reached 100 across hosts').not.toBe(0);

    // Nothing of the lab lands in the root netns.
    const rootLinks = (await run('ip', ['-o', 'link', 'show'])).stdout;
    expect(rootLinks).not.toContain(net.suffix);
  });

  it.skipIf(tools)('kernelHasVlan() agrees with the kernel', async () => {
    const probe = await kernelHasVlan();
    if (!probe.ok) console.warn(`[lab] ${probe.reason}`);
    const scratch = await startNetLab({ lab });
    const h1 = scratch.host('h1');
    const res = await run('ip', [
      '-netns',
      h1.netns,
      'link',
      'add',
      'link',
      h1.uplink,
      'name',
      `v${scratch.suffix}`,
      'type',
      'vlan',
      'id',
      '10',
    ]);
    created.push(...scratch.namespaces());
    expect(res.code === 0, res.stderr).toBe(probe.ok);
    await scratch.destroy();
    expect((await listNetns()).filter((n) => n.includes(scratch.suffix))).toEqual([]);
  });
});
