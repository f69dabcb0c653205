import { CNI } from '../../../shared/errors.ts';
import { appendJournal } from '../journal.ts';
import {
  type CniRequest,
  type CniResponse,
  DEFAULT_JOURNAL_DIR,
  DEFAULT_SOCKET,
  DEFAULT_TIMEOUT_MS,
  PROTOCOL_VERSION,
} from '../protocol.ts';
import {
  type AgentVerb,
  CniError,
  containerIdProblem,
  ifNameProblem,
  isSupportedVersion,
  LATEST_VERSION,
  netnsProblem,
  parseCniArgs,
  SUPPORTED_VERSIONS,
  VERBS,
  type Verb,
} from '../spec.ts';
import { AgentUnreachable, sendToAgent } from './client.ts';

/**
 * The shim's whole job, with every outside effect injected (pkg/skel's shape): validate the CNI_*
 * environment and the network config, answer VERSION, hand everything else to the agent, and print
 * the result or a spec error. Returns the exit status.
 */

export interface ShimIo {
  getenv(name: string): string | undefined;
  readStdin(): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface ShimDeps {
  send?: (socket: string, request: CniRequest, timeoutMs: number) => Promise<CniResponse>;
  journal?: (dir: string, request: CniRequest) => void;
}

/** The keys of a network config the shim reads; the agent validates the rest. */
interface ShimConf {
  cniVersion: string;
  socket: string;
  journalDir: string;
  timeoutMs: number;
}

function parseConf(text: string, verb: Verb): ShimConf {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniError(CNI.decode, `the network config on stdin is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(CNI.decode, 'the network config on stdin must be a JSON object');
  }
  const conf = raw as Record<string, unknown>;
  const version = conf['cniVersion'];
  if (typeof version !== 'string' || version === '') {
    throw new CniError(CNI.invalidConfig, 'the network config has no cniVersion');
  }
  if (!isSupportedVersion(version)) {
    throw new CniError(
      CNI.incompatibleVersion,
      `cniVersion ${JSON.stringify(version)} is not supported`,
      `supported: ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  if ((verb === 'GC' || verb === 'STATUS') && version !== '1.1.0') {
    throw new CniError(CNI.incompatibleVersion, `${verb} needs cniVersion 1.1.0, got ${version}`);
  }
  for (const key of ['name', 'type'] as const) {
    if (typeof conf[key] !== 'string' || conf[key] === '') {
      throw new CniError(CNI.invalidConfig, `the network config needs a non-empty string "${key}"`);
    }
  }
  const str = (key: string, fallback: string) => {
    const v = conf[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || !v.startsWith('/')) {
      throw new CniError(CNI.invalidConfig, `"${key}" must be an absolute path, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const timeout = conf['timeoutMs'];
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0))) {
    throw new CniError(
      CNI.invalidConfig,
      `"timeoutMs" must be a positive number, got ${JSON.stringify(timeout)}`,
    );
  }
  return {
    cniVersion: version,
    socket: str('socket', DEFAULT_SOCKET),
    journalDir: str('journalDir', DEFAULT_JOURNAL_DIR),
    timeoutMs: typeof timeout === 'number' ? timeout : DEFAULT_TIMEOUT_MS,
  };
}

/** The CNI_* environment of an agent verb, validated as SPEC.md "Parameters" says. */
function parseEnv(io: ShimIo, verb: AgentVerb): Omit<CniRequest, 'v' | 'config'> {
  const env = (name: string) => io.getenv(name) ?? '';
  const bad = (msg: string | undefined) => {
    if (msg) throw new CniError(CNI.invalidEnv, msg);
  };
  const perContainer = verb === 'ADD' || verb === 'DEL' || verb === 'CHECK';
  if (perContainer) {
    bad(containerIdProblem(io.getenv('CNI_CONTAINERID')));
    bad(ifNameProblem(io.getenv('CNI_IFNAME')));
    bad(netnsProblem(io.getenv('CNI_NETNS'), verb !== 'DEL'));
  }
  if (env('CNI_PATH') === '') bad('CNI_PATH is required');
  parseCniArgs(io.getenv('CNI_ARGS'));
  return {
    command: verb,
    containerID: perContainer ? env('CNI_CONTAINERID') : '',
    netns: perContainer ? env('CNI_NETNS') : '',
    ifName: perContainer ? env('CNI_IFNAME') : '',
    args: env('CNI_ARGS'),
    path: env('CNI_PATH'),
  };
}

export async function dispatch(io: ShimIo, deps: ShimDeps = {}): Promise<number> {
  let cniVersion: string = LATEST_VERSION;
  const fail = (err: CniError) => {
    io.stdout(`${JSON.stringify(err.toJson(cniVersion))}\n`);
    return 1;
  };
  try {
    const command = io.getenv('CNI_COMMAND');
    if (!command) throw new CniError(CNI.invalidEnv, 'CNI_COMMAND is required');
    if (!(VERBS as readonly string[]).includes(command)) {
      throw new CniError(
        CNI.invalidEnv,
        `unknown CNI_COMMAND ${JSON.stringify(command)}`,
        `one of ${VERBS.join(', ')}`,
      );
    }
    const verb = command as Verb;
    const stdin = await io.readStdin();
    if (verb === 'VERSION') {
      // The config is optional here; when it names a version we cannot speak, say so (code 1).
      let asked: unknown;
      try {
        asked = stdin.trim() ? (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion : undefined;
      } catch {
        asked = undefined;
      }
      if (isSupportedVersion(asked)) cniVersion = asked;
      io.stdout(`${JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS })}\n`);
      return 0;
    }
    const env = parseEnv(io, verb);
    const conf = parseConf(stdin, verb);
    cniVersion = conf.cniVersion;
    const request: CniRequest = { v: PROTOCOL_VERSION, ...env, config: stdin };
    let response: CniResponse;
    try {
      response = await (deps.send ?? sendToAgent)(conf.socket, request, conf.timeoutMs);
    } catch (err) {
      if (!(err instanceof AgentUnreachable)) throw err;
      return agentDown(io, deps, verb, conf, request, err, fail);
    }
    if (!response.ok) return fail(new CniError(response.code, response.msg, response.details));
    if (response.result !== undefined) io.stdout(`${JSON.stringify(response.result)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof CniError) return fail(err);
    io.stderr(`nodeward-cni: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return fail(
      new CniError(CNI.internal, `internal error: ${err instanceof Error ? err.message : String(err)}`),
    );
  }
}

/** The spec duties of a plugin whose daemon is away. */
function agentDown(
  io: ShimIo,
  deps: ShimDeps,
  verb: AgentVerb,
  conf: ShimConf,
  request: CniRequest,
  err: AgentUnreachable,
  fail: (e: CniError) => number,
): number {
  switch (verb) {
    case 'STATUS':
      return fail(new CniError(CNI.notAvailable, `the nodeward agent is not available: ${err.message}`));
    case 'DEL':
      // DEL must succeed or the runtime leaks the sandbox: record it; the agent replays it at start.
      try {
        (deps.journal ?? appendJournal)(conf.journalDir, request);
      } catch (jerr) {
        return fail(
          new CniError(
            CNI.io,
            `the agent is down and the DEL could not be journaled in ${conf.journalDir}: ${(jerr as Error).message}`,
          ),
        );
      }
      io.stderr(`nodeward-cni: ${err.message}; DEL journaled in ${conf.journalDir}\n`);
      return 0;
    default:
      return fail(
        new CniError(
          CNI.tryAgainLater,
          `the nodeward agent is not available, try again later: ${err.message}`,
        ),
      );
  }
}
