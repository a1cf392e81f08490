/**
 * TOA ("TCP Option Address", Alibaba LVS / DPVS) for FULLNAT services (opt-in, `--toa`): the client's
 * address and port travel to the real server as TCP option kind 254, length 8 (port, then IPv4 address,
 * network order); a `toa` kernel module on the real server makes getpeername() return them.
 *
 * As in Alibaba LVS, the option goes into the client's SYN and into every client segment without
 * SYN/RST/FIN whose acknowledgement number is the real server's ISN + 1 (the handshake's last ACK and data
 * the client sends before the server's first data) — only when the TCP header has room for 8 more option
 * bytes and the packet stays within the MTU. The real server's SYN-ACK announces an MSS 8 bytes smaller.
 * IPv6 services use the IPv6 variant: kind 253, length 20 (port, then the 16-byte address).
 */
import { read16, write16, write32 } from '../dataplane/wire/bytes.js';
import { checksum, pseudoHeaderSum4, updateChecksum16 } from '../dataplane/wire/checksum.js';
import { ETH_HEADER_LEN } from '../dataplane/wire/ethernet.js';
import { IPPROTO_TCP, type Ipv4View } from '../dataplane/wire/ipv4.js';
import { TCP_CHECKSUM_OFFSET } from '../dataplane/wire/tcp.js';
import { pseudoHeaderSum6 } from '../dataplane/wire/ipv6.js';
import type { Ipv6AddressIds } from '../dataplane/ipv6-address-ids.js';

export const TOA_KIND = 254;
export const TOA_LEN = 8;
export const TOA_KIND_IPV6 = 253;
export const TOA_LEN_IPV6 = 20;
const MAX_TCP_HEADER = 60;

/**
 * Append the TOA option to the TCP header of the frame at `frameOff` (headers move 8 bytes back into the
 * headroom; data offset, IP length and both checksums are updated). Returns the new frame offset, or -1
 * when the header has no room.
 */
export function insertToaOption(buf: Uint8Array, frameOff: number, ip: Ipv4View, tcpOff: number, tcpHeaderLength: number, cip: number, cport: number): number {
  if (tcpHeaderLength + TOA_LEN > MAX_TCP_HEADER) return -1;
  const newOff = openOptionRoom(buf, frameOff, tcpOff, tcpHeaderLength, TOA_LEN);
  const o = tcpOff + tcpHeaderLength - TOA_LEN;
  buf[o] = TOA_KIND;
  buf[o + 1] = TOA_LEN;
  write16(buf, o + 2, cport);
  write32(buf, o + 4, cip);
  const t = tcpOff - TOA_LEN;
  ip.at(buf, newOff + ETH_HEADER_LEN);
  ip.totalLength = ip.totalLength + TOA_LEN;
  ip.fillChecksum();
  const l4len = ip.totalLength - ip.headerLength;
  write16(buf, t + TCP_CHECKSUM_OFFSET, 0);
  write16(buf, t + TCP_CHECKSUM_OFFSET, checksum(buf, t, l4len, pseudoHeaderSum4(ip.src, ip.dst, IPPROTO_TCP, l4len)));
  return newOff;
}

/**
 * IPv6: append the TOA option (kind 253: port and the client address `cip`, an Ipv6AddressIds id) to the
 * TCP header of the frame at `frameOff`; headers move 20 bytes back, data offset and payload length grow,
 * the TCP checksum is recomputed. Returns the new frame offset, or -1 when the header has no room.
 */
export function insertToaOption6(buf: Uint8Array, frameOff: number, tcpOff: number, tcpHeaderLength: number, ids: Ipv6AddressIds, cip: number, cport: number): number {
  if (tcpHeaderLength + TOA_LEN_IPV6 > MAX_TCP_HEADER) return -1;
  const newOff = openOptionRoom(buf, frameOff, tcpOff, tcpHeaderLength, TOA_LEN_IPV6);
  const o = tcpOff + tcpHeaderLength - TOA_LEN_IPV6;
  buf[o] = TOA_KIND_IPV6;
  buf[o + 1] = TOA_LEN_IPV6;
  write16(buf, o + 2, cport);
  ids.copyTo(cip, buf, o + 4);
  const t = tcpOff - TOA_LEN_IPV6;
  const ip = newOff + ETH_HEADER_LEN;
  const l4len = read16(buf, ip + 4) + TOA_LEN_IPV6;
  write16(buf, ip + 4, l4len);
  write16(buf, t + TCP_CHECKSUM_OFFSET, 0);
  write16(buf, t + TCP_CHECKSUM_OFFSET, checksum(buf, t, l4len, pseudoHeaderSum6(buf, ip, IPPROTO_TCP, l4len)));
  return newOff;
}

/**
 * Make `len` bytes of room at the end of the TCP header of the frame at `frameOff`: the Ethernet, IP and
 * TCP headers move `len` bytes back into the headroom and the data offset grows. The option goes into the
 * last `len` bytes of the (moved) header; the lengths and checksums are the caller's. New frame offset.
 */
function openOptionRoom(buf: Uint8Array, frameOff: number, tcpOff: number, tcpHeaderLength: number, len: number): number {
  const newOff = frameOff - len;
  buf.copyWithin(newOff, frameOff, tcpOff + tcpHeaderLength);
  const t = tcpOff - len;
  buf[t + 12] = (((tcpHeaderLength + len) >> 2) << 4) | (buf[t + 12] & 0x0f);
  return newOff;
}

/** Lower the MSS option of a SYN(-ACK) by `by` bytes (kernel/DPVS mss adjustment), fixing the checksum. */
export function clampMss(buf: Uint8Array, tcpOff: number, tcpHeaderLength: number, by: number): void {
  const end = tcpOff + tcpHeaderLength;
  let o = tcpOff + 20;
  while (o < end) {
    const kind = buf[o];
    if (kind === 0) return;
    if (kind === 1) {
      o++;
      continue;
    }
    if (o + 1 >= end) return;
    const len = buf[o + 1];
    if (len < 2 || o + len > end) return;
    if (kind === 2 && len === 4) {
      const mss = read16(buf, o + 2);
      const clamped = Math.max(536, mss - by);
      if (clamped < mss) {
        write16(buf, o + 2, clamped);
        const c = tcpOff + TCP_CHECKSUM_OFFSET;
        write16(buf, c, updateChecksum16(read16(buf, c), mss, clamped));
      }
      return;
    }
    o += len;
  }
}
