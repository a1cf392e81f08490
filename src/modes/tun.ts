/**
 * TUN ("Tunnel", ipvsadm -i): IPIP encapsulation towards the real server (kernel ip_vs_tunnel_xmit).
 * The client's packet (CIP -> VIP, TTL already decremented) is carried unchanged inside an outer IPv4
 * header from a director address to the RIP; the real server decapsulates it and answers the client
 * directly from the VIP.
 *
 * Outer header as the kernel builds it: version 4, IHL 5, the inner DS field with ECN encapsulated
 * (CE becomes ECT(0), RFC 6040 normal mode), DF copied from the inner packet (pmtu_disc=1), TTL = inner
 * TTL, protocol 4, a fresh IP id. The frame grows by 20 bytes into the headroom before it, in place.
 */
import { write16 } from '../dataplane/wire/bytes.js';
import { ETH_HEADER_LEN, ETHERTYPE_IPV4 } from '../dataplane/wire/ethernet.js';
import { IPPROTO_IPIP, Ipv4View } from '../dataplane/wire/ipv4.js';

export const IPIP_OVERHEAD = 20;

/** Outer DS field for an inner one (kernel INET_ECN_encapsulate): CE (3) is carried as ECT(0) (2). */
export function encapsulatedTos(innerTos: number): number {
  const ecn = innerTos & 3;
  return (innerTos & 0xfc) | (ecn === 3 ? 2 : ecn);
}

/**
 * Prepend the outer IPv4 header to the frame at `frameOff` whose inner IPv4 header is `inner`. Needs
 * IPIP_OVERHEAD bytes free before `frameOff`. Returns the new frame offset; the Ethernet addresses are
 * left for the caller (next-hop resolution) to fill.
 */
export function encapsulateIpip(buf: Uint8Array, frameOff: number, inner: Ipv4View, outer: Ipv4View, src: number, dst: number, id: number): number {
  const newFrame = frameOff - IPIP_OVERHEAD;
  write16(buf, newFrame + 12, ETHERTYPE_IPV4);
  // The outer header ends exactly where the inner one starts (frameOff + 14).
  outer.at(buf, newFrame + ETH_HEADER_LEN).write(encapsulatedTos(inner.tos), inner.totalLength + IPIP_OVERHEAD, id, inner.dontFragment, inner.ttl, IPPROTO_IPIP, src, dst);
  return newFrame;
}

/**
 * Largest payload of one outer fragment when an encapsulated packet exceeds the link MTU and may be
 * fragmented (inner DF clear), as the kernel's IP output fragments the outer packet: a multiple of 8.
 */
export function outerFragmentPayload(linkMtu: number): number {
  return (linkMtu - IPIP_OVERHEAD) & ~7;
}
