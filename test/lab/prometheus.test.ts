import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { skipReason } from './bin.ts';
import { startPrometheus } from './prometheus.ts';
import { Lab } from './scope.ts';

const reason = skipReason({ binaries: ['prometheus'] });
if (reason) console.warn(`[lab] prometheus tests skipped: ${reason} (install prometheus)`);

describe('prometheus lab', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  it.skipIf(reason)('scrapes a test server and answers a query about its metric', async () => {
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(
        '# HELP lab_smoke_value A constant.\n# TYPE lab_smoke_value gauge\nlab_smoke_value{color="blue"} 42\n',
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    lab.defer('metrics server', () => new Promise((resolve) => server.close(resolve)));
    const { port } = server.address() as AddressInfo;

    const prom = await startPrometheus({
      lab,
      scrapeInterval: '1s',
      scrapeConfigs: [{ job_name: 'smoke', static_configs: [{ targets: [`127.0.0.1:${port}`] }] }],
    });
    await prom.waitForUp('smoke');
    const samples = await prom.query('lab_smoke_value{job="smoke"}');
    expect(samples).toHaveLength(1);
    expect(samples[0]?.value).toBe(42);
    expect(samples[0]?.metric).toMatchObject({ color: 'blue', instance: `127.0.0.1:${port}` });
    expect(await prom.query('scalar(lab_smoke_value) * 2')).toMatchObject([{ value: 84 }]);
  });
});
