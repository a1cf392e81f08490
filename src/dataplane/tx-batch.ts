/**
 * Frames to send in the current batch, as (offset, length) pairs into the TAP arena: received frames
 * forwarded from their receive slot after an in-place rewrite, and frames the director builds itself in
 * the transmit slots. flush() hands the whole batch to the addon in one call.
 */
import type { Tap } from './tap.js';

export class TxBatch {
  private count = 0;
  private nextTxSlot = 0;

  constructor(private readonly tap: Tap) {}

  get arena(): Uint8Array {
    return this.tap.arena;
  }

  /** Queue arena[off, off+len) for sending. Flushes first when the descriptor array is full. */
  send(off: number, len: number): void {
    if (this.count === this.tap.txOffsets.length) this.flush();
    this.tap.txOffsets[this.count] = off;
    this.tap.txLengths[this.count] = len;
    this.count++;
  }

  /**
   * A free transmit slot for a frame the director builds: its arena offset. When all are in use the
   * batch is flushed first (frames already queued are sent), so a slot is always available.
   */
  allocate(): number {
    if (this.nextTxSlot === this.tap.txSlots) this.flush();
    return this.tap.txSlotOffset(this.nextTxSlot++);
  }

  get slotSize(): number {
    return this.tap.slotSize;
  }

  flush(): void {
    if (this.count > 0) this.tap.write(this.count);
    this.count = 0;
    this.nextTxSlot = 0;
  }
}
