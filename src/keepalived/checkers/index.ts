/** One entry point for every checker type (one file per type). */
import type { Checker } from '../config.js';
import { dnsCheck } from './dns.js';
import { httpCheck } from './http.js';
import { miscCheck } from './misc.js';
import { pingCheck } from './ping.js';
import { tcpCheck } from './tcp.js';
import { fail, type CheckOutcome } from './types.js';
import { udpCheck } from './udp.js';

export type { CheckOutcome } from './types.js';

export function runCheck(c: Checker, signal: AbortSignal): Promise<CheckOutcome> {
  switch (c.type) {
    case 'TCP_CHECK':
      return tcpCheck(c, signal);
    case 'HTTP_GET':
    case 'SSL_GET':
      return httpCheck(c, signal);
    case 'MISC_CHECK':
      return miscCheck(c, signal);
    case 'UDP_CHECK':
      return udpCheck(c, signal);
    case 'PING_CHECK':
      return pingCheck(c, signal);
    case 'DNS_CHECK':
      return dnsCheck(c, signal);
    default:
      return Promise.resolve(fail(`unsupported checker ${(c as Checker).type}`));
  }
}

/** Where a checker connects, for status views: `TCP 198.18.2.11:80`, `script /bin/true`. */
export function checkerTarget(c: Checker): string {
  if (c.type === 'MISC_CHECK') return c.script.command;
  const h = c.connection.connectIp.includes(':') ? `[${c.connection.connectIp}]` : c.connection.connectIp;
  if (c.type === 'PING_CHECK') return h;
  return `${h}:${c.connection.connectPort}`;
}
