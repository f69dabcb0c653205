import type { CniRequest } from '../protocol.ts';
import { attachmentKey } from '../teardown.ts';

/**
 * ADDs and teardowns of one attachment (containerID/ifName) run one after the other, in arrival
 * order: a DEL that arrives while its ADD is in flight tears down what that ADD made, and an ADD
 * after a DEL starts on a clean slate.
 */
export class AttachmentOrder {
  /** The last ADD or teardown of each attachment, until it settles. */
  readonly #last = new Map<string, Promise<unknown>>();

  /** The request's attachment's operation in flight, if any. */
  last(req: CniRequest): Promise<unknown> | undefined {
    return this.#last.get(attachmentKey(req.containerID, req.ifName));
  }

  /** An ADD or teardown of this attachment has not settled yet. */
  pending(containerID: string, ifName: string): boolean {
    return this.#last.has(attachmentKey(containerID, ifName));
  }

  /** Runs `op` once the attachment's operation in flight settled, whatever its outcome. */
  after<T>(req: CniRequest, op: () => Promise<T>): Promise<T> {
    const prev = this.last(req);
    return this.sequence(
      req,
      (async () => {
        await prev?.catch(() => {});
        return op();
      })(),
    );
  }

  /** Makes `op` the last operation of the request's attachment until it settles. */
  sequence<T>(req: CniRequest, op: Promise<T>): Promise<T> {
    const key = attachmentKey(req.containerID, req.ifName);
    this.#last.set(key, op);
    const forget = () => {
      if (this.#last.get(key) === op) this.#last.delete(key);
    };
    op.then(forget, forget);
    return op;
  }
}
