/**
 * NAT ("Masq", ipvsadm -m): DNAT towards the real server on the way in, SNAT back to the VIP on the way
 * out (kernel ip_vs_nat_xmit, tcp/udp_dnat_handler, tcp/udp_snat_handler). Rewrites in place; the IPv4
 * header and TCP/UDP checksums are updated incrementally (RFC 1624), except a zero UDP checksum, which
 * the kernel recomputes in full (and sends 0 as 0xFFFF).
 */
import { read16, write16, write32 } from '../dataplane/wire/bytes.js';
import { checksum, pseudoHeaderSum4, updateChecksum16, updateChecksum32 } from '../dataplane/wire/checksum.js';
import { IPPROTO_TCP, type Ipv4View } from '../dataplane/wire/ipv4.js';
import { TCP_CHECKSUM_OFFSET } from '../dataplane/wire/tcp.js';
import { UDP_CHECKSUM_OFFSET } from '../dataplane/wire/udp.js';

/**
 * Replace an address/port pair of the packet: the IP address at ipFieldOff (src 12 / dst 16 relative to
 * the IP header) and the port at portOff inside the L4 header (0 src / 2 dst).
 */
function rewriteEndpoint(ip: Ipv4View, l4Off: number, ipField: number, portField: number, newAddr: number, newPort: number): void {
  const buf = ip.buf;
  const addrOff = ip.off + ipField;
  const oldAddr = ((buf[addrOff] << 24) | (buf[addrOff + 1] << 16) | (buf[addrOff + 2] << 8) | buf[addrOff + 3]) >>> 0;
  const oldPort = read16(buf, l4Off + portField);
  ip.checksum = updateChecksum32(ip.checksum, oldAddr, newAddr);
  write32(buf, addrOff, newAddr);
  write16(buf, l4Off + portField, newPort);
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
      // Kernel: a datagram without checksum gets a full one after rewriting.
      const l4len = ip.totalLength - ip.headerLength;
      let v = checksum(buf, l4Off, l4len, pseudoHeaderSum4(ip.src, ip.dst, ip.protocol, l4len));
      if (v === 0) v = 0xffff;
      write16(buf, c, v);
    }
  }
}

/** Client -> VIP:vport becomes client -> RIP:rport. */
export function rewriteNatInbound(ip: Ipv4View, l4Off: number, rip: number, rport: number): void {
  rewriteEndpoint(ip, l4Off, 16, 2, rip, rport);
}

/** RIP:rport -> client becomes VIP:vport -> client. */
export function rewriteNatOutbound(ip: Ipv4View, l4Off: number, vip: number, vport: number): void {
  rewriteEndpoint(ip, l4Off, 12, 0, vip, vport);
}
