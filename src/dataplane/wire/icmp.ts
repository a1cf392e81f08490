/** ICMPv4 header view (RFC 792). */
import { HeaderView } from './header-view.js';
import { read16, write16 } from './bytes.js';

export const ICMP_HEADER_LEN = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PORT_UNREACH = 3; // code under DEST_UNREACH
export const ICMP_FRAG_NEEDED = 4; // code under DEST_UNREACH

export class IcmpView extends HeaderView {
  get type(): number {
    return this.buf[this.off];
  }
  set type(v: number) {
    this.buf[this.off] = v;
  }
  get code(): number {
    return this.buf[this.off + 1];
  }
  set code(v: number) {
    this.buf[this.off + 1] = v;
  }
  get checksum(): number {
    return read16(this.buf, this.off + 2);
  }
  set checksum(v: number) {
    write16(this.buf, this.off + 2, v);
  }
  /** Offset of the embedded datagram of an error message (after the 8-byte header). */
  get payloadOff(): number {
    return this.off + ICMP_HEADER_LEN;
  }
}
