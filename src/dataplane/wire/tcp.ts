/** TCP header view (RFC 9293). */
import { PortsHeaderView } from './header-view.js';
import { read16, read32, write16, write32 } from './bytes.js';

export const TCP_MIN_HEADER_LEN = 20;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** Offset of the checksum field inside the TCP header. */
export const TCP_CHECKSUM_OFFSET = 16;

export class TcpView extends PortsHeaderView {
  get seq(): number {
    return read32(this.buf, this.off + 4);
  }
  set seq(v: number) {
    write32(this.buf, this.off + 4, v);
  }
  get ack(): number {
    return read32(this.buf, this.off + 8);
  }
  set ack(v: number) {
    write32(this.buf, this.off + 8, v);
  }
  /** Header length in bytes (data offset * 4). */
  get headerLength(): number {
    return (this.buf[this.off + 12] >>> 4) << 2;
  }
  get flags(): number {
    return this.buf[this.off + 13];
  }
  get window(): number {
    return read16(this.buf, this.off + 14);
  }
  get checksum(): number {
    return read16(this.buf, this.off + 16);
  }
  set checksum(v: number) {
    write16(this.buf, this.off + 16, v);
  }

  /** Write a 20-byte header without options; the checksum is left 0 for the caller to fill. */
  write(srcPort: number, dstPort: number, seq: number, ack: number, flags: number, window: number): void {
    const b = this.buf, o = this.off;
    write16(b, o, srcPort);
    write16(b, o + 2, dstPort);
    write32(b, o + 4, seq);
    write32(b, o + 8, ack);
    b[o + 12] = 5 << 4;
    b[o + 13] = flags;
    write16(b, o + 14, window);
    write16(b, o + 16, 0);
    write16(b, o + 18, 0);
  }
}
