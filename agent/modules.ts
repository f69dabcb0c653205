import { createNetworkModule } from '../ipam-cni/index.ts';
import { createLogsModule } from '../log-shipper/index.ts';
import { createMetricsModule } from './metrics/index.ts';
import type { ModuleFactory, ModuleName } from './module.ts';

/** The module implementations this build ships. */
export const MODULE_FACTORIES: Partial<Record<ModuleName, ModuleFactory>> = {
  network: createNetworkModule,
  logs: createLogsModule,
  metrics: createMetricsModule,
};
