/**
 * `npm run bench -- <name> [--quick]`: runs bench/<name>/index.ts, prints a table and writes
 * bench/results/<name>.json. Benches compare ours with an anchor in the same run: absolute times
 * drift on a shared machine, ratios hold.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Bench, BenchMetric } from './types.ts';

const here = import.meta.dirname;

function available(): string[] {
  return readdirSync(here, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== 'results' && d.name !== 'lib')
    .map((d) => d.name);
}

const fmt = (n: number | null, digits = 3) => (n === null ? '-' : Number(n.toPrecision(digits)).toString());

function table(metrics: BenchMetric[]): string {
  const rows = [
    ['metric', 'unit', 'ours', 'anchor', 'anchor is', 'ratio', 'goal', 'met'],
    ...metrics.map((m) => [
      m.name,
      m.unit,
      fmt(m.ours),
      fmt(m.anchor),
      m.anchorName,
      fmt(m.ratio),
      m.goal === null
        ? '-'
        : `${m.better === 'lower' ? '≤' : '≥'} ${fmt(m.goal)}${m.goalOf === 'ratio' ? '×' : ''}`,
      m.met === null ? '-' : m.met ? 'yes' : 'NO',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const name = argv.find((a) => !a.startsWith('-'));
  if (!name || !available().includes(name)) {
    process.stderr.write(`usage: npm run bench -- <name> [--quick]\nbenches: ${available().join(', ')}\n`);
    return 2;
  }
  const bench = (await import(join(here, name, 'index.ts'))).default as Bench;
  process.stderr.write(`bench ${name}: ${bench.description}${quick ? ' (quick)' : ''}\n`);
  const metrics = await bench.run({ quick, log: (line) => process.stderr.write(`  ${line}\n`) });
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
  };
  mkdirSync(join(here, 'results'), { recursive: true });
  const file = join(here, 'results', `${name}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ bench: name, quick, date: new Date().toISOString(), machine, metrics }, null, 2)}\n`,
  );
  process.stdout.write(`${table(metrics)}\n\nwritten to ${file}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
