import type { Logger } from '../../../shared/logger.ts';
import type { PodMetadataSource } from '../../../shared/pods/index.ts';
import type { Ipam } from '../../ipam/ipam.ts';
import type { PoolUsage } from '../../ipam/usage.ts';
import type { NetnsRunner } from '../../net/exec.ts';
import type { SegmentHealth, Segments } from '../../net/segment.ts';
import type { VethReaper } from '../../net/veth.ts';
import type { Store } from '../../store/store.ts';
import type { Teardowns } from '../teardown.ts';
import type { Announcements } from './announcements.ts';
import type { AttachmentOrder } from './attachment-order.ts';

/** What the agent gives the CNI verbs, and the state they share (CniHandlers assembles both). */

export interface HandlerDeps {
  readonly ipam: Ipam;
  readonly store: Store;
  readonly segments: Segments;
  /** Runs host-side commands (the agent's netns, or network.cni.hostNetns). */
  readonly host: NetnsRunner;
  readonly node: string;
  readonly journalDir: string;
  /** network.cni.pool: the network's pool when the config names none. */
  readonly defaultPool?: string | undefined;
  readonly log?: Logger | undefined;
  /** Segment health as last refreshed (STATUS answers 50 when a segment is broken). */
  readonly health?: () => readonly SegmentHealth[];
  /**
   * Pool usage as last read (the agent's periodic check): STATUS answers 50 while the network's
   * pool is full, so the runtime stops sending this node pods it cannot address.
   */
  readonly poolUsage?: (() => readonly PoolUsage[] | undefined) | undefined;
  /** How long STATUS waits for the store. */
  readonly statusTimeoutMs?: number;
  /**
   * Pod metadata (the kubelet's /pods): a pod whose controlling owner is a StatefulSet gets a
   * sticky address without the annotation. Absent: only the annotation decides.
   */
  readonly podMetadata?: PodMetadataSource | undefined;
  /** How long an ADD waits for pod metadata it does not have cached (default 2000 ms). */
  readonly podMetadataTimeoutMs?: number | undefined;
  /** Time spent per stage of a verb (metrics, the bench's breakdown). */
  readonly onStage?: ((verb: 'ADD' | 'DEL', stage: string, seconds: number) => void) | undefined;
  /** Pending teardowns changed (journal depth). */
  readonly onJournalDepth?: ((depth: number) => void) | undefined;
  /** One background teardown attempt ended. */
  readonly onTeardown?: ((seconds: number, ok: boolean) => void) | undefined;
}

/** The deps and the agent-wide state every verb reads or changes. */
export interface VerbContext {
  readonly deps: HandlerDeps;
  /** DELs answered, torn down in the background (see ../teardown.ts). */
  readonly teardowns: Teardowns;
  readonly order: AttachmentOrder;
  readonly announcements: Announcements;
  /** Host veth ends of teardowns, deleted in batches (one RTNL-held RCU wait per batch). */
  readonly reaper: VethReaper;
}

/** Reports the stage of `verb` that began at `since` as ended; returns now, the next stage's start. */
export function stageEnded(deps: HandlerDeps, verb: 'ADD' | 'DEL', stage: string, since: number): number {
  const now = performance.now();
  deps.onStage?.(verb, stage, (now - since) / 1000);
  return now;
}
