/**
 * Frames to send in the current batch, as (offset, length) pairs into the TAP arena: received frames
 * forwarded from their receive slot after an in-place rewrite, and frames the director builds itself in
 * the transmit slots. flush() hands the whole batch to the addon in one call.
 */
import type { Tap } from './tap.js';
import { VNET_HDR_LEN } from './offload.js';

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
    const v = this.tap.txVnet;
    if (v) v.fill(0, this.count * VNET_HDR_LEN, this.count * VNET_HDR_LEN + VNET_HDR_LEN); // no offload
    this.tap.txOffsets[this.count] = off;
    this.tap.txLengths[this.count] = len;
    this.count++;
  }

  /** send() for an offloaded frame, with the virtio_net_hdr at vnet[at, at+10) (offload.ts). */
  sendOffloaded(off: number, len: number, vnet: Uint8Array, at: number): void {
    if (this.count === this.tap.txOffsets.length) this.flush();
    const v = this.tap.txVnet!;
    const o = this.count * VNET_HDR_LEN;
    for (let i = 0; i < VNET_HDR_LEN; i++) v[o + i] = vnet[at + i];
    this.tap.txOffsets[this.count] = off;
    this.tap.txLengths[this.count] = len;
    this.count++;
  }

  /** Arena offset of segment slot `i` (offloaded TAPs: where a super-frame's segments are cut to). */
  segmentSlot(i: number): number {
    return this.tap.segmentSlotOffset(i);
  }

  get segmentSlots(): number {
    return this.tap.segmentSlots;
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
