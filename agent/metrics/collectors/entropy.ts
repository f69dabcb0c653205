import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { numberFrom, readKernelFile } from '../procfs.ts';

const AVAILABLE = family('node_entropy_available_bits', 'gauge', 'Bits of available entropy.');
const POOL = family('node_entropy_pool_size_bits', 'gauge', 'Bits of entropy pool.');

export function createEntropyCollector(settings: MetricsConfig): Collector {
  return {
    families: [AVAILABLE, POOL],
    async collect(emit) {
      const [available, pool] = await Promise.all([
        readKernelFile(settings.procRoot, 'sys/kernel/random/entropy_avail'),
        readKernelFile(settings.procRoot, 'sys/kernel/random/poolsize'),
      ]);
      emit(AVAILABLE, numberFrom(available.trim(), 'entropy_avail'));
      emit(POOL, numberFrom(pool.trim(), 'poolsize'));
    },
  };
}
