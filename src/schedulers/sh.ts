/**
 * sh — source hashing (kernel net/netfilter/ipvs/ip_vs_sh.c).
 *
 * A 256-bucket table (CONFIG_IP_VS_SH_TAB_BITS = 8) rebuilt on bind, add, edit and delete: the
 * buckets 0..255 are dealt out round-robin over the list, each destination receiving `weight`
 * consecutive buckets per round. The move-on test is `++count >= weight`, so a weight-0 destination
 * still gets one bucket per round (and fails at lookup because of its weight).
 *
 * Lookup key = port + saddr (u32 wrap), where port is the packet's source port only with the service
 * flag sh-port (IP_VS_SVC_F_SCHED2), else 0; bucket = (offset + hash_32(key, 8)) & 255 with offset 0.
 * The chosen destination must have weight > 0 and not be OVERLOADed. With sh-fallback
 * (IP_VS_SVC_F_SCHED1) an unavailable bucket triggers a walk: for offset = 0..255,
 * roffset = (offset + ihash) % 256 and bucket = (roffset + hash_32(key, 8)) & 255 — i.e. the walk
 * starts at bucket 2 * ihash (mod 256), not at ihash + 1 — and the first available destination wins.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import { DestinationChange, type PacketTuple, type Scheduler } from './scheduler.js';
import { hash32 } from './dh.js';

export const SH_TAB_BITS = 8;
export const SH_TAB_SIZE = 1 << SH_TAB_BITS;
const SH_TAB_MASK = SH_TAB_SIZE - 1;

/** Service flags (uapi IP_VS_SVC_F_SCHED_SH_FALLBACK = SCHED1, IP_VS_SVC_F_SCHED_SH_PORT = SCHED2). */
export const SH_FALLBACK = 0x0008;
export const SH_PORT = 0x0010;

export class ShScheduler implements Scheduler {
  readonly name = 'sh';
  /** Bucket → destination id, -1 = empty (no destinations). */
  readonly buckets = new Int32Array(SH_TAB_SIZE).fill(-1);

  /** The service flags; read on every schedule (like svc->flags), so the control plane may change them. */
  constructor(public flags = 0) {}

  update(dests: readonly number[], table: DestinationTable, change: DestinationChange, changed: number): void {
    // ip_vs_sh_reassign; del_dest runs after the unlink, so skip the destination being deleted.
    const skip = change === DestinationChange.Deleted ? changed : -2;
    const n = dests.length;
    let live = 0;
    for (let i = 0; i < n; i++) if (dests[i] !== skip) live++;
    let p = 0;
    let count = 0;
    for (let i = 0; i < SH_TAB_SIZE; i++) {
      if (live === 0) {
        this.buckets[i] = -1;
        continue;
      }
      while (dests[p] === skip) p = p + 1 === n ? 0 : p + 1;
      const id = dests[p];
      this.buckets[i] = id;
      // Don't move to the next destination until its weight is filled.
      if (++count >= table.weight[id]) {
        p = p + 1 === n ? 0 : p + 1;
        count = 0;
      }
    }
  }

  schedule(_dests: readonly number[], table: DestinationTable, pkt: PacketTuple): number {
    const port = (this.flags & SH_PORT) !== 0 ? pkt.sport : 0;
    const h = hash32((port + pkt.saddr) >>> 0, SH_TAB_BITS);
    const ihash = h & SH_TAB_MASK;
    const weight = table.weight;
    const flags = table.flags;
    let id = this.buckets[ihash];
    if (id < 0) return -1;
    if (weight[id] > 0 && (flags[id] & DEST_F_OVERLOAD) === 0) return id;
    if ((this.flags & SH_FALLBACK) === 0) return -1;
    // ip_vs_sh_get_fallback: loop around the table from a point derived from the original hash.
    for (let offset = 0; offset < SH_TAB_SIZE; offset++) {
      const roffset = (offset + ihash) % SH_TAB_SIZE;
      id = this.buckets[(roffset + h) & SH_TAB_MASK];
      if (id < 0) break;
      if (weight[id] > 0 && (flags[id] & DEST_F_OVERLOAD) === 0) return id;
    }
    return -1;
  }
}
