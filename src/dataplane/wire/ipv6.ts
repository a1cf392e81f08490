/**
 * IPv6 header view (RFC 8200): 40 bytes, addresses as 16 bytes in the frame (read as four host-order u32
 * words where a numeric form is needed). Extension headers are not walked here: `nextHeader` is the first
 * one. Groundwork for IPv6 services; the pipeline does not use it yet.
 */
import { HeaderView } from './header-view.js';
import { read16, read32, write16, write32 } from './bytes.js';

export const IPV6_HEADER_LEN = 40;
export const IPPROTO_ICMPV6 = 58;

export class Ipv6View extends HeaderView {
  get version(): number {
    return this.buf[this.off] >>> 4;
  }
  /** Traffic class (DS field + ECN). */
  get trafficClass(): number {
    return ((this.buf[this.off] & 0x0f) << 4) | (this.buf[this.off + 1] >>> 4);
  }
  get flowLabel(): number {
    return ((this.buf[this.off + 1] & 0x0f) << 16) | read16(this.buf, this.off + 2);
  }
  get payloadLength(): number {
    return read16(this.buf, this.off + 4);
  }
  set payloadLength(v: number) {
    write16(this.buf, this.off + 4, v);
  }
  get nextHeader(): number {
    return this.buf[this.off + 6];
  }
  get hopLimit(): number {
    return this.buf[this.off + 7];
  }
  set hopLimit(v: number) {
    this.buf[this.off + 7] = v;
  }
  get srcOff(): number {
    return this.off + 8;
  }
  get dstOff(): number {
    return this.off + 24;
  }
  get payloadOff(): number {
    return this.off + IPV6_HEADER_LEN;
  }
  /** Word i (0..3) of the source address, host order. */
  srcWord(i: number): number {
    return read32(this.buf, this.off + 8 + 4 * i);
  }
  dstWord(i: number): number {
    return read32(this.buf, this.off + 24 + 4 * i);
  }

  /** Write a header without extension headers. Addresses are copied from `src`/`dst` at their offsets. */
  write(trafficClass: number, payloadLength: number, nextHeader: number, hopLimit: number, src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
    const b = this.buf, o = this.off;
    write32(b, o, (0x6 << 28) | ((trafficClass & 0xff) << 20));
    write16(b, o + 4, payloadLength);
    b[o + 6] = nextHeader;
    b[o + 7] = hopLimit;
    for (let i = 0; i < 16; i++) b[o + 8 + i] = src[srcOff + i];
    for (let i = 0; i < 16; i++) b[o + 24 + i] = dst[dstOff + i];
  }
}

/** Sum of the IPv6 pseudo-header (RFC 8200 §8.1) for the packet whose header is at `ipOff`. */
export function pseudoHeaderSum6(buf: Uint8Array, ipOff: number, nextHeader: number, upperLength: number): number {
  let sum = 0;
  for (let i = 8; i < 40; i += 2) sum += (buf[ipOff + i] << 8) | buf[ipOff + i + 1];
  return sum + (upperLength >>> 16) + (upperLength & 0xffff) + nextHeader;
}

/** Parse RFC 4291 text (with ::, optional embedded IPv4) into 16 bytes; null when malformed. */
export function parseIpv6(text: string): Uint8Array | null {
  let t = text;
  const words: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    const parts = v4[1].split('.').map(Number);
    if (parts.some((p) => p > 255)) return null;
    t = t.slice(0, -v4[1].length) + `${((parts[0] << 8) | parts[1]).toString(16)}:${((parts[2] << 8) | parts[3]).toString(16)}`;
  }
  const halves = t.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  if (!head || !tail) return null;
  if (halves.length === 1 && head.length !== 8) return null;
  if (halves.length === 2 && head.length + tail.length > 7) return null;
  words.push(...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail);
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >>> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** RFC 5952 text: lower case, the longest run (≥ 2) of zero words as ::, leading zeros dropped. */
export function formatIpv6(a: Uint8Array, off = 0): string {
  const w = Array.from({ length: 8 }, (_, i) => (a[off + 2 * i] << 8) | a[off + 2 * i + 1]);
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
