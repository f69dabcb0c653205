import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { parse as parseYaml, stringify } from 'yaml';
import type { Config } from '../shared/config/index.ts';
import { EXIT, NodewardError } from '../shared/errors.ts';
import { releaseFromReport, releaseIp, releaseSticky, stickyRecords } from './ipam/admin.ts';
import { audit } from './ipam/audit.ts';
import { Ipam, type Released } from './ipam/ipam.ts';
import { addPool, readPools, removePool } from './ipam/pools.ts';
import { usageReport } from './ipam/usage.ts';
import { openIpamStore } from './store/open.ts';
import type { Store } from './store/store.ts';

/**
 * `nodeward ipam …`: pools, usage, consistency check and manual release, against the store the
 * config names (etcd or the node's file store). Tables for people, `-o json` for scripts.
 */

export interface IpamCliIo {
  readonly stdout: (s: string) => void;
  /** Adds the CLI's config flags (-c/--config, --set) to a command. */
  readonly withConfigFlags: (cmd: Command) => Command;
  /** The effective config for a command's parsed flags. */
  readonly config: (flags: Record<string, unknown>) => Config;
}

type Output = 'table' | 'json';

const outputOption = () =>
  new Option('-o, --output <format>', 'table for people, json for scripts')
    .choices(['table', 'json'])
    .default('table');

function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

const json = (value: unknown) =>
  `${JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? String(v) : v), 2)}\n`;

export function registerIpamCommands(program: Command, io: IpamCliIo): Command {
  /** Opens the store for one command and closes it after, whatever happens. */
  const withStore =
    <A extends unknown[]>(fn: (store: Store, config: Config, ...args: A) => Promise<void>) =>
    async (...args: A) => {
      const cmd = args.at(-1) as Command;
      const config = io.config(cmd.optsWithGlobals());
      const store = await openIpamStore(config);
      try {
        await fn(store, config, ...args);
      } finally {
        await store.close();
      }
    };
  const add = (parent: Command, name: string) => io.withConfigFlags(parent.command(name));

  const ipam = program
    .command('ipam')
    .description('IP address management: pools, usage, checks, manual release');
  const pool = ipam.command('pool').description('address pools');

  add(pool, 'add')
    .argument('<file>', 'pool spec, YAML or JSON (name, cidr, gateway, segment, ranges, exclude, …)')
    .description('add a pool; refused if it overlaps another (unless allowOverlap, on another segment)')
    .action(
      withStore(async (store, _config, file: string) => {
        let spec: unknown;
        try {
          spec = parseYaml(await readFile(file, 'utf8'));
        } catch (err) {
          throw new NodewardError('USAGE', `cannot read pool spec ${file}: ${(err as Error).message}`);
        }
        const p = await addPool(store, spec);
        io.stdout(
          `pool ${p.name} added: ${p.spec.cidr}, ${p.size} usable addresses, blocks of /${p.blockPrefix}\n`,
        );
      }),
    );

  add(pool, 'list')
    .addOption(outputOption())
    .description('list pools with their usage')
    .action(
      withStore(async (store, _config, opts: { output: Output }) => {
        const report = await usageReport(store);
        if (opts.output === 'json') return io.stdout(json(report));
        io.stdout(
          table([
            ['POOL', 'CIDR', 'SEGMENT', 'USED', 'KEPT', 'TOTAL', 'NODES', 'STATE'],
            ...report.map((u) => [
              u.pool,
              u.cidr,
              u.segment,
              String(u.used),
              String(u.kept),
              u.total,
              String(Object.keys(u.nodes).length),
              u.draining ? 'draining' : 'active',
            ]),
          ]),
        );
      }),
    );

  add(pool, 'show')
    .argument('<name>')
    .addOption(outputOption())
    .description('a pool spec and its usage per node')
    .action(
      withStore(async (store, _config, name: string, opts: { output: Output }) => {
        const stored = (await readPools(store)).get(name);
        if (!stored)
          throw new NodewardError(
            'POOL_NOT_FOUND',
            `pool ${name} does not exist; see \`nodeward ipam pool list\``,
          );
        const [u] = await usageReport(store, { pool: name });
        if (opts.output === 'json')
          return io.stdout(json({ spec: stored.pool.spec, created: stored.created, usage: u }));
        io.stdout(stringify({ spec: stored.pool.spec, created: stored.created }));
        io.stdout(`\nused ${u?.used} (kept for sticky pods ${u?.kept}) of ${u?.total}\n`);
        io.stdout(
          table([
            ['NODE', 'BLOCKS', 'USED'],
            ...Object.entries(u?.nodes ?? {}).map(([n, v]) => [n, String(v.blocks), String(v.used)]),
          ]),
        );
      }),
    );

  add(pool, 'rm')
    .argument('<name>')
    .option('--force', 'release the addresses still allocated (each by compare) and remove the pool')
    .description('remove a pool; refused while it has addresses allocated unless --force')
    .action(
      withStore(async (store, _config, name: string, opts: { force?: boolean }) => {
        const r = await removePool(store, name, { force: opts.force === true });
        io.stdout(`pool ${name} removed${r.released > 0 ? ` (${r.released} address(es) released)` : ''}\n`);
      }),
    );

  add(ipam, 'show')
    .option('--pool <name>', 'only this pool')
    .option('--node <name>', 'only this node')
    .addOption(outputOption())
    .description('usage: per pool, per node (blocks and addresses)')
    .action(
      withStore(async (store, _config, opts: { pool?: string; node?: string; output: Output }) => {
        const report = await usageReport(store, {
          ...(opts.pool === undefined ? {} : { pool: opts.pool }),
          ...(opts.node === undefined ? {} : { node: opts.node }),
        });
        if (opts.output === 'json') return io.stdout(json(report));
        const rows = [['POOL', 'NODE', 'BLOCKS', 'USED', 'POOL USED/TOTAL']];
        for (const u of report) {
          const nodes = Object.entries(u.nodes);
          if (nodes.length === 0) rows.push([u.pool, '-', '0', '0', `${u.used + u.kept}/${u.total}`]);
          for (const [n, v] of nodes)
            rows.push([u.pool, n, String(v.blocks), String(v.used), `${u.used + u.kept}/${u.total}`]);
        }
        io.stdout(table(rows));
      }),
    );

  add(ipam, 'check')
    .addOption(outputOption())
    .description(
      'find inconsistent records (handle without address, address without handle, …); exit 1 if any',
    )
    .action(
      withStore(async (store, _config, opts: { output: Output }) => {
        const report = await audit(store);
        if (opts.output === 'json') io.stdout(json(report));
        else {
          io.stdout(
            `revision ${report.revision}: ${report.pools} pools, ${report.allocated} allocated, ${report.kept} kept for sticky pods, ${report.handles} handles, ${report.problems.length} problems\n`,
          );
          if (report.problems.length > 0)
            io.stdout(
              table([['PROBLEM', 'KEY', 'DETAIL'], ...report.problems.map((p) => [p.kind, p.key, p.detail])]),
            );
        }
        if (report.problems.length > 0) process.exitCode = EXIT.internal;
      }),
    );

  add(ipam, 'release')
    .option('--ip <address>', 'the address, whoever holds it (a sticky reservation included)')
    .option('--pool <name>', 'with --ip: the pool, when pools overlap')
    .option('--handle <containerID/ifName>', 'what a CNI DEL releases')
    .option('--sticky <namespace/pod[/ifName]>', "forget a StatefulSet pod's address")
    .option(
      '--from-report <file>',
      'the JSON of `ipam check -o json`: delete the leaked/orphaned records it lists, each only if unchanged since',
    )
    .addOption(outputOption())
    .description('release an address by hand (a leaked one, or a sticky pod that should get a new one)')
    .action(
      withStore(
        async (
          store,
          _config,
          opts: {
            ip?: string;
            pool?: string;
            handle?: string;
            sticky?: string;
            fromReport?: string;
            output: Output;
          },
        ) => {
          const chosen = [opts.ip, opts.handle, opts.sticky, opts.fromReport].filter((x) => x !== undefined);
          if (chosen.length !== 1)
            throw new NodewardError('USAGE', 'give exactly one of --ip, --handle, --sticky, --from-report');
          if (opts.fromReport !== undefined) {
            let report: unknown;
            try {
              report = JSON.parse(await readFile(opts.fromReport, 'utf8'));
            } catch (err) {
              throw new NodewardError(
                'USAGE',
                `cannot read report ${opts.fromReport}: ${(err as Error).message}`,
              );
            }
            const results = await releaseFromReport(store, report);
            if (opts.output === 'json') io.stdout(json(results));
            else
              io.stdout(
                table([['KEY', 'PROBLEM', 'OUTCOME'], ...results.map((r) => [r.key, r.kind, r.outcome])]),
              );
            // Something the report listed was not released: it changed since, or needs a person.
            if (results.some((r) => r.outcome === 'changed' || r.outcome === 'skipped'))
              process.exitCode = EXIT.internal;
            return;
          }
          let result: Released;
          if (opts.ip !== undefined) {
            result = await releaseIp(store, new Ipam({ store }), opts.ip, opts.pool);
          } else if (opts.handle !== undefined) {
            const [containerID = '', ifName = 'eth0'] = opts.handle.split('/');
            result = await new Ipam({ store }).release(containerID, ifName);
          } else {
            const [namespace = '', pod = '', ifName = 'eth0'] = (opts.sticky ?? '').split('/');
            if (!namespace || !pod)
              throw new NodewardError('USAGE', '--sticky takes namespace/pod or namespace/pod/ifName');
            result = await releaseSticky(store, namespace, pod, ifName);
          }
          io.stdout(
            result.released
              ? `released ${result.ip} (pool ${result.pool})${result.kept ? ', kept for its sticky pod' : ''}\n`
              : 'nothing to release\n',
          );
        },
      ),
    );

  add(ipam, 'sticky')
    .addOption(outputOption())
    .description('addresses kept for StatefulSet pods')
    .action(
      withStore(async (store, _config, opts: { output: Output }) => {
        const records = await stickyRecords(store);
        if (opts.output === 'json') return io.stdout(json(records));
        io.stdout(table([['POD', 'POOL', 'IP'], ...records.map((r) => [r.pod, r.pool, r.ip])]));
      }),
    );
  return ipam;
}
