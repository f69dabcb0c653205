import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { isAbsent, numberFrom, readKernelFile } from '../procfs.ts';

/** Which PSI line of which resource file becomes which family (node_exporter's selection). */
const SERIES: { resource: string; line: 'some' | 'full'; family: Family }[] = [
  {
    resource: 'cpu',
    line: 'some',
    family: family(
      'node_pressure_cpu_waiting_seconds_total',
      'counter',
      'Total time in seconds that processes have waited for CPU time',
    ),
  },
  {
    resource: 'io',
    line: 'some',
    family: family(
      'node_pressure_io_waiting_seconds_total',
      'counter',
      'Total time in seconds that processes have waited due to IO congestion',
    ),
  },
  {
    resource: 'io',
    line: 'full',
    family: family(
      'node_pressure_io_stalled_seconds_total',
      'counter',
      'Total time in seconds no process could make progress due to IO congestion',
    ),
  },
  {
    resource: 'memory',
    line: 'some',
    family: family(
      'node_pressure_memory_waiting_seconds_total',
      'counter',
      'Total time in seconds that processes have waited for memory',
    ),
  },
  {
    resource: 'memory',
    line: 'full',
    family: family(
      'node_pressure_memory_stalled_seconds_total',
      'counter',
      'Total time in seconds no process could make progress due to memory congestion',
    ),
  },
  {
    resource: 'irq',
    line: 'full',
    family: family(
      'node_pressure_irq_stalled_seconds_total',
      'counter',
      'Total time in seconds no process could make progress due to IRQ congestion',
    ),
  },
];

const RESOURCES = [...new Set(SERIES.map((s) => s.resource))];

/** `total=` of each line of one /proc/pressure/<resource> file, in seconds (the kernel counts µs). */
export function parsePressure(text: string): Map<string, number> {
  const totals = new Map<string, number>();
  for (const line of text.split('\n')) {
    const kind = line.slice(0, line.indexOf(' '));
    const total = /\btotal=(\S+)/.exec(line)?.[1];
    if (kind && total !== undefined)
      totals.set(kind, numberFrom(total, `/proc/pressure ${kind} total`) / 1e6);
  }
  return totals;
}

/** Kernels before 4.20, without CONFIG_PSI, or booted with psi=0 have no (readable) files: no series. */
function unavailable(err: unknown): boolean {
  return isAbsent(err) || (err as NodeJS.ErrnoException).code === 'EOPNOTSUPP';
}

export function createPressureCollector(settings: MetricsConfig): Collector {
  return {
    families: SERIES.map((s) => s.family),
    async collect(emit) {
      const files = await Promise.all(
        RESOURCES.map((resource) =>
          readKernelFile(settings.procRoot, 'pressure', resource).then(
            (text) => [resource, parsePressure(text)] as const,
            (err: unknown) => {
              if (unavailable(err)) return [resource, undefined] as const;
              throw err;
            },
          ),
        ),
      );
      const byResource = new Map(files);
      for (const { resource, line, family: f } of SERIES) {
        const total = byResource.get(resource)?.get(line);
        if (total !== undefined) emit(f, total);
      }
    },
  };
}
