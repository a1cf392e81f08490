/**
 * The director's own IPv4 addresses and the routes they imply: every `--address IP/PREFIX` makes its
 * subnet on-link; `--gateway IP` is the default route. Answers "which next hop for this destination"
 * and "which of my addresses talks to it".
 */

export interface InterfaceAddress {
  addr: number;
  prefix: number;
}

export class RoutingTable {
  private addrs: Uint32Array;
  private masks: Uint32Array;
  readonly gateway: number;

  constructor(addresses: InterfaceAddress[], gateway = 0) {
    this.addrs = Uint32Array.from(addresses.map((a) => a.addr));
    this.masks = Uint32Array.from(addresses.map((a) => prefixMask(a.prefix)));
    this.gateway = gateway >>> 0;
  }

  get addresses(): readonly number[] {
    return Array.from(this.addrs);
  }

  /** True for one of the director's own addresses (VIPs are checked separately). */
  isLocal(ip: number): boolean {
    const a = this.addrs;
    for (let i = 0; i < a.length; i++) if (a[i] === ip) return true;
    return false;
  }

  /** The next hop towards `ip`: itself when on-link, else the gateway; 0 when unreachable. */
  nextHop(ip: number): number {
    const a = this.addrs, m = this.masks;
    for (let i = 0; i < a.length; i++) if (((ip ^ a[i]) & m[i]) === 0) return ip;
    return this.gateway;
  }

  /** The director's address on the subnet of `ip` (source of ARP requests and ICMP), or the first one. */
  sourceFor(ip: number): number {
    const a = this.addrs, m = this.masks;
    for (let i = 0; i < a.length; i++) if (((ip ^ a[i]) & m[i]) === 0) return a[i];
    if (this.gateway !== 0) {
      for (let i = 0; i < a.length; i++) if (((this.gateway ^ a[i]) & m[i]) === 0) return a[i];
    }
    return a.length > 0 ? a[0] : 0;
  }
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}
