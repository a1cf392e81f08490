/**
 * TUN ("Tunnel", ipvsadm -i): IPIP encapsulation towards the real server (kernel ip_vs_tunnel_xmit).
 * The client's packet (CIP -> VIP, TTL already decremented) is carried unchanged inside an outer IPv4
 * header from a director address to the RIP; the real server decapsulates it and answers the client
 * directly from the VIP.
 *
 * Outer header as the kernel builds it: version 4, IHL 5, the inner DS field with ECN encapsulated
 * (CE becomes ECT(0), RFC 6040 normal mode), DF copied from the inner packet (pmtu_disc=1), TTL = inner
 * TTL, protocol 4, a fresh IP id. The frame grows by 20 bytes into the headroom before it, in place.
 * IPv6 services tunnel IPv6 in IPv6 (next header 41, 40 bytes), as the kernel does for AF_INET6.
 */
import { write16 } from '../dataplane/wire/bytes.js';
import { checksum, pseudoHeaderSum4 } from '../dataplane/wire/checksum.js';
import { ETH_HEADER_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../dataplane/wire/ethernet.js';
import type { Ipv6View } from '../dataplane/wire/ipv6.js';
import { IPPROTO_IPIP, IPPROTO_UDP, Ipv4View } from '../dataplane/wire/ipv4.js';

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

/** Tunnel types and flags as ipvsadm numbers them (--tun-type, --tun-nocsum/--tun-csum/--tun-remcsum). */
export const TUN_TYPE_IPIP = 0;
export const TUN_TYPE_GUE = 1;
export const TUN_TYPE_GRE = 2;
export const TUN_FLAG_CSUM = 1;
export const TUN_FLAG_REMCSUM = 2;
export const IPPROTO_GRE = 47;
const GUE_HEADER_LEN = 4;
const UDP_HEADER_LEN = 8;

/** Bytes the encapsulation adds: outer IPv4, plus UDP + GUE, or GRE (+ 4 with its checksum). */
export function tunnelOverhead(type: number, flags: number): number {
  if (type === TUN_TYPE_GUE) return IPIP_OVERHEAD + UDP_HEADER_LEN + GUE_HEADER_LEN;
  if (type === TUN_TYPE_GRE) return IPIP_OVERHEAD + (flags === TUN_FLAG_CSUM ? 8 : 4);
  return IPIP_OVERHEAD;
}

/**
 * Encapsulate the inner IPv4 packet of the frame at `frameOff` for a tunnel of `type` (kernel
 * ip_vs_tunnel_xmit with ipvs_gue_encap / ipvs_gre_encap): outer IPv4 from `src` to `dst`, then
 *  - IPIP: nothing more (protocol 4);
 *  - GUE: UDP to `tunPort` (source port from `flowHash`), a 4-byte GUE header carrying protocol 4; the UDP
 *    checksum only with csum/remcsum (remcsum's option needs a partially checksummed packet, which tapvs
 *    never has without offloads, so it is a plain checksum here, as the kernel does then);
 *  - GRE: version 0, protocol 0x0800, the checksum (RFC 2784) only with csum.
 * Needs tunnelOverhead() bytes of headroom. Returns the new frame offset.
 */
export function encapsulateTunnel(
  buf: Uint8Array,
  frameOff: number,
  inner: Ipv4View,
  outer: Ipv4View,
  src: number,
  dst: number,
  id: number,
  type: number,
  flags: number,
  tunPort: number,
  flowHash: number,
): number {
  if (type === TUN_TYPE_IPIP) return encapsulateIpip(buf, frameOff, inner, outer, src, dst, id);
  const innerLen = inner.totalLength;
  const overhead = tunnelOverhead(type, flags);
  const newFrame = frameOff - overhead;
  write16(buf, newFrame + 12, ETHERTYPE_IPV4);
  const tos = encapsulatedTos(inner.tos), df = inner.dontFragment, ttl = inner.ttl;
  const enc = newFrame + ETH_HEADER_LEN + IPIP_OVERHEAD;
  if (type === TUN_TYPE_GUE) {
    const udpLen = UDP_HEADER_LEN + GUE_HEADER_LEN + innerLen;
    write16(buf, enc, 49152 + (flowHash & 0x3fff)); // source port from the flow, as udp_flow_src_port
    write16(buf, enc + 2, tunPort);
    write16(buf, enc + 4, udpLen);
    write16(buf, enc + 6, 0);
    buf[enc + 8] = 0; // version 0, C 0, hlen 0
    buf[enc + 9] = IPPROTO_IPIP; // proto_ctype
    write16(buf, enc + 10, 0);
    outer.at(buf, newFrame + ETH_HEADER_LEN).write(tos, IPIP_OVERHEAD + udpLen, id, df, ttl, IPPROTO_UDP, src, dst);
    if (flags === TUN_FLAG_CSUM || flags === TUN_FLAG_REMCSUM) {
      let c = checksum(buf, enc, udpLen, pseudoHeaderSum4(src, dst, IPPROTO_UDP, udpLen));
      if (c === 0) c = 0xffff;
      write16(buf, enc + 6, c);
    }
  } else {
    const greLen = flags === TUN_FLAG_CSUM ? 8 : 4;
    write16(buf, enc, flags === TUN_FLAG_CSUM ? 0x8000 : 0);
    write16(buf, enc + 2, 0x0800);
    if (greLen === 8) {
      write16(buf, enc + 4, 0);
      write16(buf, enc + 6, 0);
      write16(buf, enc + 4, checksum(buf, enc, greLen + innerLen));
    }
    outer.at(buf, newFrame + ETH_HEADER_LEN).write(tos, IPIP_OVERHEAD + greLen + innerLen, id, df, ttl, IPPROTO_GRE, src, dst);
  }
  return newFrame;
}

/** IPv6-in-IPv6 (RFC 2473) header overhead. */
export const IP6IP6_OVERHEAD = 40;
/** The IPv6 next-header value of an encapsulated IPv6 packet. */
export const IPPROTO_IPV6 = 41;

/**
 * Encapsulate the inner IPv6 packet (innerLen bytes) of the frame at `frameOff` in IPv6 (kernel
 * ip_vs_tunnel_xmit_v6): outer source `src`, destination `dst` (16 bytes each at their offsets), traffic
 * class and hop limit copied from the inner header. Needs IP6IP6_OVERHEAD bytes of headroom; returns the
 * new frame offset.
 */
export function encapsulateIp6ip6(buf: Uint8Array, frameOff: number, innerLen: number, outer: Ipv6View, src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): number {
  const inner = frameOff + ETH_HEADER_LEN;
  const trafficClass = ((buf[inner] & 0x0f) << 4) | (buf[inner + 1] >>> 4);
  const hopLimit = buf[inner + 7];
  const newFrame = frameOff - IP6IP6_OVERHEAD;
  write16(buf, newFrame + 12, ETHERTYPE_IPV6);
  outer.at(buf, newFrame + ETH_HEADER_LEN).write(trafficClass, innerLen, IPPROTO_IPV6, hopLimit, src, srcOff, dst, dstOff);
  return newFrame;
}
