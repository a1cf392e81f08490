/**
 * The real-server side of LVS-TUN on a host without the `ipip` kernel module: receives IPIP packets
 * (IPv4 protocol 4) on a raw socket, checks them, strips the outer header and writes the inner packet to a
 * TUN device, so the local stack receives the client's packet (CIP -> VIP) as if it had arrived directly
 * and answers the client straight from the VIP — what `tunl0` does on a host that has the module.
 *
 * Only inner packets addressed to one of the configured VIPs (and, if given, outer packets from one of
 * the configured directors) are decapsulated: anything else is counted and dropped, so the receiver is
 * never an open relay.
 */
import { createRequire } from 'node:module';
import { Tap } from '../dataplane/tap.js';
import { IPPROTO_IPIP, Ipv4View } from '../dataplane/wire/ipv4.js';

export interface IpipReceiverOptions {
  vips: number[];
  directors: number[];
  device: string;
}

export interface IpipCounters {
  received: number;
  delivered: number;
  notIpip: number;
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

export class IpipReceiver {
  readonly counters: IpipCounters = { received: 0, delivered: 0, notIpip: 0, malformed: 0, wrongVip: 0, wrongDirector: 0, writeFailed: 0 };
  private readonly tun: Tap;
  private socket: RawSocket | null = null;
  private readonly outer = new Ipv4View();
  private readonly inner = new Ipv4View();

  constructor(private readonly opts: IpipReceiverOptions) {
    this.tun = new Tap(opts.device, { tun: true, rxSlots: 1, txSlots: 4, slotSize: 65_600, headroom: 0 });
    this.tun.device.setUp(true);
  }

  get deviceName(): string {
    return this.tun.name;
  }

  start(onError: (e: Error) => void): void {
    const require = createRequire(import.meta.url);
    const raw = require('raw-socket') as { createSocket(o: { protocol: number }): RawSocket };
    this.socket = raw.createSocket({ protocol: IPPROTO_IPIP });
    this.socket.on('message', (buf) => this.receive(buf));
    this.socket.on('error', onError);
  }

  /** Handle one received IPv4 packet (outer header included, as a raw IPv4 socket delivers it). */
  receive(buf: Uint8Array): void {
    const c = this.counters;
    c.received++;
    if (buf.length < 40) return void c.malformed++;
    const outer = this.outer.at(buf, 0);
    const ohl = outer.headerLength;
    if (outer.version !== 4 || ohl < 20 || outer.totalLength > buf.length || outer.totalLength < ohl + 20) return void c.malformed++;
    if (outer.protocol !== IPPROTO_IPIP) return void c.notIpip++;
    if (outer.isFragment) return void c.malformed++; // the kernel reassembles before raw delivery; a fragment here is junk
    if (this.opts.directors.length > 0 && !this.opts.directors.includes(outer.src)) return void c.wrongDirector++;
    const inner = this.inner.at(buf, ohl);
    const innerLen = outer.totalLength - ohl;
    if (inner.version !== 4 || inner.headerLength < 20 || inner.totalLength !== innerLen || !inner.checksumValid()) return void c.malformed++;
    if (!this.opts.vips.includes(inner.dst)) return void c.wrongVip++;
    const off = this.tun.txSlotOffset(0);
    this.tun.arena.set(buf.subarray(ohl, ohl + innerLen), off);
    this.tun.txOffsets[0] = off;
    this.tun.txLengths[0] = innerLen;
    if (this.tun.write(1) === 1) c.delivered++;
    else c.writeFailed++;
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
    this.tun.close();
  }
}
