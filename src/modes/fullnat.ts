/**
 * FULLNAT (Alibaba LVS, DPVS; not in mainline IPVS): both addresses are rewritten, so real servers need no
 * route back through the director and may sit in any network the director reaches.
 *   in:  CIP:cport -> VIP:vport   becomes  LIP:lport -> RIP:rport
 *   out: RIP:rport -> LIP:lport   becomes  VIP:vport -> CIP:cport
 * Each connection is indexed twice (client side, and real-server side RIP:rport <-> LIP:lport) so replies
 * addressed to the local address are found.
 *
 * Local addresses (LIPs) are per service and taken round robin; local ports as in Alibaba LVS:
 * lport = LPORT_MIN + (counter++ mod range), retried (at most LPORT_TRIES times) while the reverse tuple
 * (protocol, RIP:rport, LIP:lport) is in use.
 */
import type { ConnectionTable } from '../conntrack/connection-table.js';
import type { VirtualService } from '../control/service-table.js';
import type { Ipv4View } from '../dataplane/wire/ipv4.js';
import { rewriteDestinationEndpoint, rewriteSourceEndpoint } from './endpoint-rewrite.js';
import { rewriteDestinationEndpoint6, rewriteSourceEndpoint6 } from './endpoint-rewrite6.js';
import type { Ipv6AddressIds } from '../dataplane/ipv6-address-ids.js';
import { steeringQueue } from '../dataplane/flow-steering.js';
import { PROTO_INET6 } from '../conntrack/connection-flags.js';

export const LPORT_MIN = 5000;
export const LPORT_MAX = 65535;
export const LPORT_TRIES = 10000;

/**
 * A free local port on `lip` towards RIP:rport, advancing `counters[slot]` (the LIP's counter); -1 when none
 * is found within LPORT_TRIES attempts. On one queue of a multiqueue TAP (table.queue) only ports whose
 * replies the steering program brings back to this queue are taken (as DPVS gives each lcore its ports).
 */
export function allocateLocalPort(table: ConnectionTable, protocol: number, rip: number, rport: number, lip: number, counters: Uint32Array, slot: number): number {
  const range = LPORT_MAX - LPORT_MIN + 1;
  const queues = table.queue.count, queue = table.queue.index;
  const steeringKey = queues > 1 && (protocol & PROTO_INET6) !== 0 ? table.addresses6.fold(lip) : lip;
  for (let t = 0; t < LPORT_TRIES; t++) {
    const port = LPORT_MIN + (counters[slot] % range);
    counters[slot] = (counters[slot] + 1) >>> 0;
    if (queues > 1 && steeringQueue(steeringKey, port, queues) !== queue) continue;
    if (table.lookupOutFullnat(protocol, rip, rport, lip, port) < 0) return port;
  }
  return -1;
}

/**
 * Give new connection `cid` of service `svc` its local endpoint: the service's next local address (round
 * robin) and a free local port on it. False when the service has no local address or no port is free.
 */
export function bindFullnatLocal(table: ConnectionTable, svc: VirtualService, cid: number, protocol: number): boolean {
  const i = svc.nextLocalAddress();
  if (i < 0) return false;
  const lip = svc.laddrs[i];
  const port = allocateLocalPort(table, protocol, table.daddrOf(cid), table.dportOf(cid), lip, svc.laddrPortCounters, i);
  if (port < 0) return false;
  table.bindLocal(cid, lip, port);
  return true;
}

/** CIP:cport -> VIP:vport becomes LIP:lport -> RIP:rport. */
export function rewriteFullnatInbound(ip: Ipv4View, l4Off: number, lip: number, lport: number, rip: number, rport: number, partial = false): void {
  rewriteSourceEndpoint(ip, l4Off, lip, lport, partial);
  rewriteDestinationEndpoint(ip, l4Off, rip, rport, partial);
}

/** RIP:rport -> LIP:lport becomes VIP:vport -> CIP:cport. */
export function rewriteFullnatOutbound(ip: Ipv4View, l4Off: number, vip: number, vport: number, cip: number, cport: number, partial = false): void {
  rewriteSourceEndpoint(ip, l4Off, vip, vport, partial);
  rewriteDestinationEndpoint(ip, l4Off, cip, cport, partial);
}

/** IPv6: CIP:cport -> VIP:vport becomes LIP:lport -> RIP:rport (addresses as Ipv6AddressIds ids). */
export function rewriteFullnatInbound6(buf: Uint8Array, ipOff: number, l4Off: number, ids: Ipv6AddressIds, lip: number, lport: number, rip: number, rport: number, partial = false): void {
  rewriteSourceEndpoint6(buf, ipOff, l4Off, ids, lip, lport, partial);
  rewriteDestinationEndpoint6(buf, ipOff, l4Off, ids, rip, rport, partial);
}

/** IPv6: RIP:rport -> LIP:lport becomes VIP:vport -> CIP:cport. */
export function rewriteFullnatOutbound6(buf: Uint8Array, ipOff: number, l4Off: number, ids: Ipv6AddressIds, vip: number, vport: number, cip: number, cport: number, partial = false): void {
  rewriteSourceEndpoint6(buf, ipOff, l4Off, ids, vip, vport, partial);
  rewriteDestinationEndpoint6(buf, ipOff, l4Off, ids, cip, cport, partial);
}
