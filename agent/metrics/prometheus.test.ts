import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { HOST_COLLECTORS } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logger.ts';
import { Lab, skipReason, startPrometheus } from '../../test/lab/index.ts';
import { compileTimexHelper, settingsFor } from '../../test/support/metrics/testing.ts';
import { createHostRegistry } from './index.ts';

const reason = skipReason({ binaries: ['prometheus'] });
if (reason) console.warn(`[lab] metrics/prometheus test skipped: ${reason} (install prometheus)`);

describe('a real Prometheus scraping the host registry', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  it.skipIf(reason)('ingests every sample and answers node_load1', async () => {
    const timex = compileTimexHelper();
    lab.defer('timex helper', timex.remove);
    const registry = createHostRegistry(
      settingsFor('/proc', { timex: { helper: timex.helper } }),
      createLogger('silent'),
    );
    const server = createServer((_req, res) => {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    lab.defer('metrics http server', () => new Promise((resolve) => server.close(resolve)));
    const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;

    const prom = await startPrometheus({
      lab,
      scrapeConfigs: [{ job_name: 'nodeward', static_configs: [{ targets: [target] }] }],
    });
    await prom.waitForUp('nodeward');

    const [load1] = await prom.query('node_load1{job="nodeward"}');
    expect(load1!.metric).toMatchObject({ __name__: 'node_load1', instance: target, job: 'nodeward' });
    expect(load1!.value).toBeGreaterThanOrEqual(0);

    const success = await prom.query('sum(nodeward_scrape_collector_success{job="nodeward"})');
    expect(success[0]!.value).toBe(Object.keys(HOST_COLLECTORS).length);
    const cpus = await prom.query('count(node_cpu_seconds_total{job="nodeward",mode="idle"})');
    expect(cpus[0]!.value).toBeGreaterThan(0);
    // Prometheus drops nothing: what it stored is what we served.
    // One query for both: network devices of parallel tests come and go between two scrapes.
    const [both] = await prom.query(
      'scrape_samples_scraped{job="nodeward"} - scrape_samples_post_metric_relabeling{job="nodeward"}',
    );
    const [scraped] = await prom.query('scrape_samples_scraped{job="nodeward"}');
    expect(scraped!.value).toBeGreaterThan(100);
    expect(both!.value).toBe(0);
  });
});
