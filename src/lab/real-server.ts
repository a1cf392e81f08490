/**
 * The lab's real server: an HTTP server that answers with its own name and the peer it sees, and a UDP
 * echo service that does the same. Runs inside a real-server namespace.
 *
 *   node real-server.js --name rs1 --address 198.18.2.11 [--http-port 80] [--udp-port 9000]
 *                       [--udp-address ADDR] [--no-http] [--proxy-protocol]
 *                       [--address6 ADDR6] [--udp-address6 ADDR6]
 *
 * --address6: also serve IPv6 - HTTP on every IPv6 address of the host (VIPs on lo included), UDP bound
 * to --udp-address6 (default ADDR6; the VIP for direct routing).
 *
 * --proxy-protocol: the HTTP port expects a PROXY protocol v2 header first (as nginx with
 * `listen ... proxy_protocol`) and reports the client address it carries as `proxyClient`.
 *
 * The UDP socket is bound to --address (or --udp-address, e.g. the VIP for direct routing), so replies
 * leave from the address the request came to.
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { formatIpv6 } from '../dataplane/wire/ipv6.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const name = opt('--name', 'rs');
const address = opt('--address', '0.0.0.0');
const httpPort = Number(opt('--http-port', '80'));
const udpPort = Number(opt('--udp-port', '9000'));
const udpAddress = opt('--udp-address', address);
const withHttp = !args.includes('--no-http');
const proxyProtocol = args.includes('--proxy-protocol');
const address6 = opt('--address6', '');
const udpAddress6 = opt('--udp-address6', address6);

const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** The address this server reports as its own: --address6 on an IPv6 connection, else --address. */
const ownAddress = (sock: net.Socket): string => ((sock.localAddress ?? '').includes(':') ? address6 : address);

/** HTTP/1.x behind a PROXY v2 header, one request per connection (Connection: close). */
const serveProxied = (sock: net.Socket): void => {
  let buf = Buffer.alloc(0);
  let proxyClient: string | null = null;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (proxyClient === null) {
      if (buf.length < 16) return;
      if (!buf.subarray(0, 12).equals(PROXY_V2_SIGNATURE) || buf[12] !== 0x21) {
        sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 19\r\n\r\nno PROXY v2 header\n');
        return;
      }
      const len = buf.readUInt16BE(14);
      if (buf.length < 16 + len) return;
      if (buf[13] === 0x11) proxyClient = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}:${buf.readUInt16BE(24)}`;
      else if (buf[13] === 0x21 && len >= 36) {
        proxyClient = `[${formatIpv6(buf, 16)}]:${buf.readUInt16BE(48)}`;
      } else proxyClient = 'unknown';
      buf = buf.subarray(16 + len);
    }
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const path = buf.toString('latin1', 0, end).split(' ')[1] ?? '/';
    const wantBytes = /[?&]bytes=(\d+)/.exec(path);
    if (wantBytes) {
      // A download (large-transfer tests), as the plain HTTP server serves it.
      const n = Math.min(Number(wantBytes[1]), 64 * 1024 * 1024);
      sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`);
      sock.end(Buffer.alloc(n, 0x61));
      return;
    }
    const body = JSON.stringify({ server: name, address: ownAddress(sock), peer: sock.remoteAddress, peerPort: sock.remotePort, proxyClient, path }) + '\n';
    sock.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  sock.on('error', () => undefined);
};
const proxyServer = net.createServer(serveProxied);
const proxyServer6 = net.createServer(serveProxied);

const serve = (req: http.IncomingMessage, res: http.ServerResponse): void => {
  if (req.method === 'POST') {
    // An upload: count the body, answer with its size and SHA-256 (tests of large transfers).
    let received = 0;
    const hash = createHash('sha256');
    req.on('data', (d: Buffer) => {
      hash.update(d);
      received += d.length;
    });
    req.on('end', () => {
      const body = JSON.stringify({ server: name, peer: req.socket.remoteAddress, received, sha256: hash.digest('hex') }) + '\n';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
    return;
  }
  const body = JSON.stringify({ server: name, address: ownAddress(req.socket), peer: req.socket.remoteAddress, peerPort: req.socket.remotePort, path: req.url }) + '\n';
  const wantBytes = /[?&]bytes=(\d+)/.exec(req.url ?? '');
  if (wantBytes) {
    const n = Math.min(Number(wantBytes[1]), 64 * 1024 * 1024);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n), 'x-served-by': name });
    res.end(Buffer.alloc(n, 0x61));
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-served-by': name });
  res.end(body);
};
const server = http.createServer(serve);
server.keepAliveTimeout = 60_000;
const server6 = http.createServer(serve);
server6.keepAliveTimeout = 60_000;

// UDP: bound to the real server's own address so replies leave from it (and so through the director).
const echo = (sock: dgram.Socket, local: string) => (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
  const reply = Buffer.from(JSON.stringify({ server: name, address: local, peer: rinfo.address, peerPort: rinfo.port, echo: msg.toString('utf8', 0, Math.min(msg.length, 64)) }));
  sock.send(reply, rinfo.port, rinfo.address);
};
const udp = dgram.createSocket('udp4');
udp.on('message', echo(udp, address));
const udp6 = dgram.createSocket({ type: 'udp6', ipv6Only: true });
udp6.on('message', echo(udp6, address6));

let ready = 0;
const expected = address6 ? 4 : 2;
const listening = (): void => {
  if (++ready === expected)
    process.stdout.write(`${name} listening http ${withHttp ? httpPort : '-'} udp ${udpAddress}:${udpPort}${address6 ? ` [${udpAddress6}]:${udpPort}` : ''}\n`);
};
if (withHttp) (proxyProtocol ? proxyServer : server).listen(httpPort, '0.0.0.0', listening);
else ready++;
udp.bind(udpPort, udpAddress, listening);
if (address6) {
  if (withHttp) (proxyProtocol ? proxyServer6 : server6).listen({ port: httpPort, host: '::', ipv6Only: true }, listening);
  else ready++;
  udp6.bind(udpPort, udpAddress6, listening);
}
for (const s of ['SIGTERM', 'SIGINT'] as const)
  process.on(s, () => {
    server.close();
    server6.close();
    proxyServer.close();
    proxyServer6.close();
    udp.close();
    if (address6) udp6.close();
    process.exit(0);
  });
