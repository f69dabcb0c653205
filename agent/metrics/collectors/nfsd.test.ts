import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createNfsdCollector } from './nfsd.ts';

describe('nfsd collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('reports the reply cache, file handles, I/O, threads and RPC counts', async () => {
    const samples = await collectSamples(createNfsdCollector(settings));
    const one = (name: string, labels = {}) => sampleValue(samples, `node_nfsd_${name}`, labels);
    expect(one('reply_cache_hits_total')).toBe(0);
    expect(one('reply_cache_misses_total')).toBe(4301221);
    expect(one('reply_cache_nocache_total')).toBe(88012);
    expect(one('file_handles_stale_total')).toBe(3);
    expect(one('disk_bytes_read_total')).toBe(3285020672000);
    expect(one('disk_bytes_written_total')).toBe(1206031360000);
    expect(one('server_threads')).toBe(16);
    expect(one('read_ahead_cache_size_blocks')).toBe(0);
    expect(one('read_ahead_cache_not_found_total')).toBe(0);
    expect(one('packets_total', { proto: 'udp' })).toBe(0);
    expect(one('packets_total', { proto: 'tcp' })).toBe(27902215);
    expect(one('connections_total')).toBe(2411);
    expect(one('server_rpcs_total')).toBe(27902215);
    expect(one('rpc_errors_total', { error: 'fmt' })).toBe(0);
    expect(one('rpc_errors_total', { error: 'auth' })).toBe(5);
    expect(one('rpc_errors_total', { error: 'cInt' })).toBe(0);
  });

  it('reports procedures and NFSv4 operations as node_exporter picks them', async () => {
    const samples = await collectSamples(createNfsdCollector(settings));
    const requests = samples.filter((s) => s.name === 'node_nfsd_requests_total');
    const per = (proto: string) =>
      requests.filter((s) => s.labels.proto === proto).map((s) => s.labels.method);
    // No Null; version 2 (not in this kernel's file) at 0.
    expect(per('2')).toHaveLength(17);
    expect(per('3')).toHaveLength(21);
    expect(per('3')).not.toContain('Null');
    // Operations 3–39 less PutPubFH and PutRootFH, and WdelegGetattr.
    expect(per('4')).toHaveLength(36);
    expect(per('4')).not.toContain('PutRootFH');
    const req = (proto: string, method: string) =>
      sampleValue(samples, 'node_nfsd_requests_total', { proto, method });
    expect(req('2', 'Read')).toBe(0);
    expect(req('3', 'GetAttr')).toBe(9022133);
    expect(req('3', 'Commit')).toBe(120331);
    expect(req('4', 'Access')).toBe(1402211);
    expect(req('4', 'PutFH')).toBe(9022133);
    expect(req('4', 'Write')).toBe(2201133);
    expect(req('4', 'RelLockOwner')).toBe(0);
    expect(req('4', 'WdelegGetattr')).toBe(41);
  });

  it('reports no data without nfsd', async () => {
    await expect(collectSamples(createNfsdCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
