/**
 * The health-check engine (src/keepalived/checkers/): keepalived's retry / delay_before_retry state
 * machine with a fake clock, the HTTP request and MD5 digest, MISC_CHECK exit codes and misc_dynamic
 * weights, DNS query build / reply parse, UDP reply matching, ICMP echo, and the engine driving a real
 * Director's table through the controller (down -> removed / weight 0, quorum -> sorry server, notify).
 * No network traffic: checks are faked where they would touch the network.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Director } from '../../src/director.js';
import type { Checker, HttpChecker, HttpUrl, MiscChecker, ScriptSpec } from '../../src/keepalived/config.js';
import { KeepalivedController } from '../../src/keepalived/controller.js';
import { buildDnsQuery, judgeDnsReply, parseDnsHeader } from '../../src/keepalived/checkers/dns.js';
import { effectiveWeight, HealthCheckEngine } from '../../src/keepalived/checkers/engine.js';
import { httpDigest, httpRequest, judgeUrl, parseHttpResponse } from '../../src/keepalived/checkers/http.js';
import { miscCheck, miscOutcome } from '../../src/keepalived/checkers/misc.js';
import { buildEchoRequest, internetChecksum, isEchoReply } from '../../src/keepalived/checkers/ping.js';
import { CheckerRunner, initialState, step, type Clock } from '../../src/keepalived/checkers/scheduler.js';
import type { CheckOutcome } from '../../src/keepalived/checkers/types.js';
import { judgeUdpReply } from '../../src/keepalived/checkers/udp.js';
import { Logger } from '../../src/logger.js';

const tmp = mkdtempSync(join(tmpdir(), 'tapvs-ka-chk-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

class FakeClock implements Clock {
  t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  random(): number {
    return 0.5;
  }
  get pending(): number {
    return this.timers.size;
  }
  /** Run every timer due within `ms`, in time order, letting the (already resolved) checks complete. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    }
    this.t = end;
  }
}

const timing = { delayLoop: 10, warmup: 10, retry: 2, delayBeforeRetry: 3, alpha: false, logAllFailures: false };

describe('retry / delay_before_retry state machine', () => {
  it('non-alpha starts up with the retry counter pre-loaded: the first failure is down at once', () => {
    const s = initialState(timing);
    expect(s).toEqual({ up: true, retryIt: 2, hasRun: false });
    expect(step(s, false, timing)).toEqual({ state: { up: false, retryIt: 0, hasRun: true }, transition: 'down', delay: 10 });
  });

  it('after a success: down only after retry + 1 consecutive failures, retries spaced delay_before_retry', () => {
    let s = step(initialState(timing), true, timing).state;
    const seen: [boolean, string | null, number][] = [];
    for (let i = 0; i < 3; i++) {
      const r = step(s, false, timing);
      s = r.state;
      seen.push([s.up, r.transition, r.delay]);
    }
    expect(seen).toEqual([
      [true, null, 3],
      [true, null, 3],
      [false, 'down', 10],
    ]);
    // down: failures keep it down every delay_loop; one success brings it up
    expect(step(s, false, timing)).toMatchObject({ transition: null, delay: 10, state: { up: false } });
    expect(step(s, true, timing)).toEqual({ state: { up: true, retryIt: 0, hasRun: true }, transition: 'up', delay: 10 });
  });

  it('a success between failures resets the retry counter; alpha starts down', () => {
    let s = step(initialState(timing), true, timing).state;
    s = step(s, false, timing).state;
    s = step(s, false, timing).state;
    s = step(s, true, timing).state;
    expect(s.retryIt).toBe(0);
    expect(step(step(s, false, timing).state, false, timing).transition).toBeNull();
    expect(initialState({ ...timing, alpha: true })).toEqual({ up: false, retryIt: 0, hasRun: false });
  });

  it('CheckerRunner: first check at 1 s + random*warmup, then delay_loop / delay_before_retry, stop ends it', async () => {
    const clock = new FakeClock();
    const results = [true, false, false, false, true];
    const times: number[] = [];
    const transitions: (string | null)[] = [];
    const runner = new CheckerRunner(
      timing,
      async () => {
        times.push(clock.now());
        const ok = results.shift() ?? true;
        return { ok, reason: ok ? 'fine' : 'refused' };
      },
      clock,
      (_r, _res, t) => transitions.push(t),
    );
    runner.start();
    await clock.advance(60_000);
    // 1 s + 0.5 * 10 s = 6 s; ok -> +10; fail -> +3; fail -> +3; fail (down) -> +10; ok (up) -> +10 ...
    expect(times.slice(0, 6)).toEqual([6000, 16000, 19000, 22000, 32000, 42000]);
    expect(transitions.slice(0, 5)).toEqual([null, null, null, 'down', 'up']);
    runner.stop();
    expect(clock.pending).toBe(0);
    const n = times.length;
    await clock.advance(60_000);
    expect(times.length).toBe(n);
  });
});

function url(over: Partial<HttpUrl> = {}): HttpUrl {
  return { path: '/', statusCodes: [[200, 299]], regexNoMatch: false, regexOptions: [], at: { file: 'k.conf', line: 1 }, ...over };
}

describe('HTTP_GET / SSL_GET', () => {
  const checker = {
    type: 'HTTP_GET',
    connection: { af: 4, connectIp: '198.18.2.11', connectPort: 80, connectTimeout: 3, fwmark: 0 },
    urls: [],
    httpProtocol: '1.0',
  } as unknown as HttpChecker;

  it('sends keepalived request byte for byte (Host = virtualhost, else ip:port)', () => {
    expect(httpRequest(checker, url({ path: '/health' }))).toBe('GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 198.18.2.11:80\r\n\r\n');
    expect(httpRequest({ ...checker, httpProtocol: '1.1', virtualhost: 'www.example' }, url())).toBe(
      'GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example\r\n\r\n',
    );
    expect(httpRequest({ ...checker, httpProtocol: '1.0C', virtualhost: 'a' }, url({ virtualhost: 'b' }))).toContain('HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: b\r\n');
  });

  it('digest = MD5 of the body after the header, as genhash prints it', () => {
    expect(httpDigest(Buffer.from(''))).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(httpDigest(Buffer.from('hello\n'))).toBe('b1946ac92492d2347c6235b4d2611184');
    const raw = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n');
    const res = parseHttpResponse(raw)!;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello\n');
    expect(judgeUrl(url({ digest: createHash('md5').update('hello\n').digest('hex') }), res)).toBeNull();
    expect(judgeUrl(url({ digest: 'B1946AC92492D2347C6235B4D2611184' }), res)).toBeNull();
    expect(judgeUrl(url({ digest: '00000000000000000000000000000000' }), res)).toMatch(/^MD5 digest b1946ac9\w+ does not match 0{32}$/);
  });

  it('status_code ranges (default 2xx), both status and digest must match, regex', () => {
    const res = parseHttpResponse(Buffer.from('HTTP/1.0 503 Service Unavailable\r\n\r\nbusy'))!;
    expect(judgeUrl(url(), res)).toBe('HTTP status 503 not in 200-299');
    expect(judgeUrl(url({ statusCodes: [[500, 503], [200, 200]] }), res)).toBeNull();
    expect(judgeUrl(url({ statusCodes: [[503, 503]], digest: httpDigest(Buffer.from('other')) }), res)).toMatch(/MD5/);
    expect(judgeUrl(url({ statusCodes: [[503, 503]], regex: 'bu.y' }), res)).toBeNull();
    expect(judgeUrl(url({ statusCodes: [[503, 503]], regex: 'bu.y', regexNoMatch: true }), res)).toMatch(/matched/);
    expect(parseHttpResponse(Buffer.from('garbage\r\n\r\n'))).toBeNull();
  });
});

describe('MISC_CHECK', () => {
  it('exit codes: 0 up, non-zero down; misc_dynamic: 1 down, 2..255 up with weight exit - 2', () => {
    expect(miscOutcome(0, null, false, false)).toEqual({ ok: true, reason: 'script exited 0' });
    expect(miscOutcome(3, null, false, false).ok).toBe(false);
    expect(miscOutcome(0, null, true, false)).toEqual({ ok: true, reason: 'script exited 0' });
    expect(miscOutcome(1, null, true, false).ok).toBe(false);
    expect(miscOutcome(2, null, true, false)).toMatchObject({ ok: true, weight: 0 });
    expect(miscOutcome(12, null, true, false)).toMatchObject({ ok: true, weight: 10 });
    expect(miscOutcome(255, null, true, false)).toMatchObject({ ok: true, weight: 253 });
    expect(miscOutcome(null, 'SIGKILL', true, false).ok).toBe(false);
    expect(miscOutcome(null, 'SIGTERM', false, true, 2)).toEqual({ ok: false, reason: 'script timed out after 2 s' });
    expect(effectiveWeight(5, [undefined])).toBe(5);
    expect(effectiveWeight(5, [10])).toBe(10);
    expect(effectiveWeight(5, [10, 7])).toBe(12);
  });

  const misc = (argv: string[], dynamic = false, timeout = 5): MiscChecker =>
    ({ type: 'MISC_CHECK', script: { command: argv.join(' '), argv, at: { file: 'k', line: 1 } }, timeout, dynamic }) as unknown as MiscChecker;

  it('runs the script, maps its exit, kills it after misc_timeout; a script that cannot run counts as success', async () => {
    const signal = new AbortController().signal;
    expect(await miscCheck(misc(['/bin/sh', '-c', 'exit 0']), signal)).toMatchObject({ ok: true });
    expect(await miscCheck(misc(['/bin/sh', '-c', 'exit 1']), signal)).toMatchObject({ ok: false, reason: 'script exited 1' });
    expect(await miscCheck(misc(['/bin/sh', '-c', 'exit 7'], true), signal)).toMatchObject({ ok: true, weight: 5 });
    const t0 = Date.now();
    expect(await miscCheck(misc(['/bin/sleep', '10'], false, 0.3), signal)).toMatchObject({ ok: false, reason: 'script timed out after 0.3 s' });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await miscCheck(misc([join(tmp, 'no-such-script')]), signal)).toMatchObject({ ok: true });
  });
});

describe('DNS_CHECK packets', () => {
  it('builds a standard query with RD, QNAME labels, QTYPE and class IN', () => {
    const q = buildDnsQuery(0x1234, 'www.example.com', 1);
    expect(q.toString('hex')).toBe('123401000001000000000000' + '03777777076578616d706c6503636f6d00' + '00010001');
    expect(buildDnsQuery(7, '.', 6).toString('hex')).toBe('000701000001000000000000' + '00' + '00060001');
    expect(buildDnsQuery(7, 'example.', 28).subarray(12).toString('hex')).toBe('076578616d706c6500001c0001');
    expect(parseDnsHeader(q)).toEqual({ id: 0x1234, qr: false, rcode: 0, qdcount: 1, ancount: 0 });
  });

  it('success = same id, QR set, RCODE NOERROR; another id is ignored', () => {
    const reply = buildDnsQuery(0x4242, 'x', 1);
    reply.writeUInt16BE(0x8180, 2); // QR RD RA, NOERROR
    reply.writeUInt16BE(1, 6);
    expect(judgeDnsReply(0x4242, reply)).toEqual({ ok: true, reason: 'DNS NOERROR, 1 answer(s)' });
    expect(judgeDnsReply(0x4243, reply)).toBeNull();
    reply.writeUInt16BE(0x8183, 2); // NXDOMAIN
    expect(judgeDnsReply(0x4242, reply)).toEqual({ ok: false, reason: 'DNS rcode NXDOMAIN' });
    reply.writeUInt16BE(0x0100, 2);
    expect(judgeDnsReply(0x4242, reply)?.ok).toBe(false);
    expect(judgeDnsReply(1, Buffer.alloc(5))).toBeNull();
  });
});

describe('UDP_CHECK and PING_CHECK packets', () => {
  it('require_reply matches leading bytes with X nibbles wild, within the length bounds', () => {
    const c = { replyData: Uint8Array.from([0xab, 0x10]), replyMask: Uint8Array.from([0x00, 0x0f]), minReplyLength: 0, maxReplyLength: 255 };
    expect(judgeUdpReply(c, Uint8Array.from([0xab, 0x1f, 0x99]))).toBeNull();
    expect(judgeUdpReply(c, Uint8Array.from([0xab, 0x2f]))).toMatch(/byte 1/);
    expect(judgeUdpReply(c, Uint8Array.from([0xab]))).toMatch(/shorter/);
    expect(judgeUdpReply({ ...c, replyData: undefined, maxReplyLength: 2 }, Uint8Array.from([1, 2, 3]))).toMatch(/max_reply_length/);
    expect(judgeUdpReply({ ...c, replyData: undefined, minReplyLength: 2 }, Uint8Array.from([1]))).toMatch(/min_reply_length/);
  });

  it('ICMP echo request checksum and echo reply matching (IPv4 with its IP header)', () => {
    const req = buildEchoRequest(4, 0x1111, 7);
    expect(req[0]).toBe(8);
    expect(internetChecksum(req)).toBe(0); // a correct checksum sums to 0
    const reply = Buffer.concat([Buffer.from([0x45, ...new Array(19).fill(0)]), req]);
    reply[20] = 0;
    expect(isEchoReply(4, reply, 0x1111, 7)).toBe(true);
    expect(isEchoReply(4, reply, 0x1111, 8)).toBe(false);
    expect(isEchoReply(6, Buffer.from([129, 0, 0, 0, 0x11, 0x11, 0, 7]), 0x1111, 7)).toBe(true);
  });
});

describe('engine -> controller -> table', () => {
  function setup(conf: string): { file: string; controller: KeepalivedController; director: Director; engine: HealthCheckEngine; clock: FakeClock; results: Map<string, CheckOutcome>; logs: string[]; scripts: string[]; rows: () => string[] } {
    const file = join(tmp, `e${Math.random().toString(36).slice(2)}.conf`);
    writeFileSync(file, conf);
    const logs: string[] = [];
    const log = new Logger('text', 'info', (l) => logs.push(l));
    const director = new Director({ tap: 'tvtunit0', addresses: [{ addr: 0xc6120101, prefix: 24 }], socketPath: join(tmp, 'x.sock'), connMax: 1024, logger: log });
    const controller = new KeepalivedController({ file, handle: (r) => director.handle(r), log });
    const clock = new FakeClock();
    const results = new Map<string, CheckOutcome>();
    const scripts: string[] = [];
    const target = (c: Checker): string => (c.type === 'MISC_CHECK' ? c.script.command : `${c.connection.connectIp}:${c.connection.connectPort}`);
    const engine = new HealthCheckEngine(controller, log, clock, async (c) => results.get(target(c)) ?? { ok: true, reason: 'fine' }, (s: ScriptSpec) => scripts.push(s.command)).attach();
    const res = controller.start();
    if (!res.ok) throw new Error(res.error);
    engine.begin();
    const rows = (): string[] => {
      const r = director.handle({ op: 'get-table' });
      if (!r.ok || !r.table) return [];
      return r.table.services.flatMap((s) => [`${s.addr}:${s.port}`, ...s.dests.map((d) => `-> ${d.addr}:${d.port} w${d.weight}`).sort()]);
    };
    return { file, controller, director, engine, clock, results, logs, scripts, rows };
  }

  const vs = (body: string): string => `virtual_server 198.18.1.100 80 {\n delay_loop 2\n lb_kind NAT\n protocol TCP\n${body}}\n`;
  const rs = (ip: string, extra = '', check = 'TCP_CHECK {\n connect_timeout 1\n retry 1\n delay_before_retry 1\n }'): string => ` real_server ${ip} 80 {\n weight 2\n${extra}\n ${check}\n }\n`;

  it('down -> removed, up -> back with its weight; notify_down / notify_up run; one log line each', async () => {
    const t = setup(vs(rs('198.18.2.11', 'notify_down "/bin/echo down"\n notify_up "/bin/echo up"') + rs('198.18.2.12')));
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.11:80 w2', '-> 198.18.2.12:80 w2']);
    await t.clock.advance(5000);
    t.results.set('198.18.2.11:80', { ok: false, reason: 'TCP connect: ECONNREFUSED' });
    await t.clock.advance(1200); // one failure after successes (t=6 s): retry in 1 s, not down yet
    expect(t.rows()).toHaveLength(3);
    await t.clock.advance(1500);
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.12:80 w2']);
    expect(t.scripts).toEqual(['/bin/echo down']);
    expect(t.logs.filter((l) => l.includes('is DOWN'))).toHaveLength(1);
    expect(t.logs.find((l) => l.includes('is DOWN'))).toContain('real server 198.18.2.11:80 of virtual_server TCP 198.18.1.100:80 is DOWN (removed): TCP_CHECK 198.18.2.11:80: TCP connect: ECONNREFUSED (after 1 retries)');
    const st = t.engine.status().find((s) => s.realServer === '198.18.2.11:80')!;
    expect(st).toMatchObject({ alive: false, checkers: [{ type: 'TCP_CHECK', up: false, result: 'failed', reason: 'TCP connect: ECONNREFUSED' }] });
    t.results.delete('198.18.2.11:80');
    await t.clock.advance(2500);
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.11:80 w2', '-> 198.18.2.12:80 w2']);
    expect(t.scripts).toEqual(['/bin/echo down', '/bin/echo up']);
    t.engine.stop();
    expect(t.clock.pending).toBe(0);
  });

  it('inhibit_on_failure: weight 0, not removed; all down -> sorry server; recovery -> sorry out', async () => {
    const t = setup(vs(' sorry_server 198.18.2.13 80\n quorum 2\n quorum_down "/bin/qdown"\n quorum_up "/bin/qup"\n' + rs('198.18.2.11', 'inhibit_on_failure') + rs('198.18.2.12')));
    await t.clock.advance(4000);
    t.results.set('198.18.2.11:80', { ok: false, reason: 'x' });
    await t.clock.advance(6000);
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.11:80 w0', '-> 198.18.2.12:80 w2']);
    t.results.set('198.18.2.12:80', { ok: false, reason: 'y' });
    await t.clock.advance(6000);
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.11:80 w0', '-> 198.18.2.13:80 w1']);
    expect(t.scripts).toEqual(['/bin/qdown']);
    expect(t.logs.some((l) => l.includes('quorum lost (alive weight 0, quorum 2, hysteresis 0); sorry server 198.18.2.13:80 in'))).toBe(true);
    t.results.clear();
    await t.clock.advance(6000);
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.11:80 w2', '-> 198.18.2.12:80 w2']);
    expect(t.scripts).toEqual(['/bin/qdown', '/bin/qup']);
    t.engine.stop();
  });

  it('MISC_CHECK misc_dynamic sets the weight to exit - 2; alpha starts out of the table', async () => {
    const t = setup(vs(rs('198.18.2.11', '', 'MISC_CHECK {\n misc_path "/bin/dyn"\n misc_dynamic\n }') + rs('198.18.2.12', 'alpha')));
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.11:80 w2']);
    t.results.set('/bin/dyn', { ok: true, reason: 'script exited 9: weight 7', weight: 7 });
    await t.clock.advance(4000);
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.11:80 w7', '-> 198.18.2.12:80 w2']);
    expect(t.logs.some((l) => l.includes('weight 2 -> 7'))).toBe(true);
    t.engine.stop();
  });

  it('reload: an unchanged checker keeps its state (a down real server stays down), a new real server starts, a removed one stops', async () => {
    const t = setup(vs(rs('198.18.2.11') + rs('198.18.2.12')));
    t.results.set('198.18.2.11:80', { ok: false, reason: 'refused' });
    await t.clock.advance(3000);
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.12:80 w2']);
    writeFileSync(t.file, vs(rs('198.18.2.11') + rs('198.18.2.13')));
    expect(t.controller.reload().ok).toBe(true);
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.13:80 w2']);
    expect(t.engine.status().map((s) => [s.realServer, s.alive, s.checkers[0].result])).toEqual([
      ['198.18.2.11:80', false, 'failed'],
      ['198.18.2.13:80', true, null],
    ]);
    t.results.clear();
    await t.clock.advance(3000);
    expect(t.rows()).toEqual(['198.18.1.100:80', '-> 198.18.2.11:80 w2', '-> 198.18.2.13:80 w2']);
    t.engine.stop();
    expect(t.clock.pending).toBe(0);
  });
});
