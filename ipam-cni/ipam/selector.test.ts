import { describe, expect, it } from 'vitest';
import { labelSelectorSchema, selectorMismatch } from './selector.ts';

describe('label selectors', () => {
  const labels = { env: 'prod', zone: 'a' };
  it('admits when every requirement holds, saying which one fails otherwise', () => {
    expect(selectorMismatch(undefined, labels)).toBeUndefined();
    expect(selectorMismatch({}, labels)).toBeUndefined();
    expect(selectorMismatch({ matchLabels: { env: 'prod' } }, labels)).toBeUndefined();
    expect(selectorMismatch({ matchLabels: { env: 'dev' } }, labels)).toBe('needs env=dev, has env=prod');
    expect(selectorMismatch({ matchLabels: { team: 'x' } }, labels)).toBe('needs team=x, has no label team');
    const expr = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', values?: string[]) => ({
      matchExpressions: [{ key: 'zone', operator, ...(values ? { values } : {}) }],
    });
    expect(selectorMismatch(expr('In', ['a', 'b']), labels)).toBeUndefined();
    expect(selectorMismatch(expr('In', ['b']), labels)).toBe('needs zone in (b), has zone=a');
    expect(selectorMismatch(expr('NotIn', ['a']), labels)).toBe('needs zone not in (a), has zone=a');
    expect(selectorMismatch(expr('NotIn', ['b']), {})).toBeUndefined();
    expect(selectorMismatch(expr('Exists'), {})).toBe('needs label zone, has none');
    expect(selectorMismatch(expr('DoesNotExist'), labels)).toBe('needs no label zone, has zone=a');
  });

  it('does not treat inherited properties as labels', () => {
    expect(selectorMismatch({ matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, {})).toBe(
      'needs label constructor, has none',
    );
  });

  it('validates like Kubernetes', () => {
    expect(labelSelectorSchema.safeParse({ matchLabels: { 'example.com/zone': 'a-1' } }).success).toBe(true);
    expect(labelSelectorSchema.safeParse({ matchLabels: { 'bad key!': 'a' } }).success).toBe(false);
    expect(
      labelSelectorSchema.safeParse({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] })
        .success,
    ).toBe(false);
  });
});
