import type { CheckpointEntry } from './checkpoint.ts';
import type { InflightBudget } from './inflight.ts';
import type { SinkRecord } from './sink/index.ts';

/**
 * Batching towards the sink. A batch carries its records and, per file, the checkpoint position
 * its acknowledgement allows: the end of the last line of that file it holds (or skipped). Batches
 * are acknowledged in order, so that position is always the file's acknowledged prefix.
 */

/** A file feeding batches (one tailed file). */
export interface BatchOwner {
  readonly entry: CheckpointEntry;
  readonly namespace: string;
  /** Its slot in the batch being filled; a slot of an older batch is replaced on the next add. */
  slot: Slot | undefined;
}

export interface Slot {
  readonly owner: BatchOwner;
  readonly batch: Batch;
  gen: number;
  end: number;
  lines: number;
  bytes: number;
}

export class Batch {
  readonly records: SinkRecord[] = [];
  readonly slots: Slot[] = [];
  bytes = 0;

  /** After acknowledgement: an idle file's slot still points here, so let go of the records. */
  release(): void {
    this.records.length = 0;
    this.slots.length = 0;
  }
}

export interface BatchLimits {
  maxLines: number;
  maxBytes: number;
  /** How long a batch that is not full waits for more lines (ms). */
  wait: number;
}

export class Batcher {
  private current = new Batch();
  private timer: NodeJS.Timeout | undefined;
  private readonly limits: BatchLimits;
  private readonly budget: InflightBudget;
  private readonly ready: (batch: Batch) => void;

  constructor(limits: BatchLimits, budget: InflightBudget, ready: (batch: Batch) => void) {
    this.limits = limits;
    this.budget = budget;
    this.ready = ready;
  }

  add(owner: BatchOwner, record: SinkRecord, bytes: number, gen: number, end: number): void {
    const slot = this.slotOf(owner);
    slot.gen = gen;
    slot.end = end;
    slot.lines++;
    slot.bytes += bytes;
    const batch = this.current;
    batch.records.push(record);
    batch.bytes += bytes;
    this.budget.add(bytes);
    if (batch.records.length >= this.limits.maxLines || batch.bytes >= this.limits.maxBytes) this.flush();
  }

  /** Bytes of a file that hold no record (empty lines, the end of a drained file). */
  advance(owner: BatchOwner, gen: number, end: number): void {
    const slot = this.slotOf(owner);
    slot.gen = gen;
    slot.end = end;
  }

  /** Hands the batch being filled to the sender now, if it holds anything. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.current;
    if (batch.slots.length === 0) return;
    this.current = new Batch();
    this.ready(batch);
  }

  private slotOf(owner: BatchOwner): Slot {
    const batch = this.current;
    let slot = owner.slot;
    if (slot === undefined || slot.batch !== batch) {
      slot = { owner, batch, gen: 0, end: 0, lines: 0, bytes: 0 };
      owner.slot = slot;
      batch.slots.push(slot);
      if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), this.limits.wait);
    }
    return slot;
  }
}
