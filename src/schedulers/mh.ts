/**
 * mh — Maglev hashing (kernel net/netfilter/ipvs/ip_vs_mh.c; Eisenbud et al., NSDI '16, §3.4).
 *
 * A lookup table of M = 4093 slots (primes[CONFIG_IP_VS_MH_TAB_INDEX - 8], index 12) maps a hash of
 * the client address (and source port with mh-port) to a destination. It is rebuilt on bind, add,
 * edit and delete:
 * - weights are the destinations' last_weight (the latest non-zero weight), so a quiesced
 *   destination (weight 0) keeps its slots and only fails at lookup;
 * - g = gcd of the last_weights > 0 (none → the table is emptied); rshift = max(0, fls(maxlw / g) - 6)
 *   (IP_VS_MH_TAB_BITS = 12 / 2); turns(d) = (lw / g) >> rshift, or 1 when that is 0 and lw != 0;
 * - per destination, in list order: offset = h(hash1, daddr, dport) % M,
 *   skip = h(hash2, daddr, dport) % (M - 1) + 1, perm = offset;
 * - rounds over the list: each destination with turns >= 1 claims `turns` slots per round, each
 *   claim taking the first free slot of perm, perm + skip, perm + 2 skip, ... (mod M); stop when all
 *   M slots are taken (possibly in the middle of a round or of a destination's turns).
 * Lookup: slot = h(hash1, caddr, port) % M; the destination there must have weight > 0 and not be
 * OVERLOADed. mh-fallback (SCHED1): for offset = 0..M-1, roffset = (offset + ihash) % M and
 * slot = h(hash1, caddr, port, roffset) % M; the first usable destination wins, an empty slot stops.
 *
 * h(key, addr, port, offset) = hsiphash(u32 v = offset + port + addr, key) with the fixed keys
 * hash1 = {2654435761, 2654435761}, hash2 = {2654446892, 2654446892}. We implement hsiphash as on
 * 64-bit kernels, where it is SipHash-1-3 with the two 64-bit key words (input: the 4 bytes of v in
 * little-endian order — x86 memory order — output: the low 32 bits). Deliberate difference: 32-bit
 * kernels use HalfSipHash-1-3 with 32-bit key words and therefore build different tables.
 *
 * Two implementations: a BigInt reference (any length, any c/d rounds; checked against the kernel's
 * lib/siphash_kunit.c vectors) used on the configuration path, and an allocation-free one for a
 * 4-byte input on 32-bit halves used per packet.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import { DestinationChange, type PacketTuple, type Scheduler } from './scheduler.js';

export const MH_TAB_SIZE = 4093;
/** IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2: the number of weight bits kept by rshift. */
const MH_TAB_BITS = 6;

/** Service flags (uapi IP_VS_SVC_F_SCHED_MH_FALLBACK = SCHED1, IP_VS_SVC_F_SCHED_MH_PORT = SCHED2). */
export const MH_FALLBACK = 0x0008;
export const MH_PORT = 0x0010;

/** generate_hash_secret: both words of each key are the same constant. */
export const MH_HASH1_KEY = 2654435761n;
export const MH_HASH2_KEY = 2654446892n;

// ---- SipHash ---------------------------------------------------------------------------------------

const SIP_C0 = 0x736f6d6570736575n; // "somepseu"
const SIP_C1 = 0x646f72616e646f6dn; // "dorandom"
const SIP_C2 = 0x6c7967656e657261n; // "lygenera"
const SIP_C3 = 0x7465646279746573n; // "tedbytes"
const MASK64 = (1n << 64n) - 1n;

const rotl64 = (x: bigint, b: bigint): bigint => ((x << b) | (x >> (64n - b))) & MASK64;

/**
 * SipHash-c-d (reference implementation on BigInt; configuration path and tests only). The key words
 * are the two little-endian 64-bit halves of the 16-byte key, as in the kernel's siphash_key_t.
 */
export function sipHash(message: Uint8Array, k0: bigint, k1: bigint, cRounds = 2, dRounds = 4): bigint {
  let v0 = SIP_C0 ^ k0;
  let v1 = SIP_C1 ^ k1;
  let v2 = SIP_C2 ^ k0;
  let v3 = SIP_C3 ^ k1;
  const round = (): void => {
    v0 = (v0 + v1) & MASK64;
    v1 = rotl64(v1, 13n);
    v1 ^= v0;
    v0 = rotl64(v0, 32n);
    v2 = (v2 + v3) & MASK64;
    v3 = rotl64(v3, 16n);
    v3 ^= v2;
    v0 = (v0 + v3) & MASK64;
    v3 = rotl64(v3, 21n);
    v3 ^= v0;
    v2 = (v2 + v1) & MASK64;
    v1 = rotl64(v1, 17n);
    v1 ^= v2;
    v2 = rotl64(v2, 32n);
  };
  const len = message.length;
  const full = len - (len % 8);
  for (let off = 0; off < full; off += 8) {
    let m = 0n;
    for (let i = 7; i >= 0; i--) m = (m << 8n) | BigInt(message[off + i]);
    v3 ^= m;
    for (let r = 0; r < cRounds; r++) round();
    v0 ^= m;
  }
  let b = BigInt(len & 0xff) << 56n;
  for (let i = len - 1; i >= full; i--) b |= BigInt(message[i]) << BigInt(8 * (i - full));
  v3 ^= b;
  for (let r = 0; r < cRounds; r++) round();
  v0 ^= b;
  v2 ^= 0xffn;
  for (let r = 0; r < dRounds; r++) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

/** The 64-bit kernel's hsiphash(&v, 4, key) on BigInt: SipHash-1-3 of v's 4 LE bytes, low 32 bits. */
export function hsiphashU32Reference(v: number, k0: bigint, k1: bigint): number {
  const bytes = new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]);
  return Number(sipHash(bytes, k0, k1, 1, 3) & 0xffffffffn);
}

/**
 * Precomputed SipHash state for a key: v0..v3 after the key is mixed in, as [hi, lo] u32 pairs.
 * Built once per key (BigInt is fine here).
 */
export function hsiphashKey(k0: bigint, k1: bigint): Uint32Array {
  const s = new Uint32Array(8);
  const words = [SIP_C0 ^ k0, SIP_C1 ^ k1, SIP_C2 ^ k0, SIP_C3 ^ k1];
  for (let i = 0; i < 4; i++) {
    s[2 * i] = Number(words[i] >> 32n);
    s[2 * i + 1] = Number(words[i] & 0xffffffffn);
  }
  return s;
}

/**
 * hsiphash(&v, 4, key) of a 64-bit kernel — SipHash-1-3 of one u32 — on 32-bit halves, allocation
 * free. All lane halves are kept as unsigned 32-bit numbers so additions can detect their carry.
 */
export function hsiphashU32(v: number, key: Uint32Array): number {
  let v0h = key[0];
  let v0l = key[1];
  let v1h = key[2];
  let v1l = key[3];
  let v2h = key[4];
  let v2l = key[5];
  let v3h = key[6];
  let v3l = key[7];
  // b = (len = 4) << 56 | v (the only, partial, block).
  const bh = 0x04000000;
  const bl = v >>> 0;
  let s: number;
  let t: number;
  v3h = (v3h ^ bh) >>> 0;
  v3l = (v3l ^ bl) >>> 0;
  for (let r = 0; r < 4; r++) {
    if (r === 1) {
      // End of compression (c = 1): v0 ^= b; finalization: v2 ^= 0xff, then d = 3 rounds.
      v0h = (v0h ^ bh) >>> 0;
      v0l = (v0l ^ bl) >>> 0;
      v2l = (v2l ^ 0xff) >>> 0;
    }
    // SIPROUND
    // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
    s = v0l + v1l;
    v0l = s >>> 0;
    v0h = (v0h + v1h + (s > 0xffffffff ? 1 : 0)) >>> 0;
    t = v1h;
    v1h = ((v1h << 13) | (v1l >>> 19)) >>> 0;
    v1l = ((v1l << 13) | (t >>> 19)) >>> 0;
    v1h = (v1h ^ v0h) >>> 0;
    v1l = (v1l ^ v0l) >>> 0;
    t = v0h;
    v0h = v0l;
    v0l = t;
    // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
    s = v2l + v3l;
    v2l = s >>> 0;
    v2h = (v2h + v3h + (s > 0xffffffff ? 1 : 0)) >>> 0;
    t = v3h;
    v3h = ((v3h << 16) | (v3l >>> 16)) >>> 0;
    v3l = ((v3l << 16) | (t >>> 16)) >>> 0;
    v3h = (v3h ^ v2h) >>> 0;
    v3l = (v3l ^ v2l) >>> 0;
    // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
    s = v0l + v3l;
    v0l = s >>> 0;
    v0h = (v0h + v3h + (s > 0xffffffff ? 1 : 0)) >>> 0;
    t = v3h;
    v3h = ((v3h << 21) | (v3l >>> 11)) >>> 0;
    v3l = ((v3l << 21) | (t >>> 11)) >>> 0;
    v3h = (v3h ^ v0h) >>> 0;
    v3l = (v3l ^ v0l) >>> 0;
    // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    s = v2l + v1l;
    v2l = s >>> 0;
    v2h = (v2h + v1h + (s > 0xffffffff ? 1 : 0)) >>> 0;
    t = v1h;
    v1h = ((v1h << 17) | (v1l >>> 15)) >>> 0;
    v1l = ((v1l << 17) | (t >>> 15)) >>> 0;
    v1h = (v1h ^ v2h) >>> 0;
    v1l = (v1l ^ v2l) >>> 0;
    t = v2h;
    v2h = v2l;
    v2l = t;
  }
  // (v0 ^ v1) ^ (v2 ^ v3), truncated to u32 by the return type.
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

// ---- the scheduler ---------------------------------------------------------------------------------

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Kernel fls: 1-based index of the most significant set bit, 0 for 0. */
const fls = (x: number): number => 32 - Math.clz32(x);

export class MhScheduler implements Scheduler {
  readonly name = 'mh';
  /** Slot → destination id, -1 = empty. */
  readonly lookup = new Int32Array(MH_TAB_SIZE).fill(-1);
  /** s->gcd and s->rshift of the last rebuild (for tests and debugging). */
  gcd = 0;
  rshift = 0;
  private readonly key1 = hsiphashKey(MH_HASH1_KEY, MH_HASH1_KEY);
  private readonly taken = new Uint8Array(MH_TAB_SIZE);

  /** The service flags; read on every schedule (like svc->flags), so the control plane may change them. */
  constructor(public flags = 0) {}

  update(dests: readonly number[], table: DestinationTable, change: DestinationChange, changed: number): void {
    // init_service / add_dest / upd_dest / del_dest all run the same rebuild; del_dest runs after the
    // unlink, so the destination being deleted takes no part.
    const skip = change === DestinationChange.Deleted ? changed : -2;
    const live: number[] = [];
    for (const id of dests) if (id !== skip) live.push(id);
    const lastWeight = table.lastWeight;

    // ip_vs_mh_gcd_weight and ip_vs_mh_shift_weight.
    let g = 0;
    let maxWeight = 0;
    for (const id of live) {
      const w = lastWeight[id];
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > maxWeight) maxWeight = w;
    }
    this.gcd = g;
    this.rshift = g < 1 ? 0 : Math.max(0, fls(Math.trunc(maxWeight / g)) - MH_TAB_BITS);

    // ip_vs_mh_reassign: more destinations than slots is -EINVAL, which the kernel's add_dest caller
    // ignores: the old table stays in place.
    if (live.length > MH_TAB_SIZE) return;
    if (g < 1) {
      // No destination, or every last_weight is 0: ip_vs_mh_reset empties the table.
      this.lookup.fill(-1);
      return;
    }

    // ip_vs_mh_permutate.
    const n = live.length;
    const skipBy = new Int32Array(n);
    const perm = new Int32Array(n);
    const turns = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const id = live[i];
      const v = (table.port[id] + table.addr[id]) >>> 0; // offset 0 + ntohs(port) + ntohl(addr)
      perm[i] = hsiphashU32Reference(v, MH_HASH1_KEY, MH_HASH1_KEY) % MH_TAB_SIZE;
      skipBy[i] = (hsiphashU32Reference(v, MH_HASH2_KEY, MH_HASH2_KEY) % (MH_TAB_SIZE - 1)) + 1;
      const lw = lastWeight[id];
      turns[i] = Math.trunc(lw / g) >> this.rshift || (lw !== 0 ? 1 : 0);
    }

    // ip_vs_mh_populate. The kernel does not clear the lookup table first; every slot is overwritten.
    const taken = this.taken;
    taken.fill(0);
    let filled = 0;
    let dtCount = 0;
    while (filled < MH_TAB_SIZE) {
      for (let i = 0; i < n; ) {
        // Ignore a destination added with zero weight.
        if (turns[i] < 1) {
          i++;
          continue;
        }
        let c = perm[i];
        while (taken[c] !== 0) {
          perm[i] += skipBy[i];
          if (perm[i] >= MH_TAB_SIZE) perm[i] -= MH_TAB_SIZE;
          c = perm[i];
        }
        taken[c] = 1;
        this.lookup[c] = live[i];
        if (++filled === MH_TAB_SIZE) return;
        if (++dtCount >= turns[i]) {
          dtCount = 0;
          i++;
        }
      }
    }
  }

  schedule(_dests: readonly number[], table: DestinationTable, pkt: PacketTuple): number {
    const port = (this.flags & MH_PORT) !== 0 ? pkt.sport : 0;
    const base = (port + pkt.saddr) >>> 0;
    const weight = table.weight;
    const flags = table.flags;
    const ihash = hsiphashU32(base, this.key1) % MH_TAB_SIZE;
    let id = this.lookup[ihash];
    if (id < 0) return -1;
    if (weight[id] > 0 && (flags[id] & DEST_F_OVERLOAD) === 0) return id;
    if ((this.flags & MH_FALLBACK) === 0) return -1;
    // ip_vs_mh_get_fallback: rehash with growing offsets, starting from the original hash.
    for (let offset = 0; offset < MH_TAB_SIZE; offset++) {
      const roffset = (offset + ihash) % MH_TAB_SIZE;
      id = this.lookup[hsiphashU32((roffset + base) >>> 0, this.key1) % MH_TAB_SIZE];
      if (id < 0) break;
      if (weight[id] > 0 && (flags[id] & DEST_F_OVERLOAD) === 0) return id;
    }
    return -1;
  }
}
