/**
 * Typed wrapper around the native TAP addon (native/tap_device.cc).
 *
 * Memory layout: one arena buffer. Receive slots [0, rxSlots) each `slotSize` bytes, filled by the
 * addon; then `txSlots` transmit slots for frames the director originates (ARP, ICMP, RST). Frames
 * to send are described by (offset, length) pairs in txOffsets/txLengths, so a received frame that was
 * rewritten in place is sent from its receive slot without copying.
 */
import { requireNativeAddon } from './native-addon.js';

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
  setBuffers(arena: Uint8Array, rxSlotSize: number, rxSlots: number, rxLengths: Int32Array, txOffsets: Int32Array, txLengths: Int32Array, headroom?: number): void;
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
}

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

  constructor(name: string, opts: TapOptions = {}) {
    const { TapDevice } = loadAddon();
    this.slotSize = opts.slotSize ?? 2048;
    this.rxSlots = opts.rxSlots ?? 64;
    this.txSlots = opts.txSlots ?? 64;
    const txCapacity = opts.txCapacity ?? this.rxSlots + this.txSlots;
    this.headroom = opts.headroom ?? 64;
    this.device = new TapDevice(name, { tun: opts.tun ?? false });
    this.arena = new Uint8Array((this.rxSlots + this.txSlots) * this.slotSize);
    this.rxLengths = new Int32Array(this.rxSlots);
    this.txOffsets = new Int32Array(txCapacity);
    this.txLengths = new Int32Array(txCapacity);
    this.txBase = this.rxSlots * this.slotSize;
    this.device.setBuffers(this.arena, this.slotSize, this.rxSlots, this.rxLengths, this.txOffsets, this.txLengths, this.headroom);
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
