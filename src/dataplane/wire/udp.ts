/** UDP header view (RFC 768). */
import { PortsHeaderView } from './header-view.js';
import { read16, write16 } from './bytes.js';

export const UDP_HEADER_LEN = 8;
export const UDP_CHECKSUM_OFFSET = 6;

export class UdpView extends PortsHeaderView {
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
