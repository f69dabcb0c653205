import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { MultipleErrors, murmur2, NetworkError, ResponseError, TimeoutError } from '@platformatic/kafka';
import { Partitioners } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { logsSchema } from '../../shared/config/index.ts';
import { NodewardError } from '../../shared/errors.ts';
import { Lab, tempDir } from '../../test/lab/index.ts';
import { createFileSink } from './file.ts';
import { kafkaSecurity } from './kafka.ts';
import { cachedKeyPartitioner, platformaticReason, platformaticSecurity } from './kafka-platformatic.ts';
import { isTlsFailure } from './sink.ts';
import { createStdoutSink } from './stdout.ts';

const lab = new Lab();
afterEach(() => lab.cleanup());
const records = [
  { topic: 't', key: 'k', value: Buffer.from('{"message":"one"}') },
  { topic: 't', key: 'k', value: Buffer.from('{"message":"two"}') },
];

describe('sinks', () => {
  it('file: appends JSON lines, creating the directory, across reopenings', async () => {
    const path = join(await tempDir('sink', lab), 'deep', 'out.jsonl');
    for (let i = 0; i < 2; i++) {
      const sink = createFileSink(path);
      await sink.open();
      await sink.send(records);
      await sink.send([]);
      await sink.close();
    }
    expect(readFileSync(path, 'utf8')).toBe('{"message":"one"}\n{"message":"two"}\n'.repeat(2));
  });

  it('file: a sink that cannot open fails with a retriable registry code and the errno', async () => {
    const dir = await tempDir('sink', lab);
    const sink = createFileSink(dir); // a directory cannot be opened for appending
    const err = await sink.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NodewardError);
    expect(err).toMatchObject({
      code: 'SINK_UNAVAILABLE',
      retriable: true,
      details: { sink: 'file', reason: 'EISDIR' },
    });
  });

  it('stdout: writes JSON lines and resolves once the stream took them', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const sink = createStdoutSink(out);
    await sink.open();
    await sink.send(records);
    expect(text).toBe('{"message":"one"}\n{"message":"two"}\n');
  });
});

describe('kafka sink: TLS and SASL options', () => {
  it('reads the CA, client pair and password files into the kafkajs config', async () => {
    const dir = await tempDir('sink-sec', lab);
    const file = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const tls = {
      enabled: true,
      caFile: file('ca.pem', 'CA'),
      certFile: file('c.pem', 'CERT'),
      keyFile: file('k.pem', 'KEY'),
      serverName: 'kafka.internal',
      insecureSkipVerify: false,
    };
    const sasl = {
      mechanism: 'scram-sha-512' as const,
      username: 'shipper',
      passwordFile: file('pw', 's3cret\n'),
    };
    expect(await kafkaSecurity({ tls, sasl })).toEqual({
      ssl: { rejectUnauthorized: true, ca: ['CA'], cert: 'CERT', key: 'KEY', servername: 'kafka.internal' },
      sasl: { mechanism: 'scram-sha-512', username: 'shipper', password: 's3cret' },
    });
    expect(
      await kafkaSecurity({
        tls: { ...tls, enabled: false },
        sasl: { mechanism: 'none', username: '', passwordFile: '' },
      }),
    ).toEqual({});
    const missing = await kafkaSecurity({ tls, sasl: { ...sasl, passwordFile: join(dir, 'nope') } }).catch(
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(NodewardError);
    expect((missing as NodewardError).message).toContain('logs.kafka.sasl.passwordFile');
  });

  it('rejects SASL without credentials and half a client pair, naming the key', () => {
    const issues = (kafka: unknown) =>
      logsSchema.safeParse({ kafka }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ sasl: { mechanism: 'plain' } })).toEqual([
      'kafka.sasl: mechanism plain needs username and passwordFile',
    ]);
    expect(issues({ tls: { enabled: true, certFile: '/c.pem' } })).toEqual([
      'kafka.tls: certFile and keyFile go together (mutual TLS)',
    ]);
  });

  it('platformatic: puts a key on the partition kafkajs (and the Java client) would', () => {
    const ours = cachedKeyPartitioner<string, string, string, string>((data) => murmur2(data));
    const kafkajs = Partitioners.DefaultPartitioner();
    for (const partitions of [1, 3, 4, 40]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({
        partitionId: i,
        leader: 0,
        partitionErrorCode: 0,
        replicas: [0],
        isr: [0],
        offlineReplicas: [],
      }));
      for (let i = 0; i < 200; i++) {
        const key = `${i.toString(16)}-0b7c-4e1a-9d2f-${(i * 7919).toString(36)}`;
        const message = { topic: 't', key, value: 'v' };
        const want = kafkajs({ topic: 't', partitionMetadata, message });
        // Twice: the second answer comes from the cache. The library takes it modulo the partition count.
        for (let n = 0; n < 2; n++)
          expect(ours(message, Buffer.from(key), { metadata: undefined }) % partitions).toBe(want);
      }
    }
  });

  it('platformatic: the same TLS and SASL options, in its shape', () => {
    expect(
      platformaticSecurity({
        ssl: { rejectUnauthorized: false, ca: ['CA'], cert: 'C', key: 'K', servername: 'kafka.example' },
        sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
      }),
    ).toEqual({
      tls: { rejectUnauthorized: false, ca: ['CA'], cert: 'C', key: 'K', servername: 'kafka.example' },
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'u', password: 'p' },
    });
    expect(platformaticSecurity({})).toEqual({});
  });

  it('platformatic: a failed send counts by the Kafka error type, else by the client error', () => {
    const response = new ResponseError(0, 7, { '/responses/0/partition_responses/0': [6, null] }, {});
    expect(platformaticReason(new MultipleErrors('Producing messages failed.', [response]))).toBe(
      'NOT_LEADER_OR_FOLLOWER',
    );
    expect(platformaticReason(new MultipleErrors('x', [new NetworkError('Connection closed')]))).toBe(
      'NETWORK',
    );
    expect(platformaticReason(new TimeoutError('Request timed out'))).toBe('TIMEOUT');
    expect(platformaticReason(new Error('plain'))).toBe('Error');
  });
});

describe('isTlsFailure: certificate problems get the reason tls, resets during a handshake do not', () => {
  const reset = Object.assign(
    new Error('Client network socket disconnected before secure TLS connection was established'),
    { code: 'ECONNRESET' },
  );
  const untrusted = Object.assign(new Error('self-signed certificate'), {
    code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
  });
  it.each([
    ['an untrusted certificate', untrusted, true],
    [
      'a name mismatch',
      Object.assign(new Error("Hostname/IP does not match certificate's altnames"), {
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      }),
      true,
    ],
    [
      'wrapped by kafkajs (originalError), message only',
      Object.assign(new Error('retries exceeded'), {
        originalError: new Error('Connection error: self-signed certificate'),
      }),
      true,
    ],
    [
      'wrapped by platformatic (errors list)',
      Object.assign(new Error('metadata failed'), { errors: [untrusted] }),
      true,
    ],
    ['a reset during the handshake', reset, false],
    ['a topic named logs.tls', new Error('topic logs.tls: NOT_LEADER_OR_FOLLOWER'), false],
  ])('%s', (_what, err, tls) => {
    expect(isTlsFailure(err)).toBe(tls);
  });
});
