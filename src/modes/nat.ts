/**
 * NAT ("Masq", ipvsadm -m): DNAT towards the real server on the way in, SNAT back to the VIP on the way
 * out (kernel ip_vs_nat_xmit, tcp/udp_dnat_handler, tcp/udp_snat_handler). Rewrites in place; checksums
 * as endpoint-rewrite.ts updates them.
 */
import type { Ipv4View } from '../dataplane/wire/ipv4.js';
import { rewriteDestinationEndpoint, rewriteSourceEndpoint } from './endpoint-rewrite.js';
import { rewriteDestinationEndpoint6, rewriteSourceEndpoint6 } from './endpoint-rewrite6.js';
import type { Ipv6AddressIds } from '../dataplane/ipv6-address-ids.js';

/** Client -> VIP:vport becomes client -> RIP:rport. */
export function rewriteNatInbound(ip: Ipv4View, l4Off: number, rip: number, rport: number, partial = false): void {
  rewriteDestinationEndpoint(ip, l4Off, rip, rport, partial);
}

/** RIP:rport -> client becomes VIP:vport -> client. */
export function rewriteNatOutbound(ip: Ipv4View, l4Off: number, vip: number, vport: number, partial = false): void {
  rewriteSourceEndpoint(ip, l4Off, vip, vport, partial);
}

/** IPv6: client -> VIP:vport becomes client -> RIP:rport (addresses as Ipv6AddressIds ids). */
export function rewriteNatInbound6(buf: Uint8Array, ipOff: number, l4Off: number, ids: Ipv6AddressIds, rip: number, rport: number, partial = false): void {
  rewriteDestinationEndpoint6(buf, ipOff, l4Off, ids, rip, rport, partial);
}

/** IPv6: RIP:rport -> client becomes VIP:vport -> client. */
export function rewriteNatOutbound6(buf: Uint8Array, ipOff: number, l4Off: number, ids: Ipv6AddressIds, vip: number, vport: number, partial = false): void {
  rewriteSourceEndpoint6(buf, ipOff, l4Off, ids, vip, vport, partial);
}
