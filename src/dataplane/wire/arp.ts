/** ARP over Ethernet/IPv4 (RFC 826) view: 28 bytes after the Ethernet header. */
import { HeaderView } from './header-view.js';
import { copyMac, read16, read32, write16, write32 } from './bytes.js';

export const ARP_LEN = 28;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export class ArpView extends HeaderView {
  /** hardware type 1 (Ethernet), protocol 0x0800, lengths 6 and 4. */
  isEthernetIpv4(): boolean {
    const b = this.buf, o = this.off;
    return read16(b, o) === 1 && read16(b, o + 2) === 0x0800 && b[o + 4] === 6 && b[o + 5] === 4;
  }
  get op(): number {
    return read16(this.buf, this.off + 6);
  }
  get senderMacOff(): number {
    return this.off + 8;
  }
  get senderIp(): number {
    return read32(this.buf, this.off + 14);
  }
  get targetMacOff(): number {
    return this.off + 18;
  }
  get targetIp(): number {
    return read32(this.buf, this.off + 24);
  }

  /** Write a complete ARP packet. */
  write(op: number, senderMac: Uint8Array, senderIp: number, targetMac: Uint8Array, targetMacOff: number, targetIp: number): void {
    const b = this.buf, o = this.off;
    write16(b, o, 1);
    write16(b, o + 2, 0x0800);
    b[o + 4] = 6;
    b[o + 5] = 4;
    write16(b, o + 6, op);
    copyMac(b, o + 8, senderMac, 0);
    write32(b, o + 14, senderIp);
    copyMac(b, o + 18, targetMac, targetMacOff);
    write32(b, o + 24, targetIp);
  }
}
