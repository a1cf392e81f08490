/** UDP header view (RFC 768). */
import { HeaderView } from './header-view.js';
import { read16, write16 } from './bytes.js';

export const UDP_HEADER_LEN = 8;
export const UDP_CHECKSUM_OFFSET = 6;

export class UdpView extends HeaderView {
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
  get length(): number {
    return read16(this.buf, this.off + 4);
  }
  get checksum(): number {
    return read16(this.buf, this.off + 6);
  }
  set checksum(v: number) {
    write16(this.buf, this.off + 6, v);
  }
}
