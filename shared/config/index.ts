export { descriptionOf, formatPath, leaves } from './keys.ts';
export { type LoadOptions, loadConfig, parseConfig, readConfigFile } from './load.ts';
export { ENV_PREFIX, envSegment } from './overrides.ts';
export { type Config, type ConfigInput, configSchema } from './schema.ts';
export { duration, hostPort, size, url } from './units.ts';
