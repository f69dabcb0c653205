import { NodewardError } from '../../../shared/errors.ts';
import { handlesPrefix, parseHandleKey } from '../../ipam/keys.ts';
import { handleRecordSchema, parseRecord } from '../../ipam/records.ts';
import { hostVethName } from '../../net/names.ts';
import { removeHostVeth } from '../../net/veth.ts';
import type { CniRequest } from '../protocol.ts';
import { attachmentKey } from '../teardown.ts';
import { isIpamOnly, parseNetConf } from './conf.ts';
import type { VerbContext } from './handler-deps.ts';

export type ValidAttachments = readonly { containerID: string; ifname: string }[];

/**
 * GC: releases this node's attachments of this network that the runtime no longer lists (and
 * their host ends). The runtime's list covers one network only: another network's attachments
 * (Multus, a second IPAM-only network on the same store) are not its to judge, nor are records
 * that name no network (written before networks were recorded: the node GC still covers them).
 * An attachment whose ADD has not answered yet is not on the list either, and is skipped.
 * `onValid` is told the runtime's list first: the IPAM node GC's liveness evidence.
 */
export async function collectAttachments(
  ctx: VerbContext,
  req: CniRequest,
  onValid: (network: string, list: ValidAttachments) => void,
): Promise<void> {
  const { deps } = ctx;
  const conf = parseNetConf(req.config);
  const valid = conf['cni.dev/valid-attachments'];
  if (!valid) throw new NodewardError('CNI_CONFIG_INVALID', 'GC needs cni.dev/valid-attachments');
  onValid(conf.name, valid);
  const keep = new Set(valid.map((a) => attachmentKey(a.containerID, a.ifname)));
  const { entries } = await deps.store.list(handlesPrefix);
  for (const e of entries) {
    const { containerID, ifName } = parseHandleKey(e.key);
    if (keep.has(attachmentKey(containerID, ifName))) continue;
    const record = parseRecord(handleRecordSchema, e);
    if (record.node !== deps.node || record.network !== conf.name) continue;
    if (ctx.order.pending(containerID, ifName)) continue;
    // Deleted already: the teardown queue releases it (and retries while the store is away).
    if (ctx.teardowns.has(containerID, ifName)) continue;
    if (!isIpamOnly(conf)) await removeHostVeth(deps.host, hostVethName(containerID, ifName));
    await deps.ipam.release(containerID, ifName);
    deps.log?.info({ containerID, ifName, ip: record.ip }, 'cni: GC released a stale attachment');
  }
}
