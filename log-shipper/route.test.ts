import { describe, expect, it } from 'vitest';
import { createRouter } from './route.ts';

describe('route', () => {
  it('fills the topic template and keys by pod uid, then pod name, then file', () => {
    const route = createRouter('logs.{namespace}.{container}');
    expect(
      route({ node: 'n', namespace: 'shop', pod: 'web-1', pod_uid: 'u1', container: 'nginx' }, '/f'),
    ).toEqual({
      topic: 'logs.shop.nginx',
      key: 'u1',
    });
    expect(route({ node: 'n', namespace: 'shop', pod: 'web-1' }, '/f')).toEqual({
      topic: 'logs.shop.unknown',
      key: 'web-1',
    });
    expect(route({ node: 'n' }, '/var/log/x.log')).toEqual({
      topic: 'logs.unknown.unknown',
      key: '/var/log/x.log',
    });
  });

  it('replaces characters Kafka rejects in label values', () => {
    expect(createRouter('{node}-logs')({ node: 'host:a/b c' }, '/f').topic).toBe('host_a_b_c-logs');
  });
});
