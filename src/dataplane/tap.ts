/**
 * Typed wrapper around the native TAP addon (native/tap_device.cc).
 *
 * Memory layout: one arena buffer. Receive slots [0, rxSlots) each `slotSize` bytes, filled by the
 * addon; then `txSlots` transmit slots for frames the director originates (ARP, ICMP, RST). Frames
 * to send are described by (offset, length) pairs in txOffsets/txLengths, so a received frame that was
 * rewritten in place is sent from its receive slot without copying.
 *
 * With `offload`, the device is opened with IFF_VNET_HDR and TUNSETOFFLOAD (checksum, TSO4, TSO6): frames
 * carry a virtio_net_hdr each, kept beside the arena in rxVnet/txVnet (10 bytes per receive slot / transmit
 * descriptor, see offload.ts), and TCP super-frames of up to 64 KB cross the TAP, so slots are 64 KB + the
 * headroom. `segmentSlots` more slots after the transmit slots take super-frames cut into segments.
 */
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, VNET_HDR_LEN } from './offload.js';
import { requireNativeAddon, tableBuffer } from './native-addon.js';

interface NativeTapDevice {
  readonly name: string;
  readonly fd: number;
  readonly created: boolean;
  readonly vnetHdr: boolean;
  readonly tun: boolean;
  setMac(mac: Uint8Array): void;
  setMtu(mtu: number): void;
  setUp(up: boolean): void;
  addToBridge(bridge: string): void;
  setOffload(flags: number): void;
  /** TUNSETSTEERINGEBPF: steer frames to queues with a BPF program (flow-steering.ts); -1 detaches. */
  setSteering(progFd: number): void;
  setBuffers(
    arena: Uint8Array,
    rxSlotSize: number,
    rxSlots: number,
    rxLengths: Int32Array,
    txOffsets: Int32Array,
    txLengths: Int32Array,
    headroom?: number,
    rxVnet?: Uint8Array | null,
    txVnet?: Uint8Array | null,
  ): void;
  read(max?: number): number;
  write(count: number): number;
  start(onFrames: (count: number) => void): void;
  stop(): void;
  close(): void;
  counters(): TapCounters;
  setBusyPoll(windowUs: number, maxSpinUs?: number): void;
}

export interface TapCounters {
  rxFrames: number;
  rxErrors: number;
  txFrames: number;
  txErrors: number;
  txBusy: number;
  wakeups: number;
  /** Batches caught while busy-polling (without a wake-up). */
  busyPollBatches: number;
}

export interface TapOptions {
  /** Frames read per wake-up at most (batch size). */
  rxSlots?: number;
  /** Bytes per slot: must hold the largest frame (MTU + 14 + 4). */
  slotSize?: number;
  /** Slots for frames the director builds itself. */
  txSlots?: number;
  /** Transmit descriptors per batch (received frames forwarded + originated frames). */
  txCapacity?: number;
  /**
   * Bytes left free before each received frame, so a header can be prepended in place (IPIP needs 20,
   * IPv6 tunnels 40, GRE/GUE a few more). Default 64.
   */
  headroom?: number;
  /** A layer-3 TUN device (IP packets without an Ethernet header) instead of a TAP. */
  tun?: boolean;
  /** IFF_VNET_HDR with checksum and TCP segmentation offloads (64 KB slots). */
  offload?: boolean;
  /** IFF_MULTI_QUEUE: each Tap opened on the same name is one more queue of the device. */
  multiQueue?: boolean;
}

/** Slot size for offloaded devices: the largest IP packet (64 KB) with its Ethernet header and headroom. */
export const OFFLOAD_SLOT_SIZE = 65536 + 256;

function loadAddon(): { TapDevice: new (name: string, opts?: { vnetHdr?: boolean; multiQueue?: boolean; tun?: boolean }) => NativeTapDevice } {
  return requireNativeAddon() as unknown as { TapDevice: new (name: string, opts?: { vnetHdr?: boolean; multiQueue?: boolean; tun?: boolean }) => NativeTapDevice };
}

export class Tap {
  readonly device: NativeTapDevice;
  readonly arena: Uint8Array;
  readonly slotSize: number;
  readonly rxSlots: number;
  readonly txSlots: number;
  readonly rxLengths: Int32Array;
  readonly txOffsets: Int32Array;
  readonly txLengths: Int32Array;
  /** Byte offset of the first transmit slot in the arena. */
  readonly txBase: number;
  /** Free bytes before each received frame in its slot. */
  readonly headroom: number;
  /** virtio_net_hdr of each receive slot and each transmit descriptor (offload only). */
  readonly rxVnet: Uint8Array | null;
  readonly txVnet: Uint8Array | null;
  /** Slots for the segments of a super-frame (offload only). */
  readonly segmentSlots: number;

  constructor(name: string, opts: TapOptions = {}) {
    const { TapDevice } = loadAddon();
    const offload = opts.offload ?? false;
    this.slotSize = offload ? Math.max(opts.slotSize ?? 0, OFFLOAD_SLOT_SIZE) : (opts.slotSize ?? 2048);
    this.rxSlots = opts.rxSlots ?? 64;
    this.txSlots = opts.txSlots ?? 64;
    this.segmentSlots = offload ? 64 : 0;
    const txCapacity = opts.txCapacity ?? this.rxSlots + this.txSlots + this.segmentSlots;
    this.headroom = opts.headroom ?? 64;
    this.device = new TapDevice(name, { tun: opts.tun ?? false, vnetHdr: offload, multiQueue: opts.multiQueue ?? false });
    // With 64 KB slots a batch spans megabytes: huge pages keep it to a few TLB entries.
    this.arena = new Uint8Array(tableBuffer((this.rxSlots + this.txSlots + this.segmentSlots) * this.slotSize));
    this.rxLengths = new Int32Array(this.rxSlots);
    this.txOffsets = new Int32Array(txCapacity);
    this.txLengths = new Int32Array(txCapacity);
    this.txBase = this.rxSlots * this.slotSize;
    this.rxVnet = offload ? new Uint8Array(VNET_HDR_LEN * this.rxSlots) : null;
    this.txVnet = offload ? new Uint8Array(VNET_HDR_LEN * txCapacity) : null;
    try {
      this.device.setBuffers(this.arena, this.slotSize, this.rxSlots, this.rxLengths, this.txOffsets, this.txLengths, this.headroom, this.rxVnet, this.txVnet);
      if (offload) this.device.setOffload(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
    } catch (e) {
      this.device.close();
      throw e;
    }
  }

  get name(): string {
    return this.device.name;
  }

  /** True when this process created the device (it disappears when closed). */
  get created(): boolean {
    return this.device.created;
  }

  /** Arena offset of the frame received into `slot`. */
  rxOffset(slot: number): number {
    return slot * this.slotSize + this.headroom;
  }

  txSlotOffset(slot: number): number {
    return this.txBase + slot * this.slotSize;
  }

  /** Arena offset of segment slot `slot`'s frame (after the headroom, like a received frame). */
  segmentSlotOffset(slot: number): number {
    return (this.rxSlots + this.txSlots + slot) * this.slotSize + this.headroom;
  }

  start(onFrames: (count: number) => void): void {
    this.device.start(onFrames);
  }

  write(count: number): number {
    return this.device.write(count);
  }

  close(): void {
    this.device.close();
  }
}
