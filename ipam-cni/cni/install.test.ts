import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cniSchema } from '../../shared/config/index.ts';
import { Lab, tempDir } from '../../test/lab/index.ts';
import {
  type ChainedPlugin,
  installCni,
  planConflist,
  pluginVersions,
  removeConflist,
  renderConflist,
  writeConflist,
} from './install.ts';

const lab = new Lab();
afterAll(() => lab.cleanup());

const cni = (input: Record<string, unknown> = {}) => cniSchema.parse(input);
const plugin = (type: 'portmap' | 'bandwidth', ...supportedVersions: string[]): ChainedPlugin => ({
  type,
  supportedVersions,
});

describe('the conflist cni install writes', () => {
  it('declares the capabilities whose runtimeConfig nodeward honours, and chains portmap and bandwidth', () => {
    const plan = planConflist(
      cni(),
      [plugin('bandwidth', '0.4.0', '1.0.0', '1.1.0'), plugin('portmap', '0.4.0', '1.0.0', '1.1.0')],
      '/opt/cni/bin',
    );
    expect(plan.notes).toEqual([]);
    expect(JSON.parse(renderConflist(cni({ pool: 'pods' }), plan))).toEqual({
      cniVersion: '1.0.0',
      cniVersions: ['1.0.0', '1.1.0'],
      name: 'nodeward',
      plugins: [
        {
          type: 'nodeward',
          socket: '/run/nodeward/cni.sock',
          journalDir: '/var/lib/nodeward/cni-journal',
          timeoutMs: 30_000,
          capabilities: { 'io.kubernetes.cri.pod-annotations': true, ips: true },
          pool: 'pods',
        },
        // The order of network.cni.chain, not of discovery.
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
        { type: 'bandwidth', capabilities: { bandwidth: true } },
      ],
    });
  });

  it('leaves 1.1.0 (GC, STATUS) out of cniVersions when a chained plugin does not speak it, and says so', () => {
    const plan = planConflist(cni(), [plugin('portmap', '0.4.0', '1.0.0')], '/opt/cni/bin');
    expect(plan.cniVersion).toBe('1.0.0');
    expect(plan.cniVersions).toEqual(['1.0.0']);
    expect(plan.notes).toEqual([
      'the kubernetes.io/ingress-bandwidth and egress-bandwidth annotations: off (the bandwidth plugin is not in /opt/cni/bin)',
      'CNI GC and STATUS: off (portmap speaks CNI only up to 1.0.0)',
    ]);
  });

  it('lowers cniVersion to what every plugin speaks, and refuses a chain with no common version', () => {
    const lowered = planConflist(cni({ cniVersion: '1.1.0' }), [plugin('portmap', '0.4.0', '1.0.0')], '/b');
    expect([lowered.cniVersion, lowered.cniVersions]).toEqual(['1.0.0', ['1.0.0']]);
    expect(lowered.notes).toContain('cniVersion 1.0.0, not 1.1.0: a chained plugin does not speak 1.1.0');
    expect(() => planConflist(cni(), [plugin('portmap', '0.3.1')], '/b')).toThrow(
      /no CNI version at or below 1\.0\.0 is spoken by nodeward and portmap alike/,
    );
  });

  it('chain: [] installs nodeward alone with no notes; a plugin named twice is a config error', () => {
    const plan = planConflist(cni({ chain: [] }), [], '/b');
    expect(plan).toEqual({ cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'], chained: [], notes: [] });
    expect(cniSchema.safeParse({ chain: ['portmap', 'portmap'] }).success).toBe(false);
    expect(cniSchema.safeParse({ chain: ['flannel'] }).success).toBe(false);
  });

  it('asks the real reference plugins in the bin dir for their versions (Debian containernetworking-plugins)', async () => {
    const reference = '/usr/lib/cni';
    if (!existsSync(join(reference, 'portmap')))
      throw new Error(`${reference}/portmap missing: .ci/run installs it`);
    const dir = await tempDir('install-chain', lab);
    const binDir = join(dir, 'bin');
    mkdirSync(binDir);
    for (const p of ['portmap', 'bandwidth']) copyFileSync(join(reference, p), join(binDir, p));
    const shim = join(dir, 'shim');
    writeFileSync(shim, '#!/bin/sh\n');
    const out = installCni({ binary: shim, binDir, confDir: join(dir, 'net.d'), confName: 'nw', cni: cni() });
    const conflist = JSON.parse(readFileSync(out.conflist.path, 'utf8'));
    expect(conflist.plugins.map((p: { type: string }) => p.type)).toEqual([
      'nodeward',
      'portmap',
      'bandwidth',
    ]);
    // Debian bookworm's plugins (1.1.1) speak up to 1.0.0: the list must not offer 1.1.0 to them.
    expect(conflist.cniVersion).toBe('1.0.0');
    expect(conflist.cniVersions).toEqual(['1.0.0']);
    expect(out.notes).toEqual(['CNI GC and STATUS: off (portmap, bandwidth speak CNI only up to 1.0.0)']);

    // A plugin that does not answer VERSION is an error naming it, not a conflist that fails every pod.
    writeFileSync(join(binDir, 'bandwidth'), '#!/bin/sh\necho garbage\n');
    chmodSync(join(binDir, 'bandwidth'), 0o755);
    expect(() =>
      installCni({ binary: shim, binDir, confDir: join(dir, 'net.d'), confName: 'nw', cni: cni() }),
    ).toThrow(`${join(binDir, 'bandwidth')} does not answer CNI VERSION`);
    writeFileSync(join(binDir, 'bandwidth'), '#!/bin/sh\necho broken >&2; exit 3\n');
    expect(() => pluginVersions(join(binDir, 'bandwidth'))).toThrow(
      'does not answer CNI VERSION: exit 3: broken',
    );
    // One that answers without reading its stdin and exits at once (the write of the config may then
    // fail with EPIPE, as seen under load): its answer counts. Stdin is closed before it answers.
    writeFileSync(
      join(binDir, 'bandwidth'),
      `#!/bin/sh\nexec 0<&-\necho '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'\n`,
    );
    for (let i = 0; i < 20; i++)
      expect(pluginVersions(join(binDir, 'bandwidth'))).toEqual(['0.4.0', '1.0.0']);
  });
});

describe('the conflist the agent writes and removes', () => {
  it('removes only the file it wrote: one another writer changed since is left alone', async () => {
    const dir = await tempDir('conflist', lab);
    const o = {
      binDir: join(dir, 'bin'),
      confDir: join(dir, 'net.d'),
      confName: '10-nodeward.conflist',
      cni: cni(),
    };
    const written = writeConflist(o);
    expect(written.changed).toBe(true);
    expect(writeConflist(o).changed).toBe(false);
    expect(removeConflist(written)).toBe(true);
    expect(existsSync(written.path)).toBe(false);
    // Gone already: nothing to do.
    expect(removeConflist(written)).toBe(false);
    const again = writeConflist(o);
    writeFileSync(again.path, '{"edited":true}');
    expect(removeConflist(again)).toBe(false);
    expect(readFileSync(again.path, 'utf8')).toBe('{"edited":true}');
  });
});
