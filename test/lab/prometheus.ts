import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { type Service, startService } from './proc.ts';
import type { Lab } from './scope.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

export interface PrometheusOptions {
  lab: Lab;
  /** `scrape_configs` entries, or a whole prometheus.yml as a string. */
  scrapeConfigs?: readonly object[] | string;
  /** Global scrape and evaluation interval, e.g. '1s'. */
  scrapeInterval?: string;
}

export interface PromSample {
  metric: Record<string, string>;
  value: number;
  timestamp: number;
}

export interface Prometheus {
  readonly url: string;
  readonly port: number;
  readonly service: Service;
  /** An instant query; a scalar result comes back as one sample without labels. */
  query(promql: string): Promise<PromSample[]>;
  /**
   * Waits until `up{job=…}` is 1. Prometheus 2.42 applies new targets on a fixed 5 s tick, so the
   * first successful scrape comes ≈ 5 s after start whatever the scrape interval.
   */
  waitForUp(job: string, opts?: { timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrometheus(opts: PrometheusOptions): Promise<Prometheus> {
  const dir = await tempDir('prometheus', opts.lab);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configPath = join(dir, 'prometheus.yml');
  const interval = opts.scrapeInterval ?? '1s';
  // JSON is YAML, so an object config needs no YAML writer.
  const config =
    typeof opts.scrapeConfigs === 'string'
      ? opts.scrapeConfigs
      : JSON.stringify(
          {
            global: { scrape_interval: interval, evaluation_interval: interval },
            scrape_configs: opts.scrapeConfigs ?? [],
          },
          null,
          2,
        );
  await writeFile(configPath, config);
  const service = startService({
    lab: opts.lab,
    name: 'prometheus',
    dir,
    command: 'prometheus',
    args: [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
  });
  await waitFor(
    async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) })).status === 200,
    { what: `prometheus ready at ${url}`, timeoutMs: 20_000, services: [service] },
  );

  const query = (promql: string) => instantQuery(url, promql);
  return {
    url,
    port,
    service,
    query,
    waitForUp: async (job, waitOpts) => {
      await waitFor(async () => (await query(`up{job=${JSON.stringify(job)}}`)).some((s) => s.value === 1), {
        what: `up{job="${job}"} == 1`,
        timeoutMs: waitOpts?.timeoutMs ?? 30_000,
        intervalMs: 250,
        services: [service],
      });
    },
    stop: async () => {
      await service.stop();
    },
  };
}

interface QueryResponse {
  status: 'success' | 'error';
  error?: string;
  data?: {
    resultType: 'vector' | 'scalar' | 'matrix' | 'string';
    result: unknown;
  };
}

type PromValue = [number, string];

async function instantQuery(url: string, promql: string): Promise<PromSample[]> {
  const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`, {
    signal: AbortSignal.timeout(5000),
  });
  const body = (await res.json()) as QueryResponse;
  if (body.status !== 'success' || !body.data) throw new Error(`query ${promql} failed: ${body.error}`);
  const { resultType, result } = body.data;
  const sample = (metric: Record<string, string>, [ts, v]: PromValue): PromSample => ({
    metric,
    value: Number(v),
    timestamp: ts,
  });
  if (resultType === 'scalar') return [sample({}, result as PromValue)];
  if (resultType === 'vector') {
    return (result as { metric: Record<string, string>; value: PromValue }[]).map((r) =>
      sample(r.metric, r.value),
    );
  }
  throw new Error(`query ${promql}: unsupported result type ${resultType}`);
}
