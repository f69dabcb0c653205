import type { Registry } from 'prom-client';
import type { Config } from './config/index.ts';
import type { Logger } from './logger.ts';

export const MODULE_NAMES = ['network', 'logs', 'metrics'] as const;
export type ModuleName = (typeof MODULE_NAMES)[number];

/** What a module gets for one run; a new context each time the supervisor (re)starts it. */
export interface RunContext {
  /** Aborted when the module must stop: finish in-flight work, persist state, then resolve. */
  readonly signal: AbortSignal;
  /** Readiness as /readyz reports it; a run starts not ready. */
  setReady(ready: boolean, reason?: string): void;
}

/**
 * One agent module (network, logs, metrics). Created once per process, so its metrics and state
 * outlive restarts; `run` is called again after each failure.
 */
export interface AgentModule {
  readonly name: ModuleName;
  /** The module's own metrics, exposed on /metrics beside the agent's. */
  readonly registry: Registry;
  /**
   * Runs until `ctx.signal` aborts, then resolves once stopped. Rejecting (or resolving before the
   * abort) is a failure: the supervisor logs its error code and restarts the module with backoff.
   */
  run(ctx: RunContext): Promise<void>;
}

export interface ModuleDeps {
  readonly config: Config;
  readonly log: Logger;
  /** The agent's registries but this module's (the agent's own, the other modules'), read on demand. */
  readonly peers?: () => readonly Registry[];
}

export type ModuleFactory = (deps: ModuleDeps) => AgentModule;
