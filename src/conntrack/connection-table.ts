/**
 * The connection table: storage, hashing and timers for IPVS connection entries (and persistence
 * templates), in typed arrays indexed by a connection id. No object per connection, nothing allocated
 * per packet.
 *
 * Hashing follows the kernel: every entry is hashed once by its client side (protocol, caddr, cport),
 * and both directions hash the client side - a client→VIP packet by its source, a real-server→client
 * reply by its destination - then compare the remaining fields. (FULLNAT replies are addressed to a
 * local address instead of the client and will need a second index keyed by (daddr, dport, laddr, lport).)
 *
 * Timers: a lazy timer wheel. A packet only writes `expires[id]`; the wheel holds each entry in the slot
 * of the tick at which it was last armed, and when that slot comes due an entry whose `expires` moved
 * later is re-armed instead of expired. An entry whose expiry moves *earlier* than its slot (a state
 * change to a shorter timeout) is moved at once, so expiry is never late by more than one tick.
 *
 * Bounded: `maxEntries` (grows the arrays by doubling up to it); insert() returns -1 when full and the
 * caller counts the refusal. Established entries are never evicted to make room.
 */

/** Milliseconds per wheel tick. */
export const TICK_MS = 250;
const WHEEL_BITS = 14; // 16384 slots of 250 ms = 68 minutes; longer timeouts are re-armed on the way
const WHEEL_SLOTS = 1 << WHEEL_BITS;
const WHEEL_MASK = WHEEL_SLOTS - 1;

export class ConnectionTable {
  capacity: number;
  readonly maxEntries: number;
  count = 0;

  protocol: Uint8Array;
  state: Uint8Array;
  flags: Uint16Array;
  caddr: Uint32Array;
  vaddr: Uint32Array;
  daddr: Uint32Array;
  cport: Uint16Array;
  vport: Uint16Array;
  dport: Uint16Array;
  /** Absolute expiry time, ms on the monotonic clock. */
  expires: Float64Array;
  /** Current timeout in ms (set by the state machine, used to re-arm on every packet). */
  timeout: Uint32Array;
  /** Destination id (DestinationTable), -1 when unbound. */
  dest: Int32Array;
  /** Controlling template's id, -1 for none. */
  control: Int32Array;
  /** Number of connections this entry controls (templates). */
  nControl: Int32Array;
  /** Packets seen from the client side. */
  inPkts: Uint32Array;
  /** Fwmark of the service (templates of fwmark services), 0 otherwise. */
  fwmark: Uint32Array;
  /** Cached neighbour slot for the reply direction (data plane's use), -1 = not resolved yet. */
  replyNeighbor: Int32Array;
  /** 1 while the id holds an entry. */
  live: Uint8Array;

  private hashNext: Int32Array;
  private wheelNext: Int32Array;
  private wheelPrev: Int32Array;
  /** Tick the entry is armed for; its wheel slot is `armedTick & WHEEL_MASK`. */
  private armedTick: Uint32Array;
  private buckets: Int32Array;
  private bucketMask: number;
  private readonly wheel = new Int32Array(WHEEL_SLOTS).fill(-1);
  private readonly epoch: number;
  private lastTick: number;
  private freeHead = -1;
  private nextUnused = 0;
  private readonly seed: number;

  constructor(maxEntries = 1 << 20, initialCapacity = 4096, now = 0) {
    this.maxEntries = maxEntries;
    this.capacity = Math.min(initialCapacity, maxEntries);
    const n = this.capacity;
    this.protocol = new Uint8Array(n);
    this.state = new Uint8Array(n);
    this.flags = new Uint16Array(n);
    this.caddr = new Uint32Array(n);
    this.vaddr = new Uint32Array(n);
    this.daddr = new Uint32Array(n);
    this.cport = new Uint16Array(n);
    this.vport = new Uint16Array(n);
    this.dport = new Uint16Array(n);
    this.expires = new Float64Array(n);
    this.timeout = new Uint32Array(n);
    this.dest = new Int32Array(n);
    this.control = new Int32Array(n);
    this.nControl = new Int32Array(n);
    this.inPkts = new Uint32Array(n);
    this.fwmark = new Uint32Array(n);
    this.replyNeighbor = new Int32Array(n);
    this.live = new Uint8Array(n);
    this.hashNext = new Int32Array(n);
    this.wheelNext = new Int32Array(n);
    this.wheelPrev = new Int32Array(n);
    this.armedTick = new Uint32Array(n);
    this.buckets = new Int32Array(this.capacity).fill(-1);
    this.bucketMask = this.capacity - 1;
    this.epoch = now;
    this.lastTick = 0;
    // A per-table random seed, as the kernel's ip_vs_conn_rnd: clients cannot aim at one bucket.
    this.seed = (Math.random() * 0x100000000) >>> 0;
  }

  /** Hash of the client side (protocol, address, port). */
  private hash(protocol: number, caddr: number, cport: number): number {
    let h = Math.imul(caddr ^ this.seed, 0xcc9e2d51);
    h = (h << 15) | (h >>> 17);
    h = Math.imul(h, 0x1b873593) ^ ((cport << 8) | protocol);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h & this.bucketMask;
  }

  /** Client→VIP lookup (kernel ip_vs_conn_in_get), templates excluded. */
  lookupIn(protocol: number, caddr: number, cport: number, vaddr: number, vport: number): number {
    let i = this.buckets[this.hash(protocol, caddr, cport)];
    while (i >= 0) {
      if (
        this.cport[i] === cport &&
        this.caddr[i] === caddr &&
        this.vport[i] === vport &&
        this.vaddr[i] === vaddr &&
        this.protocol[i] === protocol &&
        (this.flags[i] & 0x1000) === 0
      )
        return i;
      i = this.hashNext[i];
    }
    return -1;
  }

  /**
   * Real server→client lookup for masqueraded connections (kernel ip_vs_conn_out_get): the packet's
   * destination is the client, its source the real server.
   */
  lookupOutMasq(protocol: number, saddr: number, sport: number, daddr: number, dport: number): number {
    let i = this.buckets[this.hash(protocol, daddr, dport)];
    while (i >= 0) {
      if (
        this.cport[i] === dport &&
        this.caddr[i] === daddr &&
        this.dport[i] === sport &&
        this.daddr[i] === saddr &&
        this.protocol[i] === protocol &&
        (this.flags[i] & 0x1007) === 0 // not a template, forwarding method MASQ
      )
        return i;
      i = this.hashNext[i];
    }
    return -1;
  }

  /**
   * Template lookup (kernel ip_vs_ct_in_get): caddr is the masked client network, cport 0; for fwmark
   * services protocol is 0 (IPPROTO_IP) and vaddr the mark itself.
   */
  lookupTemplate(protocol: number, caddr: number, vaddr: number, vport: number): number {
    let i = this.buckets[this.hash(protocol, caddr, 0)];
    while (i >= 0) {
      if (
        (this.flags[i] & 0x1000) !== 0 &&
        this.caddr[i] === caddr &&
        this.cport[i] === 0 &&
        this.vport[i] === vport &&
        this.vaddr[i] === vaddr &&
        this.protocol[i] === protocol
      )
        return i;
      i = this.hashNext[i];
    }
    return -1;
  }

  /**
   * Insert a new entry, hashed and armed to expire `timeoutMs` from now. Returns its id, or -1 when the
   * table is at maxEntries.
   */
  insert(
    protocol: number,
    caddr: number,
    cport: number,
    vaddr: number,
    vport: number,
    daddr: number,
    dport: number,
    flags: number,
    timeoutMs: number,
    now: number,
  ): number {
    let i = this.freeHead;
    if (i >= 0) this.freeHead = this.hashNext[i];
    else {
      if (this.nextUnused === this.capacity) {
        if (this.capacity >= this.maxEntries) return -1;
        this.grow(Math.min(this.capacity * 2, this.maxEntries));
      }
      i = this.nextUnused++;
    }
    this.protocol[i] = protocol;
    this.state[i] = 0;
    this.flags[i] = flags;
    this.caddr[i] = caddr;
    this.cport[i] = cport;
    this.vaddr[i] = vaddr;
    this.vport[i] = vport;
    this.daddr[i] = daddr;
    this.dport[i] = dport;
    this.timeout[i] = timeoutMs;
    this.expires[i] = now + timeoutMs;
    this.dest[i] = -1;
    this.control[i] = -1;
    this.nControl[i] = 0;
    this.inPkts[i] = 0;
    this.fwmark[i] = 0;
    this.replyNeighbor[i] = -1;
    this.live[i] = 1;
    const b = this.hash(protocol, caddr, cport);
    this.hashNext[i] = this.buckets[b];
    this.buckets[b] = i;
    this.arm(i, this.tickOf(now + timeoutMs));
    this.count++;
    if (this.count > this.buckets.length) this.rehash(this.buckets.length * 2);
    return i;
  }

  /** Set a new timeout and re-arm from `now` (every packet of the connection does this). */
  refresh(i: number, timeoutMs: number, now: number): void {
    this.timeout[i] = timeoutMs;
    const exp = now + timeoutMs;
    this.expires[i] = exp;
    const tick = this.tickOf(exp);
    // Only move on the wheel when the entry would otherwise fire late; later expiry is handled lazily.
    if (tick < this.armedTick[i]) {
      this.unarm(i);
      this.arm(i, tick);
    }
  }

  /** Remove an entry from hash and wheel and free its id. */
  remove(i: number): void {
    const b = this.hash(this.protocol[i], this.caddr[i], this.cport[i]);
    let p = this.buckets[b];
    if (p === i) this.buckets[b] = this.hashNext[i];
    else {
      while (p >= 0 && this.hashNext[p] !== i) p = this.hashNext[p];
      if (p >= 0) this.hashNext[p] = this.hashNext[i];
    }
    this.unarm(i);
    this.live[i] = 0;
    this.flags[i] = 0;
    this.dest[i] = -1;
    this.hashNext[i] = this.freeHead;
    this.freeHead = i;
    this.count--;
  }

  /**
   * Run the timers up to `now`: calls `onExpire(id)` for each entry whose time has come. The callback
   * either removes the entry (remove()) or extends it (refresh()); an entry it leaves alone is removed.
   */
  expire(now: number, onExpire: (id: number) => void): void {
    const target = this.tickOf(now);
    while (this.lastTick < target) {
      this.lastTick++;
      const slot = this.lastTick & WHEEL_MASK;
      let i = this.wheel[slot];
      this.wheel[slot] = -1;
      while (i >= 0) {
        const next = this.wheelNext[i];
        this.wheelPrev[i] = -1;
        this.wheelNext[i] = -1;
        if (this.armedTick[i] !== this.lastTick) {
          // Armed for a later lap of the wheel: stays in this slot.
          this.linkSlot(i, slot);
        } else if (this.expires[i] > now) {
          this.arm(i, this.tickOf(this.expires[i]));
        } else {
          this.armedTick[i] = 0xffffffff; // not on the wheel while the callback decides
          onExpire(i);
          if (this.live[i] === 1 && this.armedTick[i] === 0xffffffff) this.remove(i);
        }
        i = next;
      }
    }
  }

  /** Bytes held by the table's arrays (entries, hash buckets and timer wheel). */
  memoryBytes(): number {
    const arrays = [
      this.protocol, this.state, this.flags, this.caddr, this.vaddr, this.daddr, this.cport, this.vport, this.dport,
      this.expires, this.timeout, this.dest, this.control, this.nControl, this.inPkts, this.fwmark, this.replyNeighbor,
      this.live, this.hashNext, this.wheelNext, this.wheelPrev, this.armedTick, this.buckets, this.wheel,
    ];
    return arrays.reduce((sum, a) => sum + a.byteLength, 0);
  }

  /** Remaining whole seconds until expiry (for listings). */
  remainingSeconds(i: number, now: number): number {
    return Math.max(0, Math.floor((this.expires[i] - now) / 1000));
  }

  /** Visit every live entry (control path: listings, flush). */
  forEach(visit: (id: number) => void): void {
    for (let b = 0; b < this.buckets.length; b++) {
      let i = this.buckets[b];
      while (i >= 0) {
        const next = this.hashNext[i];
        visit(i);
        i = next;
      }
    }
  }

  private tickOf(timeMs: number): number {
    // Round up so that an entry never fires before its expiry time.
    return Math.ceil((timeMs - this.epoch) / TICK_MS);
  }

  private arm(i: number, tick: number): void {
    if (tick <= this.lastTick) tick = this.lastTick + 1;
    const maxTick = this.lastTick + WHEEL_SLOTS - 1;
    if (tick > maxTick) tick = maxTick; // re-armed when it comes due, since expires is later
    this.armedTick[i] = tick;
    this.linkSlot(i, tick & WHEEL_MASK);
  }

  private linkSlot(i: number, slot: number): void {
    const head = this.wheel[slot];
    this.wheelPrev[i] = -1 - slot; // a negative prev encodes "head of slot"
    this.wheelNext[i] = head;
    if (head >= 0) this.wheelPrev[head] = i;
    this.wheel[slot] = i;
  }

  private unarm(i: number): void {
    if (this.armedTick[i] === 0xffffffff) return;
    const prev = this.wheelPrev[i];
    const next = this.wheelNext[i];
    if (prev >= 0) this.wheelNext[prev] = next;
    else this.wheel[-1 - prev] = next;
    if (next >= 0) this.wheelPrev[next] = prev;
    this.wheelPrev[i] = -1;
    this.wheelNext[i] = -1;
    this.armedTick[i] = 0xffffffff;
  }

  private rehash(buckets: number): void {
    this.buckets = new Int32Array(buckets).fill(-1);
    this.bucketMask = buckets - 1;
    for (let i = 0; i < this.nextUnused; i++) {
      if (this.live[i] === 0) continue;
      const b = this.hash(this.protocol[i], this.caddr[i], this.cport[i]);
      this.hashNext[i] = this.buckets[b];
      this.buckets[b] = i;
    }
  }

  private grow(capacity: number): void {
    const g = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(a: T): T => {
      const b = new (a.constructor as { new (n: number): T })(capacity);
      b.set(a);
      return b;
    };
    this.protocol = g(this.protocol);
    this.state = g(this.state);
    this.flags = g(this.flags);
    this.caddr = g(this.caddr);
    this.vaddr = g(this.vaddr);
    this.daddr = g(this.daddr);
    this.cport = g(this.cport);
    this.vport = g(this.vport);
    this.dport = g(this.dport);
    this.expires = g(this.expires);
    this.timeout = g(this.timeout);
    this.dest = g(this.dest);
    this.control = g(this.control);
    this.nControl = g(this.nControl);
    this.inPkts = g(this.inPkts);
    this.fwmark = g(this.fwmark);
    this.replyNeighbor = g(this.replyNeighbor);
    this.live = g(this.live);
    this.hashNext = g(this.hashNext);
    this.wheelNext = g(this.wheelNext);
    this.wheelPrev = g(this.wheelPrev);
    this.armedTick = g(this.armedTick);
    this.capacity = capacity;
  }
}
