/**
 * IPv4 neighbour cache (ARP): IP -> MAC for the next hops the director sends to, plus a bounded queue of
 * frames waiting for a resolution.
 *
 * Storage is typed arrays indexed by a slot; the IP -> slot index is an lru-cache bounded to the number
 * of slots, whose eviction frees the slot. The data plane does not consult the index per packet: it
 * caches the slot per destination and per connection and only checks `ip[slot] === hop`.
 *
 * States as Linux's (simplified): INCOMPLETE (request sent, frames queued), REACHABLE (confirmed by a
 * reply within `reachableMs`), STALE (older: still used, re-probed at most once per second), FAILED.
 */
import { LRUCache } from 'lru-cache';
import type { TxBatch } from './tx-batch.js';
import { copyMac } from './wire/bytes.js';

export const NEIGH_FREE = 0;
export const NEIGH_INCOMPLETE = 1;
export const NEIGH_REACHABLE = 2;
export const NEIGH_FAILED = 3;

const MAX_PROBES = 3;
const PROBE_INTERVAL_MS = 1000;

export class NeighborTable {
  readonly slots: number;
  readonly ip: Uint32Array;
  readonly mac: Uint8Array;
  readonly state: Uint8Array;
  readonly confirmedAt: Float64Array;
  readonly probedAt: Float64Array;
  readonly probes: Uint8Array;
  private readonly index: LRUCache<number, number>;
  private readonly freeSlots: number[] = [];

  // Frames waiting for a next hop: copies in a preallocated pool.
  readonly pendingSlots: number;
  readonly pendingSize: number;
  readonly pendingData: Uint8Array;
  readonly pendingLen: Int32Array;
  readonly pendingNeighbor: Int32Array;
  private readonly perNeighborLimit: number;

  reachableMs = 30_000;
  /**
   * Called when an entry for `ip` is created and when it is forgotten: the IPv6 cache keys entries by
   * Ipv6AddressIds ids and holds a reference on each meanwhile.
   */
  onAdd: ((ip: number) => void) | null = null;
  onForget: ((ip: number) => void) | null = null;

  constructor(slots = 1024, pendingSlots = 256, pendingSize = 2048, perNeighborLimit = 16) {
    this.slots = slots;
    this.ip = new Uint32Array(slots);
    this.mac = new Uint8Array(slots * 6);
    this.state = new Uint8Array(slots);
    this.confirmedAt = new Float64Array(slots);
    this.probedAt = new Float64Array(slots);
    this.probes = new Uint8Array(slots);
    for (let s = slots - 1; s >= 0; s--) this.freeSlots.push(s);
    this.index = new LRUCache<number, number>({
      max: slots,
      dispose: (slot, _key, reason) => {
        // 'set' replaces a value for the same key: the slot stays in use.
        if (reason === 'set') return;
        this.onForget?.(this.ip[slot]);
        this.state[slot] = NEIGH_FREE;
        this.dropPendingFor(slot);
        this.freeSlots.push(slot);
      },
    });
    this.pendingSlots = pendingSlots;
    this.pendingSize = pendingSize;
    this.pendingData = new Uint8Array(pendingSlots * pendingSize);
    this.pendingLen = new Int32Array(pendingSlots);
    this.pendingNeighbor = new Int32Array(pendingSlots).fill(-1);
    this.perNeighborLimit = perNeighborLimit;
  }

  /** Slot of `ip` or -1. */
  lookup(ip: number): number {
    const s = this.index.get(ip | 0);
    return s === undefined ? -1 : s;
  }

  /** Slot of `ip`, creating an INCOMPLETE entry if there is none. */
  ensure(ip: number): number {
    const key = ip | 0;
    const s = this.index.get(key);
    if (s !== undefined) return s;
    if (this.freeSlots.length === 0) this.index.pop(); // evict the least recently used (dispose frees its slot)
    const slot = this.freeSlots.pop()!;
    this.ip[slot] = ip >>> 0;
    this.state[slot] = NEIGH_INCOMPLETE;
    this.confirmedAt[slot] = 0;
    this.probedAt[slot] = -Infinity;
    this.probes[slot] = 0;
    this.index.set(key, slot);
    this.onAdd?.(ip);
    return slot;
  }

  /** Record `ip` is at mac[macOff..+6]; returns the slot. */
  learn(ip: number, mac: Uint8Array, macOff: number, now: number): number {
    const slot = this.ensure(ip);
    const o = slot * 6;
    for (let i = 0; i < 6; i++) this.mac[o + i] = mac[macOff + i];
    this.state[slot] = NEIGH_REACHABLE;
    this.confirmedAt[slot] = now;
    this.probes[slot] = 0;
    return slot;
  }

  /** Update an existing entry only (gratuitous ARP / requests from hosts we do not talk to). */
  refreshIfKnown(ip: number, mac: Uint8Array, macOff: number, now: number): number {
    const s = this.index.peek(ip | 0);
    if (s === undefined) return -1;
    return this.learn(ip, mac, macOff, now);
  }

  /** True when the entry is usable for sending. */
  usable(slot: number, ip: number): boolean {
    return slot >= 0 && this.ip[slot] === ip && this.state[slot] === NEIGH_REACHABLE;
  }

  /** Should a (re)probe be sent now? Marks the probe as sent. */
  shouldProbe(slot: number, now: number): boolean {
    if (now - this.probedAt[slot] < PROBE_INTERVAL_MS) return false;
    if (this.state[slot] === NEIGH_REACHABLE && now - this.confirmedAt[slot] < this.reachableMs) return false;
    this.probedAt[slot] = now;
    this.probes[slot]++;
    return true;
  }

  /** Queue a copy of a frame until `slot` resolves; false when the queue (or the per-neighbour share) is full. */
  enqueue(slot: number, buf: Uint8Array, off: number, len: number): boolean {
    if (len > this.pendingSize) return false;
    let mine = 0, free = -1;
    for (let p = 0; p < this.pendingSlots; p++) {
      const n = this.pendingNeighbor[p];
      if (n === slot) mine++;
      else if (n < 0 && free < 0) free = p;
    }
    if (free < 0 || mine >= this.perNeighborLimit) return false;
    this.pendingData.set(buf.subarray(off, off + len), free * this.pendingSize);
    this.pendingLen[free] = len;
    this.pendingNeighbor[free] = slot;
    return true;
  }

  /**
   * Timer work: INCOMPLETE entries that were probed MAX_PROBES times without an answer become FAILED and
   * their queued frames are dropped. Returns the slots that need another probe (the caller sends them).
   */
  tick(now: number, probe: (slot: number) => void, dropped: (n: number) => void): void {
    for (let s = 0; s < this.slots; s++) {
      if (this.state[s] !== NEIGH_INCOMPLETE) continue;
      if (now - this.probedAt[s] < PROBE_INTERVAL_MS) continue;
      if (this.probes[s] >= MAX_PROBES) {
        this.state[s] = NEIGH_FAILED;
        dropped(this.dropPendingFor(s));
        this.index.delete(this.ip[s] | 0);
        continue;
      }
      this.probedAt[s] = now;
      this.probes[s]++;
      probe(s);
    }
  }

  /** Send the frames that were waiting for `slot` (now resolved), from our MAC `srcMac`. */
  sendPending(slot: number, tx: TxBatch, srcMac: Uint8Array): void {
    for (let p = 0; p < this.pendingSlots; p++) {
      if (this.pendingNeighbor[p] !== slot) continue;
      const len = this.pendingLen[p];
      const o = tx.allocate();
      const arena = tx.arena;
      arena.set(this.pendingData.subarray(p * this.pendingSize, p * this.pendingSize + len), o);
      copyMac(arena, o, this.mac, slot * 6);
      copyMac(arena, o + 6, srcMac, 0);
      this.pendingNeighbor[p] = -1;
      tx.send(o, len);
    }
  }

  /** Free the pending frames of a slot; returns how many were dropped. */
  dropPendingFor(slot: number): number {
    let n = 0;
    for (let p = 0; p < this.pendingSlots; p++)
      if (this.pendingNeighbor[p] === slot) {
        this.pendingNeighbor[p] = -1;
        n++;
      }
    return n;
  }

  get size(): number {
    return this.index.size;
  }

  entries(): { ip: number; mac: string; state: number }[] {
    const out: { ip: number; mac: string; state: number }[] = [];
    for (const [, slot] of this.index.entries()) {
      const m = Array.from(this.mac.subarray(slot * 6, slot * 6 + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
      out.push({ ip: this.ip[slot], mac: m, state: this.state[slot] });
    }
    return out;
  }
}
