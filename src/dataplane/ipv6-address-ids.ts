/**
 * IPv6 addresses as 32-bit ids, so that the connection table, the service index, the destination table
 * and the neighbour cache - all built on u32 addresses for IPv4 - hold IPv6 entries unchanged: an IPv6
 * entry stores the id of each of its addresses and is told from an IPv4 one by a family bit (see
 * PROTO_INET6). Two entries compare equal exactly when their addresses do, since an address has one id
 * while it is in use.
 *
 * Ids are reference counted: whoever stores an id (a connection, a service's VIP, a real server, a
 * neighbour entry) holds a reference and releases it when done; an id whose count drops to zero is free
 * and may name another address later. Id 0 is never given out (0 means "none" where the tables need it,
 * e.g. a connection without a FULLNAT local address).
 *
 * Storage: four u32 words per id plus an open-addressing index (linear probing, deletion by backward
 * shift, no tombstones). Bounded by `maxIds`; acquire() returns -1 when full, and the caller counts it.
 */
import { formatIpv6, parseIpv6 } from './wire/ipv6.js';

const EMPTY = -1;

export class Ipv6AddressIds {
  /** Ids in use. */
  count = 0;
  readonly maxIds: number;
  private words: Uint32Array;
  private refs: Uint32Array;
  private index: Int32Array;
  private indexMask: number;
  private freeIds: number[] = [];
  private nextUnused = 1;
  private readonly seed = (Math.random() * 0x100000000) >>> 0;

  constructor(maxIds = 1 << 21, initialIds = 256) {
    this.maxIds = maxIds;
    this.words = new Uint32Array(4 * initialIds);
    this.refs = new Uint32Array(initialIds);
    this.index = new Int32Array(2 * initialIds).fill(EMPTY);
    this.indexMask = 2 * initialIds - 1;
  }

  /** The id of the address at buf[off, off+16), or -1 when it has none. */
  find(buf: Uint8Array, off: number): number {
    const w0 = word(buf, off), w1 = word(buf, off + 4), w2 = word(buf, off + 8), w3 = word(buf, off + 12);
    return this.findWords(w0, w1, w2, w3);
  }

  /** The id of the address at buf[off, off+16) with one more reference (a new id if needed); -1 when full. */
  acquire(buf: Uint8Array, off: number): number {
    const w0 = word(buf, off), w1 = word(buf, off + 4), w2 = word(buf, off + 8), w3 = word(buf, off + 12);
    let id = this.findWords(w0, w1, w2, w3);
    if (id < 0) {
      id = this.add(w0, w1, w2, w3);
      if (id < 0) return -1;
    }
    this.refs[id]++;
    return id;
  }

  /** acquire() for an address in text form (control path); -1 when the text is not an IPv6 address or the table is full. */
  acquireText(text: string): number {
    const a = parseIpv6(text);
    return a ? this.acquire(a, 0) : -1;
  }

  /** The id of an address in text form without taking a reference, -1 when it has none. */
  findText(text: string): number {
    const a = parseIpv6(text);
    return a ? this.find(a, 0) : -1;
  }

  retain(id: number): void {
    this.refs[id]++;
  }

  release(id: number): void {
    if (id <= 0 || id >= this.nextUnused || this.refs[id] === 0) return;
    if (--this.refs[id] === 0) this.remove(id);
  }

  references(id: number): number {
    return this.refs[id];
  }

  /** Write the address of `id` to buf[off, off+16). */
  copyTo(id: number, buf: Uint8Array, off: number): void {
    const w = this.words, o = 4 * id;
    for (let i = 0; i < 4; i++) {
      const v = w[o + i];
      buf[off + 4 * i] = v >>> 24;
      buf[off + 4 * i + 1] = (v >>> 16) & 0xff;
      buf[off + 4 * i + 2] = (v >>> 8) & 0xff;
      buf[off + 4 * i + 3] = v & 0xff;
    }
  }

  /** Is buf[off, off+16) the address of `id`? */
  equals(id: number, buf: Uint8Array, off: number): boolean {
    const w = this.words, o = 4 * id;
    return w[o] === word(buf, off) && w[o + 1] === word(buf, off + 4) && w[o + 2] === word(buf, off + 8) && w[o + 3] === word(buf, off + 12);
  }

  /** Word i (0..3, host order) of the address of `id`. */
  word(id: number, i: number): number {
    return this.words[4 * id + i];
  }

  /**
   * The 32-bit fold IPVS hashes IPv6 addresses by in its schedulers (ip6[0]^ip6[1]^ip6[2]^ip6[3] in
   * ip_vs_sh/dh/mh), so that sh, dh and mh pick the same real server for an IPv6 client as IPVS does.
   */
  fold(id: number): number {
    const w = this.words, o = 4 * id;
    return (w[o] ^ w[o + 1] ^ w[o + 2] ^ w[o + 3]) >>> 0;
  }

  /** RFC 5952 text of `id` (control path). */
  text(id: number): string {
    const b = new Uint8Array(16);
    this.copyTo(id, b, 0);
    return formatIpv6(b);
  }

  private hash(w0: number, w1: number, w2: number, w3: number): number {
    let h = Math.imul(w0 ^ this.seed, 0xcc9e2d51);
    h = Math.imul(h ^ (h >>> 15) ^ w1, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ w2, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ w3, 0x27d4eb2f);
    return (h ^ (h >>> 15)) & this.indexMask;
  }

  private findWords(w0: number, w1: number, w2: number, w3: number): number {
    const w = this.words, idx = this.index, mask = this.indexMask;
    let h = this.hash(w0, w1, w2, w3);
    for (;;) {
      const id = idx[h];
      if (id === EMPTY) return -1;
      const o = 4 * id;
      if (w[o] === w0 && w[o + 1] === w1 && w[o + 2] === w2 && w[o + 3] === w3) return id;
      h = (h + 1) & mask;
    }
  }

  private add(w0: number, w1: number, w2: number, w3: number): number {
    let id: number;
    if (this.freeIds.length > 0) id = this.freeIds.pop()!;
    else {
      if (this.nextUnused > this.maxIds) return -1;
      id = this.nextUnused++;
      if (id >= this.refs.length) this.growIds(Math.min(2 * this.refs.length, this.maxIds + 1));
    }
    const o = 4 * id;
    this.words[o] = w0;
    this.words[o + 1] = w1;
    this.words[o + 2] = w2;
    this.words[o + 3] = w3;
    this.refs[id] = 0;
    this.count++;
    if (2 * this.count > this.index.length) this.rebuildIndex(2 * this.index.length);
    else this.link(id);
    return id;
  }

  private link(id: number): void {
    const o = 4 * id, w = this.words;
    let h = this.hash(w[o], w[o + 1], w[o + 2], w[o + 3]);
    while (this.index[h] !== EMPTY) h = (h + 1) & this.indexMask;
    this.index[h] = id;
  }

  /** Unlink `id` from the index (backward-shift deletion) and free it. */
  private remove(id: number): void {
    const idx = this.index, mask = this.indexMask, w = this.words;
    let h = this.hash(w[4 * id], w[4 * id + 1], w[4 * id + 2], w[4 * id + 3]);
    while (idx[h] !== id) h = (h + 1) & mask;
    let hole = h;
    let j = (hole + 1) & mask;
    while (idx[j] !== EMPTY) {
      const k = idx[j], o = 4 * k;
      const home = this.hash(w[o], w[o + 1], w[o + 2], w[o + 3]);
      // Move k into the hole when its home slot is not cyclically within (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        idx[hole] = k;
        hole = j;
      }
      j = (j + 1) & mask;
    }
    idx[hole] = EMPTY;
    this.freeIds.push(id);
    this.count--;
  }

  private growIds(n: number): void {
    const words = new Uint32Array(4 * n);
    words.set(this.words);
    this.words = words;
    const refs = new Uint32Array(n);
    refs.set(this.refs);
    this.refs = refs;
  }

  private rebuildIndex(size: number): void {
    this.index = new Int32Array(size).fill(EMPTY);
    this.indexMask = size - 1;
    const free = new Set(this.freeIds);
    for (let id = 1; id < this.nextUnused; id++) if (!free.has(id)) this.link(id);
  }
}

function word(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}
