/**
 * The director's own IPv6 addresses (tapvsd --address fd00:1::1/64) and the routes they imply: each
 * makes its /prefix on-link; `--gateway` with an IPv6 address is the default route. What Neighbour
 * Discovery and ICMPv6 echo answer for, and where IPv6 services send.
 */
export interface InterfaceAddress6 {
  addr: Uint8Array;
  prefix: number;
}

export class Ipv6Addresses {
  private readonly bytes: Uint8Array;
  /** Address and mask of each address as four host-order words. */
  private readonly words: Uint32Array;
  private readonly masks: Uint32Array;
  readonly count: number;
  /** The default gateway (16 bytes), or null. */
  readonly gateway: Uint8Array | null;

  constructor(addresses: InterfaceAddress6[], gateway: Uint8Array | null = null) {
    this.count = addresses.length;
    this.bytes = new Uint8Array(16 * addresses.length);
    this.words = new Uint32Array(4 * addresses.length);
    this.masks = new Uint32Array(4 * addresses.length);
    addresses.forEach((a, i) => {
      this.bytes.set(a.addr, 16 * i);
      for (let w = 0; w < 4; w++) {
        this.words[4 * i + w] = ((a.addr[4 * w] << 24) | (a.addr[4 * w + 1] << 16) | (a.addr[4 * w + 2] << 8) | a.addr[4 * w + 3]) >>> 0;
        const bits = Math.max(0, Math.min(32, a.prefix - 32 * w));
        this.masks[4 * i + w] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      }
    });
    this.gateway = gateway;
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

  /** The index of our address whose prefix holds the address with words w0..w3, -1 when none does. */
  onLink(w0: number, w1: number, w2: number, w3: number): number {
    const a = this.words, m = this.masks;
    for (let i = 0; i < this.count; i++) {
      const o = 4 * i;
      if (((w0 ^ a[o]) & m[o]) === 0 && ((w1 ^ a[o + 1]) & m[o + 1]) === 0 && ((w2 ^ a[o + 2]) & m[o + 2]) === 0 && ((w3 ^ a[o + 3]) & m[o + 3]) === 0) return i;
    }
    return -1;
  }

  /** Our address number i (16 bytes at the returned offset in `addressBytes`). */
  get addressBytes(): Uint8Array {
    return this.bytes;
  }
}
