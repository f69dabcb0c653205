import type { ModuleFactory, ModuleName } from './module.ts';
export const MODULE_FACTORIES: Partial<Record<ModuleName, ModuleFactory>> = {};
