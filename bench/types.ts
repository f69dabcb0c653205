/** One measured figure, ours beside the anchor's from the same run. */
export interface BenchMetric {
  name: string;
  unit: string;
  ours: number;
  anchor: number | null;
  anchorName: string;
  /** ours / anchor (null without an anchor figure). */
  ratio: number | null;
  better: 'higher' | 'lower';
  /** The target for `ours` (absolute) or for the ratio, as `goalOf` says. */
  goal: number | null;
  goalOf?: 'ours' | 'ratio';
  met: boolean | null;
}

export interface BenchOptions {
  quick: boolean;
  log: (line: string) => void;
}

/** A bench: measures ours and the anchor side by side and returns the figures. */
export interface Bench {
  description: string;
  run(options: BenchOptions): Promise<BenchMetric[]>;
}

export function metric(m: Omit<BenchMetric, 'ratio' | 'met'> & { goalOf?: 'ours' | 'ratio' }): BenchMetric {
  const ratio = m.anchor ? m.ours / m.anchor : null;
  const goalOf = m.goalOf ?? 'ratio';
  const subject = goalOf === 'ours' ? m.ours : ratio;
  const met =
    m.goal === null || subject === null ? null : m.better === 'lower' ? subject <= m.goal : subject >= m.goal;
  return { ...m, goalOf, ratio, met };
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
