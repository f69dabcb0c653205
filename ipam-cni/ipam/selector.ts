import { z } from 'zod';

/**
 * Kubernetes label selectors (matchLabels + matchExpressions, as in metav1.LabelSelector), so a
 * pool's nodeSelector and namespaceSelector read like every other selector an operator writes.
 */

export type Labels = Readonly<Record<string, string>>;

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

const labelKey = z
  .string()
  .regex(LABEL_KEY, { error: 'expected a label key like "zone" or "example.com/zone"' });
const labelValue = z
  .string()
  .regex(LABEL_VALUE, { error: 'expected a label value (up to 63 letters, digits, "-", "_", ".")' });

const expression = z
  .strictObject({
    key: labelKey,
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: z.array(labelValue).optional(),
  })
  .superRefine((e, ctx) => {
    const listed = e.values?.length ?? 0;
    if ((e.operator === 'In' || e.operator === 'NotIn') && listed === 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${e.operator} needs values` });
    }
    if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && e.values !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${e.operator} takes no values` });
    }
  });

export const labelSelectorSchema = z.strictObject({
  matchLabels: z.record(labelKey, labelValue).optional(),
  matchExpressions: z.array(expression).optional(),
});

export type LabelSelector = z.output<typeof labelSelectorSchema>;

/**
 * Why `labels` do not satisfy `selector` (the first requirement that fails), or undefined when
 * they do. No selector admits everything; an empty selector too, as in Kubernetes.
 */
export function selectorMismatch(selector: LabelSelector | undefined, labels: Labels): string | undefined {
  if (!selector) return undefined;
  const has = (key: string) => Object.hasOwn(labels, key);
  const shown = (key: string) => (has(key) ? `${key}=${labels[key]}` : `no label ${key}`);
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value || !has(key)) return `needs ${key}=${value}, has ${shown(key)}`;
  }
  for (const e of selector.matchExpressions ?? []) {
    const values = e.values ?? [];
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (value === undefined || !values.includes(value))
          return `needs ${e.key} in (${values.join(', ')}), has ${shown(e.key)}`;
        break;
      case 'NotIn':
        if (value !== undefined && values.includes(value))
          return `needs ${e.key} not in (${values.join(', ')}), has ${shown(e.key)}`;
        break;
      case 'Exists':
        if (!has(e.key)) return `needs label ${e.key}, has none`;
        break;
      case 'DoesNotExist':
        if (has(e.key)) return `needs no label ${e.key}, has ${shown(e.key)}`;
        break;
    }
  }
  return undefined;
}
