import type { Logger } from '../../../shared/logger.ts';
import { announceAddress, garpProblem, type Pair, type PairRequest } from '../../net/veth.ts';
import { attachmentKey } from '../teardown.ts';

/**
 * Gratuitous ARPs after ADD, in the background: the ADD's answer does not wait for them. A
 * teardown waits for its attachment's, so it never announces an address already released.
 */
export class Announcements {
  readonly #log: Logger | undefined;
  /** By attachment. */
  readonly #inFlight = new Map<string, Promise<void>>();
  #problemNoted = false;

  constructor(log: Logger | undefined) {
    this.#log = log;
  }

  /** Whether an address in `netns` can be announced (said once when it cannot). */
  possible(netns: string): boolean {
    const problem = garpProblem(netns);
    if (problem && !this.#problemNoted) {
      this.#problemNoted = true;
      this.#log?.info({ reason: problem }, 'cni: gratuitous ARP skipped');
    }
    return problem === undefined;
  }

  start(req: PairRequest, pair: Pair): void {
    const key = attachmentKey(req.containerID, req.ifName);
    const announcing = announceAddress(req, pair).catch((err: unknown) => {
      this.#log?.debug({ err, containerID: req.containerID }, 'cni: gratuitous ARP not sent');
    });
    this.#inFlight.set(key, announcing);
    void announcing.finally(() => {
      if (this.#inFlight.get(key) === announcing) this.#inFlight.delete(key);
    });
  }

  /** Resolves once the attachment's announcement, if any, has ended. */
  async settled(containerID: string, ifName: string): Promise<void> {
    await this.#inFlight.get(attachmentKey(containerID, ifName))?.catch(() => {});
  }
}
