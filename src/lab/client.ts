/**
 * The lab's client: sends real requests through the VIP and prints one JSON document with what each got.
 *
 *   client.js http HOST:PORT --count N [--source ADDR] N requests, each on a new TCP connection (from ADDR)
 *   client.js hold HOST:PORT --count N --ms T [--again]
 *                                                   open N connections (one request each), keep them open
 *                                                   T ms, print who served each, then close; with --again
 *                                                   each connection sends a second request after T ms
 *                                                   (reported as `second`)
 *   client.js udp HOST:PORT --count N [--timeout MS] N datagrams from one socket, one reply each
 *   client.js udp-new HOST:PORT --count N            N datagrams, each from a new socket (new source port)
 */
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';

interface Served {
  second?: Served;
  server?: string;
  peer?: string;
  peerPort?: number;
  error?: string;
  from?: string;
}

const [mode, target, ...rest] = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = rest.indexOf(name);
  return i >= 0 ? Number(rest[i + 1]) : dflt;
};
const count = Math.min(flag('--count', 1), 100_000);
const sourceAt = rest.indexOf('--source');
/** The local address to connect from (http mode), when the client has several. */
const localAddress = sourceAt >= 0 ? rest[sourceAt + 1] : undefined;
// HOST:PORT or [IPV6]:PORT
const bracketed = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(target ?? '');
const [host, portText] = bracketed ? [bracketed[1], bracketed[2]] : (target ?? '').split(':');
const port = Number(portText);

/** ADDR:PORT, or [ADDR]:PORT for IPv6, as the other tapvs tools print endpoints. */
function endpoint(address: string | undefined, port: number | undefined): string {
  return address !== undefined && address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function httpGet(agent: http.Agent | false): Promise<{ served: Served; socket: net.Socket | null }> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/', agent, localAddress, timeout: 5000, headers: agent === false ? { connection: 'close' } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve({ served: { ...(JSON.parse(body) as Served), from: endpoint(res.socket?.remoteAddress, res.socket?.remotePort) }, socket: res.socket });
        } catch {
          resolve({ served: { error: `bad body ${body.slice(0, 80)}` }, socket: null });
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ served: { error: e.message }, socket: null }));
  });
}

async function httpMode(): Promise<Served[]> {
  const out: Served[] = [];
  for (let i = 0; i < count; i++) out.push((await httpGet(false)).served);
  return out;
}

/** One HTTP/1.1 keep-alive request on an open socket; resolves with the JSON body. */
function requestOn(s: net.Socket): Promise<Served> {
  return new Promise((resolve) => {
    let buf = '';
    const timer = setTimeout(() => done({ error: 'timeout' }), 5000);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const i = buf.indexOf('\r\n\r\n');
      const body = i >= 0 ? buf.slice(i + 4) : '';
      if (body.endsWith('\n')) {
        try {
          done(JSON.parse(body) as Served);
        } catch {
          done({ error: 'bad body' });
        }
      }
    };
    const onError = (e: Error): void => done({ error: e.message });
    const onClose = (): void => done({ error: 'closed' });
    function done(r: Served): void {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', onError);
      s.off('close', onClose);
      resolve(r);
    }
    s.on('data', onData);
    s.on('error', onError);
    s.on('close', onClose);
    s.write(`GET / HTTP/1.1\r\nHost: ${host.includes(':') ? `[${host}]` : host}\r\nConnection: keep-alive\r\n\r\n`);
  });
}

/** Keep connections open: raw TCP with one HTTP/1.1 keep-alive request each (and a second with --again). */
async function holdMode(): Promise<Served[]> {
  const ms = flag('--ms', 1000);
  const again = rest.includes('--again');
  const sockets: net.Socket[] = [];
  const results: Served[] = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect({ host, port });
    s.on('error', () => undefined);
    sockets.push(s);
    const connected = await new Promise<boolean>((resolve) => {
      s.once('connect', () => resolve(true));
      s.once('error', () => resolve(false));
    });
    results.push(connected ? await requestOn(s) : { error: 'connect failed' });
  }
  await new Promise((r) => setTimeout(r, ms));
  if (again) for (let i = 0; i < sockets.length; i++) if (!results[i].error) results[i].second = await requestOn(sockets[i]);
  for (const s of sockets) s.end();
  await new Promise((r) => setTimeout(r, 100));
  return results;
}

function udpExchange(sock: dgram.Socket, payload: string, timeoutMs: number): Promise<Served> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sock.off('message', onMessage);
      resolve({ error: 'timeout' });
    }, timeoutMs);
    const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
      clearTimeout(timer);
      sock.off('message', onMessage);
      try {
        resolve({ ...(JSON.parse(msg.toString()) as Served), from: endpoint(rinfo.address, rinfo.port) });
      } catch {
        resolve({ error: 'bad reply' });
      }
    };
    sock.on('message', onMessage);
    sock.send(payload, port, host);
  });
}

async function udpMode(newSocketEach: boolean): Promise<Served[]> {
  const timeout = flag('--timeout', 2000);
  const out: Served[] = [];
  let sock: dgram.Socket | null = null;
  for (let i = 0; i < count; i++) {
    if (!sock || newSocketEach) {
      sock?.close();
      sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      await new Promise<void>((r) => sock!.bind(0, r));
    }
    out.push(await udpExchange(sock, `ping ${i}`, timeout));
  }
  sock?.close();
  return out;
}

async function main(): Promise<void> {
  if (!host || !(port > 0)) throw new Error('usage: client.js http|hold|udp|udp-new HOST:PORT --count N');
  let results: Served[];
  if (mode === 'http') results = await httpMode();
  else if (mode === 'hold') results = await holdMode();
  else if (mode === 'udp') results = await udpMode(false);
  else if (mode === 'udp-new') results = await udpMode(true);
  else throw new Error(`unknown mode ${mode}`);
  process.stdout.write(JSON.stringify(results) + '\n');
}

main().catch((e) => {
  process.stderr.write(`client: ${(e as Error).message}\n`);
  process.exit(1);
});
