/**
 * PROXY protocol v2 for FULLNAT services (opt-in, `--proxy-protocol`): the real server sees the LIP as its
 * peer, so the client's address travels as a PROXY v2 header (haproxy's proxy-protocol.txt §2.2) at the
 * start of the TCP stream: 12-byte signature, version 2 / PROXY command, AF_INET + STREAM, 12 address bytes
 * (client address, VIP, client port, virtual port) — 28 bytes.
 *
 * The header is put in front of the client's first data segment (the one starting at its ISN + 1), and
 * again if that segment is retransmitted; every later client segment has its sequence number moved up by
 * 28, and the real server's acknowledgements (ACK field and SACK blocks) moved down by 28. The real
 * server's SYN-ACK announces an MSS 28 bytes smaller, so a full segment plus the header still fits.
 * Limitation: protocols where the server speaks first never carry the header until the client sends data.
 *
 * IPv6 services: AF_INET6 + STREAM, 36 address bytes (client address, VIP, ports) — 52 bytes, and every
 * shift above is by 52.
 */
import { read16, read32, write16, write32 } from '../dataplane/wire/bytes.js';
import { checksum, pseudoHeaderSum4, updateChecksum32 } from '../dataplane/wire/checksum.js';
import { clampMss } from './toa.js';
import { ETH_HEADER_LEN } from '../dataplane/wire/ethernet.js';
import { IPPROTO_TCP, type Ipv4View } from '../dataplane/wire/ipv4.js';
import { TCP_CHECKSUM_OFFSET } from '../dataplane/wire/tcp.js';
import { pseudoHeaderSum6 } from '../dataplane/wire/ipv6.js';
import type { Ipv6AddressIds } from '../dataplane/ipv6-address-ids.js';

export const PROXY_V2_IPV4_LEN = 28;
export const PROXY_V2_IPV6_LEN = 52;
const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

export function writeProxyV2Header(buf: Uint8Array, off: number, cip: number, cport: number, vip: number, vport: number): void {
  for (let i = 0; i < 12; i++) buf[off + i] = SIGNATURE[i];
  buf[off + 12] = 0x21; // version 2, PROXY
  buf[off + 13] = 0x11; // AF_INET, STREAM
  write16(buf, off + 14, 12);
  write32(buf, off + 16, cip);
  write32(buf, off + 20, vip);
  write16(buf, off + 24, cport);
  write16(buf, off + 26, vport);
}

/**
 * Put the PROXY v2 header between the TCP header and the payload of the client segment in the frame at
 * `frameOff`: the Ethernet, IP and TCP headers move 28 bytes back (into the frame's headroom), the IP
 * length grows, both checksums are recomputed. Returns the new frame offset.
 */
export function insertProxyV2Header(buf: Uint8Array, frameOff: number, ip: Ipv4View, tcpOff: number, tcpHeaderLength: number, cip: number, cport: number, vip: number, vport: number): number {
  const headersEnd = tcpOff + tcpHeaderLength;
  const newOff = frameOff - PROXY_V2_IPV4_LEN;
  buf.copyWithin(newOff, frameOff, headersEnd);
  writeProxyV2Header(buf, headersEnd - PROXY_V2_IPV4_LEN, cip, cport, vip, vport);
  ip.at(buf, newOff + ETH_HEADER_LEN);
  ip.totalLength = ip.totalLength + PROXY_V2_IPV4_LEN;
  ip.fillChecksum();
  const t = tcpOff - PROXY_V2_IPV4_LEN;
  const l4len = ip.totalLength - ip.headerLength;
  write16(buf, t + TCP_CHECKSUM_OFFSET, 0);
  write16(buf, t + TCP_CHECKSUM_OFFSET, checksum(buf, t, l4len, pseudoHeaderSum4(ip.src, ip.dst, IPPROTO_TCP, l4len)));
  return newOff;
}

/**
 * IPv6: put the PROXY v2 header (client address and VIP as Ipv6AddressIds ids) between the TCP header and
 * the payload of the client segment in the frame at `frameOff` (IPv6 header at frameOff + 14): headers
 * move 52 bytes back, the payload length grows, the TCP checksum is recomputed. Returns the new offset.
 */
export function insertProxyV2Header6(buf: Uint8Array, frameOff: number, tcpOff: number, tcpHeaderLength: number, ids: Ipv6AddressIds, cip: number, cport: number, vip: number, vport: number): number {
  const headersEnd = tcpOff + tcpHeaderLength;
  const newOff = frameOff - PROXY_V2_IPV6_LEN;
  buf.copyWithin(newOff, frameOff, headersEnd);
  const h = headersEnd - PROXY_V2_IPV6_LEN;
  for (let i = 0; i < 12; i++) buf[h + i] = SIGNATURE[i];
  buf[h + 12] = 0x21; // version 2, PROXY
  buf[h + 13] = 0x21; // AF_INET6, STREAM
  write16(buf, h + 14, 36);
  ids.copyTo(cip, buf, h + 16);
  ids.copyTo(vip, buf, h + 32);
  write16(buf, h + 48, cport);
  write16(buf, h + 50, vport);
  const ip = newOff + ETH_HEADER_LEN;
  const l4len = read16(buf, ip + 4) + PROXY_V2_IPV6_LEN;
  write16(buf, ip + 4, l4len);
  const t = tcpOff - PROXY_V2_IPV6_LEN;
  write16(buf, t + TCP_CHECKSUM_OFFSET, 0);
  write16(buf, t + TCP_CHECKSUM_OFFSET, checksum(buf, t, l4len, pseudoHeaderSum6(buf, ip, IPPROTO_TCP, l4len)));
  return newOff;
}

/** Add `delta` to the 32-bit field at `at` inside the TCP segment at `tcpOff`, fixing its checksum. */
function shiftField(buf: Uint8Array, tcpOff: number, at: number, value: number): void {
  const old = read32(buf, at);
  if (old === value) return;
  write32(buf, at, value);
  const c = tcpOff + TCP_CHECKSUM_OFFSET;
  write16(buf, c, updateChecksum32(read16(buf, c), old, value));
}

/** Client segment after the header (of `by` bytes) went in: its sequence number moves up by it. */
export function shiftClientSequence(buf: Uint8Array, tcpOff: number, by = PROXY_V2_IPV4_LEN): void {
  shiftField(buf, tcpOff, tcpOff + 4, (read32(buf, tcpOff + 4) + by) >>> 0);
}

/** An acknowledgement number of the real server, in the client's sequence space again. */
function unshift(value: number, firstDataSeq: number, by: number): number {
  const past = (value - firstDataSeq) | 0;
  if (past <= 0) return value;
  return past >= by ? (value - by) >>> 0 : firstDataSeq;
}

/**
 * Real-server segment: move its ACK and SACK edges back below the header; on a SYN-ACK, announce an MSS
 * smaller by the header length.
 */
export function adjustRealServerSegment(
  buf: Uint8Array,
  tcpOff: number,
  tcpHeaderLength: number,
  flags: number,
  firstDataSeq: number,
  adjustAcks: boolean,
  by = PROXY_V2_IPV4_LEN,
): void {
  if ((flags & 0x02) !== 0) clampMss(buf, tcpOff, tcpHeaderLength, by);
  if (adjustAcks && (flags & 0x10) !== 0) shiftField(buf, tcpOff, tcpOff + 8, unshift(read32(buf, tcpOff + 8), firstDataSeq, by));
  const end = tcpOff + tcpHeaderLength;
  let o = tcpOff + 20;
  while (o < end) {
    const kind = buf[o];
    if (kind === 0) break;
    if (kind === 1) {
      o++;
      continue;
    }
    if (o + 1 >= end) break;
    const len = buf[o + 1];
    if (len < 2 || o + len > end) break;
    if (kind === 5 && adjustAcks) {
      for (let b = o + 2; b + 8 <= o + len; b += 8) {
        shiftField(buf, tcpOff, b, unshift(read32(buf, b), firstDataSeq, by));
        shiftField(buf, tcpOff, b + 4, unshift(read32(buf, b + 4), firstDataSeq, by));
      }
    }
    o += len;
  }
}
