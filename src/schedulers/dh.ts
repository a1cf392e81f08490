/**
 * dh — destination hashing (kernel net/netfilter/ipvs/ip_vs_dh.c).
 *
 * A 256-bucket table (CONFIG_IP_VS_DH_TAB_BITS = 8) filled on bind, add and delete (the kernel has
 * no upd_dest hook: weights play no part in placement): bucket i gets the (i mod N)-th destination in
 * list order. A packet goes to bucket hash_32(daddr, 8) of its destination address; the scheduler
 * fails when that destination is not AVAILABLE, has weight <= 0 or is OVERLOADed (no fallback).
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import { DestinationChange, type PacketTuple, type Scheduler } from './scheduler.js';

export const DH_TAB_BITS = 8;
export const DH_TAB_SIZE = 1 << DH_TAB_BITS;

/** Kernel hash_32 (include/linux/hash.h): the top `bits` bits of v * GOLDEN_RATIO_32 (mod 2^32). */
export function hash32(v: number, bits: number): number {
  return (Math.imul(v, 0x61c88647) >>> 0) >>> (32 - bits);
}

export class DhScheduler implements Scheduler {
  readonly name = 'dh';
  /** Bucket → destination id, -1 = empty (no destinations). */
  readonly buckets = new Int32Array(DH_TAB_SIZE).fill(-1);

  update(dests: readonly number[], _table: DestinationTable, change: DestinationChange, changed: number): void {
    // ip_vs_dh_reassign runs on init_service, add_dest and del_dest; del_dest is called after the
    // unlink, so the destination being deleted is not part of the new table.
    if (change === DestinationChange.Edited) return;
    const skip = change === DestinationChange.Deleted ? changed : -2;
    const n = dests.length;
    let p = 0;
    for (let i = 0; i < DH_TAB_SIZE; i++) {
      // Walk the list cyclically, skipping the deleted entry.
      let id = -1;
      for (let tries = 0; tries < n; tries++) {
        const candidate = dests[p];
        p = p + 1 === n ? 0 : p + 1;
        if (candidate !== skip) {
          id = candidate;
          break;
        }
      }
      this.buckets[i] = id;
    }
  }

  schedule(_dests: readonly number[], table: DestinationTable, pkt: PacketTuple): number {
    const id = this.buckets[hash32(pkt.daddr, DH_TAB_BITS)];
    if (id < 0) return -1;
    const f = table.flags[id];
    if ((f & DEST_F_AVAILABLE) === 0 || table.weight[id] <= 0 || (f & DEST_F_OVERLOAD) !== 0) return -1;
    return id;
  }
}
