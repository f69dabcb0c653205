import type { Labels } from '../collector.ts';

const FIELD = /\{\{\s*\$(labels\.([a-zA-Z_][a-zA-Z0-9_]*)|value)\s*(\|\s*humanizePercentage\s*)?\}\}/g;

/** 0.0734 → "7.34%", as Prometheus' humanizePercentage. */
const percentage = (v: number) => `${Number((v * 100).toPrecision(4))}%`;

/**
 * The annotation templates Prometheus rule files use most, and only those: `{{ $labels.<name> }}`,
 * `{{ $value }}` and `{{ $value | humanizePercentage }}`. Anything else is left as written.
 */
export function renderAnnotations(templates: Labels, labels: Labels, value: number): Labels {
  const out: Record<string, string> = {};
  for (const [name, text] of Object.entries(templates)) {
    out[name] = text.replace(FIELD, (_, _field: string, label: string | undefined, percent?: string) => {
      if (label !== undefined) return labels[label] ?? '';
      return percent ? percentage(value) : String(value);
    });
  }
  return out;
}
