/**
 * A stand-in for the TAP in unit tests of the pipeline: the Tap's arena layout (receive slots, transmit
 * slots, segment slots), virtio_net_hdr arrays as an offloaded Tap has them, and a record of every frame
 * (and header) that would have been written.
 */
import type { Tap } from '../src/dataplane/tap.js';
import { TxBatch } from '../src/dataplane/tx-batch.js';
import { VNET_HDR_LEN } from '../src/dataplane/offload.js';

export class RecordingTap {
  readonly arena: Uint8Array;
  readonly txOffsets: Int32Array;
  readonly txLengths: Int32Array;
  readonly rxVnet: Uint8Array;
  readonly txVnet: Uint8Array;
  /** Frames written, and the virtio_net_hdr each went with. */
  readonly sent: Uint8Array[] = [];
  readonly sentVnet: Uint8Array[] = [];

  constructor(
    readonly slotSize: number,
    readonly rxSlots: number,
    readonly txSlots: number,
    readonly segmentSlots = 0,
    readonly headroom = 64,
  ) {
    const descriptors = rxSlots + txSlots + segmentSlots;
    this.arena = new Uint8Array(descriptors * slotSize);
    this.txOffsets = new Int32Array(descriptors);
    this.txLengths = new Int32Array(descriptors);
    this.rxVnet = new Uint8Array(VNET_HDR_LEN * rxSlots);
    this.txVnet = new Uint8Array(VNET_HDR_LEN * descriptors);
  }

  txSlotOffset(i: number): number {
    return (this.rxSlots + i) * this.slotSize;
  }

  segmentSlotOffset(i: number): number {
    return (this.rxSlots + this.txSlots + i) * this.slotSize + this.headroom;
  }

  write(n: number): number {
    for (let i = 0; i < n; i++) {
      this.sent.push(this.arena.slice(this.txOffsets[i], this.txOffsets[i] + this.txLengths[i]));
      this.sentVnet.push(this.txVnet.slice(VNET_HDR_LEN * i, VNET_HDR_LEN * (i + 1)));
    }
    return n;
  }

  /** A TxBatch writing to this stand-in. */
  txBatch(): TxBatch {
    return new TxBatch(this as unknown as Tap);
  }

  /** Forget what was written so far. */
  clear(): void {
    this.sent.length = 0;
    this.sentVnet.length = 0;
  }
}
