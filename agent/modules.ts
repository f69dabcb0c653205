import type { Config } from '../shared/config/index.ts';
import type { ModuleFactory, ModuleName } from '../shared/module.ts';

/**
 * The module implementations this build ships, loaded only when enabled: a node without the network
 * module should not carry the IPAM and CNI code in its heap.
 */
const MODULE_LOADERS: Record<ModuleName, () => Promise<ModuleFactory>> = {
  network: async () => (await import('../ipam-cni/index.ts')).createNetworkModule,
  logs: async () => (await import('../log-shipper/index.ts')).createLogsModule,
  metrics: async () => (await import('./metrics/index.ts')).createMetricsModule,
};

export async function loadModuleFactories(
  config: Config,
): Promise<Partial<Record<ModuleName, ModuleFactory>>> {
  const enabled = (Object.keys(MODULE_LOADERS) as ModuleName[]).filter((name) => config[name].enabled);
  const factories = await Promise.all(enabled.map((name) => MODULE_LOADERS[name]()));
  return Object.fromEntries(enabled.map((name, i) => [name, factories[i]]));
}
