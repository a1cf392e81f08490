/**
 * lblcr — locality-based least connection with replication (kernel net/netfilter/ipvs/ip_vs_lblcr.c).
 *
 * The cache maps the packet's destination address to a SET of real servers (newest member first,
 * list_add_rcu). On a hit (lastuse refreshed):
 * 1. dest = the weighted least-loaded member (ip_vs_dest_set_min): members that are OVERLOADed,
 *    not AVAILABLE or have weight 0 are passed over; strict comparison, earlier member wins ties;
 * 2. if the set has more than one member and was last modified more than lblcr_expiration ago
 *    (time_after: strictly), the weighted most-loaded member (ip_vs_dest_set_max: only weight > 0
 *    counts — no OVERLOAD or AVAILABLE test) is erased, which updates lastmod. Kernel behaviour
 *    copied: the member erased can be `dest` itself, which is still returned by step 3;
 * 3. if dest exists and is not lblc-overloaded (activeconns > weight while some destination of the
 *    service has activeconns * 2 < weight), it is used;
 * 4. otherwise the wlc minimum of the whole service is chosen and added to the set (if not already
 *    a member — then lastmod is left alone).
 * On a miss the wlc minimum is chosen and a new entry with the one-member set is created.
 * Garbage collection is lblc's (see lblc.ts: 60 s ticks, full check every 30th, partial above 16384
 * entries), with lblcr_expiration. Unlike lblc, lblcr never replaces entries, so its entry counter
 * stays exact.
 *
 * A deleted destination stays in the sets as a "trashed" member (the kernel holds a reference to the
 * dest in the trash): never chosen by step 1, but it still counts in the set size and can be erased
 * by step 2 with its last weight and its remaining connections (0 once its id was released).
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import { DestinationChange, type PacketTuple, type Scheduler } from './scheduler.js';
import { leastWeightedOverhead } from './wlc.js';
import { LBLC_TAB_SIZE, LocalityCache, type LocalityOptions, lblcOverloaded } from './lblc.js';

export class LblcrScheduler extends LocalityCache implements Scheduler {
  readonly name = 'lblcr';
  // Per entry: its destination set (a chain of elements), size and lastmod.
  private setHead = new Int32Array(0);
  private setSize = new Int32Array(0);
  private setLastmod = new Float64Array(0);
  // Set elements, with a free list chained through elNext.
  private elNext = new Int32Array(0);
  private elDest = new Int32Array(0);
  /** 1 = the destination was deleted from the service (kernel: in the trash). */
  private elTrashed = new Uint8Array(0);
  private elTrashedWeight = new Int32Array(0);
  private elTrashedService = new Int32Array(0);
  private elFree = -1;
  private elHigh = 0;
  private elCapacity = 0;

  constructor(options: LocalityOptions = {}) {
    super(options);
  }

  /** The set of a destination address in set order (allocates; for tests). Trashed members as -2. */
  members(daddr: number): number[] {
    const en = this.find(daddr >>> 0);
    const out: number[] = [];
    if (en < 0) return out;
    for (let e = this.setHead[en]; e >= 0; e = this.elNext[e]) out.push(this.elTrashed[e] ? -2 : this.elDest[e]);
    return out;
  }

  /** When the set of a destination address was last modified (ms), or undefined. */
  lastModified(daddr: number): number | undefined {
    const en = this.find(daddr >>> 0);
    return en < 0 ? undefined : this.setLastmod[en];
  }

  update(_dests: readonly number[], table: DestinationTable, change: DestinationChange, changed: number): void {
    if (changed === -1) {
      this.resetCache();
      return;
    }
    if (change !== DestinationChange.Deleted) return;
    // Keep the members as trashed ones with what the kernel would still see of the dest.
    for (let b = 0; b < LBLC_TAB_SIZE; b++) {
      for (let en = this.heads[b]; en >= 0; en = this.enNext[en]) {
        for (let e = this.setHead[en]; e >= 0; e = this.elNext[e]) {
          if (this.elTrashed[e] === 0 && this.elDest[e] === changed) {
            this.elTrashed[e] = 1;
            this.elTrashedWeight[e] = table.weight[changed];
            this.elTrashedService[e] = table.service[changed];
          }
        }
      }
    }
  }

  schedule(dests: readonly number[], table: DestinationTable, pkt: PacketTuple): number {
    const now = this.now();
    if (now >= this.nextCheck) this.expire(now);
    const daddr = pkt.daddr >>> 0;
    let en = this.find(daddr);
    let dest: number;
    if (en >= 0) {
      this.enLastuse[en] = now;
      // Get the least loaded destination.
      dest = this.setMin(en, table);
      // More than one destination + enough time passed by: cleanup.
      if (this.setSize[en] > 1 && now > this.setLastmod[en] + this.expirationMs) {
        const m = this.setMax(en, table);
        if (m >= 0) this.setErase(en, m, now);
      }
      // If the destination is not overloaded, use it (even if step 2 just erased it).
      if (dest >= 0 && !lblcOverloaded(dest, dests, table)) return dest;
      // The cache entry is invalid, time to schedule.
      dest = leastWeightedOverhead(dests, table);
      if (dest < 0) return -1;
      this.setInsert(en, dest, true, now);
      return dest;
    }
    // No cache entry, time to schedule.
    dest = leastWeightedOverhead(dests, table);
    if (dest < 0) return -1;
    en = this.insert(daddr, now);
    this.setHead[en] = -1;
    this.setSize[en] = 0;
    this.setInsert(en, dest, false, now);
    return dest;
  }

  /** ip_vs_dest_set_min. */
  private setMin(en: number, table: DestinationTable): number {
    const weight = table.weight;
    const flags = table.flags;
    let e = this.setHead[en];
    let least = -1;
    let loh = 0;
    // The first member that is not OVERLOADed, has weight > 0 and is AVAILABLE.
    for (; e >= 0; e = this.elNext[e]) {
      if (this.elTrashed[e]) continue; // not AVAILABLE
      const id = this.elDest[e];
      if ((flags[id] & DEST_F_OVERLOAD) !== 0) continue;
      if (weight[id] > 0 && (flags[id] & DEST_F_AVAILABLE) !== 0) {
        least = id;
        loh = table.activeConns[id] * 256 + table.inactConns[id];
        break;
      }
    }
    if (least < 0) return -1;
    for (e = this.elNext[e]; e >= 0; e = this.elNext[e]) {
      if (this.elTrashed[e]) continue;
      const id = this.elDest[e];
      if ((flags[id] & DEST_F_OVERLOAD) !== 0) continue;
      const doh = table.activeConns[id] * 256 + table.inactConns[id];
      if (loh * weight[id] > doh * weight[least] && (flags[id] & DEST_F_AVAILABLE) !== 0) {
        least = id;
        loh = doh;
      }
    }
    return least;
  }

  /** ip_vs_dest_set_max; returns the element, not the destination. */
  private setMax(en: number, table: DestinationTable): number {
    let e = this.setHead[en];
    let most = -1;
    let moh = 0;
    let mw = 0;
    for (; e >= 0; e = this.elNext[e]) {
      const w = this.memberWeight(e, table);
      if (w > 0) {
        most = e;
        mw = w;
        moh = this.memberOverhead(e, table);
        break;
      }
    }
    if (most < 0) return -1;
    for (e = this.elNext[e]; e >= 0; e = this.elNext[e]) {
      const dw = this.memberWeight(e, table);
      const doh = this.memberOverhead(e, table);
      // moh/mw < doh/dw  <=>  moh * dw < doh * mw, where mw, dw > 0.
      if (moh * dw < doh * mw && dw > 0) {
        most = e;
        moh = doh;
        mw = dw;
      }
    }
    return most;
  }

  private memberWeight(e: number, table: DestinationTable): number {
    return this.elTrashed[e] ? this.elTrashedWeight[e] : table.weight[this.elDest[e]];
  }

  private memberOverhead(e: number, table: DestinationTable): number {
    const id = this.elDest[e];
    if (this.elTrashed[e]) {
      // The id still denotes the trashed destination only while it is allocated, unlinked and of
      // this service; once released (no connections left) its kernel counterpart has 0 connections.
      const still =
        table.used[id] === 1 &&
        (table.flags[id] & DEST_F_AVAILABLE) === 0 &&
        table.service[id] === this.elTrashedService[e];
      if (!still) return 0;
    }
    return table.activeConns[id] * 256 + table.inactConns[id];
  }

  /** ip_vs_dest_set_insert: at the head of the set; with `check`, nothing happens for a member. */
  private setInsert(en: number, dest: number, check: boolean, now: number): void {
    if (check) {
      for (let e = this.setHead[en]; e >= 0; e = this.elNext[e]) {
        if (this.elTrashed[e] === 0 && this.elDest[e] === dest) return;
      }
    }
    if (this.elFree < 0 && this.elHigh === this.elCapacity) this.growElements(this.elCapacity === 0 ? 256 : this.elCapacity * 2);
    let e: number;
    if (this.elFree >= 0) {
      e = this.elFree;
      this.elFree = this.elNext[e];
    } else e = this.elHigh++;
    this.elDest[e] = dest;
    this.elTrashed[e] = 0;
    this.elNext[e] = this.setHead[en];
    this.setHead[en] = e;
    this.setSize[en]++;
    this.setLastmod[en] = now;
  }

  /** ip_vs_dest_set_erase of one element. */
  private setErase(en: number, el: number, now: number): void {
    let p = this.setHead[en];
    if (p === el) this.setHead[en] = this.elNext[el];
    else {
      while (this.elNext[p] !== el) p = this.elNext[p];
      this.elNext[p] = this.elNext[el];
    }
    this.setSize[en]--;
    this.setLastmod[en] = now;
    this.elNext[el] = this.elFree;
    this.elFree = el;
  }

  protected releasePayload(en: number): void {
    // ip_vs_dest_set_eraseall.
    let e = this.setHead[en];
    while (e >= 0) {
      const next = this.elNext[e];
      this.elNext[e] = this.elFree;
      this.elFree = e;
      e = next;
    }
    this.setHead[en] = -1;
    this.setSize[en] = 0;
  }

  protected growPayload(capacity: number): void {
    const head = new Int32Array(capacity).fill(-1);
    head.set(this.setHead);
    const size = new Int32Array(capacity);
    size.set(this.setSize);
    const lastmod = new Float64Array(capacity);
    lastmod.set(this.setLastmod);
    this.setHead = head;
    this.setSize = size;
    this.setLastmod = lastmod;
  }

  private growElements(capacity: number): void {
    const grow = <T extends Int32Array | Uint8Array>(a: T): T => {
      const b = new (a.constructor as { new (n: number): T })(capacity);
      b.set(a);
      return b;
    };
    this.elNext = grow(this.elNext);
    this.elDest = grow(this.elDest);
    this.elTrashed = grow(this.elTrashed);
    this.elTrashedWeight = grow(this.elTrashedWeight);
    this.elTrashedService = grow(this.elTrashedService);
    this.elCapacity = capacity;
  }
}
