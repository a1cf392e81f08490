/** The `/metrics` HTTP endpoint of `tapvsd --metrics HOST:PORT` (Prometheus text exposition format). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsListen {
  host: string;
  port: number;
}

/** Parse `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces). Port 0 picks a free port. */
export function parseMetricsListen(text: string): MetricsListen | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]);
  return { host, port };
}

export class MetricsServer {
  private server: http.Server | null = null;

  constructor(
    private readonly registry: Registry,
    private readonly onError: (message: string) => void,
    /** Called before each scrape (a multiqueue director gathers its queues' counters there). */
    private readonly beforeScrape: () => void = () => {},
  ) {}

  /** Listen; resolves with the bound address (`host:port`, the real port when 0 was asked). */
  listen(at: MetricsListen): Promise<string> {
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('tapvsd: metrics at /metrics\n');
        return;
      }
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
        return;
      }
      try {
        this.beforeScrape();
      } catch (e) {
        this.onError(`metrics collection failed: ${(e as Error).message}`);
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (e: unknown) => {
          this.onError(`metrics collection failed: ${(e as Error).message}`);
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n');
        },
      );
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port, at.host, () => {
        server.off('error', reject);
        server.on('error', (e) => this.onError(`metrics server: ${e.message}`));
        const a = server.address() as AddressInfo;
        resolve(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
