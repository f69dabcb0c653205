import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startAgentProcess, tempDir } from './cli.ts';
import { Lab, startKafka } from './lab/index.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const BUNDLE = resolve(ROOT, 'build/nodeward.mjs');
const lab = new Lab();
afterAll(() => lab.cleanup());

describe('npm run build (the bundle the image runs)', () => {
  it('bundles the CLI into build/nodeward.mjs, which runs without the sources', async () => {
    const built = await run(process.execPath, [resolve(ROOT, 'deploy/build.ts')], { cwd: ROOT });
    expect(built.stdout).toMatch(/^build\/nodeward\.mjs: \d+ KiB, with build\/chunks\/ [\d.]+ MiB\n$/);
    const check = await run(process.execPath, [BUNDLE, 'config', 'check', 'deploy/config.production.yaml'], {
      cwd: ROOT,
    });
    expect(check.stdout).toBe('deploy/config.production.yaml: ok\n');
  });

  it('ships a log line to Kafka from the bundle, lz4-compressed (the dependencies left external load from node_modules)', async () => {
    const kafka = await startKafka({ lab });
    const dir = tempDir();
    lab.defer('bundle agent dir', () => dir.remove());
    const agent = await startAgentProcess(
      [
        '--set',
        'logs.sink=kafka',
        '--set',
        `logs.kafka.brokers=${kafka.brokers.join(',')}`,
        '--set',
        'metrics.enabled=false',
        // lz4 is a kafkajs codec from @platformatic/wasm-utils, left in node_modules like the client.
        '--set',
        'logs.kafka.compression=lz4',
      ],
      { cwd: dir.path, entry: BUNDLE },
    );
    lab.defer('bundle agent', () => agent.kill());
    const logs = join(dir.path, '.nodeward/containers');
    mkdirSync(logs, { recursive: true });
    const file = join(logs, `web-7d4b9c8f6-x2x4z_bundle_nginx-${'ab'.repeat(32)}.log`);
    writeFileSync(file, `${new Date().toISOString()} stdout F hello from the bundle\n`);
    let records: { value: string | null }[] = [];
    for (let i = 0; i < 40 && records.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      records = await kafka.readTopic('logs.bundle', { timeoutMs: 2000 }).catch(() => []);
    }
    expect(records).toHaveLength(1);
    expect(JSON.parse(records[0]!.value!)).toMatchObject({
      message: 'hello from the bundle',
      labels: { namespace: 'bundle' },
    });
    expect((await agent.signal('SIGTERM')).code).toBe(0);
  });
});
