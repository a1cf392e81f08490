/**
 * UDP_CHECK (check_udp.c): send `payload` (empty without one) on a connected UDP socket. Without
 * require_reply: success unless an ICMP error (port/host/net unreachable) comes back within connect_timeout
 * (a reply also passes). With require_reply: a reply must arrive within connect_timeout, its length in
 * [min_reply_length, max_reply_length], and (require_reply HEX) its first bytes match, X nibbles wild.
 */
import dgram from 'node:dgram';
import type { UdpChecker } from '../config.js';
import { errText, fail, ok, seconds, settleOnce, type CheckOutcome } from './types.js';

/** The reply check of require_reply (check_udp.c udp_check_response). null = accepted, else why not. */
export function judgeUdpReply(c: Pick<UdpChecker, 'replyData' | 'replyMask' | 'minReplyLength' | 'maxReplyLength'>, reply: Uint8Array): string | null {
  if (reply.length < c.minReplyLength) return `reply of ${reply.length} bytes is shorter than min_reply_length ${c.minReplyLength}`;
  if (reply.length > c.maxReplyLength) return `reply of ${reply.length} bytes is longer than max_reply_length ${c.maxReplyLength}`;
  const want = c.replyData;
  if (want) {
    if (reply.length < want.length) return `reply of ${reply.length} bytes is shorter than the required ${want.length}`;
    const mask = c.replyMask;
    for (let i = 0; i < want.length; i++) {
      const m = mask ? mask[i] : 0;
      if ((reply[i] & ~m & 0xff) !== (want[i] & ~m & 0xff)) return `reply byte ${i} is 0x${reply[i].toString(16).padStart(2, '0')}, not the required 0x${want[i].toString(16).padStart(2, '0')}`;
    }
  }
  return null;
}

export function udpCheck(c: UdpChecker, signal: AbortSignal): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const conn = c.connection;
    if (conn.connectPort === 0) return resolve(fail('the real server has no port to send to'));
    const sock = dgram.createSocket(conn.af === 6 ? 'udp6' : 'udp4');
    const finish = settleOnce(
      sock,
      conn.connectTimeout * 1000,
      () => (c.requireReply ? fail(`no reply within ${seconds(conn.connectTimeout)}`) : ok(`no ICMP error within ${seconds(conn.connectTimeout)}`)),
      signal,
      resolve,
    );
    sock.on('error', (e) => finish(fail(`UDP: ${errText(e)}`)));
    sock.on('message', (msg) => {
      if (!c.requireReply) return finish(ok('reply received'));
      const bad = judgeUdpReply(c, msg);
      finish(bad ? fail(bad) : ok(`reply of ${msg.length} bytes accepted`));
    });
    const send = (): void =>
      sock.connect(conn.connectPort, conn.connectIp, () => {
        sock.send(Buffer.from(c.payload ?? new Uint8Array(0)), (e) => {
          if (e) finish(fail(`UDP send: ${errText(e)}`));
        });
      });
    if (conn.bindTo !== undefined || conn.bindPort !== undefined) sock.bind({ address: conn.bindTo, port: conn.bindPort ?? 0 }, send);
    else send();
  });
}
