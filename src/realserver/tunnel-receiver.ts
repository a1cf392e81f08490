/**
 * The real-server side of LVS-TUN on a host without the kernel's tunnel modules: receives the director's
 * tunnelled packets, checks them, strips the encapsulation and writes the inner packet to a TUN device,
 * so the local stack receives the client's packet (CIP -> VIP) as if it had arrived directly and answers
 * the client straight from the VIP — what `tunl0`, a GRE device or a `fou` GUE port do where those modules
 * exist.
 *   ipip: IPv4 protocol 4 on a raw socket; for IPv6 VIPs also IPv6 next header 41 (IPv6 in IPv6, what
 *         the director sends IPv6 services' tunnel real servers) on an IPv6 raw socket, which hands over
 *         the payload - the inner packet - without the outer header;
 *   gre:  IPv4 protocol 47 on a raw socket (GRE version 0, protocol 0x0800; checksum verified if present);
 *   gue:  a UDP socket on the tunnel port (GUE version 0, proto_ctype 4; optional fields skipped).
 *
 * Only inner packets addressed to one of the configured VIPs (and, if given, tunnels from one of the
 * configured directors) are delivered: anything else is counted and dropped, so the receiver is never an
 * open relay.
 */
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
import { Tap } from '../dataplane/tap.js';
import { checksum } from '../dataplane/wire/checksum.js';
import { IPPROTO_IPIP, Ipv4View } from '../dataplane/wire/ipv4.js';
import { IPPROTO_GRE, IPPROTO_IPV6 } from '../modes/tun.js';
import { formatIpv6, IPV6_HEADER_LEN, parseIpv6 } from '../dataplane/wire/ipv6.js';

/** RFC 5952 text of an IPv6 address in any valid text form ('' when it is not one). */
function canonical6(text: string): string {
  const a = parseIpv6(text);
  return a ? formatIpv6(a) : '';
}

export type TunnelKind = 'ipip' | 'gre' | 'gue';

export interface TunnelReceiverOptions {
  kind: TunnelKind;
  vips: number[];
  directors: number[];
  /** IPv6 VIPs (16 bytes each) and directors (canonical text): ipip only. */
  vips6?: Uint8Array[];
  directors6?: string[];
  device: string;
  /** GUE: the UDP port (the director's --tun-port). */
  port?: number;
}

export interface TunnelCounters {
  received: number;
  delivered: number;
  notOurs: number;
  malformed: number;
  wrongVip: number;
  wrongDirector: number;
  writeFailed: number;
}

interface RawSocket {
  on(event: 'message', cb: (buf: Buffer, source: string) => void): void;
  on(event: 'error', cb: (e: Error) => void): void;
  close(): void;
}

export class TunnelReceiver {
  readonly counters: TunnelCounters = { received: 0, delivered: 0, notOurs: 0, malformed: 0, wrongVip: 0, wrongDirector: 0, writeFailed: 0 };
  private readonly tun: Tap;
  private raw: RawSocket | null = null;
  private raw6: RawSocket | null = null;
  private udp: dgram.Socket | null = null;
  private readonly outer = new Ipv4View();
  private readonly inner = new Ipv4View();

  constructor(private readonly opts: TunnelReceiverOptions) {
    this.tun = new Tap(opts.device, { tun: true, rxSlots: 1, txSlots: 4, slotSize: 65_600, headroom: 0 });
    this.tun.device.setUp(true);
  }

  get deviceName(): string {
    return this.tun.name;
  }

  /** Start receiving; resolves once listening. */
  start(onError: (e: Error) => void): Promise<void> {
    if (this.opts.kind === 'gue') {
      const udp = dgram.createSocket('udp4');
      this.udp = udp;
      udp.on('message', (msg, rinfo) => this.receiveGue(msg, rinfo.address));
      udp.on('error', onError);
      return new Promise((resolve) => udp.bind(this.opts.port ?? 0, resolve));
    }
    const require = createRequire(import.meta.url);
    const rawSocket = require('raw-socket') as {
      createSocket(o: { protocol: number; addressFamily?: number }): RawSocket;
      AddressFamily: { IPv6: number };
    };
    if (this.opts.vips.length > 0 || this.opts.kind !== 'ipip') {
      this.raw = rawSocket.createSocket({ protocol: this.opts.kind === 'gre' ? IPPROTO_GRE : IPPROTO_IPIP });
      this.raw.on('message', (buf) => this.receive(buf));
      this.raw.on('error', onError);
    }
    if (this.opts.kind === 'ipip' && (this.opts.vips6?.length ?? 0) > 0) {
      this.raw6 = rawSocket.createSocket({ protocol: IPPROTO_IPV6, addressFamily: rawSocket.AddressFamily.IPv6 });
      this.raw6.on('message', (buf, source) => this.receive6(buf, source));
      this.raw6.on('error', onError);
    }
    return Promise.resolve();
  }

  /** One IPv4 packet from a raw socket (outer header included): IPIP or GRE. */
  receive(buf: Uint8Array): void {
    const c = this.counters;
    c.received++;
    if (buf.length < 20) return void c.malformed++;
    const outer = this.outer.at(buf, 0);
    const ohl = outer.headerLength;
    if (outer.version !== 4 || ohl < 20 || outer.totalLength > buf.length || outer.totalLength < ohl + 20) return void c.malformed++;
    if (outer.isFragment) return void c.malformed++; // the kernel reassembles before raw delivery
    if (this.opts.directors.length > 0 && !this.opts.directors.includes(outer.src)) return void c.wrongDirector++;
    const end = outer.totalLength;
    if (this.opts.kind === 'ipip') {
      if (outer.protocol !== IPPROTO_IPIP) return void c.notOurs++;
      return this.deliver(buf, ohl, end - ohl);
    }
    if (outer.protocol !== IPPROTO_GRE) return void c.notOurs++;
    // GRE (RFC 2784/2890): C, K, S flags, version 0, protocol type IPv4.
    const flags = (buf[ohl] << 8) | buf[ohl + 1];
    if ((flags & 7) !== 0 || ((buf[ohl + 2] << 8) | buf[ohl + 3]) !== 0x0800) return void c.notOurs++;
    let hdr = 4;
    if (flags & 0x8000) {
      if (checksum(buf, ohl, end - ohl) !== 0) return void c.malformed++;
      hdr += 4;
    }
    if (flags & 0x2000) hdr += 4; // key
    if (flags & 0x1000) hdr += 4; // sequence number
    if (ohl + hdr + 20 > end) return void c.malformed++;
    this.deliver(buf, ohl + hdr, end - ohl - hdr);
  }

  /** One GUE datagram's payload (the UDP socket strips the outer IP and UDP headers). */
  receiveGue(msg: Uint8Array, source: string): void {
    const c = this.counters;
    c.received++;
    if (this.opts.directors.length > 0) {
      const parts = source.split('.').map(Number);
      const src = parts.length === 4 ? (((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0) : -1;
      if (!this.opts.directors.includes(src)) return void c.wrongDirector++;
    }
    if (msg.length < 4 + 20) return void c.malformed++;
    // GUE header: version (2 bits) 0, C (1 bit) 0 for data, hlen (5 bits) in words, proto_ctype, flags.
    if ((msg[0] & 0xe0) !== 0 || msg[1] !== IPPROTO_IPIP) return void c.notOurs++;
    const hdr = 4 + (msg[0] & 0x1f) * 4;
    if (msg.length < hdr + 20) return void c.malformed++;
    this.deliver(msg, hdr, msg.length - hdr);
  }

  /**
   * One IPv6-in-IPv6 payload from the IPv6 raw socket (the kernel strips the outer header; `source` is the
   * outer source address): an IPv6 packet to one of the IPv6 VIPs.
   */
  receive6(buf: Uint8Array, source: string): void {
    const c = this.counters;
    c.received++;
    const directors = this.opts.directors6 ?? [];
    if (directors.length > 0 && !directors.includes(canonical6(source))) return void c.wrongDirector++;
    if (buf.length < IPV6_HEADER_LEN || buf[0] >>> 4 !== 6 || IPV6_HEADER_LEN + ((buf[4] << 8) | buf[5]) !== buf.length) return void c.malformed++;
    const vips = this.opts.vips6 ?? [];
    if (!vips.some((v) => v.every((b, i) => buf[24 + i] === b))) return void c.wrongVip++;
    this.write(buf, 0, buf.length);
  }

  /** Check the inner packet at buf[off, off+len) and hand it to the stack. */
  private deliver(buf: Uint8Array, off: number, len: number): void {
    const c = this.counters;
    const inner = this.inner.at(buf, off);
    if (inner.version !== 4 || inner.headerLength < 20 || inner.totalLength !== len || !inner.checksumValid()) return void c.malformed++;
    if (!this.opts.vips.includes(inner.dst)) return void c.wrongVip++;
    this.write(buf, off, len);
  }

  /** Write one inner packet to the TUN device: the local stack receives it. */
  private write(buf: Uint8Array, off: number, len: number): void {
    const c = this.counters;
    const o = this.tun.txSlotOffset(0);
    this.tun.arena.set(buf.subarray(off, off + len), o);
    this.tun.txOffsets[0] = o;
    this.tun.txLengths[0] = len;
    if (this.tun.write(1) === 1) c.delivered++;
    else c.writeFailed++;
  }

  close(): void {
    this.raw?.close();
    this.raw = null;
    this.raw6?.close();
    this.raw6 = null;
    this.udp?.close();
    this.udp = null;
    this.tun.close();
  }
}
