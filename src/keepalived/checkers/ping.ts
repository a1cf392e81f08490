/**
 * PING_CHECK (check_ping.c): one ICMP echo request to connect_ip; success = the echo reply with our
 * identifier and sequence number from that address within connect_timeout. Uses a raw ICMP socket
 * (the raw-socket package; tapvsd runs as root). IPv4 and IPv6 (ICMPv6, the kernel fills its checksum).
 */
import { createRequire } from 'node:module';
import { randomInt } from 'node:crypto';
import type { PingChecker } from '../config.js';
import { errText, fail, ok, seconds, settleOnce, type CheckOutcome } from './types.js';

interface RawSocket {
  on(event: 'message', cb: (buf: Buffer, source: string) => void): void;
  on(event: 'error', cb: (e: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, address: string, before: null, after: (e: Error | null) => void): void;
  close(): void;
}
interface RawModule {
  createSocket(o: { protocol: number; addressFamily?: number }): RawSocket;
  AddressFamily: { IPv4: number; IPv6: number };
  Protocol: { ICMP: number; ICMPv6: number };
}

let rawModule: RawModule | null = null;
function raw(): RawModule {
  if (!rawModule) rawModule = createRequire(import.meta.url)('raw-socket') as RawModule;
  return rawModule;
}

const PAYLOAD = Buffer.from('keepalived-tapvs-ping-check');

/** An ICMP (v4: type 8, checksum filled; v6: type 128, checksum left to the kernel) echo request. */
/** The Internet checksum (RFC 1071). */
export function internetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (b.length % 2) sum += b[b.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function buildEchoRequest(af: 4 | 6, id: number, seq: number): Buffer {
  const b = Buffer.alloc(8 + PAYLOAD.length);
  b[0] = af === 4 ? 8 : 128;
  b.writeUInt16BE(id, 4);
  b.writeUInt16BE(seq, 6);
  PAYLOAD.copy(b, 8);
  if (af === 4) b.writeUInt16BE(internetChecksum(b), 2);
  return b;
}

/** Is `pkt` (IPv4: with its IP header, as raw IPv4 sockets deliver; IPv6: ICMPv6 only) our echo reply? */
export function isEchoReply(af: 4 | 6, pkt: Buffer, id: number, seq: number): boolean {
  let off = 0;
  if (af === 4) {
    if (pkt.length < 20) return false;
    off = (pkt[0] & 0x0f) * 4;
  }
  if (pkt.length < off + 8) return false;
  return pkt[off] === (af === 4 ? 0 : 129) && pkt.readUInt16BE(off + 4) === id && pkt.readUInt16BE(off + 6) === seq;
}

let sequence = randomInt(0, 0x10000);

export function pingCheck(c: PingChecker, signal: AbortSignal): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const conn = c.connection;
    const r = raw();
    let sock: RawSocket;
    try {
      sock = r.createSocket(conn.af === 6 ? { protocol: r.Protocol.ICMPv6, addressFamily: r.AddressFamily.IPv6 } : { protocol: r.Protocol.ICMP });
    } catch (e) {
      return resolve(fail(`ICMP socket: ${errText(e)}`));
    }
    const id = randomInt(0, 0x10000);
    sequence = (sequence + 1) & 0xffff;
    const seq = sequence;
    const finish = settleOnce(sock, conn.connectTimeout * 1000, () => fail(`no echo reply within ${seconds(conn.connectTimeout)}`), signal, resolve);
    sock.on('error', (e) => finish(fail(`ICMP: ${errText(e)}`)));
    sock.on('message', (buf, source) => {
      if (source === conn.connectIp && isEchoReply(conn.af, buf, id, seq)) finish(ok('echo reply'));
    });
    const pkt = buildEchoRequest(conn.af, id, seq);
    sock.send(pkt, 0, pkt.length, conn.connectIp, null, (e) => {
      if (e) finish(fail(`ICMP send: ${errText(e)}`));
    });
  });
}
