import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli, tempDir } from './cli.ts';

const dir = tempDir();
afterAll(() => dir.remove());

function file(name: string, text: string): string {
  const path = join(dir.path, name);
  writeFileSync(path, text);
  return path;
}

describe('nodeward config check', () => {
  it('accepts a valid file', async () => {
    const path = file('ok.yaml', 'log:\n  level: debug\nshutdown:\n  deadline: 3s\n');
    const r = await runCli(['config', 'check', path]);
    expect(r).toMatchObject({ code: 0, stdout: `${path}: ok\n` });
  });

  it('warns (status 0) when the IPAM etcd is reached through cluster DNS, which needs this CNI first', async () => {
    const path = file(
      'dns.yaml',
      [
        'network:',
        '  enabled: true',
        '  ipam: { store: etcd }',
        '  etcd:',
        '    endpoints: [https://10.0.0.1:2379, https://etcd-1.etcd.kube-system.svc:2379, http://etcd.infra.svc.corp.example:2379]',
        '',
      ].join('\n'),
    );
    const r = await runCli(['config', 'check', path]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${path}: ok\n`);
    const warnings = r.stderr.split('\n').filter(Boolean);
    expect(warnings.map((w) => w.slice(0, w.indexOf(':', 'warning: '.length)))).toEqual([
      'warning: network.etcd.endpoints[1]',
      'warning: network.etcd.endpoints[2]',
    ]);
    expect(warnings[0]).toContain('etcd-1.etcd.kube-system.svc is a cluster DNS name');
    // The production config is what operators copy: it must not carry the trap.
    const prod = await runCli(['config', 'check', 'deploy/config.production.yaml']);
    expect(prod).toMatchObject({ code: 0, stderr: '' });
  });

  it('rejects bad YAML with its line and column, status 2', async () => {
    const path = file('bad.yaml', 'logs:\n  root: [unclosed\n');
    const r = await runCli(['config', 'check', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^nodeward: ${path}:\\d+:\\d+: invalid YAML: `));
  });

  it('rejects an unknown key naming its path, status 2', async () => {
    const path = file('unknown.yaml', 'logs:\n  enabled: true\n  rooot: /x\n');
    const r = await runCli(['config', 'check', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`nodeward: invalid ${path}:\n  logs.rooot: unknown key\n`);
  });

  it('rejects wrong types naming every key path and what was expected, status 2', async () => {
    const path = file(
      'types.yaml',
      'logs:\n  kafka:\n    brokers: ["k1:9092", kafka]\nshutdown:\n  deadline: soon\nnetwork:\n  enabled: "yes"\n',
    );
    const r = await runCli(['config', 'check', path]);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').slice(1).sort()).toEqual(
      [
        '',
        '  logs.kafka.brokers[1]: expected host:port, got "kafka"',
        '  shutdown.deadline: expected a duration like "500ms", "10s" or "15m", got "soon"',
        '  network.enabled: expected boolean, got string "yes"',
      ].sort(),
    );
  });

  it('names the new place of a moved key, and a key that needs another section, status 2', async () => {
    const moved = file('moved.yaml', 'logs:\n  kubelet:\n    enabled: true\n');
    const r = await runCli(['config', 'check', moved]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `nodeward: invalid ${moved}:\n  logs.kubelet: unknown key (moved to pods.kubelet, with pods.source: kubelet)\n`,
    );
    const sticky = file('sticky.yaml', 'network:\n  cni:\n    stickyStatefulSets: true\n');
    const s = await runCli(['config', 'check', sticky]);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('network.cni.stickyStatefulSets: needs pods.source kubelet or apiserver');
    const bad = file('pods.yaml', 'pods:\n  source: etcd\n  kubelet:\n    url: ftp://x/pods\n');
    const u = await runCli(['config', 'check', bad]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/\n {2}pods\.source: /);
    expect(u.stderr).toMatch(/\n {2}pods\.kubelet\.url: /);
  });

  it('rejects a file that is not a mapping, and a missing file', async () => {
    const list = await runCli(['config', 'check', file('list.yaml', '- a\n- b\n')]);
    expect(list.code).toBe(2);
    expect(list.stderr).toContain('expected a mapping of config keys at the top level, got a list');
    const missing = await runCli(['config', 'check', join(dir.path, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.yaml: cannot read config file (ENOENT)');
  });
});

describe('env and flag overrides', () => {
  it('applies NODEWARD_* env over the file and --set over env', async () => {
    const path = file('base.yaml', 'log:\n  level: warn\nhttp:\n  listen: 127.0.0.1:1111\n');
    const r = await runCli(['config', 'print', path, '--set', 'http.listen=127.0.0.1:3333'], {
      env: {
        NODEWARD_LOG__LEVEL: 'debug',
        NODEWARD_HTTP__LISTEN: '127.0.0.1:2222',
        NODEWARD_SUPERVISOR__BACKOFF_MAX: '2m',
      },
    });
    expect(r.code).toBe(0);
    const printed = parse(r.stdout);
    expect(printed.log.level).toBe('debug');
    expect(printed.http.listen).toBe('127.0.0.1:3333');
    expect(printed.supervisor.backoffMax).toBe(120_000);
  });

  it('splits comma lists for array keys', async () => {
    const r = await runCli(['config', 'print'], {
      env: { NODEWARD_LOGS__KAFKA__BROKERS: 'k1:9092, k2:9092' },
    });
    expect(r.code).toBe(0);
    expect(parse(r.stdout).logs.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
  });

  it('names the env variable of a bad value, status 2', async () => {
    const r = await runCli(['config', 'print'], { env: { NODEWARD_LOGS__KAFKA__BROKERS: 'k1:9092,kafka' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'nodeward: invalid embedded default config:\n  logs.kafka.brokers[1]: expected host:port, got "kafka" (from NODEWARD_LOGS__KAFKA__BROKERS)\n',
    );
  });

  it('rejects an env variable that names no key, status 2', async () => {
    const r = await runCli(['config', 'print'], { env: { NODEWARD_LOGS__ROOOT: '/x' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^nodeward: NODEWARD_LOGS__ROOOT: no config key "logs\.ROOOT"; keys under logs: enabled, root, /,
    );
  });

  it('rejects a --set that is not key=value, and an unknown command, status 2', async () => {
    const set = await runCli(['config', 'print', '--set', 'log.level']);
    expect(set).toMatchObject({ code: 2, stderr: 'nodeward: --set log.level: expected key.path=value\n' });
    const cmd = await runCli(['frobnicate']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain("unknown command 'frobnicate'");
  });
});

describe('nodeward --version and --help', () => {
  it('prints the package version and help with examples', async () => {
    const version = await runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Examples:');
    expect(help.stdout).toContain('nodeward config check');
  });
});
