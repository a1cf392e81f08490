/**
 * The control socket: a Unix stream socket (mode 0600) speaking the JSON-lines protocol of
 * protocol.ts. Requests are applied one at a time, in arrival order, on the event loop, so a change is
 * never observed half applied by the data plane.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Reply, Request } from './protocol.js';

/** Upper bound on one request line (a -R batch of many thousand rules still fits). */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

export class ControlServer {
  private server: net.Server | null = null;

  constructor(
    private readonly path: string,
    private readonly handle: (req: Request) => Reply,
    private readonly onError: (msg: string) => void,
  ) {}

  async listen(): Promise<void> {
    await removeStaleSocket(this.path);
    const server = net.createServer((sock) => this.serve(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const oldUmask = process.umask(0o177); // the socket is created 0600
      server.listen(this.path, () => {
        process.umask(oldUmask);
        server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(this.path, 0o600);
  }

  private serve(sock: net.Socket): void {
    let buffered = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_REQUEST_BYTES) {
        sock.end(JSON.stringify({ ok: false, errno: 'EINVAL', message: 'request too large' }) + '\n');
        sock.destroy();
        return;
      }
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim() === '') continue;
        let reply: Reply;
        try {
          const req = JSON.parse(line) as Request;
          if (typeof req !== 'object' || req === null || typeof req.op !== 'string') throw new Error('not a request object');
          reply = this.handle(req);
        } catch (e) {
          reply = { ok: false, errno: 'EINVAL', message: `bad request: ${(e as Error).message}` };
        }
        sock.write(JSON.stringify(reply) + '\n');
      }
    });
    sock.on('error', (e) => this.onError(`control connection: ${e.message}`));
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    try {
      fs.unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

/** Remove a socket file left by a daemon that died; refuse when another daemon still answers on it. */
async function removeStaleSocket(path: string): Promise<void> {
  if (!fs.existsSync(path)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another tapvsd is listening on ${path}`);
  fs.unlinkSync(path);
}
