/**
 * HTTP_GET and SSL_GET (check_http.c): for each url, connect (TLS without certificate verification for
 * SSL_GET, SNI with enable_sni), send keepalived's request, read the response until the server closes
 * (or Content-Length is complete), and check the status code against status_code (default 200-299),
 * the MD5 digest of the body, and regex. Every url of the checker must pass for the check to pass.
 *
 * Request, byte for byte as keepalived sends it:
 *   GET <path> HTTP/1.<0|1>\r\nUser-Agent: KeepAliveClient\r\n[Connection: close\r\n]Host: <vhost|ip:port>\r\n\r\n
 * The digest is the MD5 of the bytes after the header's empty line, as keepalived (and genhash) compute it
 * (no chunked decoding: keepalived does not decode either).
 */
import { createHash } from 'node:crypto';
import type { HttpChecker, HttpUrl } from '../config.js';
import { formatHostPort } from '../config.js';
import { connectChecker } from './tcp.js';
import { errText, fail, ok, seconds, type CheckOutcome } from './types.js';

export function httpRequest(c: HttpChecker, url: HttpUrl): string {
  const host = url.virtualhost ?? c.virtualhost ?? formatHostPort(c.connection.connectIp, c.connection.connectPort);
  const version = c.httpProtocol === '1.1' ? '1.1' : '1.0';
  const close = c.httpProtocol === '1.0' ? '' : 'Connection: close\r\n';
  return `GET ${url.path} HTTP/${version}\r\nUser-Agent: KeepAliveClient\r\n${close}Host: ${host}\r\n\r\n`;
}

/** MD5 of a body, 32 lower-case hex digits (what `keepalived --genhash` prints). */
export function httpDigest(body: Uint8Array): string {
  return createHash('md5').update(body).digest('hex');
}

export interface HttpResponse {
  status: number;
  headers: string;
  body: Buffer;
}

/** Split a raw response into status, header text and body; null when there is no complete header. */
export function parseHttpResponse(raw: Buffer): HttpResponse | null {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const headers = raw.toString('latin1', 0, end);
  const m = /^HTTP\/\d+(?:\.\d+)?\s+(\d{3})/.exec(headers);
  if (!m) return null;
  return { status: Number(m[1]), headers, body: raw.subarray(end + 4) };
}

/** Does the response satisfy the url (status_code, digest, regex)? null = yes, else the reason. */
export function judgeUrl(url: HttpUrl, res: HttpResponse): string | null {
  if (!url.statusCodes.some(([a, b]) => res.status >= a && res.status <= b)) {
    const want = url.statusCodes.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(',');
    return `HTTP status ${res.status} not in ${want}`;
  }
  if (url.digest !== undefined) {
    const got = httpDigest(res.body);
    if (got !== url.digest.toLowerCase()) return `MD5 digest ${got} does not match ${url.digest.toLowerCase()}`;
  }
  if (url.regex !== undefined) {
    let body = res.body.toString('latin1');
    if (url.regexMinOffset !== undefined || url.regexMaxOffset !== undefined) body = body.slice(url.regexMinOffset ?? 0, url.regexMaxOffset);
    const flags = url.regexOptions.some((o) => o.toLowerCase() === 'caseless') ? 'i' : '';
    let matched: boolean;
    try {
      matched = new RegExp(url.regex, flags).test(body);
    } catch {
      return `regex ${url.regex} is not valid here`;
    }
    if (matched === url.regexNoMatch) return `regex ${url.regex} ${url.regexNoMatch ? 'matched' : 'did not match'}`;
  }
  return null;
}

const MAX_RESPONSE = 4 * 1024 * 1024;

async function fetchUrl(c: HttpChecker, url: HttpUrl, signal: AbortSignal): Promise<HttpResponse | string> {
  const tlsOpts = c.type === 'SSL_GET' ? { servername: c.enableSni ? (c.sniName ?? url.virtualhost ?? c.virtualhost) : undefined } : undefined;
  let sock;
  try {
    sock = await connectChecker(c.connection, signal, tlsOpts ? { tls: tlsOpts } : {});
  } catch (e) {
    return `${c.type === 'SSL_GET' ? 'TLS' : 'TCP'} connect: ${errText(e)}`;
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (why: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      const res = parseHttpResponse(raw);
      if (res) {
        const len = /^content-length:\s*(\d+)/im.exec(res.headers);
        if (why !== null && !(len && res.body.length >= Number(len[1]))) return resolve(`reading the response: ${why}`);
        if (len) res.body = res.body.subarray(0, Number(len[1]));
        return resolve(res);
      }
      resolve(why !== null ? `reading the response: ${why}` : raw.length === 0 ? 'connection closed without a response' : 'malformed HTTP response');
    };
    const arm = (): NodeJS.Timeout => setTimeout(() => finish(`timeout after ${seconds(c.connection.connectTimeout)}`), c.connection.connectTimeout * 1000);
    let timer = arm();
    const onAbort = (): void => finish('aborted');
    signal.addEventListener('abort', onAbort);
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      clearTimeout(timer);
      timer = arm();
      if (size > MAX_RESPONSE) return finish(null);
      // Done early when the whole Content-Length body is in (a server that keeps the connection open).
      const raw = Buffer.concat(chunks);
      const res = parseHttpResponse(raw);
      const len = res && /^content-length:\s*(\d+)/im.exec(res.headers);
      if (res && len && res.body.length >= Number(len[1])) finish(null);
    });
    sock.on('end', () => finish(null));
    sock.on('close', () => finish(null));
    sock.on('error', (e) => finish(errText(e)));
    sock.write(httpRequest(c, url));
  });
}

export async function httpCheck(c: HttpChecker, signal: AbortSignal): Promise<CheckOutcome> {
  if (c.urls.length === 0) return fail('no url configured');
  for (const url of c.urls) {
    const res = await fetchUrl(c, url, signal);
    if (typeof res === 'string') return fail(`${url.path}: ${res}`);
    const bad = judgeUrl(url, res);
    if (bad) return fail(`${url.path}: ${bad}`);
  }
  return ok(c.urls.length === 1 ? `${c.urls[0].path}: HTTP status ok` : `${c.urls.length} urls ok`);
}
