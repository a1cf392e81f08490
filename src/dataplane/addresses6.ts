/**
 * The director's own IPv6 addresses (tapvsd --address fd00:1::1/64): what Neighbour Discovery and ICMPv6
 * echo answer for. IPv6 services and forwarding are not there yet; this is the director's presence.
 */
export class Ipv6Addresses {
  private readonly bytes: Uint8Array;
  readonly count: number;

  constructor(addresses: Uint8Array[]) {
    this.count = addresses.length;
    this.bytes = new Uint8Array(16 * addresses.length);
    addresses.forEach((a, i) => this.bytes.set(a, 16 * i));
  }

  /** Is buf[off, off+16) one of our addresses? */
  isLocal(buf: Uint8Array, off: number): boolean {
    const b = this.bytes;
    for (let a = 0; a < this.count; a++) {
      let i = 0;
      while (i < 16 && b[16 * a + i] === buf[off + i]) i++;
      if (i === 16) return true;
    }
    return false;
  }

  /** Is buf[off, off+16) the solicited-node group (ff02::1:ffXX:XXXX) of one of our addresses? */
  isSolicitedNodeGroup(buf: Uint8Array, off: number): boolean {
    if (buf[off] !== 0xff || buf[off + 1] !== 0x02 || buf[off + 11] !== 0x01 || buf[off + 12] !== 0xff) return false;
    for (let i = 2; i < 11; i++) if (buf[off + i] !== 0) return false;
    const b = this.bytes;
    for (let a = 0; a < this.count; a++) {
      if (b[16 * a + 13] === buf[off + 13] && b[16 * a + 14] === buf[off + 14] && b[16 * a + 15] === buf[off + 15]) return true;
    }
    return false;
  }
}
