/**
 * Run-time state of every destination (real server) of every service, in typed arrays indexed by a
 * destination id. The control plane writes weights and thresholds, the connection table keeps the
 * active/inactive/persistent counts, schedulers read both. Ids are stable while any connection refers
 * to the destination, also after it was deleted from its service (the kernel's "trash").
 */

import { Ipv6AddressIds } from './ipv6-address-ids.js';

export const DEST_F_AVAILABLE = 0x1; // linked in a service (kernel IP_VS_DEST_F_AVAILABLE)
export const DEST_F_OVERLOAD = 0x2; // upper threshold tripped (kernel IP_VS_DEST_F_OVERLOAD)

export class DestinationTable {
  /**
   * The registry of IPv6 address ids (ipv6-address-ids.ts) that IPv6 real servers' `addr` refers to. The
   * service table and the connection table are built on this destination table and take the registry
   * from it, so the three always share one.
   */
  readonly addresses6 = new Ipv6AddressIds();
  capacity: number;
  /** Current weight (0 = quiesced). */
  weight: Int32Array;
  /** Latest non-zero weight (kernel last_weight, used by mh). */
  lastWeight: Int32Array;
  uThreshold: Int32Array;
  lThreshold: Int32Array;
  activeConns: Int32Array;
  inactConns: Int32Array;
  persistConns: Int32Array;
  /**
   * One-packet (--ops) entries kept only so that replies can be translated: not shown in listings
   * (the kernel frees such connections at once), but they keep the destination id alive.
   */
  onePacketConns: Int32Array;
  flags: Uint8Array;
  /** IPv4 address as an unsigned 32-bit host-order integer (IPv6: its Ipv6AddressIds id), and the port. */
  addr: Uint32Array;
  /** 1 for an IPv6 real server. */
  inet6: Uint8Array;
  port: Uint16Array;
  /** Forwarding method (ForwardMethod). */
  forward: Uint8Array;
  /** Tunnels (-i): type 0 ipip / 1 gue / 2 gre, the GUE UDP port, flags 0 nocsum / 1 csum / 2 remcsum. */
  tunType: Uint8Array;
  tunPort: Uint16Array;
  tunFlags: Uint8Array;
  /** Index of the owning service in the service registry, -1 when free. */
  service: Int32Array;
  /** Slot is allocated (in a service or in the trash while connections still refer to it). */
  used: Uint8Array;

  private freeList: number[] = [];
  private next = 0;

  constructor(capacity = 64) {
    this.capacity = capacity;
    this.weight = new Int32Array(capacity);
    this.lastWeight = new Int32Array(capacity);
    this.uThreshold = new Int32Array(capacity);
    this.lThreshold = new Int32Array(capacity);
    this.activeConns = new Int32Array(capacity);
    this.inactConns = new Int32Array(capacity);
    this.persistConns = new Int32Array(capacity);
    this.onePacketConns = new Int32Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.addr = new Uint32Array(capacity);
    this.inet6 = new Uint8Array(capacity);
    this.port = new Uint16Array(capacity);
    this.forward = new Uint8Array(capacity);
    this.tunType = new Uint8Array(capacity);
    this.tunPort = new Uint16Array(capacity);
    this.tunFlags = new Uint8Array(capacity);
    this.service = new Int32Array(capacity).fill(-1);
    this.used = new Uint8Array(capacity);
  }

  /** Allocate a destination id (grows the arrays when needed; control path only). */
  allocate(): number {
    let id: number;
    if (this.freeList.length > 0) id = this.freeList.pop()!;
    else {
      if (this.next === this.capacity) this.grow(this.capacity * 2);
      id = this.next++;
    }
    this.used[id] = 1;
    this.weight[id] = 0;
    this.lastWeight[id] = 0;
    this.uThreshold[id] = 0;
    this.lThreshold[id] = 0;
    this.activeConns[id] = 0;
    this.inactConns[id] = 0;
    this.persistConns[id] = 0;
    this.onePacketConns[id] = 0;
    this.flags[id] = 0;
    this.addr[id] = 0;
    this.inet6[id] = 0;
    this.port[id] = 0;
    this.forward[id] = 0;
    this.tunType[id] = 0;
    this.tunPort[id] = 0;
    this.tunFlags[id] = 0;
    this.service[id] = -1;
    return id;
  }

  release(id: number): void {
    this.used[id] = 0;
    this.flags[id] = 0;
    this.service[id] = -1;
    this.freeList.push(id);
  }

  /**
   * Zero every destination's connection counts. Only for a table that no connection tracker counts in:
   * the main thread's replica of a multiqueue director, whose counts are the queues' sums.
   */
  clearConnectionCounts(): void {
    this.activeConns.fill(0);
    this.inactConns.fill(0);
    this.persistConns.fill(0);
    this.onePacketConns.fill(0);
  }

  /** Kernel ip_vs_dest_conn_overhead: activeconns * 256 + inactconns. */
  overhead(id: number): number {
    return this.activeConns[id] * 256 + this.inactConns[id];
  }

  isOverloaded(id: number): boolean {
    return (this.flags[id] & DEST_F_OVERLOAD) !== 0;
  }

  isAvailable(id: number): boolean {
    return (this.flags[id] & DEST_F_AVAILABLE) !== 0;
  }

  /** Connections still bound to this destination (active + inactive + templates). */
  references(id: number): number {
    return this.activeConns[id] + this.inactConns[id] + this.persistConns[id] + this.onePacketConns[id];
  }

  private grow(capacity: number): void {
    const g = <T extends Int32Array | Uint32Array | Uint16Array | Uint8Array>(a: T, fill = 0): T => {
      const b = new (a.constructor as { new (n: number): T })(capacity);
      if (fill !== 0) b.fill(fill);
      b.set(a);
      return b;
    };
    this.weight = g(this.weight);
    this.lastWeight = g(this.lastWeight);
    this.uThreshold = g(this.uThreshold);
    this.lThreshold = g(this.lThreshold);
    this.activeConns = g(this.activeConns);
    this.inactConns = g(this.inactConns);
    this.persistConns = g(this.persistConns);
    this.onePacketConns = g(this.onePacketConns);
    this.flags = g(this.flags);
    this.addr = g(this.addr);
    this.inet6 = g(this.inet6);
    this.port = g(this.port);
    this.forward = g(this.forward);
    this.tunType = g(this.tunType);
    this.tunPort = g(this.tunPort);
    this.tunFlags = g(this.tunFlags);
    this.service = g(this.service, -1);
    this.used = g(this.used);
    this.capacity = capacity;
  }
}
