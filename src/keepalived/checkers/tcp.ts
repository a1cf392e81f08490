/**
 * TCP_CHECK (check_tcp.c): success = the TCP connection to connect_ip:connect_port (from bindto:bind_port)
 * completes within connect_timeout; the connection is then closed at once.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { ConnectionOptions, TcpChecker } from '../config.js';
import { errText, fail, ok, seconds, type CheckOutcome } from './types.js';

export interface ConnectOptions {
  /** TLS (SSL_GET): no certificate verification, as keepalived without an SSL block's `ca`. */
  tls?: { servername?: string };
}

/** Connect as keepalived's checkers do; resolves with the connected socket or rejects with a reason. */
export function connectChecker(conn: ConnectionOptions, signal: AbortSignal, opts: ConnectOptions = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (conn.connectPort === 0) return reject(new Error('the real server has no port to connect to'));
    const base: net.TcpNetConnectOpts = {
      host: conn.connectIp,
      port: conn.connectPort,
      family: conn.af,
      ...(conn.bindTo !== undefined ? { localAddress: conn.bindTo } : {}),
      ...(conn.bindPort !== undefined ? { localPort: conn.bindPort } : {}),
    };
    const sock: net.Socket = opts.tls
      ? tls.connect({ ...base, rejectUnauthorized: false, ...(opts.tls.servername ? { servername: opts.tls.servername } : {}) })
      : net.connect(base);
    let done = false;
    const finish = (e: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      sock.removeListener('error', onError);
      if (e) {
        sock.destroy();
        reject(e);
      } else {
        sock.on('error', () => undefined);
        resolve(sock);
      }
    };
    const onError = (e: Error): void => finish(e);
    const onAbort = (): void => finish(new Error('aborted'));
    const timer = setTimeout(() => finish(new Error(`connect timeout after ${seconds(conn.connectTimeout)}`)), conn.connectTimeout * 1000);
    sock.once('error', onError);
    sock.once(opts.tls ? 'secureConnect' : 'connect', () => finish(null));
    signal.addEventListener('abort', onAbort);
  });
}

export async function tcpCheck(c: TcpChecker, signal: AbortSignal): Promise<CheckOutcome> {
  try {
    const sock = await connectChecker(c.connection, signal);
    sock.destroy();
    return ok('connected');
  } catch (e) {
    return fail(`TCP connect: ${errText(e)}`);
  }
}
