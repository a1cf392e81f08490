/** Ethernet II header view: destination MAC, source MAC, EtherType (14 bytes). */
import { HeaderView } from './header-view.js';
import { copyMac, read16, write16 } from './bytes.js';

export const ETH_HEADER_LEN = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_IPV6 = 0x86dd;

export class EthernetView extends HeaderView {
  get etherType(): number {
    return read16(this.buf, this.off + 12);
  }
  set etherType(v: number) {
    write16(this.buf, this.off + 12, v);
  }
  /** Offset of the destination MAC. */
  get dstOff(): number {
    return this.off;
  }
  /** Offset of the source MAC. */
  get srcOff(): number {
    return this.off + 6;
  }
  get payloadOff(): number {
    return this.off + ETH_HEADER_LEN;
  }
  isBroadcastDst(): boolean {
    const b = this.buf, o = this.off;
    return (b[o] & b[o + 1] & b[o + 2] & b[o + 3] & b[o + 4] & b[o + 5]) === 0xff;
  }
  isMulticastDst(): boolean {
    return (this.buf[this.off] & 1) === 1;
  }
  dstEquals(mac: Uint8Array): boolean {
    const b = this.buf, o = this.off;
    return b[o] === mac[0] && b[o + 1] === mac[1] && b[o + 2] === mac[2] && b[o + 3] === mac[3] && b[o + 4] === mac[4] && b[o + 5] === mac[5];
  }
  setDst(mac: Uint8Array, macOff = 0): void {
    copyMac(this.buf, this.off, mac, macOff);
  }
  setSrc(mac: Uint8Array, macOff = 0): void {
    copyMac(this.buf, this.off + 6, mac, macOff);
  }
}
