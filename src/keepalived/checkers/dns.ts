/**
 * DNS_CHECK (check_dns.c): one UDP query (RD set) for `name` (default ".") of `type` (default SOA) to
 * connect_ip:connect_port; success = a reply within connect_timeout with the query's id, QR set and
 * RCODE 0 (NOERROR). Replies with another id are ignored (keepalived drops them too).
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import type { DnsChecker } from '../config.js';
import { errText, fail, ok, seconds, settleOnce, type CheckOutcome } from './types.js';

export const DNS_TYPE_CODES: Record<DnsChecker['queryType'], number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 };
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** A standard query: header (id, flags RD, QDCOUNT 1), QNAME as labels, QTYPE, QCLASS IN. */
export function buildDnsQuery(id: number, name: string, type: number): Buffer {
  const labels = name === '.' || name === '' ? [] : name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  parts.push(header);
  for (const l of labels) {
    const b = Buffer.from(l, 'latin1');
    if (b.length === 0 || b.length > 63) throw new Error(`DNS label '${l}' must be 1..63 bytes`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2); // IN
  parts.push(tail);
  return Buffer.concat(parts);
}

export interface DnsHeader {
  id: number;
  qr: boolean;
  rcode: number;
  qdcount: number;
  ancount: number;
}

export function parseDnsHeader(msg: Uint8Array): DnsHeader | null {
  if (msg.length < 12) return null;
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.length);
  const flags = b.readUInt16BE(2);
  return { id: b.readUInt16BE(0), qr: (flags & 0x8000) !== 0, rcode: flags & 0x000f, qdcount: b.readUInt16BE(4), ancount: b.readUInt16BE(6) };
}

/** keepalived's verdict on a reply to query `id`: null = not for us (ignore), else the outcome. */
export function judgeDnsReply(id: number, msg: Uint8Array): CheckOutcome | null {
  const h = parseDnsHeader(msg);
  if (!h || h.id !== id) return null;
  if (!h.qr) return fail('DNS reply without the QR flag');
  if (h.rcode !== 0) return fail(`DNS rcode ${RCODES[h.rcode] ?? h.rcode}`);
  return ok(`DNS NOERROR, ${h.ancount} answer(s)`);
}

export function dnsCheck(c: DnsChecker, signal: AbortSignal): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const conn = c.connection;
    const id = randomInt(0, 0x10000);
    let query: Buffer;
    try {
      query = buildDnsQuery(id, c.name, DNS_TYPE_CODES[c.queryType]);
    } catch (e) {
      return resolve(fail(errText(e)));
    }
    const sock = dgram.createSocket(conn.af === 6 ? 'udp6' : 'udp4');
    const finish = settleOnce(sock, conn.connectTimeout * 1000, () => fail(`no DNS reply within ${seconds(conn.connectTimeout)}`), signal, resolve);
    sock.on('error', (e) => finish(fail(`DNS: ${errText(e)}`)));
    sock.on('message', (msg) => {
      const verdict = judgeDnsReply(id, msg);
      if (verdict) finish(verdict);
    });
    const send = (): void =>
      sock.connect(conn.connectPort, conn.connectIp, () => {
        sock.send(query, (e) => {
          if (e) finish(fail(`DNS send: ${errText(e)}`));
        });
      });
    if (conn.bindTo !== undefined || conn.bindPort !== undefined) sock.bind({ address: conn.bindTo, port: conn.bindPort ?? 0 }, send);
    else send();
  });
}
