/**
 * ICMP errors about NAT connections (kernel ip_vs_nat_icmp): an error carries the IP header and the first
 * 8 bytes of the packet it is about; for the other side to recognise it, the outer and the embedded
 * addresses (and the embedded port) are translated like the connection's packets, the outer and embedded
 * IP checksums refreshed and the ICMP checksum recomputed. As in the kernel, the embedded TCP/UDP checksum
 * is left alone (it covers a payload the error no longer carries).
 */
import { write16 } from '../dataplane/wire/bytes.js';
import { checksum } from '../dataplane/wire/checksum.js';
import { ICMP_DEST_UNREACH, ICMP_HEADER_LEN, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED } from '../dataplane/wire/icmp.js';
import type { Ipv4View } from '../dataplane/wire/ipv4.js';

/** The ICMP types IPVS treats as related to a connection (ip_vs_in_icmp / ip_vs_out_icmp). */
export function isRelatedIcmpType(type: number): boolean {
  return type === ICMP_DEST_UNREACH || type === ICMP_SOURCE_QUENCH || type === ICMP_TIME_EXCEEDED;
}

/**
 * Error from the real-server side to the client (inout = 1): outer source := VIP, embedded destination :=
 * VIP:vport.
 */
export function translateIcmpToClient(outer: Ipv4View, embedded: Ipv4View, icmpOff: number, icmpLen: number, vip: number, vport: number): void {
  outer.src = vip;
  outer.fillChecksum();
  embedded.dst = vip;
  embedded.fillChecksum();
  write16(embedded.buf, embedded.payloadOff + 2, vport);
  refreshIcmpChecksum(outer.buf, icmpOff, icmpLen);
}

/**
 * Error from the client about a reply, towards the real server (inout = 0): outer destination := RIP,
 * embedded source := RIP:rport.
 */
export function translateIcmpToRealServer(outer: Ipv4View, embedded: Ipv4View, icmpOff: number, icmpLen: number, rip: number, rport: number): void {
  outer.dst = rip;
  outer.fillChecksum();
  embedded.src = rip;
  embedded.fillChecksum();
  write16(embedded.buf, embedded.payloadOff, rport);
  refreshIcmpChecksum(outer.buf, icmpOff, icmpLen);
}

/**
 * FULLNAT: rewrite every address and port of an ICMP error — outer source and destination, embedded
 * source and destination endpoints — as the connection's packets are rewritten.
 */
export function translateIcmpFullnat(
  outer: Ipv4View,
  embedded: Ipv4View,
  icmpOff: number,
  icmpLen: number,
  outerSrc: number,
  outerDst: number,
  embSrc: number,
  embSport: number,
  embDst: number,
  embDport: number,
): void {
  outer.src = outerSrc;
  outer.dst = outerDst;
  outer.fillChecksum();
  embedded.src = embSrc;
  embedded.dst = embDst;
  embedded.fillChecksum();
  write16(embedded.buf, embedded.payloadOff, embSport);
  write16(embedded.buf, embedded.payloadOff + 2, embDport);
  refreshIcmpChecksum(outer.buf, icmpOff, icmpLen);
}

function refreshIcmpChecksum(buf: Uint8Array, icmpOff: number, icmpLen: number): void {
  write16(buf, icmpOff + 2, 0);
  write16(buf, icmpOff + 2, checksum(buf, icmpOff, icmpLen));
}

/** An ICMP error must carry at least the embedded IPv4 header and 8 bytes of its payload. */
export const ICMP_ERROR_MIN = ICMP_HEADER_LEN + 20 + 8;
