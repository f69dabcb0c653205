import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createNfsCollector, parseRpcStats, procedureCounts } from './nfs.ts';

describe('rpc stats parsing', () => {
  it('reads each line as name → values, and refuses what procfs refuses', () => {
    const stats = parseRpcStats('net 1 2 3 4\nth 8 0 0.000 0.000\n', 'f', ['net', 'th']);
    expect(stats.get('net')).toEqual([1, 2, 3, 4]);
    expect(stats.get('th')).toEqual([8, 0]);
    expect(() => parseRpcStats('xprt 1\n', 'f', ['net'])).toThrow(/unknown line "xprt"/);
    expect(() => parseRpcStats('net\n', 'f', ['net'])).toThrow(/invalid line/);
    expect(() => parseRpcStats('net 1 -2\n', 'f', ['net'])).toThrow(/unsigned integer/);
  });

  it('checks the count that leads a procN line', () => {
    expect(procedureCounts([2, 5, 6], 2, 'p')).toEqual([5, 6]);
    expect(procedureCounts(undefined, 18, 'p')).toEqual([]);
    expect(() => procedureCounts([3, 5, 6], 2, 'p')).toThrow(/says 3 values, has 2/);
    expect(() => procedureCounts([2, 5, 6], 18, 'p')).toThrow(/at least 18/);
  });
});

describe('nfs collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('reports the client RPC counts', async () => {
    const samples = await collectSamples(createNfsCollector(settings));
    expect(sampleValue(samples, 'node_nfs_packets_total', { protocol: 'udp' })).toBe(0);
    expect(sampleValue(samples, 'node_nfs_packets_total', { protocol: 'tcp' })).toBe(18);
    expect(sampleValue(samples, 'node_nfs_connections_total')).toBe(6);
    expect(sampleValue(samples, 'node_nfs_rpcs_total')).toBe(18233104);
    expect(sampleValue(samples, 'node_nfs_rpc_retransmissions_total')).toBe(1203);
    expect(sampleValue(samples, 'node_nfs_rpc_authentication_refreshes_total')).toBe(18233221);
  });

  it('reports every procedure of versions 2, 3 and 4 by the names procfs gives them', async () => {
    const samples = await collectSamples(createNfsCollector(settings));
    const requests = samples.filter((s) => s.name === 'node_nfs_requests_total');
    const per = (proto: string) => requests.filter((s) => s.labels.proto === proto).length;
    expect([per('2'), per('3'), per('4')]).toEqual([18, 22, 59]);
    const req = (proto: string, method: string) =>
      sampleValue(samples, 'node_nfs_requests_total', { proto, method });
    expect(req('2', 'Null')).toBe(2);
    expect(req('3', 'GetAttr')).toBe(1204331);
    expect(req('3', 'ReadDirPlus')).toBe(80211);
    expect(req('3', 'Commit')).toBe(12033);
    expect(req('4', 'Read')).toBe(9022113);
    expect(req('4', 'Sequence')).toBe(120331);
    // Columns 45 and 46 as procfs maps them.
    expect(req('4', 'GetDeviceInfo')).toBe(7);
    expect(req('4', 'LayoutGet')).toBe(5);
    expect(req('4', 'Clone')).toBe(9);
  });

  it('counts 0 for the procedures an older kernel does not write', async () => {
    const proc = mkdtempSync(join(tmpdir(), 'nfs-'));
    try {
      mkdirSync(join(proc, 'net/rpc'), { recursive: true });
      writeFileSync(join(proc, 'net/rpc/nfs'), 'net 0 0 0 0\nrpc 3 0 3\nproc4 3 1 2 3\n');
      const samples = await collectSamples(createNfsCollector(settingsFor(proc)));
      expect(sampleValue(samples, 'node_nfs_requests_total', { proto: '4', method: 'Write' })).toBe(3);
      expect(sampleValue(samples, 'node_nfs_requests_total', { proto: '4', method: 'Clone' })).toBe(0);
      expect(sampleValue(samples, 'node_nfs_requests_total', { proto: '3', method: 'Read' })).toBe(0);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it('reports no data without the nfs client', async () => {
    await expect(collectSamples(createNfsCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
