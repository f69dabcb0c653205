import { CNI } from '../../shared/errors.ts';

/**
 * What the CNI spec (1.1.0) fixes, shared by the shim and the agent: verbs, versions, the limits on
 * CNI_* values, and the error JSON. Plain code on purpose: the shim imports this on every start, so
 * it must not pull in zod or anything heavier.
 */

export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

export const VERBS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type Verb = (typeof VERBS)[number];
/** Verbs the agent serves (VERSION is answered by the shim). */
export type AgentVerb = Exclude<Verb, 'VERSION'>;

/** The plugin type this binary answers to in a network config (and as `ipam.type`). */
export const PLUGIN_TYPE = 'nodeward';

export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** A failure that leaves the plugin as spec error JSON. */
export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;
  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
  toJson(cniVersion: string): CniErrorJson {
    return {
      cniVersion,
      code: this.code,
      msg: this.message,
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export const isSupportedVersion = (v: unknown): v is CniVersion =>
  typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);

// SPEC.md "Parameters": the container ID is alphanumeric plus underscore, dot and hyphen.
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Why a CNI_CONTAINERID is not valid, or undefined. */
export function containerIdProblem(id: string | undefined): string | undefined {
  if (id === undefined || id === '') return 'CNI_CONTAINERID is required';
  if (!CONTAINER_ID.test(id)) {
    return `CNI_CONTAINERID must start with a letter or digit and hold only letters, digits, "_", "." or "-", got ${JSON.stringify(id)}`;
  }
  return undefined;
}

// Stricter than the kernel (which takes almost any byte): the name goes into `ip -b -` batch
// lines, whose parser treats "#", quotes and backslashes specially, and into IPAM keys. Every
// name a runtime really uses (eth0, net1, the Multus defaults) fits.
const IF_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Why a CNI_IFNAME is not an interface name nodeward can use, or undefined. */
export function ifNameProblem(name: string | undefined): string | undefined {
  if (name === undefined || name === '') return 'CNI_IFNAME is required';
  if (name.length > 15) return `CNI_IFNAME must be at most 15 characters, got ${JSON.stringify(name)}`;
  if (!IF_NAME.test(name)) {
    return `CNI_IFNAME must start with a letter or digit and hold only letters, digits, "_", "." or "-", got ${JSON.stringify(name)}`;
  }
  return undefined;
}

/** Why a CNI_NETNS is not a namespace path, or undefined. */
export function netnsProblem(netns: string | undefined, required: boolean): string | undefined {
  if (netns === undefined || netns === '') return required ? 'CNI_NETNS is required' : undefined;
  if (!netns.startsWith('/')) return `CNI_NETNS must be an absolute path, got ${JSON.stringify(netns)}`;
  if (netns.includes('\0')) return 'CNI_NETNS may not contain NUL';
  return undefined;
}

/** CNI_ARGS "K1=V1;K2=V2" as a map; a pair without "=" is an invalid environment. */
export function parseCniArgs(text: string | undefined): Map<string, string> {
  const args = new Map<string, string>();
  if (!text) return args;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new CniError(CNI.invalidEnv, `CNI_ARGS: expected KEY=VALUE pairs, got ${JSON.stringify(pair)}`);
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return args;
}
