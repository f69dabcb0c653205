import { describe, expect, it } from 'vitest';
import { logsSchema } from '../shared/config/index.ts';

describe('logs config', () => {
  it('has embedded defaults for everything', () => {
    expect(logsSchema.parse({})).toEqual({
      enabled: true,
      root: '.nodeward/containers',
      sink: 'file',
      readFrom: 'beginning',
      maxLineBytes: 64 * 1024,
      maxInflightBytes: 2 * 1024 * 1024,
      pollInterval: 1000,
      rescanInterval: 10_000,
      rotateWait: 5000,
      unknownPodWait: 10000,
      checkpointInterval: 1000,
      flushTimeout: 5000,
      batch: { maxLines: 2000, maxBytes: 512 * 1024, wait: 100 },
      retry: { initialBackoff: 100, maxBackoff: 10_000, giveUpAfter: 120_000 },
      file: { path: '.nodeward/logs.jsonl' },
      kafka: {
        brokers: [],
        topic: 'logs.{namespace}',
        client: 'kafkajs',
        clientId: 'nodeward',
        deadLetterTopic: '',
        acks: -1,
        compression: 'gzip',
        timeout: 30_000,
        inFlight: 1,
        tls: {
          enabled: false,
          caFile: '',
          certFile: '',
          keyFile: '',
          serverName: '',
          insecureSkipVerify: false,
        },
        sasl: { mechanism: 'none', username: '', passwordFile: '' },
      },
      podLabels: [],
      exclude: { namespaces: [], annotation: 'nodeward.io/logs' },
      rateLimit: { linesPerSecond: 0, burst: 0 },
      multiline: { annotation: 'nodeward.io/multiline-start', timeout: 1000 },
    });
  });

  it('rejects what it cannot do yet, saying why', () => {
    const message = (input: unknown) =>
      logsSchema.safeParse(input).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(message({ kafka: { compression: 'brotli' } })?.[0]).toMatch(/^kafka\.compression: .*"zstd"/);
    expect(message({ kafka: { acks: 0 } })?.[0]).toContain('0 gives no acknowledgement');
    expect(message({ sink: 'kafka' })).toEqual([
      'kafka.brokers: logs.sink is kafka: list at least one broker host:port',
    ]);
    expect(message({ kafka: { topic: 'logs.{labels}' } })?.[0]).toContain(
      '{namespace}, {pod}, {container}, {node}',
    );
    expect(message({ kafka: { brokers: ['nohost'] } })?.[0]).toContain('expected host:port');
    expect(message({ maxLineBytes: 10 })?.[0]).toContain('at least 1KiB');
    expect(message({ batch: { maxBytes: '8MiB' } })?.[0]).toContain('must not exceed logs.maxInflightBytes');
    expect(message({ bogus: 1 })?.[0]).toContain('bogus');
    expect(message({ rateLimit: { linesPerSecond: -1 } })?.[0]).toMatch(/^rateLimit\.linesPerSecond: /);
  });
});
