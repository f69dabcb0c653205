/**
 * The configuration: one zod schema (defaults, types, docs), loaded once from file, env and flags.
 * Rooms outside shared/ import the config through this file only.
 */
export { type CniConfig, type CniConfigInput, cniSchema } from './cni.ts';
export { renderExampleConfig } from './example.ts';
export { descriptionOf, formatPath, leaves } from './keys.ts';
export { formatIssues, type LoadOptions, loadConfig, parseConfig, readConfigFile } from './load.ts';
export {
  KAFKA_COMPRESSIONS,
  type KafkaCompression,
  type LogsConfig,
  logsSchema,
  TOPIC_PLACEHOLDERS,
} from './logs.ts';
export {
  type AlertRuleConfig,
  type ContainersConfig,
  HOST_COLLECTORS,
  type HostCollectorName,
  type MetricsConfig,
  metricsSchema,
  type PushRetryConfig,
} from './metrics.ts';
export { type NetworkConfig, networkSchema } from './network.ts';
export { ENV_PREFIX, envSegment } from './overrides.ts';
export { type PodsConfig, podsSchema } from './pods.ts';
export { type Config, type ConfigInput, configSchema } from './schema.ts';
export { duration, hostPort, shown, size, url } from './units.ts';
export { configWarnings } from './warnings.ts';
