import { describe, expect, it } from 'vitest';
import { NodewardError } from '../../shared/errors.ts';
import { compilePool } from './pool.ts';
import { type PoolChoice, type PoolSelection, type Subject, selectPool } from './select.ts';

const pools = new Map<string, PoolChoice>(
  [
    { name: 'default', cidr: '10.0.0.0/24' },
    { name: 'team', cidr: '10.1.0.0/24', namespaceSelector: { matchLabels: { team: 'a' } } },
    { name: 'edge', cidr: '10.2.0.0/24', nodeSelector: { matchLabels: { zone: 'edge' } } },
    {
      name: 'privileged',
      cidr: '10.3.0.0/24',
      segment: { mode: 'vlan', id: 3 },
      namespaceSelector: { matchLabels: { 'nodeward.io/vlan-3': 'allowed' } },
    },
    { name: 'overlay', cidr: '10.3.0.0/24', segment: { mode: 'vlan', id: 4 }, allowOverlap: true },
    { name: 'going', cidr: '10.9.0.0/24' },
  ].map((spec) => [spec.name, { pool: compilePool(spec), draining: spec.name === 'going' }]),
);

const subject: Subject = {
  namespace: 'shop',
  node: 'n1',
  namespaceLabels: { team: 'a' },
  nodeLabels: { zone: 'core' },
};

function fails(selection: PoolSelection & { explicitPool?: string }, s: Subject = subject): NodewardError {
  try {
    selectPool(pools, selection, s);
  } catch (err) {
    if (err instanceof NodewardError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('pool selection order', () => {
  it('annotation, then requested IP, then namespace default, then network pool', () => {
    const all = { annotationPool: 'team', namespacePool: 'default', networkPool: 'default' };
    expect(selectPool(pools, all, subject)).toMatchObject({ pool: { name: 'team' }, source: 'annotation' });
    expect(
      selectPool(pools, { ...all, annotationPool: undefined, requestedIP: '10.1.0.7' }, subject),
    ).toMatchObject({
      pool: { name: 'team' },
      source: 'requested-ip',
      ip: 0x0a010007n,
    });
    expect(selectPool(pools, { namespacePool: 'team', networkPool: 'default' }, subject)).toMatchObject({
      pool: { name: 'team' },
      source: 'namespace',
    });
    expect(selectPool(pools, { networkPool: 'default' }, subject)).toMatchObject({
      pool: { name: 'default' },
      source: 'network',
    });
    expect(selectPool(pools, { networkPool: 'default', explicitPool: 'team' }, subject)).toMatchObject({
      source: 'explicit',
    });
  });

  it('a requested IP in two pools prefers the namespace default, and is ambiguous otherwise', () => {
    const s = { ...subject, namespaceLabels: { 'nodeward.io/vlan-3': 'allowed' } };
    expect(selectPool(pools, { requestedIP: '10.3.0.5', namespacePool: 'overlay' }, s)).toMatchObject({
      pool: { name: 'overlay' },
    });
    const err = fails({ requestedIP: '10.3.0.5' }, s);
    expect(err.code).toBe('IPAM_REQUEST_INVALID');
    expect(err.message).toContain('is in several pools (privileged 10.3.0.0/24, overlay 10.3.0.0/24)');
    // Not admitted to the privileged one: only overlay remains.
    expect(selectPool(pools, { requestedIP: '10.3.0.5' }, subject)).toMatchObject({
      pool: { name: 'overlay' },
    });
  });
});

describe('a pool that does not admit the pod is an error that says why', () => {
  it('an annotation cannot reach a privileged VLAN pool', () => {
    const err = fails({ annotationPool: 'privileged', networkPool: 'default' });
    expect(err.code).toBe('POOL_NOT_ALLOWED');
    expect(err.message).toBe(
      'pool privileged (pod annotation nodeward.io/ipam-pool) may not be used: its namespaceSelector does not admit namespace shop: needs nodeward.io/vlan-3=allowed, has no label nodeward.io/vlan-3',
    );
  });

  it('node selector, with no fall-through to the next pool', () => {
    const err = fails({ namespacePool: 'edge', networkPool: 'default' });
    expect(err.code).toBe('POOL_NOT_ALLOWED');
    expect(err.message).toContain('its nodeSelector does not admit node n1: needs zone=edge, has zone=core');
  });

  it('a requested IP only in a pool that does not admit the pod', () => {
    const err = fails({ requestedIP: '10.2.0.9' });
    expect(err.code).toBe('POOL_NOT_ALLOWED');
    expect(err.message).toContain('pool edge (the pool of the requested IP) may not be used');
  });
});

describe('errors', () => {
  it.each([
    [
      { annotationPool: 'nope' },
      'POOL_NOT_FOUND',
      'pool nope (pod annotation nodeward.io/ipam-pool) does not exist',
    ],
    [{ networkPool: 'going' }, 'POOL_NOT_FOUND', "pool going (the network config's pool) is being removed"],
    [{}, 'POOL_NOT_FOUND', 'no pool for pod in namespace shop: set the pod annotation'],
    [
      { requestedIP: '10.0.0' },
      'IPAM_REQUEST_INVALID',
      'requested IP "10.0.0" is not an IPv4 or IPv6 address',
    ],
    [{ requestedIP: '172.16.0.1' }, 'IP_UNUSABLE', 'requested IP 172.16.0.1 is in no pool'],
    [
      { requestedIP: '10.0.0.0', networkPool: 'default' },
      'IP_UNUSABLE',
      'requested IP 10.0.0.0 is the network address of pool default',
    ],
    [
      { requestedIP: '10.1.0.5', annotationPool: 'default' },
      'IP_UNUSABLE',
      'requested IP 10.1.0.5 is outside pool default (10.0.0.0/24)',
    ],
    [
      { requestedIP: 'fd00::1', annotationPool: 'default' },
      'IP_UNUSABLE',
      'requested IP fd00::1 is IPv6, pool default is IPv4',
    ],
  ])('%j → %s', (selection, code, message) => {
    const err = fails(selection);
    expect(err.code).toBe(code);
    expect(err.message).toContain(message);
  });
});
