import { VethReaper } from '../../net/veth.ts';
import type { CniRequest } from '../protocol.ts';
import { Teardowns } from '../teardown.ts';
import { addAttachment } from './add.ts';
import { Announcements } from './announcements.ts';
import { AttachmentOrder } from './attachment-order.ts';
import { checkAttachment } from './check.ts';
import { deleteAttachment, tearDown } from './del.ts';
import { collectAttachments, type ValidAttachments } from './gc.ts';
import type { HandlerDeps, VerbContext } from './handler-deps.ts';
import type { CniResult } from './result.ts';
import { networkStatus } from './status.ts';

/**
 * The verbs, agent side, one file each; this builds the state they share. ADD rolls back
 * everything it did when a later step fails (the address is released, the veth removed); DEL
 * forgives (a missing netns or link is success, and an unreachable store turns the release into
 * a journal entry replayed later).
 */
export class CniHandlers {
  readonly #ctx: VerbContext;
  /** Told every valid-attachments list a CNI GC brings (the IPAM node GC's liveness evidence). */
  onValidAttachments: ((network: string, list: ValidAttachments) => void) | undefined;
  /** DELs answered, torn down in the background (see ../teardown.ts). */
  readonly teardowns: Teardowns;

  constructor(deps: HandlerDeps) {
    this.teardowns = new Teardowns({
      journalDir: deps.journalDir,
      run: (req) => tearDown(this.#ctx, req),
      log: deps.log,
      onDepth: deps.onJournalDepth,
      onAttempt: deps.onTeardown,
    });
    this.#ctx = {
      deps,
      teardowns: this.teardowns,
      order: new AttachmentOrder(),
      announcements: new Announcements(deps.log),
      reaper: new VethReaper(deps.host),
    };
  }

  async handle(req: CniRequest): Promise<unknown> {
    switch (req.command) {
      case 'ADD':
        return this.add(req);
      case 'DEL':
        return this.del(req);
      case 'CHECK':
        return this.check(req);
      case 'GC':
        return this.gc(req);
      case 'STATUS':
        return this.status();
    }
  }

  async add(req: CniRequest): Promise<CniResult> {
    // Taken now, before any await: the DELs this ADD must wait for are those already recorded.
    const mark = this.teardowns.mark();
    return this.#ctx.order.after(req, () => addAttachment(this.#ctx, req, mark));
  }

  async del(req: CniRequest): Promise<void> {
    return deleteAttachment(this.#ctx, req);
  }

  async check(req: CniRequest): Promise<void> {
    return checkAttachment(this.#ctx, req);
  }

  async gc(req: CniRequest): Promise<void> {
    return collectAttachments(this.#ctx, req, (network, list) => this.onValidAttachments?.(network, list));
  }

  async status(): Promise<void> {
    return networkStatus(this.#ctx.deps);
  }
}
