import { read16, write16 } from './bytes.js';

/**
 * The common part of every header view: a byte array and the offset of the header in it. A view is
 * created once and re-pointed with at() for each packet, so reading a header allocates nothing.
 */
export class HeaderView {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;

  at(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }
}

/** A transport header that starts with source and destination ports (TCP, UDP). */
export class PortsHeaderView extends HeaderView {
  get srcPort(): number {
    return read16(this.buf, this.off);
  }
  set srcPort(v: number) {
    write16(this.buf, this.off, v);
  }
  get dstPort(): number {
    return read16(this.buf, this.off + 2);
  }
  set dstPort(v: number) {
    write16(this.buf, this.off + 2, v);
  }
}
