/** IPv4 header view (RFC 791). Addresses are unsigned 32-bit host-order integers. */
import { HeaderView } from './header-view.js';
import { read16, read32, write16, write32 } from './bytes.js';
import { checksum, updateChecksum16, updateChecksum32 } from './checksum.js';

export const IPV4_MIN_HEADER_LEN = 20;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export class Ipv4View extends HeaderView {
  get version(): number {
    return this.buf[this.off] >>> 4;
  }
  /** Header length in bytes (IHL * 4). */
  get headerLength(): number {
    return (this.buf[this.off] & 0x0f) << 2;
  }
  get tos(): number {
    return this.buf[this.off + 1];
  }
  get totalLength(): number {
    return read16(this.buf, this.off + 2);
  }
  set totalLength(v: number) {
    write16(this.buf, this.off + 2, v);
  }
  get id(): number {
    return read16(this.buf, this.off + 4);
  }
  /** Flags and fragment offset word. */
  get fragmentWord(): number {
    return read16(this.buf, this.off + 6);
  }
  get dontFragment(): boolean {
    return (this.buf[this.off + 6] & 0x40) !== 0;
  }
  /** More-fragments set or a non-zero fragment offset. */
  get isFragment(): boolean {
    return (read16(this.buf, this.off + 6) & 0x3fff) !== 0;
  }
  get ttl(): number {
    return this.buf[this.off + 8];
  }
  get protocol(): number {
    return this.buf[this.off + 9];
  }
  get checksum(): number {
    return read16(this.buf, this.off + 10);
  }
  set checksum(v: number) {
    write16(this.buf, this.off + 10, v);
  }
  get src(): number {
    return read32(this.buf, this.off + 12);
  }
  set src(v: number) {
    write32(this.buf, this.off + 12, v);
  }
  get dst(): number {
    return read32(this.buf, this.off + 16);
  }
  set dst(v: number) {
    write32(this.buf, this.off + 16, v);
  }
  get payloadOff(): number {
    return this.off + this.headerLength;
  }

  /** True when the header checksum verifies. */
  checksumValid(): boolean {
    return checksum(this.buf, this.off, this.headerLength) === 0;
  }
  /** Recompute the header checksum in full. */
  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = checksum(this.buf, this.off, this.headerLength);
  }
  /** Decrement TTL and patch the header checksum incrementally. */
  decrementTtl(): void {
    const o = this.off + 8;
    const oldWord = (this.buf[o] << 8) | this.buf[o + 1];
    this.buf[o] = this.buf[o] - 1;
    this.checksum = updateChecksum16(this.checksum, oldWord, oldWord - 0x100);
  }
  /** Replace the source address, patching the header checksum. */
  rewriteSrc(addr: number): void {
    this.checksum = updateChecksum32(this.checksum, this.src, addr);
    this.src = addr;
  }
  /** Replace the destination address, patching the header checksum. */
  rewriteDst(addr: number): void {
    this.checksum = updateChecksum32(this.checksum, this.dst, addr);
    this.dst = addr;
  }

  /** Set the fragment offset (bytes, a multiple of 8) and the more-fragments flag; fills the checksum. */
  setFragment(offsetBytes: number, more: boolean): void {
    write16(this.buf, this.off + 6, (more ? 0x2000 : 0) | (offsetBytes >>> 3));
    this.fillChecksum();
  }

  /** Write a 20-byte header without options; fills the checksum. */
  write(tos: number, totalLength: number, id: number, dontFragment: boolean, ttl: number, protocol: number, src: number, dst: number): void {
    const b = this.buf, o = this.off;
    b[o] = 0x45;
    b[o + 1] = tos;
    write16(b, o + 2, totalLength);
    write16(b, o + 4, id);
    write16(b, o + 6, dontFragment ? 0x4000 : 0);
    b[o + 8] = ttl;
    b[o + 9] = protocol;
    write32(b, o + 12, src);
    write32(b, o + 16, dst);
    this.fillChecksum();
  }
}

/** Parse dotted-quad text to a u32; NaN when malformed. */
export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) return NaN;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return NaN;
    const n = Number(p);
    if (n > 255) return NaN;
    v = v * 256 + n;
  }
  return v;
}

export function formatIpv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
}
