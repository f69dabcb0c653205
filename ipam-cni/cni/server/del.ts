import { hostVethName } from '../../net/names.ts';
import type { CniRequest } from '../protocol.ts';
import { isIpamOnly, type NetConf, parseNetConf } from './conf.ts';
import { stageEnded, type VerbContext } from './handler-deps.ts';

/**
 * DEL: recorded in the journal, answered, torn down in the background (`tearDown`); an ADD of the
 * same attachment or pod waits for that. When the journal cannot be written (disk full,
 * read-only), the teardown runs before the answer, as it would without a journal.
 */
export async function deleteAttachment(ctx: VerbContext, req: CniRequest): Promise<void> {
  const started = performance.now();
  try {
    void ctx.order.sequence(req, ctx.teardowns.record(req, ctx.order.last(req)));
  } catch (err) {
    ctx.deps.log?.error(
      { err, containerID: req.containerID, journalDir: ctx.deps.journalDir },
      'cni: DEL not journaled; tearing down before answering',
    );
    // Still in the attachment's order: after an ADD in flight, before the next one.
    await ctx.order.after(req, () => tearDown(ctx, req));
  }
  stageEnded(ctx.deps, 'DEL', 'journal', started);
}

/**
 * The work of a DEL: the host veth (its peer goes with it), then the address — in that order, so
 * an address is never free while an interface that answers ARP for it still exists (a pending
 * announcement of it included). A missing link or handle is success.
 */
export async function tearDown(ctx: VerbContext, req: CniRequest): Promise<void> {
  let conf: NetConf | undefined;
  try {
    conf = parseNetConf(req.config);
  } catch (err) {
    // DEL forgives a config it cannot read: links and address go all the same.
    ctx.deps.log?.warn({ err, containerID: req.containerID }, 'cni: DEL with an unreadable config');
  }
  let t = performance.now();
  await ctx.announcements.settled(req.containerID, req.ifName);
  if (!(conf && isIpamOnly(conf))) {
    await ctx.reaper.remove(hostVethName(req.containerID, req.ifName));
    t = stageEnded(ctx.deps, 'DEL', 'links', t);
  }
  await ctx.deps.ipam.release(req.containerID, req.ifName);
  stageEnded(ctx.deps, 'DEL', 'release', t);
}
