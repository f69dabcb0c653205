import { Command, CommanderError, Option } from 'commander';
import { stringify } from 'yaml';
import pkg from '../package.json' with { type: 'json' };
import {
  type Config,
  configSchema,
  configWarnings,
  descriptionOf,
  ENV_PREFIX,
  envSegment,
  leaves,
  loadConfig,
  parseConfig,
  readConfigFile,
  renderExampleConfig,
} from '../shared/config/index.ts';
import { asNodewardError, EXIT, exitCodeOf } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';

export const VERSION: string = pkg.version;

const collect = (value: string, previous: string[]) => [...previous, value];

interface ConfigFlags {
  config?: string;
  set: string[];
  logLevel?: string;
  listen?: string;
}

/** Config as the agent sees it: file (flag or NODEWARD_CONFIG), env, then flags. */
function effectiveConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv): Config {
  const sets = [...flags.set];
  if (flags.logLevel) sets.push(`log.level=${flags.logLevel}`);
  if (flags.listen) sets.push(`http.listen=${flags.listen}`);
  return loadConfig({ file: flags.config ?? env['NODEWARD_CONFIG'], env, sets });
}

/** Resolves with the first SIGTERM/SIGINT; listening from now on, so no early signal kills us unflushed. */
function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', on).off('SIGINT', on);
      resolve(sig);
    };
    process.on('SIGTERM', on).on('SIGINT', on);
  });
}

async function runAgent(flags: ConfigFlags, env: NodeJS.ProcessEnv): Promise<number> {
  const stopRequested = firstSignal();
  const config = effectiveConfig(flags, env);
  const log = createLogger(config.log.level);
  for (const warning of configWarnings(config)) log.warn(warning);
  // Loaded only for `agent`: the modules pull in Kafka, etcd and Docker clients that `config` and the
  // CNI paths must not pay for at start-up.
  const { startAgent } = await import('./agent.ts');
  const { loadModuleFactories } = await import('./modules.ts');
  const agent = await startAgent({
    config,
    log,
    version: VERSION,
    factories: await loadModuleFactories(config),
  });
  const signal = await stopRequested;
  log.info({ signal, deadlineMs: config.shutdown.deadline }, 'stopping');
  // A second signal while stopping means "now": kubelet or an impatient operator gave up waiting.
  const force = () => {
    log.warn('second signal: exiting without waiting for modules');
    process.exit(EXIT.internal);
  };
  process.once('SIGTERM', force).once('SIGINT', force);
  const inTime = await agent.stop(config.shutdown.deadline);
  log.info({ inTime }, 'stopped');
  return inTime ? EXIT.ok : EXIT.internal;
}

/** Keys whose values must not land in terminals, tickets or CI logs by way of `config print`. */
const SECRET_KEYS = new Set(['password', 'token']);

export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      SECRET_KEYS.has(k) && typeof v === 'string' ? '<redacted>' : redactSecrets(v),
    ]),
  );
}

function configDocs(): string {
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  const lines: string[] = [];
  for (const { path, schema } of leaves(configSchema)) {
    let value: unknown = defaults;
    for (const key of path) value = (value as Record<string, unknown>)[key];
    const env = ENV_PREFIX + path.map(envSegment).join('__');
    lines.push(
      `${path.join('.')} (default ${JSON.stringify(value)}; env ${env})\n    ${descriptionOf(schema) ?? ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

type NetworkCommands = Pick<
  typeof import('../ipam-cni/index.ts'),
  'registerIpamCommands' | 'registerCniCommands'
>;

export interface CliIo {
  stdout: (s: string) => void;
  /** Warnings (the command still succeeds); process.stderr when not given. */
  stderr?: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** The `ipam` and `cni` commands, when this invocation may need them (see main). */
  network?: NetworkCommands | undefined;
}

export function buildCli(io: CliIo): Command {
  const program = new Command('nodeward')
    .description(
      'Node agent for Kubernetes: pod networking (CNI + IPAM), container logs to Kafka, host and container metrics.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  nodeward agent                                   run on the embedded default (no cluster needed)
  nodeward agent --config /etc/nodeward/config.yaml
  NODEWARD_LOGS__KAFKA__BROKERS=k1:9092,k2:9092 nodeward agent --config config.yaml
  nodeward config check deploy/config.example.yaml
  nodeward config print --set log.level=debug
  nodeward config docs                             every key with its default and env name`,
    );

  const withConfigFlags = (cmd: Command) =>
    cmd
      .option(
        '-c, --config <file>',
        'YAML config file (default: $NODEWARD_CONFIG, else the embedded default)',
      )
      .option(
        '--set <key=value>',
        'set one config key, e.g. --set logs.enabled=false (repeatable)',
        collect,
        [],
      )
      .addOption(new Option('--log-level <level>', 'shorthand for --set log.level=…'))
      .addOption(new Option('--listen <host:port>', 'shorthand for --set http.listen=…'));

  withConfigFlags(program.command('agent'))
    .description('run the node agent until SIGTERM/SIGINT')
    .action(async (flags: ConfigFlags) => {
      process.exitCode = await runAgent(flags, io.env);
    });

  const config = program.command('config').description('check, print and document the configuration');
  config
    .command('check')
    .argument('<file>', 'YAML config file')
    .description('validate a config file alone (env and flags not applied); exit 2 naming every bad key')
    .action((file: string) => {
      const config = parseConfig(readConfigFile(file), [], file);
      io.stdout(`${file}: ok\n`);
      for (const warning of configWarnings(config))
        (io.stderr ?? ((t) => process.stderr.write(t)))(`warning: ${warning}\n`);
    });
  withConfigFlags(config.command('print'))
    .argument('[file]', 'YAML config file')
    .description(
      'print the effective config (file, env, flags, defaults) as YAML; durations in ms, sizes in bytes',
    )
    .option('--show-secrets', 'print passwords as they are instead of <redacted>')
    .action((file: string | undefined, flags: ConfigFlags & { showSecrets?: boolean }) => {
      const config = effectiveConfig({ ...flags, config: file ?? flags.config }, io.env);
      io.stdout(stringify(flags.showSecrets ? config : redactSecrets(config)));
    });
  if (io.network) {
    io.network.registerIpamCommands(program, {
      stdout: io.stdout,
      withConfigFlags,
      config: (flags) => effectiveConfig(flags as unknown as ConfigFlags, io.env),
    });
    io.network.registerCniCommands(program, {
      stdout: io.stdout,
      env: io.env,
      loadConfig: (file, sets) => effectiveConfig({ config: file, set: sets }, io.env),
    });
  }
  config
    .command('example')
    .description('print a config file with every key at its default, commented (deploy/config.example.yaml)')
    .action(() => io.stdout(renderExampleConfig()));
  config
    .command('docs')
    .description('list every config key with its default, env variable and meaning')
    .action(() => io.stdout(configDocs()));
  return program;
}

/** Runs the CLI; returns the exit status (errors already reported on stderr). */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // The ipam/cni commands load the IPAM and CNI code: ~0.2 s that `agent` and `config` (run by
  // probes and init containers) should not pay. Load them for their own commands and for help.
  const first = argv[0];
  const needsNetwork = first === undefined || ['ipam', 'cni', 'help', '--help', '-h'].includes(first);
  const network = needsNetwork ? await import('../ipam-cni/index.ts') : undefined;
  const program = buildCli({ stdout: (s) => process.stdout.write(s), env, network });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version "fail" with exit code 0; real usage errors are status 2 (commander says 1).
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const e = asNodewardError(err);
    process.stderr.write(`nodeward: ${e.message}\n`);
    if (e.code === 'INTERNAL' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return exitCodeOf(e);
  }
}
