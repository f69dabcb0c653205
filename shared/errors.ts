/**
 * The error registry: every failure nodeward reports has a stable code defined here, with whether
 * a retry can help and how it leaves the process — as a CLI exit status and as a CNI error code.
 * Callers branch on `code`, never on message text.
 */

/** CLI exit statuses (sysexits-style where one fits). */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2, // bad flags, bad config, bad env: the operator must change something
  unavailable: 69, // a peer (etcd, Kafka, the agent) is unreachable: retry later
  io: 74,
  tempFail: 75,
} as const;

/**
 * CNI error codes from the CNI spec (SPEC.md "Error codes"); 100 and above are ours.
 */
export const CNI = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  notAvailableLimited: 51,
  internal: 100,
  poolExhausted: 101,
  ipConflict: 102,
  poolNotAllowed: 103,
  netSetup: 104,
} as const;

export interface ErrorSpec {
  /** Whether the same call can succeed later without anyone changing anything. */
  readonly retriable: boolean;
  readonly exit: number;
  readonly cni: number;
  /** One line for the docs: what it means and what to do. */
  readonly doc: string;
}

export const ERRORS = {
  INTERNAL: {
    retriable: false,
    exit: EXIT.internal,
    cni: CNI.internal,
    doc: 'A bug: please report it with the log line.',
  },
  USAGE: { retriable: false, exit: EXIT.usage, cni: CNI.invalidConfig, doc: 'Bad command-line arguments.' },
  CONFIG_INVALID: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.invalidConfig,
    doc: 'The config file, an env override or a flag does not match the schema; the message names the key path.',
  },
  CONFIG_UNREADABLE: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.invalidConfig,
    doc: 'The config file cannot be read or is not YAML.',
  },
  MODULE_FAILED: {
    retriable: true,
    exit: EXIT.internal,
    cni: CNI.internal,
    doc: 'A module stopped with an error; the agent restarts it with backoff.',
  },
  SHUTDOWN_TIMEOUT: {
    retriable: false,
    exit: EXIT.internal,
    cni: CNI.internal,
    doc: 'A module did not stop within shutdown.deadline.',
  },
  HTTP_LISTEN: {
    retriable: false,
    exit: EXIT.unavailable,
    cni: CNI.internal,
    doc: 'The agent cannot listen on http.listen (address in use or not local).',
  },
  IO: { retriable: true, exit: EXIT.io, cni: CNI.io, doc: 'A file or socket operation failed.' },
  STORE_UNAVAILABLE: {
    retriable: true,
    exit: EXIT.unavailable,
    cni: CNI.tryAgainLater,
    doc: 'The IPAM store (etcd) is unreachable; retry later.',
  },
  AGENT_UNAVAILABLE: {
    retriable: true,
    exit: EXIT.unavailable,
    cni: CNI.tryAgainLater,
    doc: 'The node agent is not running or not answering on its socket.',
  },
  SINK_UNAVAILABLE: {
    retriable: true,
    exit: EXIT.unavailable,
    cni: CNI.internal,
    doc: 'The log sink (Kafka, file) refuses writes; lines wait on disk.',
  },
  METRICS_COLLECTOR_FAILED: {
    retriable: true,
    exit: EXIT.io,
    cni: CNI.internal,
    doc: 'A host metrics collector could not read or parse its kernel files; its series are left out of that scrape and nodeward_scrape_collector_success{collector} is 0.',
  },
  LOG_PARSE: {
    retriable: false,
    exit: EXIT.internal,
    cni: CNI.internal,
    doc: 'A log line is neither CRI nor docker json-file; it is shipped raw and flagged.',
  },
  LOG_CHECKPOINT_UNUSABLE: {
    retriable: false,
    exit: EXIT.io,
    cni: CNI.internal,
    doc: 'The log checkpoint file is unreadable or of another version: it is moved aside and files are read again (lines may repeat, none is lost).',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class NodewardError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  /** Structured context for logs and JSON output (key path, pool name, peer address, ...). */
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NodewardError';
    this.code = code;
    this.retriable = ERRORS[code].retriable;
    this.details = options.details ?? {};
  }
}

/** Any thrown value as a NodewardError; unknown errors become INTERNAL with the original as cause. */
export function asNodewardError(err: unknown): NodewardError {
  if (err instanceof NodewardError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new NodewardError('INTERNAL', message, { cause: err });
}

export function exitCodeOf(err: unknown): number {
  return ERRORS[asNodewardError(err).code].exit;
}

export function cniCodeOf(err: unknown): number {
  return ERRORS[asNodewardError(err).code].cni;
}
