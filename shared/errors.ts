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
  checkFailed: 105,
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
  STORE_DENIED: {
    retriable: false,
    exit: EXIT.unavailable,
    cni: CNI.internal,
    doc: 'etcd refused the IPAM request (authentication or permission): fix network.etcd username/password, the client certificate or the role on the key prefix.',
  },
  STORE_CORRUPT: {
    retriable: false,
    exit: EXIT.io,
    cni: CNI.internal,
    doc: 'An IPAM record in the store is not what nodeward wrote (unparseable or of another version); the message names the key or file.',
  },
  POOL_INVALID: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.invalidConfig,
    doc: 'An IPAM pool spec is invalid; the message names the field path of every problem.',
  },
  POOL_EXISTS: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.invalidConfig,
    doc: 'A pool of that name exists already; remove it first or pick another name.',
  },
  POOL_OVERLAP: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.invalidConfig,
    doc: 'The pool overlaps another; allowed only with allowOverlap: true and on a different segment.',
  },
  POOL_NOT_FOUND: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.invalidConfig,
    doc: 'The pool named by the annotation, namespace, network config or command does not exist (or is being removed).',
  },
  POOL_IN_USE: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.internal,
    doc: 'The pool still has allocated addresses; release them first.',
  },
  POOL_NOT_ALLOWED: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.poolNotAllowed,
    doc: "The pool's nodeSelector or namespaceSelector does not admit the pod's node or namespace; the message says which label is missing.",
  },
  POOL_EXHAUSTED: {
    retriable: false,
    exit: EXIT.tempFail,
    cni: CNI.poolExhausted,
    doc: 'The pool has no free address; the message gives its usage. Release addresses, widen the ranges or add a pool.',
  },
  IP_CONFLICT: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.ipConflict,
    doc: 'The requested (or sticky) address is held by another container; the message names the holder.',
  },
  IP_UNUSABLE: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.invalidConfig,
    doc: "The requested address is outside the pool or its ranges, excluded, or the pool's gateway/network/broadcast address.",
  },
  IPAM_CONTENTION: {
    retriable: true,
    exit: EXIT.tempFail,
    cni: CNI.tryAgainLater,
    doc: 'An allocation lost its compare-and-swap race more often than network.ipam.conflictRetries allows; retry.',
  },
  IPAM_REQUEST_INVALID: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.invalidConfig,
    doc: 'An IPAM request lacks a field or has one that cannot be a store key (empty, or containing "/").',
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
  METRICS_PUSH_FAILED: {
    retriable: true,
    exit: EXIT.unavailable,
    cni: CNI.internal,
    doc: 'A metrics push (remote_write or JSON) got a 5xx, 429 or no answer after every retry; that batch is dropped and the next interval sends fresh values.',
  },
  METRICS_PUSH_REJECTED: {
    retriable: false,
    exit: EXIT.unavailable,
    cni: CNI.internal,
    doc: 'The push receiver answered 4xx (bad request, unauthorized, not found): the batch is dropped without retry; check the URL, headers and the receiver log.',
  },
  ALERTS_SEND_FAILED: {
    retriable: true,
    exit: EXIT.unavailable,
    cni: CNI.internal,
    doc: 'Alertmanager did not accept alerts after every retry (5xx, 429 or no answer); they are sent again at the next evaluation or resend.',
  },
  ALERTS_REJECTED: {
    retriable: false,
    exit: EXIT.unavailable,
    cni: CNI.internal,
    doc: 'An Alertmanager answered 4xx to the alerts: check metrics.alerts.alertmanagers[].url, its headers and the rule labels.',
  },
  LOG_PARSE: {
    retriable: false,
    exit: EXIT.internal,
    cni: CNI.internal,
    doc: 'A log line is neither CRI nor docker json-file; it is shipped raw and flagged.',
  },
  POD_METADATA_UNAVAILABLE: {
    retriable: true,
    exit: EXIT.unavailable,
    cni: CNI.tryAgainLater,
    doc: "The pod metadata source (the kubelet's /pods, or the API server's list/watch of pods) cannot be read (down, 401/403, TLS, not a PodList): pod metadata is stale or missing meanwhile; log lines keep their file-name labels. Check pods.kubelet or pods.apiserver (url, tokenFile, caFile) and the RBAC (nodes/proxy for the kubelet; pods list/watch for the API server).",
  },
  LOG_CHECKPOINT_UNUSABLE: {
    retriable: false,
    exit: EXIT.io,
    cni: CNI.internal,
    doc: 'The log checkpoint file is unreadable or of another version: it is moved aside and files are read again (lines may repeat, none is lost).',
  },
  CNI_CONFIG_INVALID: {
    retriable: false,
    exit: EXIT.usage,
    cni: CNI.invalidConfig,
    doc: 'The CNI network config (the .conflist entry the runtime passes) lacks a key or has a wrong one; the message names it.',
  },
  NET_SETUP: {
    retriable: false,
    exit: EXIT.internal,
    cni: CNI.netSetup,
    doc: 'A link, address or route could not be made (iproute2 said why in the message); the ADD was rolled back.',
  },
  CNI_CHECK_FAILED: {
    retriable: false,
    exit: EXIT.internal,
    cni: CNI.checkFailed,
    doc: "CHECK found the pod's interface, address or routes differ from the ADD result; the message says which.",
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
