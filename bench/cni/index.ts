import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, copyFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { addPool } from '../../ipam-cni/ipam/pools.ts';
import { EtcdStore } from '../../ipam-cni/store/etcd.ts';
import { cniSchema } from '../../shared/config/index.ts';
import { Lab, run, runOk, startEtcd, tempDir } from '../../test/lab/index.ts';
import { runPlugin, type ShimRun } from '../../test/support/ipam-cni/run-plugin.ts';
import { type Bench, metric, percentile } from '../types.ts';

/**
 * ADD+DEL through the built shim (build/nodeward-cni → agent socket → etcd IPAM + iproute2) against
 * the Go reference plugins `bridge` + `host-local` from /usr/lib/cni, in the same run, each into a
 * fresh netns per cycle (made outside the timing), N sequential then N concurrent. Also the shim's
 * bare start-up (VERSION) and a standalone plugin that loads the etcd client on every call.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const BUILT = join(ROOT, 'build/nodeward-cni');
const REF = '/usr/lib/cni';

interface Timings {
  add: number[];
  del: number[];
}

const ok = (r: ShimRun, what: string) => {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stdout}${r.stderr}`);
  return r;
};

const bench: Bench = {
  description: 'CNI ADD+DEL: nodeward shim + agent vs reference bridge + host-local, same run',
  async run({ quick, log }) {
    for (const f of [join(REF, 'bridge'), join(REF, 'host-local')]) {
      if (!existsSync(f)) throw new Error(`${f} missing: apt-get install containernetworking-plugins`);
    }
    log('building the shim (npm run build:cni)');
    execFileSync(process.execPath, [join(ROOT, 'deploy/build-cni.ts')], { stdio: 'ignore' });
    const n = quick ? 20 : 100;
    const concurrency = 8;
    const lab = new Lab();
    const netns: string[] = [];
    const suffix = randomBytes(3).toString('hex');
    const ourBridge = `nw-bench${suffix}`.slice(0, 15);
    const refBridge = `nwref${suffix}`;
    try {
      const dir = await tempDir('cni-bench', lab);
      // A private copy: `npm run build` empties build/ and may run meanwhile.
      const SHIM = join(dir, 'nodeward');
      copyFileSync(BUILT, SHIM);
      chmodSync(SHIM, 0o755);
      const etcd = await startEtcd({ lab });
      const prefix = `/nodeward-bench-${suffix}/ipam/v1/`;
      const store = await EtcdStore.open({
        endpoints: etcd.endpoints,
        prefix,
        dialTimeoutMs: 2000,
        requestTimeoutMs: 5000,
      });
      lab.defer('store', () => store.close());
      await addPool(store, { name: `bench${suffix}`, cidr: '10.250.0.0/16', gateway: '10.250.0.1' });
      const cni = cniSchema.parse({ socket: join(dir, 'run/cni.sock'), journalDir: join(dir, 'journal') });
      const agent = spawn(
        process.execPath,
        [
          join(import.meta.dirname, '../../test/support/ipam-cni/agent-process.ts'),
          JSON.stringify({ etcd: etcd.endpoints[0], prefix, cni, node: 'bench' }),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      lab.defer('agent', async () => {
        agent.kill('SIGTERM');
        await once(agent, 'exit');
      });
      await new Promise<void>((ready, fail) => {
        agent.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && ready());
        agent.once('exit', (code) => fail(new Error(`the bench agent exited (${code})`)));
      });
      lab.defer('links', () =>
        run('ip', ['-force', '-batch', '-'], { input: `link del ${ourBridge}\nlink del ${refBridge}\n` }),
      );
      lab.defer('netns', () =>
        run('ip', ['-force', '-batch', '-'], { input: netns.map((x) => `netns del ${x}\n`).join('') }),
      );

      const ourConf = {
        cniVersion: '1.0.0',
        name: 'bench',
        type: 'nodeward',
        socket: cni.socket,
        journalDir: cni.journalDir,
        ipam: { type: 'nodeward', pool: `bench${suffix}` },
      };
      const refConf = {
        cniVersion: '1.0.0',
        name: 'benchref',
        type: 'bridge',
        bridge: refBridge,
        isGateway: false,
        ipam: {
          type: 'host-local',
          subnet: '10.251.0.0/16',
          gateway: '10.251.0.1',
          dataDir: join(dir, 'host-local'),
        },
      };
      // Our pool is mode none: the bridge is nw-<pool>.
      void ourBridge;

      let cycle = 0;
      const freshNetns = async () => {
        const name = `nw-b${++cycle}-${suffix}`;
        netns.push(name);
        await runOk('ip', ['netns', 'add', name]);
        return name;
      };
      const cycleOf = async (which: 'ours' | 'ref', name: string, t: Timings) => {
        const common = { containerID: `c-${name}`, netns: `/run/netns/${name}`, ifName: 'eth0', path: REF };
        const argv = which === 'ours' ? [SHIM] : [join(REF, 'bridge')];
        const conf = which === 'ours' ? ourConf : refConf;
        const a = ok(await runPlugin({ ...common, command: 'ADD', conf, argv }), `${which} ADD`);
        const d = ok(
          await runPlugin({ ...common, command: 'DEL', conf: { ...conf, prevResult: a.json }, argv }),
          `${which} DEL`,
        );
        t.add.push(a.ms);
        t.del.push(d.ms);
      };
      const measure = async (which: 'ours' | 'ref') => {
        const seq: Timings = { add: [], del: [] };
        const conc: Timings = { add: [], del: [] };
        const names = await Promise.all(Array.from({ length: 2 * n }, freshNetns));
        // Warm-up: page cache, the first bridge, etcd's first txn.
        await cycleOf(which, await freshNetns(), { add: [], del: [] });
        for (const name of names.slice(0, n)) await cycleOf(which, name, seq);
        const rest = names.slice(n);
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            for (let name = rest.shift(); name; name = rest.shift()) await cycleOf(which, name, conc);
          }),
        );
        return { seq, conc };
      };
      log(`${n} sequential + ${n} concurrent (${concurrency} in flight) cycles each`);
      const ref = await measure('ref');
      const ours = await measure('ours');

      const startup: number[] = [];
      for (let i = 0; i < (quick ? 20 : 50); i++) {
        startup.push(
          ok(await runPlugin({ command: 'VERSION', conf: '{"cniVersion":"1.0.0"}', argv: [SHIM] }), 'VERSION')
            .ms,
        );
      }
      // The same start-up with `concurrency` shims at once, as in the concurrent phase: how much of
      // that phase's latency is N Node processes starting on this machine's cores, before any work.
      const startupConc: number[] = [];
      let left = quick ? 40 : 100;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (; left > 0; left--) {
            startupConc.push(
              ok(
                await runPlugin({ command: 'VERSION', conf: '{"cniVersion":"1.0.0"}', argv: [SHIM] }),
                'VERSION',
              ).ms,
            );
          }
        }),
      );
      const standalone: number[] = [];
      const standaloneArgv = [process.execPath, join(import.meta.dirname, 'standalone.ts')];
      for (let i = 0; i < (quick ? 5 : 20); i++) {
        const name = await freshNetns();
        const common = { containerID: `s-${name}`, netns: `/run/netns/${name}`, ifName: 'eth0', path: REF };
        const r = ok(
          await runPlugin({
            ...common,
            command: 'ADD',
            conf: ourConf,
            argv: standaloneArgv,
            env: { NODEWARD_BENCH_ETCD: etcd.endpoints[0]!, NODEWARD_BENCH_PREFIX: prefix },
          }),
          'standalone ADD',
        );
        standalone.push(r.ms);
        ok(
          await runPlugin({ ...common, command: 'DEL', conf: ourConf, argv: [SHIM] }),
          'DEL after standalone',
        );
      }

      const p = (v: number[], q: number) => percentile(v, q);
      const startupP50 = p(startup, 50);
      const all = (t: { seq: Timings; conc: Timings }, k: keyof Timings) => [...t.seq[k], ...t.conc[k]];
      const row = (label: string, o: number[], r: number[]) =>
        log(
          `${label.padEnd(22)} ours p50 ${p(o, 50).toFixed(1)} p99 ${p(o, 99).toFixed(1)} ms | ref p50 ${p(r, 50).toFixed(1)} p99 ${p(r, 99).toFixed(1)} ms`,
        );
      row('ADD sequential', ours.seq.add, ref.seq.add);
      row('DEL sequential', ours.seq.del, ref.seq.del);
      row(`ADD concurrent (${concurrency})`, ours.conc.add, ref.conc.add);
      row(`DEL concurrent (${concurrency})`, ours.conc.del, ref.conc.del);
      log(
        `shim VERSION p50 ${startupP50.toFixed(1)} p99 ${p(startup, 99).toFixed(1)} ms; ${concurrency} at once p50 ${p(startupConc, 50).toFixed(1)} p99 ${p(startupConc, 99).toFixed(1)} ms; standalone ADD p50 ${p(standalone, 50).toFixed(1)} ms`,
      );
      const refAdd = p(ref.seq.add, 50);
      const anchorName = 'reference bridge+host-local';
      return [
        metric({
          name: 'add_p50_ms',
          unit: 'ms',
          ours: p(ours.seq.add, 50),
          anchor: refAdd,
          anchorName,
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'add_p50_minus_startup_ms',
          unit: 'ms',
          ours: p(ours.seq.add, 50) - startupP50,
          anchor: refAdd,
          anchorName,
          better: 'lower',
          goal: 1.0,
        }),
        metric({
          name: 'add_p99_ms',
          unit: 'ms',
          ours: p(all(ours, 'add'), 99),
          anchor: p(all(ref, 'add'), 99),
          anchorName,
          better: 'lower',
          goal: 150,
          goalOf: 'ours',
        }),
        metric({
          name: 'del_p50_ms',
          unit: 'ms',
          ours: p(ours.seq.del, 50),
          anchor: p(ref.seq.del, 50),
          anchorName,
          better: 'lower',
          goal: 1.0,
        }),
        metric({
          name: 'add_conc_p50_ms',
          unit: 'ms',
          ours: p(ours.conc.add, 50),
          anchor: p(ref.conc.add, 50),
          anchorName,
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'del_conc_p50_ms',
          unit: 'ms',
          ours: p(ours.conc.del, 50),
          anchor: p(ref.conc.del, 50),
          anchorName,
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'shim_startup_ms',
          unit: 'ms',
          ours: startupP50,
          anchor: null,
          anchorName: '-',
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'shim_startup_conc_p99_ms',
          unit: 'ms',
          ours: p(startupConc, 99),
          anchor: null,
          anchorName: '-',
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'standalone_add_p50_ms',
          unit: 'ms',
          ours: p(standalone, 50),
          anchor: p(ours.seq.add, 50),
          anchorName: 'shim + agent ADD p50',
          better: 'lower',
          goal: null,
        }),
      ];
    } finally {
      await lab.cleanup();
    }
  },
};

export default bench;
