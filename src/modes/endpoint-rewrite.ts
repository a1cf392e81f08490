/**
 * Replace one endpoint (address and port) of an IPv4 TCP/UDP packet in place, updating the IPv4 header
 * checksum and the TCP/UDP checksum incrementally (RFC 1624). A UDP datagram without checksum gets a full
 * one, as IPVS does (and a computed 0 is sent as 0xFFFF). Used by NAT (one endpoint each way) and FULLNAT
 * (both endpoints each way).
 *
 * `partial`: the frame came offloaded with a partial checksum (offload.ts): the field holds the pseudo-header
 * sum, so only the address change goes into it, not complemented; the port is covered by the final sum.
 */
import { read16, write16, write32 } from '../dataplane/wire/bytes.js';
import { checksum, pseudoHeaderSum4, updateChecksum16, updateChecksum32, updatePartialChecksum32 } from '../dataplane/wire/checksum.js';
import { IPPROTO_TCP, type Ipv4View } from '../dataplane/wire/ipv4.js';
import { TCP_CHECKSUM_OFFSET } from '../dataplane/wire/tcp.js';
import { UDP_CHECKSUM_OFFSET } from '../dataplane/wire/udp.js';

function rewriteEndpoint(ip: Ipv4View, l4Off: number, ipField: number, portField: number, newAddr: number, newPort: number, partial: boolean): void {
  const buf = ip.buf;
  const addrOff = ip.off + ipField;
  const oldAddr = ((buf[addrOff] << 24) | (buf[addrOff + 1] << 16) | (buf[addrOff + 2] << 8) | buf[addrOff + 3]) >>> 0;
  const oldPort = read16(buf, l4Off + portField);
  ip.checksum = updateChecksum32(ip.checksum, oldAddr, newAddr);
  write32(buf, addrOff, newAddr);
  write16(buf, l4Off + portField, newPort);
  if (partial) {
    const c = l4Off + (ip.protocol === IPPROTO_TCP ? TCP_CHECKSUM_OFFSET : UDP_CHECKSUM_OFFSET);
    write16(buf, c, updatePartialChecksum32(read16(buf, c), oldAddr, newAddr));
    return;
  }
  if (ip.protocol === IPPROTO_TCP) {
    const c = l4Off + TCP_CHECKSUM_OFFSET;
    write16(buf, c, updateChecksum16(updateChecksum32(read16(buf, c), oldAddr, newAddr), oldPort, newPort));
  } else {
    const c = l4Off + UDP_CHECKSUM_OFFSET;
    const old = read16(buf, c);
    if (old !== 0) {
      let v = updateChecksum16(updateChecksum32(old, oldAddr, newAddr), oldPort, newPort);
      if (v === 0) v = 0xffff; // 0 means "no checksum" in UDP
      write16(buf, c, v);
    } else {
      const l4len = ip.totalLength - ip.headerLength;
      let v = checksum(buf, l4Off, l4len, pseudoHeaderSum4(ip.src, ip.dst, ip.protocol, l4len));
      if (v === 0) v = 0xffff;
      write16(buf, c, v);
    }
  }
}

/** Replace the source address and port. */
export function rewriteSourceEndpoint(ip: Ipv4View, l4Off: number, addr: number, port: number, partial = false): void {
  rewriteEndpoint(ip, l4Off, 12, 0, addr, port, partial);
}

/** Replace the destination address and port. */
export function rewriteDestinationEndpoint(ip: Ipv4View, l4Off: number, addr: number, port: number, partial = false): void {
  rewriteEndpoint(ip, l4Off, 16, 2, addr, port, partial);
}
