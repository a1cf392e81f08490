/**
 * keepalived.conf -> model (src/keepalived/load.ts): every keyword of the LVS part, keepalived's
 * defaults and inheritance (virtual_server -> real_server -> checker), value checks and fix-ups
 * (validate_check_config), all with file:line. Expected values come from keepalived's source
 * (check_data.c, check_parser.c, check_api.c, check_*.c) as cited in src/keepalived/config.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SVC_F_ONEPACKET, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3 } from '../../src/control/model.js';
import type { Checker, DnsChecker, HttpChecker, MiscChecker, TcpChecker, UdpChecker, VirtualServer } from '../../src/keepalived/config.js';
import { checkerFingerprint } from '../../src/keepalived/config.js';
import { checkExitCode, formatDiagnostic, type Diagnostic } from '../../src/keepalived/diagnostics.js';
import { loadKeepalivedConfig, readHex } from '../../src/keepalived/load.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/keepalived');
const tmp = mkdtempSync(join(tmpdir(), 'tapvs-ka-load-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function load(text: string) {
  const p = join(tmp, `k${n++}.conf`);
  writeFileSync(p, text);
  const r = loadKeepalivedConfig(p);
  const msgs = (sev?: string): string[] => r.diagnostics.filter((d) => !sev || d.severity === sev).map((d) => `${d.line}: ${d.message}`);
  return { ...r, file: p, msgs };
}

/** A virtual server block with everything keepalived would otherwise warn about already set. */
function vs(body: string, head = '198.18.1.100 80'): string {
  return `virtual_server ${head} {\n    protocol TCP\n    lb_algo rr\n    lb_kind NAT\n${body}\n}\n`;
}

function only(text: string): VirtualServer {
  const r = load(text);
  expect(r.config.virtualServers).toHaveLength(1);
  return r.config.virtualServers[0];
}

describe('defaults (keepalived 2.2/2.4 source)', () => {
  it('a bare virtual server: UDP, wlc, NAT (each with keepalived\'s warning), delay_loop 60 s, connect_timeout 5 s', () => {
    const r = load('virtual_server 198.18.1.100 80 {\n  real_server 198.18.2.11 80 {\n  }\n}\n');
    const v = r.config.virtualServers[0];
    expect(v.protocol).toBe(17);
    expect(v.scheduler).toBe('wlc');
    expect(v.forward.method).toBe('NAT');
    expect(v.delayLoop).toBe(60);
    expect(v.connectTimeout).toBe(5);
    expect([v.quorum, v.hysteresis, v.weight, v.persistenceTimeout]).toEqual([1, 0, 1, 0]);
    expect([v.alpha, v.omega, v.inhibitOnFailure, v.haSuspend]).toEqual([false, false, false, false]);
    expect(v.id).toBe('UDP 198.18.1.100:80');
    const rs = v.realServers[0];
    expect([rs.weight, rs.uThreshold, rs.lThreshold, rs.delayLoop, rs.connectTimeout]).toEqual([1, 0, 0, 60, 5]);
    expect(rs.retry).toBeUndefined();
    expect(r.msgs('warning')).toEqual([
      '1: Virtual server 198.18.1.100:80: no protocol set - defaulting to UDP',
      "1: Virtual server 198.18.1.100:80/UDP: no scheduler set, setting default 'wlc'",
      '1: Virtual server 198.18.1.100:80/UDP: no forwarding method set, setting default NAT',
    ]);
  });

  it.each([
    ['TCP_CHECK { }', 1, 1],
    ['HTTP_GET { url { path / } }', 1, 3],
    ['SSL_GET { url { path / } }', 1, 3],
    ['MISC_CHECK { misc_path /bin/true }', 0, 1],
    ['UDP_CHECK { }', 1, 1],
    ['PING_CHECK { }', 1, 1],
    ['DNS_CHECK { }', 3, 'delay_loop'],
  ])('%s: retry %s, delay_before_retry %s', (block, retry, dbr) => {
    const v = only(vs(`  delay_loop 7\n  real_server 198.18.2.11 80 { ${block} }`));
    const c = v.realServers[0].checkers[0];
    expect(c.retry).toBe(retry);
    expect(c.delayBeforeRetry).toBe(dbr === 'delay_loop' ? 7 : dbr);
    expect(c.delayLoop).toBe(7);
    expect(c.warmup).toBe(7); // warmup defaults to delay_loop
    expect(c.alpha).toBe(false);
  });

  it('checker connection defaults to the real server address and port and the virtual server connect_timeout', () => {
    const c = only(vs('  connect_timeout 2.5\n  real_server 198.18.2.11 8080 { TCP_CHECK { } }')).realServers[0].checkers[0] as TcpChecker;
    expect(c.connection).toEqual({ af: 4, connectIp: '198.18.2.11', connectPort: 8080, connectTimeout: 2.5, fwmark: 0 });
  });

  it('HTTP url defaults: status 200-299, protocol 1.0; DNS defaults: SOA for "."', () => {
    const v = only(vs('  real_server 198.18.2.11 80 {\n HTTP_GET { url { path / } }\n DNS_CHECK { }\n }'));
    const [http, dns] = v.realServers[0].checkers as [HttpChecker, DnsChecker];
    expect(http.urls[0].statusCodes).toEqual([[200, 299]]);
    expect(http.httpProtocol).toBe('1.0');
    expect([dns.queryType, dns.name]).toEqual(['SOA', '.']);
  });

  it('MISC_CHECK misc_timeout defaults to the virtual server delay_loop; UDP_CHECK reply lengths 0..255', () => {
    const v = only(vs('  delay_loop 9\n  real_server 198.18.2.11 80 { delay_loop 3\n MISC_CHECK { misc_path /bin/true }\n UDP_CHECK { } }'));
    const [misc, udp] = v.realServers[0].checkers as [MiscChecker, UdpChecker];
    expect(misc.timeout).toBe(9);
    expect(misc.delayLoop).toBe(3);
    expect([udp.requireReply, udp.minReplyLength, udp.maxReplyLength]).toEqual([false, 0, 255]);
  });
});

describe('inheritance virtual_server -> real_server -> checker', () => {
  it('retry, delay_before_retry, warmup, delay_loop, connect_timeout, alpha, inhibit_on_failure', () => {
    const v = only(
      vs(`  retry 4\n  delay_before_retry 2\n  warmup 1\n  delay_loop 30\n  connect_timeout 6\n  alpha\n  inhibit_on_failure
  real_server 198.18.2.11 80 { TCP_CHECK { } }
  real_server 198.18.2.12 80 { retry 7\n delay_loop 5\n alpha off\n inhibit_on_failure no\n TCP_CHECK { delay_before_retry 0.5 } }`),
    );
    const [a, b] = v.realServers;
    const ca = a.checkers[0] as TcpChecker;
    expect([ca.retry, ca.delayBeforeRetry, ca.warmup, ca.delayLoop, ca.connection.connectTimeout, ca.alpha]).toEqual([4, 2, 1, 30, 6, true]);
    expect([a.alpha, a.inhibitOnFailure]).toEqual([true, true]);
    const cb = b.checkers[0] as TcpChecker;
    expect([cb.retry, cb.delayBeforeRetry, cb.warmup, cb.delayLoop, cb.alpha]).toEqual([7, 0.5, 1, 5, false]);
    expect([b.alpha, b.inhibitOnFailure]).toEqual([false, false]);
  });

  it('virtualhost: url > checker > real_server > virtual_server', () => {
    const v = only(
      vs(`  virtualhost vs.example\n  real_server 198.18.2.11 80 { virtualhost rs.example
    HTTP_GET { url { path /a\n virtualhost url.example } url { path /b } }
    HTTP_GET { virtualhost chk.example\n url { path /c } } }
  real_server 198.18.2.12 80 { HTTP_GET { url { path /d } } }`),
    );
    const [h1, h2] = v.realServers[0].checkers as HttpChecker[];
    expect(h1.urls[0].virtualhost).toBe('url.example');
    expect(h1.virtualhost).toBe('rs.example');
    expect(h2.virtualhost).toBe('chk.example');
    expect((v.realServers[1].checkers[0] as HttpChecker).virtualhost).toBe('vs.example');
  });

  it('the virtual server weight is the default real server weight', () => {
    const v = only(vs('  weight 4\n  real_server 198.18.2.11 80 { }\n  real_server 198.18.2.12 80 { weight 0 }'));
    expect(v.realServers.map((r) => r.weight)).toEqual([4, 0]);
  });
});

describe('every keyword (fixtures/keepalived/all-keywords.conf)', () => {
  const r = loadKeepalivedConfig(join(FIXTURES, 'all-keywords.conf'));
  const [web, fwm, group] = r.config.virtualServers;

  it('loads with only the warnings keepalived would give', () => {
    expect(r.diagnostics.map((d) => `${d.line}: ${d.severity}: ${d.message}`)).toEqual([
      "90: warning: nb_get_retry is deprecated - please use 'retry'",
      '125: warning: WARNING - fwmark virtual server FWM 5, real server 198.18.2.21:80 has port specified - clearing',
    ]);
  });

  it('global_defs and SSL', () => {
    const g = r.config.global;
    expect(g.routerId).toBe('LVS_ALL');
    expect(g.notificationEmail).toEqual(['ops@example.org']);
    expect(g.notificationEmailFrom).toBe('lvs@example.org');
    expect(g.smtpServer).toBe('198.18.3.25');
    expect(g.smtpConnectTimeout).toBe(30);
    expect(g.lvsTimeouts).toMatchObject({ tcp: 900, tcpfin: 120, udp: 300 });
    expect(g.lvsFlush).toBe(true);
    expect(g.enableScriptSecurity).toBe(true);
    expect(g.scriptUser).toEqual({ user: 'nobody', group: 'nogroup' });
    expect(g.checkerLogAllFailures).toBe(true);
    expect(g.lvsNotifyFifo).toEqual({ path: '/run/lvs.fifo' });
    expect(r.config.ssl).toMatchObject({ password: 'secret', ca: '/etc/ssl/ca.pem', certificate: '/etc/ssl/cert.pem', key: '/etc/ssl/key.pem' });
  });

  it('virtual_server IP PORT keywords', () => {
    expect(web.id).toBe('TCP 198.18.1.100:80');
    expect(web.at.line).toBe(34);
    expect([web.delayLoop, web.scheduler, web.forward.method, web.persistenceTimeout, web.persistenceGranularity, web.protocol]).toEqual([10, 'wrr', 'NAT', 600, '255.255.255.0', 6]);
    expect([web.haSuspend, web.quorum, web.hysteresis, web.alpha, web.omega, web.inhibitOnFailure]).toEqual([true, 3, 1, true, true, true]);
    expect([web.retry, web.delayBeforeRetry, web.warmup, web.connectTimeout, web.virtualhost, web.weight]).toEqual([4, 2.5, 0, 7, 'www.example.org', 2]);
    expect(web.sorryServer).toMatchObject({ addr: '198.18.2.99', port: 8080, inhibit: true, forward: { method: 'NAT' } });
    expect(web.quorumUp).toMatchObject({ command: "/usr/local/bin/quorum up 'VS 100'", argv: ['/usr/local/bin/quorum', 'up', 'VS 100'], user: 'root' });
    expect(web.quorumDown).toMatchObject({ command: '/usr/local/bin/quorum-down', argv: ['/usr/local/bin/quorum-down'] });
    expect(web.quorumDown?.user).toBeUndefined();
  });

  it('real_server keywords', () => {
    const [a, b] = web.realServers;
    expect([a.id, a.weight, a.uThreshold, a.lThreshold, a.inhibitOnFailure, a.alpha]).toEqual(['198.18.2.11:8080', 5, 100, 10, false, false]);
    expect(a.notifyUp).toMatchObject({ argv: ['/bin/notify', 'up'], user: 'nobody' });
    expect(a.notifyDown).toMatchObject({ argv: ['/bin/notify', 'down'] });
    expect([b.weight, b.inhibitOnFailure, b.alpha]).toEqual([2, true, true]);
  });

  it('TCP_CHECK with every connection and timing keyword', () => {
    const tcp = web.realServers[0].checkers[0] as TcpChecker;
    expect(tcp.type).toBe('TCP_CHECK');
    expect(tcp.connection).toEqual({ af: 4, connectIp: '198.18.2.111', connectPort: 8081, bindTo: '198.18.2.254', bindPort: 5555, bindIf: 'br0', connectTimeout: 3, fwmark: 9 });
    expect([tcp.retry, tcp.delayBeforeRetry, tcp.warmup, tcp.delayLoop, tcp.alpha, tcp.logAllFailures]).toEqual([2, 1.5, 4, 20, true, false]);
  });

  it('HTTP_GET / SSL_GET: urls with path, status_code, digest, virtualhost; nb_get_retry; http_protocol; enable_sni', () => {
    const http = web.realServers[0].checkers[1] as HttpChecker;
    expect(http.type).toBe('HTTP_GET');
    expect(http.urls.map((u) => [u.path, u.statusCodes, u.digest, u.virtualhost])).toEqual([
      ['/health', [[200, 200], [301, 302]], '9b3a0c85a887a256d6939da88aabd8cd', 'url.example.org'],
      ['/ready', [[200, 299]], undefined, undefined],
    ]);
    expect([http.retry, http.httpProtocol, http.virtualhost, http.logAllFailures]).toEqual([5, '1.1', 'www.example.org', true]);
    const ssl = web.realServers[0].checkers[2] as HttpChecker;
    expect([ssl.type, ssl.enableSni, ssl.virtualhost, ssl.urls[0].path, ssl.retry]).toEqual(['SSL_GET', true, 'checker.example.org', '/tls', 4]);
  });

  it('MISC_CHECK, UDP_CHECK, PING_CHECK, DNS_CHECK', () => {
    const misc = web.realServers[0].checkers[3] as MiscChecker;
    expect(misc.script).toMatchObject({ command: "/usr/bin/check 'a b' c", argv: ['/usr/bin/check', 'a b', 'c'], user: 'nobody' });
    expect([misc.timeout, misc.dynamic, misc.retry]).toEqual([4, true, 4]);
    const [udp, ping, dns] = web.realServers[1].checkers as [UdpChecker, Checker, DnsChecker];
    expect(Buffer.from(udp.payload!).toString('hex')).toBe('01020a0b');
    expect(udp.requireReply).toBe(true);
    expect(Buffer.from(udp.replyData!).toString('hex')).toBe('00ff');
    expect(Buffer.from(udp.replyMask!).toString('hex')).toBe('0f00');
    expect([udp.minReplyLength, udp.maxReplyLength]).toEqual([2, 100]);
    expect(ping.type).toBe('PING_CHECK');
    expect([dns.queryType, dns.name, dns.retry, dns.delayBeforeRetry]).toEqual(['A', 'example.org.', 4, 2.5]);
  });

  it('virtual_server fwmark N with sh flags and DR (real server port cleared)', () => {
    expect(fwm.id).toBe('FWM 5');
    expect(fwm.target).toEqual({ kind: 'fwmark', mark: 5 });
    expect(fwm.protocol).toBe(0);
    expect([fwm.scheduler, fwm.flags]).toEqual(['sh', SVC_F_SCHED1 | SVC_F_SCHED2]);
    expect(fwm.realServers[0]).toMatchObject({ addr: '198.18.2.21', port: 0, forward: { method: 'DR' } });
  });

  it('virtual_server group NAME over a virtual_server_group with addresses, ranges, CIDR and fwmark', () => {
    expect(group.id).toBe('group WEB UDP');
    expect(group.target.kind).toBe('group');
    const entries = group.target.kind === 'group' ? group.target.group.entries : [];
    expect(entries.map((e) => (e.kind === 'fwmark' ? `fwmark ${e.mark}` : `${e.first}-${e.last}:${e.port}`))).toEqual([
      '198.18.1.10-198.18.1.10:80',
      '198.18.1.20-198.18.1.22:80',
      '198.18.1.30-198.18.1.31:8080',
      '198.18.1.40-198.18.1.41:443',
      'fwmark 7',
    ]);
    expect(group.forward).toEqual({ method: 'TUN', tunType: 'gue', tunPort: 6080, tunCsum: 'csum' });
    expect(group.persistenceTimeout).toBe(360); // persistence_timeout without a value
  });
});

describe('lvs_method / lb_kind', () => {
  it.each([
    ['NAT', { method: 'NAT' }],
    ['DR', { method: 'DR' }],
    ['TUN', { method: 'TUN', tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum' }],
    ['TUN type gre csum', { method: 'TUN', tunType: 'gre', tunCsum: 'csum' }],
    ['FULLNAT', { method: 'FULLNAT' }],
  ])('lb_kind %s', (kind, expected) => {
    expect(only(`virtual_server 198.18.1.100 80 { protocol TCP\nlb_algo rr\nlb_kind ${kind}\nreal_server 198.18.2.11 80 { } }`).forward).toMatchObject(expected);
  });

  it('real servers inherit it; lvs_method on a real server overrides it; lb_kind is not a real_server keyword', () => {
    const r = load(vs('  real_server 198.18.2.11 80 { lvs_method DR }\n  real_server 198.18.2.12 80 { lb_kind DR }'));
    expect(r.config.virtualServers[0].realServers.map((x) => x.forward.method)).toEqual(['DR', 'NAT']);
    expect(r.msgs('warning')).toEqual(["6: Unknown keyword 'lb_kind' in real_server"]);
  });

  it('rejects invalid tunnel options and unknown methods (case matters, as in keepalived)', () => {
    const r = load(`virtual_server 198.18.1.100 80 {\nprotocol TCP\nlb_algo rr\nlb_kind TUN type gue\nlb_kind nat\nreal_server 198.18.2.11 80 { }\n}\n`);
    expect(r.msgs('warning')).toEqual([
      '4: gue tunnels require port, otherwise cannot have port.',
      '5: PARSER : unknown [nat] routing method for virtual server.',
      '1: Virtual server 198.18.1.100:80/TCP: no forwarding method set, setting default NAT',
    ]);
  });

  it('DR/TUN real servers use the virtual server port (reset with a warning when different)', () => {
    const r = load(vs('  real_server 198.18.2.11 { lvs_method DR }\n  real_server 198.18.2.12 8080 { lvs_method DR }\n  real_server 198.18.2.13 { }'));
    expect(r.config.virtualServers[0].realServers.map((x) => x.id)).toEqual(['198.18.2.11:80', '198.18.2.12:80', '198.18.2.13:80']);
    expect(r.msgs('warning')).toEqual(["6: WARNING - virtual server 198.18.1.100:80/TCP and real server 198.18.2.12:8080 ports don't match - resetting"]);
  });
});

describe('virtual server keywords', () => {
  it('persistence_timeout without value is 360; persistence_granularity implies persistence', () => {
    expect(only(vs('  persistence_timeout\n  real_server 198.18.2.11 80 { }')).persistenceTimeout).toBe(360);
    const g = only(vs('  persistence_granularity 255.255.0.0\n  real_server 198.18.2.11 80 { }'));
    expect([g.persistenceTimeout, g.persistenceGranularity]).toEqual([360, '255.255.0.0']);
  });

  it('protocol is case-insensitive; ops needs UDP; flag-1..3; sh/mh flags need the scheduler first', () => {
    const u = only(vs('  protocol udp\n  ops\n  flag-1\n  flag-3\n  real_server 198.18.2.11 80 { }'));
    expect(u.protocol).toBe(17);
    expect(u.flags).toBe(SVC_F_ONEPACKET | SVC_F_SCHED1 | SVC_F_SCHED3);
    const r = load(vs('  ops\n  sh-port\n  lb_algo mh\n  mh-port\n  real_server 198.18.2.11 80 { }'));
    expect(r.config.virtualServers[0].flags).toBe(SVC_F_SCHED2);
    expect(r.msgs('warning')).toEqual([
      '6: sh-port only applies to sh scheduler (set lvs_sched before it) - ignoring',
      '1: Virtual server 198.18.1.100:80/TCP: one packet scheduling requires UDP - resetting',
    ]);
  });

  it('accepts every IPVS scheduler, refuses others', () => {
    for (const s of ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'sh', 'mh', 'dh', 'fo', 'ovf', 'lblcr', 'sed', 'nq', 'twos'])
      expect(only(`virtual_server 198.18.1.100 80 { protocol TCP\nlb_kind NAT\nlvs_sched ${s}\nreal_server 198.18.2.11 80 { } }`).scheduler).toBe(s);
    const r = load(vs('  lb_algo wlcx\n  real_server 198.18.2.11 80 { }'));
    expect(r.config.virtualServers[0].scheduler).toBe('rr');
    expect(r.msgs('warning')).toEqual(["5: Invalid lvs_scheduler 'wlcx' - ignoring"]);
  });

  it('quorum is reduced to the total weight and hysteresis to quorum - 1', () => {
    const r = load(vs('  quorum 10\n  hysteresis 5\n  real_server 198.18.2.11 80 { weight 3 }\n  real_server 198.18.2.12 80 { weight 2 }'));
    expect([r.config.virtualServers[0].quorum, r.config.virtualServers[0].hysteresis]).toEqual([5, 4]);
    expect(r.msgs('warning')).toEqual([
      '1: Warning - quorum 10 for 198.18.1.100:80/TCP exceeds total weight of real servers 5, reducing quorum to 5',
      '1: Virtual server 198.18.1.100:80/TCP: hysteresis 5 >= quorum 5; setting hysteresis to 4',
    ]);
  });

  it('sorry_server_inhibit and sorry_server_lvs_method need a sorry_server first', () => {
    const r = load(vs('  sorry_server_inhibit\n  sorry_server_lvs_method DR\n  sorry_server 198.18.2.99\n  sorry_server_lvs_method DR\n  real_server 198.18.2.11 80 { }'));
    expect(r.config.virtualServers[0].sorryServer).toMatchObject({ id: '198.18.2.99:80', inhibit: false, forward: { method: 'DR' } });
    expect(r.msgs('warning')).toEqual(['5: Ignoring sorry_server inhibit used before or without sorry_server', '6: sorry_server forwarding used without sorry_server']);
  });

  it('zero port without persistence sets persistence; ha_suspend is cleared for fwmark; protocol ignored for fwmark', () => {
    const r = load(vs('  real_server 198.18.2.11 80 { }', '198.18.1.100 0') + 'virtual_server fwmark 3 {\n  ha_suspend\n  protocol TCP\n  lb_algo rr\n  lb_kind NAT\n  real_server 198.18.2.11 80 { }\n}\n');
    const [a, b] = r.config.virtualServers;
    expect(a.persistenceTimeout).toBe(360);
    expect([b.haSuspend, b.protocol]).toEqual([false, 0]);
    expect(r.msgs('warning')).toEqual([
      '1: Virtual server 198.18.1.100:0/TCP: zero port only valid for persistent services - setting',
      '7: Virtual server FWM 3: cannot use ha_suspend with fwmarks - clearing ha_suspend',
      '7: Warning: Virtual server FWM 3: protocol specified for fwmark - protocol will be ignored',
    ]);
  });

  it('inhibit_on_failure at virtual_server level ignores its parameter, as keepalived does (and says so)', () => {
    const r = load(vs('  inhibit_on_failure off\n  real_server 198.18.2.11 80 { }'));
    expect(r.config.virtualServers[0].realServers[0].inhibitOnFailure).toBe(true);
    expect(r.msgs('warning')).toEqual(["5: keepalived ignores the parameter of virtual_server inhibit_on_failure: 'off' still turns it on"]);
  });

  it('fractional timers with microsecond resolution', () => {
    const v = only(vs('  delay_loop 2.71828\n  connect_timeout .5\n  real_server 198.18.2.11 80 { }'));
    expect([v.delayLoop, v.connectTimeout]).toEqual([2.71828, 0.5]);
    const r = load(vs('  delay_loop 1.1234567\n  delay_loop -1\n  real_server 198.18.2.11 80 { }'));
    expect(r.config.virtualServers[0].delayLoop).toBe(1.123457);
    expect(r.msgs('warning')).toEqual(["5: number '1.1234567' has too many decimal places", "6: virtual server delay loop '-1' invalid - ignoring"]);
  });
});

describe('virtual_server_group', () => {
  it('ranges a.b.c.d-e, a.b.c.d-a.b.c.e, CIDR, single addresses, fwmark; checks', () => {
    const r = load(`virtual_server_group G {
  198.18.1.1-3 80
  198.18.1.250-198.18.2.2 81
  198.18.1.8/30 82
  198.18.1.9/30 83
  198.18.1.5-4 84
  fwmark 9 inet
  fwmark 10 ipx
}
virtual_server group G { protocol TCP\nlb_algo rr\nlb_kind NAT\nreal_server 198.18.2.11 80 { } }
virtual_server group MISSING { protocol TCP\nlb_algo rr\nlb_kind NAT\nreal_server 198.18.2.11 80 { } }
virtual_server_group EMPTY {
}
`);
    const g = r.config.groups.get('G')!;
    expect(g.entries.map((e) => (e.kind === 'fwmark' ? `fwmark ${e.mark}` : `${e.first}-${e.last}:${e.port}`))).toEqual([
      '198.18.1.1-198.18.1.3:80',
      '198.18.1.250-198.18.2.2:81',
      '198.18.1.8-198.18.1.11:82',
      'fwmark 9',
    ]);
    expect(r.config.virtualServers.map((v) => v.id)).toEqual(['group G TCP']);
    expect(r.msgs('warning')).toEqual([
      '5: Address mask bits not empty - 198.18.1.9/30 - skipping',
      '6: Address range end is not greater than address range start - 198.18.1.5-4 - skipping',
      '8: (G): fwmark \'10\' family ipx unknown - ignoring',
      '18: virtual server group EMPTY has no entries - removing',
      '14: Virtual server group MISSING specified but not configured - ignoring virtual server',
    ]);
  });
});

describe('validation of real servers', () => {
  it('a virtual server without real servers is dropped; duplicates removed; family mismatch skipped', () => {
    const r = load(
      vs('') +
        vs('  real_server 198.18.2.11 80 { weight 2 }\n  real_server 198.18.2.11 80 { weight 3 }\n  real_server 2001:db8::1 80 { }', '198.18.1.101 80'),
    );
    expect(r.config.virtualServers.map((v) => v.id)).toEqual(['TCP 198.18.1.101:80']);
    expect(r.config.virtualServers[0].realServers.map((x) => [x.id, x.weight])).toEqual([['198.18.2.11:80', 2]]);
    expect(r.msgs('warning')).toEqual([
      "13: Address family of virtual server and real server 2001:db8::1 don't match - skipping real server.",
      '1: Virtual server 198.18.1.100:80/TCP has no real servers - ignoring',
      '12: VS 198.18.1.101:80/TCP: real server 198.18.2.11:80 is duplicated - removing second rs',
    ]);
  });

  it('checkers missing what they need are dropped; unsupported checkers are reported', () => {
    const r = load(vs('  real_server 198.18.2.11 80 {\n HTTP_GET { }\n HTTP_GET { url { status_code 200 } }\n MISC_CHECK { }\n SMTP_CHECK { }\n TCP_CHECK { nb_get_retry 3 } }'));
    expect(r.config.virtualServers[0].realServers[0].checkers.map((c) => c.type)).toEqual(['TCP_CHECK']);
    expect(r.msgs('warning')).toEqual([
      '6: HTTP/SSL_GET checker has no urls specified - ignoring',
      '7: HTTP/SSL_GET checker url has no path - ignoring',
      '7: HTTP/SSL_GET checker has no urls specified - ignoring',
      '8: No script path has been specified for MISC_CHECKER - skipping',
      '9: SMTP_CHECK is not implemented by tapvs yet - ignored (the real server is checked as if it were not there)',
      "10: Unknown keyword 'nb_get_retry' in TCP_CHECK (keepalived accepts nb_get_retry only in HTTP_GET and SSL_GET; it is ignored here, use 'retry')",
    ]);
    expect((r.config.virtualServers[0].realServers[0].checkers[0] as TcpChecker).retry).toBe(1);
  });

  it('value errors: bad numbers, status codes, digests, hex, addresses', () => {
    const r = load(
      vs(`  real_server 198.18.2.11 80 { weight -1\n uthreshold x
  HTTP_GET { url { path /\n status_code 99 200-100 404\n digest abc } }
  UDP_CHECK { payload zz\n connect_ip 300.1.1.1\n connect_port 70000 } }`),
    );
    const rs = r.config.virtualServers[0].realServers[0];
    expect(rs.weight).toBe(1);
    expect((rs.checkers[0] as HttpChecker).urls[0].statusCodes).toEqual([[404, 404]]);
    expect(r.msgs('warning')).toEqual([
      "5: Real server weight '-1' invalid (must be in [0, 2147483647]) - ignoring",
      "6: real_server uthreshold 'x' invalid (must be in [0, 4294967295]) - ignoring",
      "8: Invalid HTTP_GET status code '99'",
      "8: Invalid HTTP_GET status code '200-100'",
      "9: digest 'abc' character length should be 32 rather than 3",
      '10: Invalid hex string for UDP_CHECK payload',
      '11: Invalid connect_ip address 300.1.1.1 - ignoring',
      "12: checker connect_port '70000' invalid (must be in [1, 65535]) - ignoring",
    ]);
  });

  it('a keyword missing its parameter is an error (keepalived exits on it)', () => {
    const r = load(vs('  delay_loop\n  real_server 198.18.2.11 80 { }'));
    expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([
      `${r.file}:5: error: Configuration line starting \`delay_loop\` is missing a parameter after keyword \`delay_loop\` at word position 2`,
    ]);
    expect(checkExitCode(r.diagnostics)).toBe(3);
  });
});

describe('unknown keywords and inactive blocks', () => {
  it('warns with file:line and skips an unknown block whole', () => {
    const r = load(`global_defs {
  router_id X
  no_such_global 1
}
virtual_server 198.18.1.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  frobnicate {
    real_server 198.18.9.9 80 { }
  }
  real_server 198.18.2.11 80 { }
}
unknown_top_level
`);
    expect(r.diagnostics.map((d) => `${d.line}: ${d.severity}: ${d.message}`)).toEqual([
      "3: warning: Unknown keyword 'no_such_global' in global_defs",
      "9: warning: Unknown keyword 'frobnicate' in virtual_server - its block (to line 11) is skipped (keepalived itself would not skip it: it would read the block's lines at this level)",
      "14: warning: Unknown keyword 'unknown_top_level'",
    ]);
    expect(r.config.virtualServers[0].realServers.map((x) => x.addr)).toEqual(['198.18.2.11']);
    expect(checkExitCode(r.diagnostics)).toBe(4);
  });

  it('VRRP and friends parse without error and are reported once as not active', () => {
    const r = load(`vrrp_script chk { script "/bin/true" }
vrrp_sync_group G { group { VI_1 } }
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  virtual_ipaddress { 198.18.1.100/24 dev eth0 }
  track_script { chk }
}
static_ipaddress { 198.18.1.5/24 dev eth0 }
global_defs { vrrp_strict\n vrrp_garp_interval 0\n lvs_sync_daemon eth0 VI_1 }
`);
    expect(r.diagnostics.map((d) => `${d.line}: ${d.severity}: ${d.message}`)).toEqual([
      '13: note: lvs_sync_daemon: IPVS connection synchronisation is not implemented yet - not active',
      '1: note: not active (VRRP not implemented yet): vrrp_script chk, vrrp_sync_group G, vrrp_instance VI_1, static_ipaddress',
    ]);
    expect(r.config.inactive.map((b) => b.keyword)).toEqual(['vrrp_script', 'vrrp_sync_group', 'vrrp_instance', 'static_ipaddress']);
    expect(checkExitCode(r.diagnostics)).toBe(0);
  });
});

describe('seed configurations load unchanged (addresses aside)', () => {
  it('seed 000: LVS-NAT with a VRRP instance and TCP_CHECKs', () => {
    const r = loadKeepalivedConfig(join(FIXTURES, 'seed-000-lvs-nat.conf'));
    expect(r.diagnostics.map((d) => `${d.line}: ${d.severity}: ${d.message}`)).toEqual([
      "34: warning: Unknown keyword 'nb_get_retry' in TCP_CHECK (keepalived accepts nb_get_retry only in HTTP_GET and SSL_GET; it is ignored here, use 'retry')",
      "43: warning: Unknown keyword 'nb_get_retry' in TCP_CHECK (keepalived accepts nb_get_retry only in HTTP_GET and SSL_GET; it is ignored here, use 'retry')",
      '2: note: not active (VRRP not implemented yet): vrrp_sync_group NC-MAIN-API, vrrp_instance NC-MAIN-API-PUB',
    ]);
    const [v] = r.config.virtualServers;
    expect([v.id, v.delayLoop, v.scheduler, v.forward.method]).toEqual(['TCP 198.18.1.100:15000', 6, 'rr', 'NAT']);
    expect(v.realServers.map((x) => [x.id, x.weight])).toEqual([
      ['198.18.2.69:15000', 100],
      ['198.18.2.76:15000', 100],
    ]);
    const c = v.realServers[0].checkers[0] as TcpChecker;
    expect([c.connection.connectTimeout, c.connection.connectPort, c.retry, c.delayBeforeRetry, c.delayLoop]).toEqual([3, 15000, 1, 3, 6]);
  });

  it('seed 001: global_defs with VRRP keys, Chinese comments, TCP_CHECK and HTTP_GET', () => {
    const r = loadKeepalivedConfig(join(FIXTURES, 'seed-001-tcp-http.conf'));
    expect(r.diagnostics.map((d) => `${d.line}: ${d.severity}: ${d.message}`)).toEqual([
      "26: warning: Unknown keyword 'nb_get_retry' in TCP_CHECK (keepalived accepts nb_get_retry only in HTTP_GET and SSL_GET; it is ignored here, use 'retry')",
      "40: warning: nb_get_retry is deprecated - please use 'retry'",
    ]);
    expect(r.config.global.routerId).toBe('LVS_DEVEL');
    const [v] = r.config.virtualServers;
    expect([v.id, v.delayLoop, v.scheduler, v.persistenceTimeout]).toEqual(['TCP 198.18.1.117:9376', 3, 'wrr', 0]);
    const [tcp] = v.realServers[0].checkers as TcpChecker[];
    expect([tcp.connection.connectTimeout, tcp.retry, tcp.delayBeforeRetry, tcp.connection.connectPort]).toEqual([2, 1, 1, 9376]);
    const [http] = v.realServers[1].checkers as HttpChecker[];
    expect([http.connection.connectTimeout, http.retry, http.delayBeforeRetry]).toEqual([3, 3, 3]);
    expect(http.urls).toEqual([expect.objectContaining({ path: '/', statusCodes: [[200, 200]] })]);
  });
});

describe('helpers', () => {
  it('read_hex_str: blanks between octets, X wildcards only where allowed', () => {
    expect(readHex('0a 0B c', false)).toEqual({ data: Uint8Array.from([0x0a, 0x0b, 0x0c]) });
    expect(readHex('xF', true)).toEqual({ data: Uint8Array.from([0x0f]), mask: Uint8Array.from([0xf0]) });
    expect(readHex('xF', false)).toBeUndefined();
  });

  it('checker fingerprints ignore source lines', () => {
    const a = only(vs('  real_server 198.18.2.11 80 { TCP_CHECK { connect_port 81 } }')).realServers[0].checkers[0];
    const b = only(vs('\n\n  real_server 198.18.2.11 80 {\n TCP_CHECK { connect_port 81 } }')).realServers[0].checkers[0];
    const c = only(vs('  real_server 198.18.2.11 80 { TCP_CHECK { connect_port 82 } }')).realServers[0].checkers[0];
    expect(checkerFingerprint(a)).toBe(checkerFingerprint(b));
    expect(checkerFingerprint(a)).not.toBe(checkerFingerprint(c));
  });
});

// keep the Diagnostic type import used (documentation of the shape these tests rely on)
export type { Diagnostic };
