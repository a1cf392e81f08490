/**
 * ICMPv6 (RFC 4443) and Neighbour Discovery (RFC 4861) messages a director needs for IPv6: echo, the
 * error types IPVS relates to connections, and neighbour solicitation/advertisement with the link-layer
 * address option. Groundwork for IPv6 services; the pipeline does not use it yet.
 */
import { checksum } from './checksum.js';
import { IPPROTO_ICMPV6, pseudoHeaderSum6 } from './ipv6.js';
import { write16 } from './bytes.js';

export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAM_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ND_NEIGHBOR_SOLICIT = 135;
export const ND_NEIGHBOR_ADVERT = 136;
export const ND_OPT_SOURCE_LL = 1;
export const ND_OPT_TARGET_LL = 2;
/** Neighbour advertisement flags (first byte after the checksum): router, solicited, override. */
export const NA_FLAG_SOLICITED = 0x40;
export const NA_FLAG_OVERRIDE = 0x20;

/** ICMPv6 errors are types 0..127 (RFC 4443 §2.1); IPVS relates all of them to connections. */
export function isIcmpv6Error(type: number): boolean {
  return type < 128;
}

/** The ICMPv6 checksum field value for the message at `icmpOff` (length `len`) in the packet at `ipOff`. */
export function icmpv6Checksum(buf: Uint8Array, ipOff: number, icmpOff: number, len: number): number {
  const saved = (buf[icmpOff + 2] << 8) | buf[icmpOff + 3];
  write16(buf, icmpOff + 2, 0);
  const c = checksum(buf, icmpOff, len, pseudoHeaderSum6(buf, ipOff, IPPROTO_ICMPV6, len));
  write16(buf, icmpOff + 2, saved);
  return c;
}

/** Solicited-node multicast address ff02::1:ffXX:XXXX of `target` (16 bytes at targetOff), into out. */
export function solicitedNodeAddress(target: Uint8Array, targetOff: number, out: Uint8Array, outOff: number): void {
  out.fill(0, outOff, outOff + 16);
  out[outOff] = 0xff;
  out[outOff + 1] = 0x02;
  out[outOff + 11] = 0x01;
  out[outOff + 12] = 0xff;
  out[outOff + 13] = target[targetOff + 13];
  out[outOff + 14] = target[targetOff + 14];
  out[outOff + 15] = target[targetOff + 15];
}

/** Ethernet multicast MAC 33:33:xx:xx:xx:xx for an IPv6 multicast address (RFC 2464 §7). */
export function multicastMac(addr: Uint8Array, addrOff: number, out: Uint8Array, outOff: number): void {
  out[outOff] = 0x33;
  out[outOff + 1] = 0x33;
  for (let i = 0; i < 4; i++) out[outOff + 2 + i] = addr[addrOff + 12 + i];
}

/**
 * Write a neighbour advertisement body (24 bytes + 8-byte target link-layer option) at `icmpOff` for
 * `target` with `mac`; the checksum is left for the caller (it needs the IPv6 header).
 */
export function writeNeighborAdvert(buf: Uint8Array, icmpOff: number, flags: number, target: Uint8Array, targetOff: number, mac: Uint8Array): number {
  buf[icmpOff] = ND_NEIGHBOR_ADVERT;
  buf[icmpOff + 1] = 0;
  write16(buf, icmpOff + 2, 0);
  buf[icmpOff + 4] = flags;
  buf[icmpOff + 5] = 0;
  buf[icmpOff + 6] = 0;
  buf[icmpOff + 7] = 0;
  for (let i = 0; i < 16; i++) buf[icmpOff + 8 + i] = target[targetOff + i];
  buf[icmpOff + 24] = ND_OPT_TARGET_LL;
  buf[icmpOff + 25] = 1; // in units of 8 bytes
  for (let i = 0; i < 6; i++) buf[icmpOff + 26 + i] = mac[i];
  return 32;
}
