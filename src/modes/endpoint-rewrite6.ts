/**
 * Replace one endpoint (address and port) of an IPv6 TCP/UDP packet in place: the address from its
 * Ipv6AddressIds id, the port, and the TCP/UDP checksum updated incrementally (RFC 1624) over the eight
 * address words and the port. IPv6 has no header checksum. A UDP datagram with a zero checksum (not
 * allowed over IPv6, RFC 8200 §8.1) gets a full one. The IPv6 counterpart of endpoint-rewrite.ts, for
 * NAT and FULLNAT. `partial` as there: only the address change goes into a partial checksum field.
 */
import type { Ipv6AddressIds } from '../dataplane/ipv6-address-ids.js';
import { read16, write16 } from '../dataplane/wire/bytes.js';
import { checksum } from '../dataplane/wire/checksum.js';
import { IPPROTO_TCP } from '../dataplane/wire/ipv4.js';
import { pseudoHeaderSum6 } from '../dataplane/wire/ipv6.js';
import { TCP_CHECKSUM_OFFSET } from '../dataplane/wire/tcp.js';
import { UDP_CHECKSUM_OFFSET } from '../dataplane/wire/udp.js';

/** Source address field offset in the IPv6 header; destination is SRC6 + 16. */
const SRC6 = 8;
const DST6 = 24;

function rewriteEndpoint6(buf: Uint8Array, ipOff: number, l4Off: number, addrField: number, portField: number, ids: Ipv6AddressIds, id: number, port: number, partial: boolean): void {
  const proto = buf[ipOff + 6];
  const c = l4Off + (proto === IPPROTO_TCP ? TCP_CHECKSUM_OFFSET : UDP_CHECKSUM_OFFSET);
  const check = read16(buf, c);
  // ~HC + Σ(~m + m') over the changed words (RFC 1624 eqn. 3), folded once at the end; a partial field
  // (the pseudo-header sum) takes HC + Σ(~m + m') for the address only, not complemented.
  let sum = partial ? check : ~check & 0xffff;
  const a = ipOff + addrField;
  for (let w = 0; w < 4; w++) {
    const v = ids.word(id, w);
    const o = a + 4 * w;
    sum += (~read16(buf, o) & 0xffff) + (v >>> 16) + (~read16(buf, o + 2) & 0xffff) + (v & 0xffff);
    buf[o] = v >>> 24;
    buf[o + 1] = (v >>> 16) & 0xff;
    buf[o + 2] = (v >>> 8) & 0xff;
    buf[o + 3] = v & 0xff;
  }
  if (partial) {
    write16(buf, l4Off + portField, port);
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    write16(buf, c, sum & 0xffff);
    return;
  }
  sum += (~read16(buf, l4Off + portField) & 0xffff) + port;
  write16(buf, l4Off + portField, port);
  if (proto !== IPPROTO_TCP && check === 0) {
    const len = read16(buf, ipOff + 4);
    const v = checksum(buf, l4Off, len, pseudoHeaderSum6(buf, ipOff, proto, len));
    write16(buf, c, v === 0 ? 0xffff : v);
    return;
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  let v = ~sum & 0xffff;
  if (v === 0 && proto !== IPPROTO_TCP) v = 0xffff; // 0 would mean "no checksum"
  write16(buf, c, v);
}

/** Replace the source address (address id `id`) and port. */
export function rewriteSourceEndpoint6(buf: Uint8Array, ipOff: number, l4Off: number, ids: Ipv6AddressIds, id: number, port: number, partial = false): void {
  rewriteEndpoint6(buf, ipOff, l4Off, SRC6, 0, ids, id, port, partial);
}

/** Replace the destination address (address id `id`) and port. */
export function rewriteDestinationEndpoint6(buf: Uint8Array, ipOff: number, l4Off: number, ids: Ipv6AddressIds, id: number, port: number, partial = false): void {
  rewriteEndpoint6(buf, ipOff, l4Off, DST6, 2, ids, id, port, partial);
}
