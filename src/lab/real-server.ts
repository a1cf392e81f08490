/**
 * The lab's real server: an HTTP server that answers with its own name and the peer it sees, and a UDP
 * echo service that does the same. Runs inside a real-server namespace.
 *
 *   node real-server.js --name rs1 --address 198.18.2.11 [--http-port 80] [--udp-port 9000]
 *                       [--udp-address ADDR] [--no-http]
 *
 * The UDP socket is bound to --address (or --udp-address, e.g. the VIP for direct routing), so replies
 * leave from the address the request came to.
 */
import dgram from 'node:dgram';
import http from 'node:http';

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

const server = http.createServer((req, res) => {
  const body = JSON.stringify({ server: name, address, peer: req.socket.remoteAddress, peerPort: req.socket.remotePort, path: req.url }) + '\n';
  const wantBytes = /[?&]bytes=(\d+)/.exec(req.url ?? '');
  if (wantBytes) {
    const n = Math.min(Number(wantBytes[1]), 64 * 1024 * 1024);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n), 'x-served-by': name });
    res.end(Buffer.alloc(n, 0x61));
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-served-by': name });
  res.end(body);
});
server.keepAliveTimeout = 60_000;

// UDP: bound to the real server's own address so replies leave from it (and so through the director).
const udp = dgram.createSocket('udp4');
udp.on('message', (msg, rinfo) => {
  const reply = Buffer.from(JSON.stringify({ server: name, address, peer: rinfo.address, peerPort: rinfo.port, echo: msg.toString('utf8', 0, Math.min(msg.length, 64)) }));
  udp.send(reply, rinfo.port, rinfo.address);
});

let ready = 0;
const listening = (): void => {
  if (++ready === 2) process.stdout.write(`${name} listening http ${withHttp ? httpPort : '-'} udp ${udpAddress}:${udpPort}\n`);
};
if (withHttp) server.listen(httpPort, '0.0.0.0', listening);
else ready++;
udp.bind(udpPort, udpAddress, listening);
for (const s of ['SIGTERM', 'SIGINT'] as const)
  process.on(s, () => {
    server.close();
    udp.close();
    process.exit(0);
  });
