/**
 * ICMPv6 errors about NAT and FULLNAT connections (kernel ip_vs_nat_icmp_v6): the error carries the IPv6
 * header and the start of the packet it is about; for the other side to recognise it, the outer and the
 * embedded addresses (and the embedded ports) are translated like the connection's packets and the
 * ICMPv6 checksum is recomputed (it covers the pseudo-header, so an outer address change needs it too).
 * As in the kernel, the embedded TCP/UDP checksum is left alone.
 */
import type { Ipv6AddressIds } from '../dataplane/ipv6-address-ids.js';
import { write16 } from '../dataplane/wire/bytes.js';
import { IPV6_HEADER_LEN } from '../dataplane/wire/ipv6.js';
import { icmpv6Checksum } from '../dataplane/wire/icmpv6.js';

/** ICMPv6 header length before the embedded packet. */
export const ICMPV6_HEADER_LEN = 8;
/** An error worth translating quotes at least the IPv6 header and the ports. */
export const ICMPV6_ERROR_MIN = ICMPV6_HEADER_LEN + IPV6_HEADER_LEN + 8;

/**
 * Rewrite the ICMPv6 error at `icmpOff` (length icmpLen) of the packet at `ipOff`: outer source and
 * destination to address ids `outerSrc`/`outerDst` (0 = unchanged), the embedded packet's endpoints to
 * eSrc:eSport -> eDst:eDport; then the ICMPv6 checksum.
 */
export function translateIcmp6(
  buf: Uint8Array,
  ipOff: number,
  icmpOff: number,
  icmpLen: number,
  ids: Ipv6AddressIds,
  outerSrc: number,
  outerDst: number,
  eSrc: number,
  eSport: number,
  eDst: number,
  eDport: number,
): void {
  if (outerSrc !== 0) ids.copyTo(outerSrc, buf, ipOff + 8);
  if (outerDst !== 0) ids.copyTo(outerDst, buf, ipOff + 24);
  const e = icmpOff + ICMPV6_HEADER_LEN;
  ids.copyTo(eSrc, buf, e + 8);
  ids.copyTo(eDst, buf, e + 24);
  write16(buf, e + IPV6_HEADER_LEN, eSport);
  write16(buf, e + IPV6_HEADER_LEN + 2, eDport);
  write16(buf, icmpOff + 2, icmpv6Checksum(buf, ipOff, icmpOff, icmpLen));
}
