import type { AgentVerb } from './spec.ts';

/**
 * The shim ↔ agent protocol on the unix socket: one request per connection, one JSON line each way.
 * The shim passes what the runtime gave it, untouched; the agent answers with the CNI result (or
 * nothing, for DEL/CHECK/GC/STATUS) or a spec error.
 */

export const PROTOCOL_VERSION = 1;

export interface CniRequest {
  readonly v: typeof PROTOCOL_VERSION;
  readonly command: AgentVerb;
  readonly containerID: string;
  readonly netns: string;
  readonly ifName: string;
  readonly args: string;
  readonly path: string;
  /** The network config exactly as read from stdin. */
  readonly config: string;
}

export type CniResponse =
  | { readonly ok: true; readonly result?: unknown }
  | { readonly ok: false; readonly code: number; readonly msg: string; readonly details?: string };

/** Defaults the shim uses when the network config does not name them (what `cni install` writes). */
export const DEFAULT_SOCKET = '/run/nodeward/cni.sock';
export const DEFAULT_JOURNAL_DIR = '/var/lib/nodeward/cni-journal';
export const DEFAULT_TIMEOUT_MS = 30_000;
