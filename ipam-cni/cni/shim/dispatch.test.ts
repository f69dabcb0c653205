import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CniRequest, CniResponse } from '../protocol.ts';
import { AgentUnreachable } from './client.ts';
import { dispatch, type ShimDeps } from './dispatch.ts';

/** The shim's dispatcher in-process, pkg/skel style: every bad input leaves as spec JSON with its code. */

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const GOOD_ENV = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c0ffee-1',
  CNI_NETNS: '/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};
const conf = (o: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: '1.1.0', name: 'net', type: 'nodeward', socket: '/tmp/x.sock', ...o });

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
  sent: CniRequest[];
}

async function run(
  env: Record<string, string | undefined>,
  stdin: string,
  deps: ShimDeps = {},
): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const sent: CniRequest[] = [];
  const code = await dispatch(
    {
      getenv: (n) => env[n],
      readStdin: async () => stdin,
      stdout: (s) => {
        stdout += s;
      },
      stderr: (s) => {
        stderr += s;
      },
    },
    {
      send: async (_socket, req) => {
        sent.push(req);
        return { ok: true, result: { cniVersion: '1.1.0', ips: [] } };
      },
      ...deps,
    },
  );
  return { code, stdout, stderr, json: stdout.trim() ? JSON.parse(stdout) : undefined, sent };
}

const badEnv: [string, Record<string, string | undefined>, RegExp][] = [
  ['no CNI_COMMAND', { ...GOOD_ENV, CNI_COMMAND: undefined }, /CNI_COMMAND is required/],
  ['unknown CNI_COMMAND', { ...GOOD_ENV, CNI_COMMAND: 'FROB' }, /unknown CNI_COMMAND "FROB"/],
  ['no CNI_CONTAINERID', { ...GOOD_ENV, CNI_CONTAINERID: undefined }, /CNI_CONTAINERID is required/],
  ['empty CNI_CONTAINERID', { ...GOOD_ENV, CNI_CONTAINERID: '' }, /CNI_CONTAINERID is required/],
  ['CNI_CONTAINERID with a slash', { ...GOOD_ENV, CNI_CONTAINERID: 'a/b' }, /CNI_CONTAINERID must start/],
  ['CNI_CONTAINERID starting with -', { ...GOOD_ENV, CNI_CONTAINERID: '-ab' }, /CNI_CONTAINERID must start/],
  ['no CNI_IFNAME', { ...GOOD_ENV, CNI_IFNAME: undefined }, /CNI_IFNAME is required/],
  ['CNI_IFNAME of 16 chars', { ...GOOD_ENV, CNI_IFNAME: 'a234567890123456' }, /at most 15/],
  ['CNI_IFNAME "."', { ...GOOD_ENV, CNI_IFNAME: '.' }, /must start with a letter or digit/],
  ['CNI_IFNAME ".."', { ...GOOD_ENV, CNI_IFNAME: '..' }, /must start with a letter or digit/],
  ['CNI_IFNAME with /', { ...GOOD_ENV, CNI_IFNAME: 'et/h0' }, /hold only letters, digits/],
  ['CNI_IFNAME with :', { ...GOOD_ENV, CNI_IFNAME: 'eth0:1' }, /hold only letters, digits/],
  ['CNI_IFNAME with a space', { ...GOOD_ENV, CNI_IFNAME: 'eth 0' }, /hold only letters, digits/],
  ['CNI_IFNAME with a tab', { ...GOOD_ENV, CNI_IFNAME: 'eth\t0' }, /hold only letters, digits/],
  // The `ip -b -` parser's specials: a comment, quotes, an escape.
  ['CNI_IFNAME with #', { ...GOOD_ENV, CNI_IFNAME: 'eth0#x' }, /hold only letters, digits/],
  ['CNI_IFNAME with a quote', { ...GOOD_ENV, CNI_IFNAME: 'eth"0' }, /hold only letters, digits/],
  ["CNI_IFNAME with '", { ...GOOD_ENV, CNI_IFNAME: "eth'0" }, /hold only letters, digits/],
  ['CNI_IFNAME with \\', { ...GOOD_ENV, CNI_IFNAME: 'eth\\0' }, /hold only letters, digits/],
  ['no CNI_NETNS on ADD', { ...GOOD_ENV, CNI_NETNS: undefined }, /CNI_NETNS is required/],
  ['relative CNI_NETNS', { ...GOOD_ENV, CNI_NETNS: 'netns-1' }, /absolute path/],
  ['no CNI_PATH', { ...GOOD_ENV, CNI_PATH: undefined }, /CNI_PATH is required/],
  ['bad CNI_ARGS', { ...GOOD_ENV, CNI_ARGS: 'IgnoreUnknown=1;junk' }, /CNI_ARGS: expected KEY=VALUE/],
];

describe('dispatch: invalid environment → code 4', () => {
  for (const [what, env, msg] of badEnv) {
    it(what, async () => {
      const r = await run(env, conf());
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ code: 4, cniVersion: '1.1.0' });
      expect(String(r.json?.['msg'])).toMatch(msg);
      expect(r.sent).toHaveLength(0);
    });
  }
  it('CHECK needs CNI_NETNS too; DEL does not', async () => {
    expect(
      (await run({ ...GOOD_ENV, CNI_COMMAND: 'CHECK', CNI_NETNS: undefined }, conf())).json,
    ).toMatchObject({ code: 4 });
    const del = await run({ ...GOOD_ENV, CNI_COMMAND: 'DEL', CNI_NETNS: undefined }, conf());
    expect(del.code).toBe(0);
    expect(del.sent[0]).toMatchObject({ command: 'DEL', netns: '' });
  });
});

describe('dispatch: bad network config', () => {
  const cases: [string, string, number, RegExp][] = [
    ['empty stdin', '', 6, /not JSON/],
    ['not JSON', '{"cniVersion":', 6, /not JSON/],
    ['a JSON array', '[]', 6, /JSON object/],
    ['no cniVersion', JSON.stringify({ name: 'n', type: 'nodeward' }), 7, /no cniVersion/],
    ['unsupported cniVersion', conf({ cniVersion: '0.3.1' }), 1, /0\.3\.1.*not supported/],
    ['future cniVersion', conf({ cniVersion: '2.0.0' }), 1, /not supported/],
    ['no name', conf({ name: undefined }), 7, /"name"/],
    ['empty type', conf({ type: '' }), 7, /"type"/],
    ['relative socket', conf({ socket: 'x.sock' }), 7, /"socket" must be an absolute path/],
    ['bad timeoutMs', conf({ timeoutMs: -1 }), 7, /timeoutMs/],
  ];
  for (const [what, stdin, code, msg] of cases) {
    it(`${what} → ${code}`, async () => {
      const r = await run(GOOD_ENV, stdin);
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ code });
      expect(String(r.json?.['msg'])).toMatch(msg);
      expect(Object.keys(r.json ?? {}).sort()).toEqual(
        ['cniVersion', 'code', 'msg', ...(r.json?.['details'] ? ['details'] : [])].sort(),
      );
    });
  }
  it('GC and STATUS need cniVersion 1.1.0 → 1', async () => {
    for (const verb of ['GC', 'STATUS']) {
      const r = await run({ CNI_COMMAND: verb, CNI_PATH: '/x' }, conf({ cniVersion: '1.0.0' }));
      expect(r.json).toMatchObject({ code: 1, msg: expect.stringMatching(/needs cniVersion 1.1.0/) });
    }
  });
  it('the error JSON carries the config version when it is known', async () => {
    const r = await run({ ...GOOD_ENV, CNI_IFNAME: undefined }, conf({ cniVersion: '0.4.0' }));
    // Env is checked before the config is read, so the version is the latest here.
    expect(r.json).toMatchObject({ code: 4, cniVersion: '1.1.0' });
    const r2 = await run(GOOD_ENV, conf({ cniVersion: '0.4.0', name: '' }));
    expect(r2.json).toMatchObject({ code: 7, cniVersion: '1.1.0' });
  });
});

describe('dispatch: VERSION and forwarding', () => {
  it('VERSION is answered locally, in the asked version', async () => {
    const r = await run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    expect(r.sent).toHaveLength(0);
    expect((await run({ CNI_COMMAND: 'VERSION' }, '')).json).toMatchObject({ cniVersion: '1.1.0' });
  });
  it('ADD forwards env and config untouched and prints the result', async () => {
    const stdin = conf({ pool: 'p' });
    const r = await run({ ...GOOD_ENV, CNI_ARGS: 'K8S_POD_NAME=a' }, stdin);
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '1.1.0', ips: [] });
    expect(r.sent).toEqual([
      {
        v: 1,
        command: 'ADD',
        containerID: 'c0ffee-1',
        netns: '/run/netns/x',
        ifName: 'eth0',
        args: 'K8S_POD_NAME=a',
        path: '/opt/cni/bin',
        config: stdin,
      },
    ]);
  });
  it("the agent's error comes out as spec JSON", async () => {
    const send = async (): Promise<CniResponse> => ({
      ok: false,
      code: 101,
      msg: 'pool p exhausted',
      details: 'POOL_EXHAUSTED',
    });
    const r = await run(GOOD_ENV, conf(), { send });
    expect(r.code).toBe(1);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      code: 101,
      msg: 'pool p exhausted',
      details: 'POOL_EXHAUSTED',
    });
  });
});

describe('dispatch: agent down', () => {
  const down = async (): Promise<CniResponse> => {
    throw new AgentUnreachable('cannot reach the agent on /tmp/x.sock: connect ENOENT');
  };
  it('ADD → 11, CHECK → 11, GC → 11', async () => {
    for (const verb of ['ADD', 'CHECK', 'GC']) {
      const r = await run({ ...GOOD_ENV, CNI_COMMAND: verb }, conf(), { send: down });
      expect(r.code, verb).toBe(1);
      expect(r.json, verb).toMatchObject({ code: 11 });
    }
  });
  it('STATUS → 50', async () => {
    const r = await run({ CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }, conf(), { send: down });
    expect(r.json).toMatchObject({ code: 50, msg: expect.stringMatching(/not available/) });
  });
  it("DEL succeeds and is journaled (fsync'd file, replayable request)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodeward-journal-'));
    dirs.push(dir);
    const stdin = conf({ journalDir: dir });
    const r = await run({ ...GOOD_ENV, CNI_COMMAND: 'DEL' }, stdin, { send: down });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/DEL journaled/);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    const entry = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8'));
    expect(entry.request).toMatchObject({
      command: 'DEL',
      containerID: 'c0ffee-1',
      ifName: 'eth0',
      config: stdin,
    });
  });
  it('DEL that cannot be journaled fails with 5 (the runtime retries)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodeward-journal-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'file'), '');
    // A path under a regular file: ENOTDIR (a path under /proc makes Node's recursive mkdir spin).
    const r = await run({ ...GOOD_ENV, CNI_COMMAND: 'DEL' }, conf({ journalDir: join(dir, 'file', 'j') }), {
      send: down,
    });
    expect(r.json).toMatchObject({ code: 5 });
  });
});
