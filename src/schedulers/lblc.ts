/**
 * lblc — locality-based least connection (kernel net/netfilter/ipvs/ip_vs_lblc.c).
 *
 * A cache maps the packet's destination address to a real server (1024 hash buckets,
 * hash_32(daddr, 10)). On a hit the entry's lastuse is refreshed and its server is used when it is
 * AVAILABLE, has weight > 0 and is not "overloaded" in lblc's sense: activeconns > weight while some
 * destination of the service has activeconns * 2 < weight. The OVERLOAD threshold flag is NOT checked
 * for the cached server. Otherwise the wlc minimum of the service is chosen and the cache entry
 * (re)mapped to it.
 *
 * Garbage collection (the kernel's periodic timer, every 60 s from bind; emulated lazily from the
 * injectable clock whenever schedule() or expire() runs, each missed tick processed at its own time):
 * - every tick where counter % 30 == 0: full check — remove every entry unused for lblc_expiration
 *   (default 24 h), counter = 1;
 * - else, when the entry counter is <= 16384 (1024 * 16): counter++;
 * - else remove entries unused for >= 6 min, bucket by bucket from the rover, stopping after the
 *   bucket in which min((entries - 16384) * 4 / 3, 8192) removals were reached.
 *
 * Kernel quirk copied: remapping an existing entry (ip_vs_lblc_new) deletes the old entry without
 * decrementing tbl->entries and then hashes the new one with an increment, so the counter grows by
 * one per remap and overstates the real number of entries (`entries` vs `size` here). Enough remaps
 * push it over 16384, after which every tick runs the partial collection and the full 24 h check no
 * longer happens.
 *
 * Storage: typed arrays (bucket heads, chained entries with a free list). The pool grows by doubling
 * when full, so schedule() allocates only while the cache grows to a new high-water mark.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_AVAILABLE } from '../dataplane/destination-table.js';
import { DestinationChange, type PacketTuple, type Scheduler } from './scheduler.js';
import { hash32 } from './dh.js';
import { leastWeightedOverhead } from './wlc.js';

export const LBLC_TAB_BITS = 10;
export const LBLC_TAB_SIZE = 1 << LBLC_TAB_BITS;
const LBLC_TAB_MASK = LBLC_TAB_SIZE - 1;
/** tbl->max_size = IP_VS_LBLC_TAB_SIZE * 16. */
export const LBLC_MAX_SIZE = LBLC_TAB_SIZE * 16;
export const CHECK_EXPIRE_INTERVAL_MS = 60_000;
export const ENTRY_TIMEOUT_MS = 6 * 60_000;
/** Default of the lblc_expiration / lblcr_expiration sysctls (24 h). */
export const DEFAULT_EXPIRATION_MS = 24 * 60 * 60_000;
export const COUNT_FOR_FULL_EXPIRATION = 30;

/** Cached destination that was deleted from the service (the kernel keeps the trashed dest). */
export const TRASHED = -2;

export interface LocalityOptions {
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
  /** lblc_expiration / lblcr_expiration in ms (default 24 h). May be changed later via the field. */
  expirationMs?: number;
}


/**
 * lblc's is_overloaded: the server has more active connections than its weight AND some destination
 * of the service (any, even OVERLOADed or quiesced) has activeconns * 2 < weight.
 */
export function lblcOverloaded(id: number, dests: readonly number[], table: DestinationTable): boolean {
  const active = table.activeConns;
  const weight = table.weight;
  if (active[id] > weight[id]) {
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i];
      if (active[d] * 2 < weight[d]) return true;
    }
  }
  return false;
}

const defaultNow = (): number => performance.now();

/**
 * The hash table and periodic garbage collection shared by lblc and lblcr: entries keyed by the
 * packet's destination address, chained per bucket (newest first, hlist_add_head), with lastuse.
 */
export abstract class LocalityCache {
  /** lblc_expiration / lblcr_expiration (ms), read at every full check like the sysctl. */
  expirationMs: number;
  /** tbl->entries, the kernel's entry counter (for lblc it can exceed `size`, see lblc.ts). */
  entries = 0;
  /** tbl->counter and tbl->rover of the collector. */
  counter = 1;
  rover = 0;
  /** When the next collector tick is due (ms on the clock). */
  nextCheck = 0;

  protected readonly now: () => number;
  protected readonly heads = new Int32Array(LBLC_TAB_SIZE).fill(-1);
  protected capacity = 0;
  protected enNext = new Int32Array(0);
  protected enAddr = new Uint32Array(0);
  protected enLastuse = new Float64Array(0);
  /** Free entry slots, chained through enNext; `high` = slots ever handed out. */
  private freeHead = -1;
  private high = 0;
  private live = 0;

  constructor(options: LocalityOptions = {}) {
    this.now = options.now ?? defaultNow;
    this.expirationMs = options.expirationMs ?? DEFAULT_EXPIRATION_MS;
    this.nextCheck = this.now() + CHECK_EXPIRE_INTERVAL_MS;
  }

  /** Entries actually in the table. */
  get size(): number {
    return this.live;
  }

  /** Run the collector ticks that are due by `now` (also done by schedule()). */
  expire(now = this.now()): void {
    while (this.nextCheck <= now) {
      if (this.counter % COUNT_FOR_FULL_EXPIRATION !== 0 && this.entries <= LBLC_MAX_SIZE) {
        // Ticks that only count: skip them in one step (nothing else changes meanwhile).
        const due = Math.floor((now - this.nextCheck) / CHECK_EXPIRE_INTERVAL_MS) + 1;
        const k = Math.min(due, COUNT_FOR_FULL_EXPIRATION - (this.counter % COUNT_FOR_FULL_EXPIRATION));
        this.counter += k;
        this.nextCheck += k * CHECK_EXPIRE_INTERVAL_MS;
        continue;
      }
      if (this.live === 0 && this.counter % COUNT_FOR_FULL_EXPIRATION !== 0) {
        // Partial collections of an empty table (possible with lblc's overstated counter) change
        // nothing, not even the rover (a full lap): skip to the first tick after `now`.
        const due = Math.floor((now - this.nextCheck) / CHECK_EXPIRE_INTERVAL_MS) + 1;
        this.nextCheck += due * CHECK_EXPIRE_INTERVAL_MS;
        continue;
      }
      this.checkExpire(this.nextCheck);
      this.nextCheck += CHECK_EXPIRE_INTERVAL_MS;
    }
  }

  /** init_service: an empty table and a fresh timer. */
  protected resetCache(): void {
    for (let b = 0; b < LBLC_TAB_SIZE; b++) {
      let en = this.heads[b];
      while (en >= 0) {
        const next = this.enNext[en];
        this.freeEntry(en);
        en = next;
      }
      this.heads[b] = -1;
    }
    this.entries = 0;
    this.counter = 1;
    this.rover = 0;
    this.nextCheck = this.now() + CHECK_EXPIRE_INTERVAL_MS;
  }

  protected bucketOf(addr: number): number {
    return hash32(addr, LBLC_TAB_BITS);
  }

  protected find(addr: number): number {
    let en = this.heads[this.bucketOf(addr)];
    while (en >= 0 && this.enAddr[en] !== addr) en = this.enNext[en];
    return en;
  }

  /** Allocate an entry and link it at the head of its bucket (ip_vs_lblc_hash also counts it). */
  protected insert(addr: number, now: number): number {
    // (Growing lazily also keeps the abstract growPayload out of the base constructor, which runs
    // before the subclass's fields exist.)
    if (this.freeHead < 0 && this.high === this.capacity) this.growEntries(this.capacity === 0 ? 256 : this.capacity * 2);
    let en: number;
    if (this.freeHead >= 0) {
      en = this.freeHead;
      this.freeHead = this.enNext[en];
    } else en = this.high++;
    const b = this.bucketOf(addr);
    this.enAddr[en] = addr;
    this.enLastuse[en] = now;
    this.enNext[en] = this.heads[b];
    this.heads[b] = en;
    this.entries++;
    this.live++;
    return en;
  }

  /** Unlink an entry from its bucket and free it; the caller adjusts `entries` (as the kernel does). */
  protected remove(en: number): void {
    const b = this.bucketOf(this.enAddr[en]);
    let p = this.heads[b];
    if (p === en) this.heads[b] = this.enNext[en];
    else {
      while (this.enNext[p] !== en) p = this.enNext[p];
      this.enNext[p] = this.enNext[en];
    }
    this.freeEntry(en);
  }

  /** Release the payload of an entry (lblcr: its destination set). */
  protected abstract releasePayload(en: number): void;
  /** Grow the payload arrays to `capacity` entries. */
  protected abstract growPayload(capacity: number): void;

  private freeEntry(en: number): void {
    this.releasePayload(en);
    this.enNext[en] = this.freeHead;
    this.freeHead = en;
    this.live--;
  }

  private growEntries(capacity: number): void {
    const next = new Int32Array(capacity);
    next.set(this.enNext);
    const addr = new Uint32Array(capacity);
    addr.set(this.enAddr);
    const lastuse = new Float64Array(capacity);
    lastuse.set(this.enLastuse);
    this.enNext = next;
    this.enAddr = addr;
    this.enLastuse = lastuse;
    this.growPayload(capacity);
    this.capacity = capacity;
  }

  /** ip_vs_lblc_check_expire, as the timer would run it at time `now`. */
  private checkExpire(now: number): void {
    if (this.counter % COUNT_FOR_FULL_EXPIRATION === 0) {
      this.fullCheck(now);
      this.counter = 1;
      return;
    }
    if (this.entries <= LBLC_MAX_SIZE) {
      this.counter++;
      return;
    }
    let goal = Math.trunc(((this.entries - LBLC_MAX_SIZE) * 4) / 3);
    if (goal > LBLC_MAX_SIZE / 2) goal = LBLC_MAX_SIZE / 2;
    let j = this.rover;
    for (let i = 0; i < LBLC_TAB_SIZE; i++) {
      j = (j + 1) & LBLC_TAB_MASK;
      let en = this.heads[j];
      while (en >= 0) {
        const next = this.enNext[en];
        // time_before(now, lastuse + ENTRY_TIMEOUT) keeps the entry.
        if (!(now < this.enLastuse[en] + ENTRY_TIMEOUT_MS)) {
          this.remove(en);
          this.entries--;
          goal--;
        }
        en = next;
      }
      if (goal <= 0) break;
    }
    this.rover = j;
  }

  /** ip_vs_lblc_full_check: drop every entry unused for the expiration time. */
  private fullCheck(now: number): void {
    let j = this.rover;
    for (let i = 0; i < LBLC_TAB_SIZE; i++) {
      j = (j + 1) & LBLC_TAB_MASK;
      let en = this.heads[j];
      while (en >= 0) {
        const next = this.enNext[en];
        if (!(now < this.enLastuse[en] + this.expirationMs)) {
          this.remove(en);
          this.entries--;
        }
        en = next;
      }
    }
    this.rover = j;
  }
}

export class LblcScheduler extends LocalityCache implements Scheduler {
  readonly name = 'lblc';
  private enDest = new Int32Array(0);

  constructor(options: LocalityOptions = {}) {
    super(options);
  }

  /** The cached destination for a destination address (-1 none, TRASHED = deleted); for tests. */
  cached(daddr: number): number {
    const en = this.find(daddr >>> 0);
    return en < 0 ? -1 : this.enDest[en];
  }

  update(_dests: readonly number[], _table: DestinationTable, change: DestinationChange, changed: number): void {
    if (changed === -1) {
      this.resetCache();
      return;
    }
    // The kernel has no add/upd/del hooks for lblc; an entry keeps pointing at a deleted (trashed)
    // destination, which is then never AVAILABLE. Destination ids may be reused once released, so
    // such entries are marked TRASHED instead of keeping the id (same outcome: the next hit remaps).
    if (change !== DestinationChange.Deleted) return;
    for (let b = 0; b < LBLC_TAB_SIZE; b++) {
      for (let en = this.heads[b]; en >= 0; en = this.enNext[en]) {
        if (this.enDest[en] === changed) this.enDest[en] = TRASHED;
      }
    }
  }

  schedule(dests: readonly number[], table: DestinationTable, pkt: PacketTuple): number {
    const now = this.now();
    if (now >= this.nextCheck) this.expire(now);
    const daddr = pkt.daddr >>> 0;
    // First look in our cache.
    const en = this.find(daddr);
    if (en >= 0) {
      this.enLastuse[en] = now;
      const cached = this.enDest[en];
      if (
        cached >= 0 &&
        (table.flags[cached] & DEST_F_AVAILABLE) !== 0 &&
        table.weight[cached] > 0 &&
        !lblcOverloaded(cached, dests, table)
      )
        return cached;
    }
    // No cache entry or it is invalid, time to schedule.
    const dest = leastWeightedOverhead(dests, table);
    if (dest < 0) return -1;
    // ip_vs_lblc_new: keep an entry that already points there (lastuse was refreshed above) ...
    if (en >= 0) {
      if (this.enDest[en] === dest) return dest;
      // ... else delete it — without decrementing tbl->entries (kernel quirk, see the file header).
      this.remove(en);
    }
    const fresh = this.insert(daddr, now);
    this.enDest[fresh] = dest;
    return dest;
  }

  protected releasePayload(en: number): void {
    this.enDest[en] = -1;
  }

  protected growPayload(capacity: number): void {
    const d = new Int32Array(capacity);
    d.set(this.enDest);
    this.enDest = d;
  }
}
