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
 *
 * Layout: what a lookup compares lives in one 32-byte block per entry (`hot`, 8 u32 words: client
 * address, VIP, client|virtual port, protocol|flags|state, real-server address, real-server port,
 * destination id, hash chain link), so a hit costs about two cache misses (bucket, block) at a million
 * entries instead of one per field. Colder fields (timers, templates, counters) are separate arrays.
 */

/** Word offsets inside an entry's hot block. */
const W_CADDR = 0;
const W_VADDR = 1;
const W_PORTS = 2; // cport << 16 | vport
const W_META = 3; // protocol | flags << 8 | state << 24
const W_DADDR = 4;
const W_DPORT = 5;
const W_DEST = 6; // int32
const W_NEXT = 7; // int32: hash chain
const STRIDE = 8;
const META_TEMPLATE = 0x1000 << 8;
const META_ONE_PACKET = 0x2000 << 8;
/** The protocol byte and the family bit: what a key compares as "protocol". */
const META_KEY_PROTO = 0xff | PROTO_INET6;

import { tableBuffer } from '../dataplane/native-addon.js';
import { Ipv6AddressIds } from '../dataplane/ipv6-address-ids.js';
import { PROTO_INET6 } from './connection-flags.js';

/** Milliseconds per wheel tick. */
export const TICK_MS = 250;
const WHEEL_BITS = 14; // 16384 slots of 250 ms = 68 minutes; longer timeouts are re-armed on the way
const WHEEL_SLOTS = 1 << WHEEL_BITS;
const WHEEL_MASK = WHEEL_SLOTS - 1;

export class ConnectionTable {
  capacity: number;
  readonly maxEntries: number;
  count = 0;

  /** The hot block of every entry (see the layout above), and an int32 view of the same memory. */
  private hot: Uint32Array;
  private hotI: Int32Array;
  /** Absolute expiry time, ms on the monotonic clock. */
  expires: Float64Array;
  /** Current timeout in ms (set by the state machine, used to re-arm on every packet). */
  timeout: Uint32Array;
  /** Controlling template's id, -1 for none. */
  control: Int32Array;
  /** Number of connections this entry controls (templates). */
  nControl: Int32Array;
  /** Packets seen from the client side. */
  inPkts: Uint32Array;
  /**
   * A word for the forwarding method's own use: FULLNAT with PROXY protocol keeps the sequence number of the
   * client's first data byte here (where the PROXY header goes).
   */
  aux: Uint32Array;
  /** FULLNAT: the local address and port the connection uses towards the real server (0 = not FULLNAT). */
  laddr: Uint32Array;
  lport: Uint16Array;
  /** FULLNAT's second index, keyed by the real-server side (protocol, RIP, rport, LIP, lport). */
  private outNext: Int32Array;
  private outBuckets: Int32Array;
  /** Cached neighbour slot for the reply direction (data plane's use), -1 = not resolved yet. */
  replyNeighbor: Int32Array;
  /** 1 while the id holds an entry. */
  live: Uint8Array;
  /**
   * Multiqueue (tapvsd --queues N): the TAP queue whose connections this table holds, of how many. FULLNAT
   * then allocates only local ports whose replies the steering program brings to this queue.
   */
  queue = { index: 0, count: 1 };

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

  constructor(
    maxEntries = 1 << 20,
    initialCapacity = 4096,
    now = 0,
    /** Ids of the addresses of IPv6 entries (shared with the service table). */
    readonly addresses6 = new Ipv6AddressIds(),
  ) {
    this.maxEntries = maxEntries;
    this.capacity = Math.min(initialCapacity, maxEntries);
    const n = this.capacity;
    this.hot = new Uint32Array(tableBuffer(n * STRIDE * 4));
    this.hotI = new Int32Array(this.hot.buffer);
    this.expires = new Float64Array(n);
    this.timeout = new Uint32Array(n);
    this.control = new Int32Array(n);
    this.nControl = new Int32Array(n);
    this.inPkts = new Uint32Array(n);
    this.aux = new Uint32Array(n);
    this.laddr = new Uint32Array(n);
    this.lport = new Uint16Array(n);
    this.outNext = new Int32Array(n);
    this.replyNeighbor = new Int32Array(n);
    this.live = new Uint8Array(n);
    this.wheelNext = new Int32Array(n);
    this.wheelPrev = new Int32Array(n);
    this.armedTick = new Uint32Array(n);
    this.buckets = new Int32Array(this.capacity).fill(-1);
    this.outBuckets = new Int32Array(this.capacity).fill(-1);
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

  // ---- field access (the hot block) -------------------------------------------------------------

  caddrOf(i: number): number {
    return this.hot[i * STRIDE + W_CADDR];
  }
  vaddrOf(i: number): number {
    return this.hot[i * STRIDE + W_VADDR];
  }
  cportOf(i: number): number {
    return this.hot[i * STRIDE + W_PORTS] >>> 16;
  }
  vportOf(i: number): number {
    return this.hot[i * STRIDE + W_PORTS] & 0xffff;
  }
  protocolOf(i: number): number {
    return this.hot[i * STRIDE + W_META] & 0xff;
  }
  /** The protocol with the family tag (PROTO_INET6 for IPv6 entries): what the entry is hashed by. */
  keyProtocolOf(i: number): number {
    return this.hot[i * STRIDE + W_META] & META_KEY_PROTO;
  }
  isInet6(i: number): boolean {
    return (this.hot[i * STRIDE + W_META] & PROTO_INET6) !== 0;
  }
  flagsOf(i: number): number {
    return (this.hot[i * STRIDE + W_META] >>> 8) & 0xffff;
  }
  setFlags(i: number, flags: number): void {
    const o = i * STRIDE + W_META;
    this.hot[o] = (this.hot[o] & 0xff0000ff) | ((flags & 0xffff) << 8);
  }
  stateOf(i: number): number {
    return this.hot[i * STRIDE + W_META] >>> 24;
  }
  setState(i: number, state: number): void {
    const o = i * STRIDE + W_META;
    this.hot[o] = (this.hot[o] & 0x00ffffff) | (state << 24);
  }
  daddrOf(i: number): number {
    return this.hot[i * STRIDE + W_DADDR];
  }
  dportOf(i: number): number {
    return this.hot[i * STRIDE + W_DPORT];
  }
  /** Destination id (DestinationTable), -1 when unbound. */
  destOf(i: number): number {
    return this.hotI[i * STRIDE + W_DEST];
  }
  setDest(i: number, dest: number): void {
    this.hotI[i * STRIDE + W_DEST] = dest;
  }
  /** Make a template unmatchable (kernel: vport = dport = 0xFFFF); it stays hashed by its client side. */
  invalidateTemplate(i: number): void {
    const o = i * STRIDE;
    this.hot[o + W_PORTS] = (this.hot[o + W_PORTS] & 0xffff0000) | 0xffff;
    this.hot[o + W_DPORT] = 0xffff;
  }

  // ---- lookups -------------------------------------------------------------------------------------

  /**
   * Software prefetching for a batch of lookups, in two passes: bucketHead() for every frame of the
   * batch, then touchEntry() on each head, then the lookups. The reads of one pass do not depend on each
   * other, so the CPU overlaps their cache misses (JavaScript has no prefetch instruction); the lookups
   * then find bucket and key block in cache.
   */
  /** The first entry in a client side's bucket, -1 when the bucket is empty. */
  bucketHead(protocol: number, caddr: number, cport: number): number {
    return this.buckets[this.hash(protocol, caddr, cport)];
  }
  /** Read entry i's key block (nothing for -1); returns what it read, for the caller to keep. */
  touchEntry(i: number): number {
    return i < 0 ? 0 : this.hot[i * STRIDE + W_CADDR];
  }

  /**
   * Client→VIP lookup (kernel ip_vs_conn_in_get). Templates are excluded, and so are one-packet entries:
   * the kernel frees those after their one packet, so the next datagram is scheduled anew.
   */
  lookupIn(protocol: number, caddr: number, cport: number, vaddr: number, vport: number): number {
    const h = this.hot, hi = this.hotI;
    const ports = ((cport << 16) | vport) >>> 0;
    let i = this.buckets[this.hash(protocol, caddr, cport)];
    while (i >= 0) {
      const o = i * STRIDE;
      if (
        h[o + W_CADDR] === caddr &&
        h[o + W_PORTS] === ports &&
        h[o + W_VADDR] === vaddr &&
        (h[o + W_META] & (META_KEY_PROTO | META_TEMPLATE | META_ONE_PACKET)) === protocol
      )
        return i;
      i = hi[o + W_NEXT];
    }
    return -1;
  }

  /**
   * Real server→client lookup for masqueraded connections (kernel ip_vs_conn_out_get): the packet's
   * destination is the client, its source the real server.
   */
  lookupOutMasq(protocol: number, saddr: number, sport: number, daddr: number, dport: number): number {
    const h = this.hot, hi = this.hotI;
    let i = this.buckets[this.hash(protocol, daddr, dport)];
    while (i >= 0) {
      const o = i * STRIDE;
      if (
        h[o + W_CADDR] === daddr &&
        h[o + W_PORTS] >>> 16 === dport &&
        h[o + W_DADDR] === saddr &&
        h[o + W_DPORT] === sport &&
        // protocol matches, not a template, forwarding method MASQ (0)
        (h[o + W_META] & (META_KEY_PROTO | ((0x1000 | 0x0007) << 8))) === protocol
      )
        return i;
      i = hi[o + W_NEXT];
    }
    return -1;
  }

  /** Give a FULLNAT connection its local endpoint and index it by the real-server side. */
  bindLocal(i: number, laddr: number, lport: number): void {
    this.laddr[i] = laddr;
    this.lport[i] = lport;
    if (this.isInet6(i)) this.addresses6.retain(laddr);
    const ob = this.hash(this.keyProtocolOf(i) ^ 0x80, laddr, lport);
    this.outNext[i] = this.outBuckets[ob];
    this.outBuckets[ob] = i;
  }

  /**
   * FULLNAT reply lookup: the packet comes from the real server (saddr:sport) to a local address
   * (daddr:dport = LIP:lport), found through the second index.
   */
  lookupOutFullnat(protocol: number, saddr: number, sport: number, daddr: number, dport: number): number {
    const h = this.hot;
    let i = this.outBuckets[this.hash(protocol ^ 0x80, daddr, dport)];
    while (i >= 0) {
      const o = i * STRIDE;
      if (this.lport[i] === dport && this.laddr[i] === daddr && h[o + W_DADDR] === saddr && h[o + W_DPORT] === sport && (h[o + W_META] & META_KEY_PROTO) === protocol)
        return i;
      i = this.outNext[i];
    }
    return -1;
  }

  /**
   * Template lookup (kernel ip_vs_ct_in_get): caddr is the masked client network, cport 0; for fwmark
   * services protocol is 0 (IPPROTO_IP) and vaddr the mark itself.
   */
  lookupTemplate(protocol: number, caddr: number, vaddr: number, vport: number): number {
    const h = this.hot, hi = this.hotI;
    let i = this.buckets[this.hash(protocol, caddr, 0)];
    while (i >= 0) {
      const o = i * STRIDE;
      if (h[o + W_CADDR] === caddr && h[o + W_PORTS] === vport && h[o + W_VADDR] === vaddr && (h[o + W_META] & (META_KEY_PROTO | META_TEMPLATE)) === (protocol | META_TEMPLATE))
        return i;
      i = hi[o + W_NEXT];
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
    laddr = 0,
    lport = 0,
  ): number {
    let i = this.freeHead;
    if (i >= 0) this.freeHead = this.hotI[i * STRIDE + W_NEXT];
    else {
      if (this.nextUnused === this.capacity) {
        if (this.capacity >= this.maxEntries) return -1;
        this.grow(Math.min(this.capacity * 2, this.maxEntries));
      }
      i = this.nextUnused++;
    }
    const o = i * STRIDE, h = this.hot;
    h[o + W_CADDR] = caddr;
    h[o + W_VADDR] = vaddr;
    h[o + W_PORTS] = ((cport << 16) | vport) >>> 0;
    h[o + W_META] = (protocol & META_KEY_PROTO) | ((flags & 0xffff) << 8);
    if ((protocol & PROTO_INET6) !== 0) {
      const a6 = this.addresses6;
      a6.retain(caddr);
      // An fwmark template (protocol IPPROTO_IP) holds the mark where the VIP would be, not an address id.
      if ((protocol & 0xff) !== 0) a6.retain(vaddr);
      a6.retain(daddr);
      if (laddr !== 0) a6.retain(laddr);
    }
    h[o + W_DADDR] = daddr;
    h[o + W_DPORT] = dport;
    this.hotI[o + W_DEST] = -1;
    this.timeout[i] = timeoutMs;
    this.expires[i] = now + timeoutMs;
    this.control[i] = -1;
    this.nControl[i] = 0;
    this.inPkts[i] = 0;
    this.aux[i] = 0;
    this.laddr[i] = laddr;
    this.lport[i] = lport;
    this.replyNeighbor[i] = -1;
    this.live[i] = 1;
    const b = this.hash(protocol, caddr, cport);
    this.hotI[o + W_NEXT] = this.buckets[b];
    this.buckets[b] = i;
    if (laddr !== 0) {
      const ob = this.hash(protocol ^ 0x80, laddr, lport);
      this.outNext[i] = this.outBuckets[ob];
      this.outBuckets[ob] = i;
    }
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
    const hi = this.hotI, o = i * STRIDE;
    const b = this.hash(this.keyProtocolOf(i), this.caddrOf(i), this.cportOf(i));
    let p = this.buckets[b];
    if (p === i) this.buckets[b] = hi[o + W_NEXT];
    else {
      while (p >= 0 && hi[p * STRIDE + W_NEXT] !== i) p = hi[p * STRIDE + W_NEXT];
      if (p >= 0) hi[p * STRIDE + W_NEXT] = hi[o + W_NEXT];
    }
    if (this.laddr[i] !== 0) {
      const ob = this.hash(this.keyProtocolOf(i) ^ 0x80, this.laddr[i], this.lport[i]);
      let q = this.outBuckets[ob];
      if (q === i) this.outBuckets[ob] = this.outNext[i];
      else {
        while (q >= 0 && this.outNext[q] !== i) q = this.outNext[q];
        if (q >= 0) this.outNext[q] = this.outNext[i];
      }
      if (this.isInet6(i)) this.addresses6.release(this.laddr[i]);
      this.laddr[i] = 0;
    }
    if (this.isInet6(i)) {
      const a6 = this.addresses6;
      a6.release(this.caddrOf(i));
      if (this.protocolOf(i) !== 0) a6.release(this.vaddrOf(i)); // an fwmark template's is the mark
      a6.release(this.daddrOf(i));
    }
    this.unarm(i);
    this.live[i] = 0;
    this.hot[o + W_META] = 0;
    hi[o + W_DEST] = -1;
    hi[o + W_NEXT] = this.freeHead;
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
      this.hot, this.expires, this.timeout, this.control, this.nControl, this.inPkts, this.aux, this.replyNeighbor,
      this.laddr, this.lport, this.outNext, this.outBuckets, this.live, this.wheelNext, this.wheelPrev, this.armedTick, this.buckets, this.wheel,
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
        const next = this.hotI[i * STRIDE + W_NEXT];
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
    this.buckets = new Int32Array(tableBuffer(buckets * 4)).fill(-1);
    this.outBuckets = new Int32Array(buckets).fill(-1);
    this.bucketMask = buckets - 1;
    for (let i = 0; i < this.nextUnused; i++) {
      if (this.live[i] === 0) continue;
      const b = this.hash(this.keyProtocolOf(i), this.caddrOf(i), this.cportOf(i));
      this.hotI[i * STRIDE + W_NEXT] = this.buckets[b];
      this.buckets[b] = i;
      if (this.laddr[i] !== 0) {
        const ob = this.hash(this.keyProtocolOf(i) ^ 0x80, this.laddr[i], this.lport[i]);
        this.outNext[i] = this.outBuckets[ob];
        this.outBuckets[ob] = i;
      }
    }
  }

  private grow(capacity: number): void {
    const g = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(a: T): T => {
      const b = new (a.constructor as { new (n: number): T })(capacity);
      b.set(a);
      return b;
    };
    const hot = new Uint32Array(tableBuffer(capacity * STRIDE * 4));
    hot.set(this.hot);
    this.hot = hot;
    this.hotI = new Int32Array(hot.buffer);
    this.expires = g(this.expires);
    this.timeout = g(this.timeout);
    this.control = g(this.control);
    this.nControl = g(this.nControl);
    this.inPkts = g(this.inPkts);
    this.aux = g(this.aux);
    this.laddr = g(this.laddr);
    this.lport = g(this.lport);
    this.outNext = g(this.outNext);
    this.replyNeighbor = g(this.replyNeighbor);
    this.live = g(this.live);
    this.wheelNext = g(this.wheelNext);
    this.wheelPrev = g(this.wheelPrev);
    this.armedTick = g(this.armedTick);
    this.capacity = capacity;
  }
}
