/**
 * Offloaded frames (tapvsd --offload: IFF_VNET_HDR with TUN_F_CSUM | TSO4 | TSO6). Each frame read from
 * the TAP comes with a virtio_net_hdr (10 bytes, native byte order; the addon keeps them beside the arena,
 * see native/tap_device.cc):
 *
 *   flags u8 (NEEDS_CSUM = 1, DATA_VALID = 2), gso_type u8 (NONE 0, TCPV4 1, UDP 3, TCPV6 4, ECN 0x80),
 *   hdr_len u16, gso_size u16, csum_start u16, csum_offset u16
 *
 * NEEDS_CSUM: the TCP/UDP checksum field holds only the (not complemented) pseudo-header sum; whoever
 * finally sends the frame sums from csum_start to the end into it. A NAT rewrite then updates the field
 * for the pseudo-header's address change only (ports are covered by the final sum), as the kernel's
 * inet_proto_csum_replace4 does for CHECKSUM_PARTIAL; see endpoint-rewrite*.ts.
 * GSO (TCPV4/TCPV6): a TCP "super-frame" of up to 64 KB that is cut into gso_size segments further on.
 * NAT, DR and plain FULLNAT forward both kinds as they are, the header copied to the transmit side.
 * Tunnels and FULLNAT with PROXY protocol / TOA change lengths and headers in ways virtio_net_hdr cannot
 * describe, so such frames are made ordinary first: the checksum completed here, a super-frame cut into
 * segments here (writeTcpSegment), each segment then going through the pipeline on its own.
 */
import type { ServiceTable } from '../control/service-table.js';
import { ForwardMethod } from '../control/model.js';
import { read16, read32, write16, write32 } from './wire/bytes.js';
import { checksum, pseudoHeaderSum4 } from './wire/checksum.js';
import { pseudoHeaderSum6 } from './wire/ipv6.js';

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;
/** TUNSETOFFLOAD flags tapvs asks for. */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;

/** The offload state of the frame being processed (read from its virtio_net_hdr). */
export class FrameOffload {
  /** The virtio_net_hdr of every receive slot (null: the TAP has no offloads). */
  rxVnet: Uint8Array | null = null;
  /** Offset of the current frame's header in rxVnet. */
  at = 0;
  needsCsum = false;
  gso = false;
  /** Super-frames received, and those cut into segments here (totals). */
  superFrames = 0;
  segmented = 0;

  /** Take the header of receive slot `slot`. */
  begin(slot: number): void {
    const v = this.rxVnet;
    if (v === null) return;
    const at = slot * VNET_HDR_LEN;
    this.at = at;
    this.needsCsum = (v[at] & VNET_F_NEEDS_CSUM) !== 0;
    this.gso = v[at + 1] !== VNET_GSO_NONE;
    if (this.gso) this.superFrames++;
  }

  /** The frame is an ordinary one from now on (checksum complete, not a super-frame). */
  clear(): void {
    this.needsCsum = false;
    this.gso = false;
  }

  get active(): boolean {
    return this.needsCsum || this.gso;
  }

  get gsoSize(): number {
    const v = this.rxVnet!;
    return v[this.at + 4] | (v[this.at + 5] << 8);
  }

  get csumStart(): number {
    const v = this.rxVnet!;
    return v[this.at + 6] | (v[this.at + 7] << 8);
  }

  get csumOffset(): number {
    const v = this.rxVnet!;
    return v[this.at + 8] | (v[this.at + 9] << 8);
  }

  /**
   * Complete a partial checksum in place (what the device would do): the sum from csum_start to the end,
   * the field's pseudo-header sum included. Frame at `off`, `len` bytes. A UDP result of 0 is sent as 0xFFFF.
   */
  completeChecksum(buf: Uint8Array, off: number, len: number): void {
    if (!this.needsCsum) return;
    const start = off + this.csumStart, field = start + this.csumOffset;
    if (field + 2 > off + len) return;
    let c = checksum(buf, start, off + len - start);
    if (c === 0 && this.csumOffset === 6) c = 0xffff; // UDP
    write16(buf, field, c);
    this.needsCsum = false;
  }
}

/**
 * Does a frame of a connection with forwarding `method` (protocol `proto`, destination `dest`) need to be
 * made ordinary before it is forwarded? Tunnels, and FULLNAT services that pass the client address.
 */
export function needsOrdinaryFrame(services: ServiceTable, method: number, proto: number, dest: number): boolean {
  if (method === ForwardMethod.Tunnel) return true;
  if (method !== ForwardMethod.FullNat || proto !== 6 || dest < 0) return false;
  const mode = services.service(services.dests.service[dest])?.clientAddress;
  return mode === 'proxy-protocol' || mode === 'toa';
}

/**
 * The number of segments a TCP super-frame (Ethernet frame at `off`, `len` bytes) cuts into at
 * `gsoSize` payload bytes each; 0 when it is not a well-formed TCP frame.
 */
export function tcpSegmentCount(buf: Uint8Array, off: number, len: number, gsoSize: number): number {
  const headers = tcpHeadersLength(buf, off, len);
  if (headers < 0 || gsoSize === 0) return 0;
  return Math.max(1, Math.ceil((len - headers) / gsoSize));
}

/** Ethernet + IP + TCP header bytes of the frame at `off`, -1 when it is not IPv4/IPv6 TCP. */
function tcpHeadersLength(buf: Uint8Array, off: number, len: number): number {
  const ip = off + 14;
  let l4: number;
  if (buf[off + 12] === 0x08 && buf[off + 13] === 0x00 && buf[ip + 9] === 6) l4 = ip + (buf[ip] & 0x0f) * 4;
  else if (buf[off + 12] === 0x86 && buf[off + 13] === 0xdd && buf[ip + 6] === 6) l4 = ip + 40;
  else return -1;
  if (l4 + 20 > off + len) return -1;
  const headers = l4 + (buf[l4 + 12] >>> 4) * 4 - off;
  return headers > len ? -1 : headers;
}

/**
 * Write segment `i` of the TCP super-frame at buf[off, off+len) to out[o..]: the headers with this
 * segment's IP length (and IPv4 id + i, header checksum), sequence number, flags (FIN and PSH on the last
 * segment only, CWR on the first only) and a complete TCP checksum, then its payload. Returns its length.
 */
export function writeTcpSegment(buf: Uint8Array, off: number, len: number, gsoSize: number, i: number, out: Uint8Array, o: number): number {
  const headers = tcpHeadersLength(buf, off, len);
  const payload = len - headers;
  const from = i * gsoSize;
  const n = Math.min(gsoSize, payload - from);
  out.set(buf.subarray(off, off + headers), o);
  out.set(buf.subarray(off + headers + from, off + headers + from + n), o + headers);
  const ip = o + 14;
  const v4 = out[o + 12] === 0x08;
  const l4 = v4 ? ip + (out[ip] & 0x0f) * 4 : ip + 40;
  const segLen = headers + n;
  const l4Len = o + segLen - l4;
  if (v4) {
    write16(out, ip + 2, segLen - 14);
    write16(out, ip + 4, (read16(out, ip + 4) + i) & 0xffff);
    write16(out, ip + 10, 0);
    write16(out, ip + 10, checksum(out, ip, l4 - ip));
  } else write16(out, ip + 4, segLen - 14 - 40);
  write32(out, l4 + 4, (read32(out, l4 + 4) + from) >>> 0);
  const last = from + n >= payload;
  let flags = out[l4 + 13];
  if (!last) flags &= ~0x09; // FIN, PSH
  if (i > 0) flags &= ~0x80; // CWR
  out[l4 + 13] = flags;
  write16(out, l4 + 16, 0);
  const pseudo = v4 ? pseudoHeaderSum4(read32(out, ip + 12), read32(out, ip + 16), 6, l4Len) : pseudoHeaderSum6(out, ip, 6, l4Len);
  write16(out, l4 + 16, checksum(out, l4, l4Len, pseudo));
  return segLen;
}
