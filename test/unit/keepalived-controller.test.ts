/**
 * keepalived.conf in tapvsd (src/keepalived/controller.ts, daemon.ts) against a real Director (its
 * control handler only, no TAP): load all or nothing, a data plane refusal reported with the
 * virtual_server's file:line,
 * --rules first, reload by difference (untouched destinations keep their identity, hence their
 * connections and counters), the `reload-keepalived` request, SIGHUP with --rules, and --check.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRestoreText } from '../../src/cli/restore-input.js';
import type { TableSnapshot } from '../../src/control/model.js';
import { Director } from '../../src/director.js';
import { checkKeepalived, KeepalivedController } from '../../src/keepalived/controller.js';
import { reloadOnSighup, runKeepalivedCheck, startKeepalived } from '../../src/keepalived/daemon.js';
import { Logger } from '../../src/logger.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/keepalived');
const tmp = mkdtempSync(join(tmpdir(), 'tapvs-ka-ctl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function write(text: string, name = `k${n++}.conf`): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

function director(logs: string[] = []): Director {
  return new Director({
    tap: 'tvtunit0',
    addresses: [{ addr: 0xc6120101, prefix: 24 }],
    socketPath: join(tmp, 'unused.sock'),
    connMax: 1024,
    logger: new Logger('text', 'info', (l) => logs.push(l)),
  });
}

function snapshot(d: Director): TableSnapshot {
  const r = d.handle({ op: 'get-table' });
  if (!r.ok || !r.table) throw new Error('no table');
  return r.table;
}

/** `TCP addr:port sched: rs/weight ...` per service, in table order. */
function listing(d: Director): string[] {
  return snapshot(d).services.map(
    (s) => `${s.fwmark ? `FWM ${s.fwmark}` : `${s.protocol === 6 ? 'TCP' : 'UDP'} ${s.addr}:${s.port}`} ${s.scheduler}: ${[...s.dests].reverse().map((x) => `${x.addr}:${x.port}/${x.weight}`).join(' ')}`,
  );
}

/** The director's internal destination ids per service: unchanged ids = same destination object. */
function destIds(d: Director): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const s of d.services.services) out[`${s.config.addr}:${s.config.port}`] = [...s.dests].sort();
  return out;
}

const NAT = (port: number, rs: string, extra = ''): string =>
  `virtual_server 198.18.1.100 ${port} {\n  protocol TCP\n  lb_algo rr\n  lb_kind NAT\n${extra}${rs}}\n`;
const RS = (addr: string, weight = 1, port = 80): string => `  real_server ${addr} ${port} {\n    weight ${weight}\n    TCP_CHECK { connect_timeout 3 }\n  }\n`;

describe('loading at start', () => {
  it('applies the configuration in one batch and returns the warnings', () => {
    const d = director();
    const c = new KeepalivedController({ file: join(FIXTURES, 'seed-000-lvs-nat.conf'), handle: (r) => d.handle(r), log: new Logger('text', 'info', () => {}) });
    const res = c.start();
    expect(res.ok).toBe(true);
    expect(res.diagnostics.map((x) => x.severity)).toEqual(['warning', 'warning', 'note']);
    expect(listing(d)).toEqual(['TCP 198.18.1.100:15000 rr: 198.18.2.69:15000/100 198.18.2.76:15000/100']);
    expect(c.config?.virtualServers).toHaveLength(1);
  });

  it('DR and TUN real servers are Route and Tunnel destinations, never NAT', () => {
    const d = director();
    const file = write(NAT(80, RS('198.18.2.11'), '  lb_kind DR\n') + NAT(81, RS('198.18.2.12', 1, 81), '  lb_kind TUN\n'));
    expect(startKeepalived(file, d, new Logger('text', 'info', () => {}))).toBeInstanceOf(KeepalivedController);
    expect(snapshot(d).services.map((s) => [s.port, s.dests.map((x) => x.forward)])).toEqual([
      [80, [3]],
      [81, [2]],
    ]);
  });

  it('an IPv6 virtual server with an IPv6 real server loads as ipvsadm would list it', () => {
    const d = director();
    const res = startKeepalived(join(FIXTURES, 'ipv6-vs.conf'), d, new Logger('text', 'info', () => {}));
    expect(res).toBeInstanceOf(KeepalivedController);
    expect(snapshot(d).services.map((s) => [s.af, s.addr, s.port, s.dests.map((x) => [x.af, x.addr, x.port, x.forward])])).toEqual([
      [6, 'fd00:1::100', 80, [[6, 'fd00:2::11', 80, 0]]],
    ]);
  });

  it('what the data plane refuses (a persistence engine) fails the load at the virtual_server line, nothing applied', () => {
    const d = director();
    const file = join(FIXTURES, 'pe-vs.conf');
    const res = startKeepalived(file, d, new Logger('text', 'info', () => {}));
    expect('error' in res && res.error).toBe(
      `${file}:4: virtual_server TCP 198.18.1.100:80: add-service TCP 198.18.1.100:80 (wrr) refused by tapvsd: persistence engines (--pe) are not supported yet; nothing applied`,
    );
    expect(listing(d)).toEqual([]);
    expect(d.reloadKeepalived).toBeNull();
  });

  it('a configuration error stops the load with its file:line', () => {
    const d = director();
    const file = write(NAT(80, RS('198.18.2.11'), '  delay_loop\n'));
    const res = startKeepalived(file, d, new Logger('text', 'info', () => {}));
    expect('error' in res && res.error).toBe(`${file}:5: error: Configuration line starting \`delay_loop\` is missing a parameter after keyword \`delay_loop\` at word position 2; nothing applied`);
    expect(listing(d)).toEqual([]);
  });

  it('comes after --rules; a service both define is refused (EEXIST), nothing of keepalived applied', () => {
    const d = director();
    const rules = parseRestoreText('-A -t 198.18.1.100:8080 -s wlc\n-a -t 198.18.1.100:8080 -r 198.18.2.20:80 -m -w 1\n');
    if ('error' in rules) throw new Error(rules.error);
    expect(d.applyInitial({ op: 'batch', commands: rules.commands }).ok).toBe(true);
    const ok = startKeepalived(write(NAT(80, RS('198.18.2.11'))), d, new Logger('text', 'info', () => {}));
    expect(ok).toBeInstanceOf(KeepalivedController);
    expect(listing(d)).toEqual(['TCP 198.18.1.100:8080 wlc: 198.18.2.20:80/1', 'TCP 198.18.1.100:80 rr: 198.18.2.11:80/1']);

    const d2 = director();
    d2.applyInitial({ op: 'batch', commands: rules.commands });
    const clash = write(NAT(80, RS('198.18.2.11')) + NAT(8080, RS('198.18.2.12')));
    const res = startKeepalived(clash, d2, new Logger('text', 'info', () => {}));
    expect('error' in res && res.error).toMatch(new RegExp(`^${clash}:10: virtual_server TCP 198.18.1.100:8080: add-service TCP 198.18.1.100:8080 \\(rr\\) refused by tapvsd: Service already exists; nothing applied$`));
    expect(listing(d2)).toEqual(['TCP 198.18.1.100:8080 wlc: 198.18.2.20:80/1']);
  });
});

describe('reload', () => {
  it('applies only the difference: unchanged services and destinations keep their identity', () => {
    const d = director();
    const file = write(NAT(80, RS('198.18.2.11') + RS('198.18.2.12')) + NAT(81, RS('198.18.2.11')));
    const c = startKeepalived(file, d, new Logger('text', 'info', () => {})) as KeepalivedController;
    const before = destIds(d);
    writeFileSync(file, NAT(80, RS('198.18.2.11') + RS('198.18.2.12', 3) + RS('198.18.2.13'), '  lb_algo wrr\n') + NAT(82, RS('198.18.2.14')));
    const reply = d.handle({ op: 'reload-keepalived' });
    expect(reply).toEqual({ ok: true, message: 'keepalived configuration reloaded: 6 change(s) (3 added, 2 edited, 1 deleted)' });
    expect(listing(d)).toEqual(['TCP 198.18.1.100:80 wrr: 198.18.2.11:80/1 198.18.2.12:80/3 198.18.2.13:80/1', 'TCP 198.18.1.100:82 rr: 198.18.2.14:80/1']);
    const after = destIds(d);
    // .11 and .12 are the very same destinations (edited in place), .13 is new
    expect(after['198.18.1.100:80'].slice(0, 2)).toEqual(before['198.18.1.100:80']);
    expect(c.config?.virtualServers.map((v) => v.id)).toEqual(['TCP 198.18.1.100:80', 'TCP 198.18.1.100:82']);
  });

  it('leaves services of --rules and of the CLI alone', () => {
    const d = director();
    d.handle({ op: 'add-service', service: { af: 4, protocol: 17, addr: '198.18.1.100', port: 53, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' } });
    const file = write(NAT(80, RS('198.18.2.11')));
    startKeepalived(file, d, new Logger('text', 'info', () => {}));
    // a destination added by hand to the keepalived service stays too
    d.handle({
      op: 'add-server',
      service: { af: 4, protocol: 6, addr: '198.18.1.100', port: 80, fwmark: 0 },
      dest: { af: 4, addr: '198.18.2.30', port: 80, forward: 0, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 },
    });
    writeFileSync(file, NAT(80, RS('198.18.2.12')));
    expect(d.handle({ op: 'reload-keepalived' }).ok).toBe(true);
    expect(listing(d)).toEqual(['UDP 198.18.1.100:53 rr: ', 'TCP 198.18.1.100:80 rr: 198.18.2.30:80/1 198.18.2.12:80/1']);
  });

  it('a broken configuration is refused with file:line and the running one stays', () => {
    const logs: string[] = [];
    const d = director(logs);
    const file = write(NAT(80, RS('198.18.2.11')));
    startKeepalived(file, d, new Logger('text', 'info', (l) => logs.push(l)));
    writeFileSync(file, NAT(80, RS('198.18.2.12'), '  persistence_timeout 60\n  persistence_engine sip\n'));
    const reply = d.handle({ op: 'reload-keepalived' });
    expect(reply.ok).toBe(false);
    expect(!reply.ok && reply.message).toMatch(
      new RegExp(`^keepalived reload refused, configuration unchanged: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1: virtual_server TCP 198\\.18\\.1\\.100:80: .*refused by tapvsd: persistence engines \\(--pe\\) are not supported yet`),
    );
    expect(listing(d)).toEqual(['TCP 198.18.1.100:80 rr: 198.18.2.11:80/1']);
    writeFileSync(file, NAT(80, RS('198.18.2.12'), '  delay_loop abc\n  frobnicate\n  quorum\n'));
    const r2 = d.handle({ op: 'reload-keepalived' });
    expect(!r2.ok && r2.message).toBe(
      `keepalived reload refused, configuration unchanged: ${file}:7: error: Configuration line starting \`quorum\` is missing a parameter after keyword \`quorum\` at word position 2`,
    );
    expect(logs.filter((l) => l.includes('WARN')).map((l) => l.replace(/^\S+ /, ''))).toEqual([
      `WARN  ${file}:5: warning: virtual server delay loop 'abc' invalid - ignoring`,
      `WARN  ${file}:6: warning: Unknown keyword 'frobnicate' in virtual_server`,
      `WARN  ${file}:7: error: Configuration line starting \`quorum\` is missing a parameter after keyword \`quorum\` at word position 2`,
    ]);
  });

  it('the control request needs --keepalived', () => {
    expect(director().handle({ op: 'reload-keepalived' })).toEqual({ ok: false, errno: 'EOPNOTSUPP', message: 'tapvsd was not started with --keepalived' });
  });

  it('SIGHUP with --rules applies the rules file and keepalived.conf by difference, in one batch', () => {
    const d = director();
    const rulesText = '--add-mark -d 198.18.1.100 -p tcp --dport 443 --set-mark 7\n-A -t 198.18.1.100:8080 -s wlc\n-a -t 198.18.1.100:8080 -r 198.18.2.20:80 -m -w 1\n';
    const rulesFile = write(rulesText, 'rules');
    const rules = parseRestoreText(rulesText);
    if ('error' in rules) throw new Error(rules.error);
    d.applyInitial({ op: 'batch', commands: rules.commands });
    const file = write(NAT(80, RS('198.18.2.11')));
    const c = startKeepalived(file, d, new Logger('text', 'info', () => {})) as KeepalivedController;
    const before = destIds(d);
    writeFileSync(rulesFile, rulesText.replace('-w 1', '-w 4'));
    writeFileSync(file, NAT(80, RS('198.18.2.11') + RS('198.18.2.12')));
    const reply = reloadOnSighup(c, rulesFile, new Logger('text', 'info', () => {}));
    expect(reply.ok).toBe(true);
    // Both by difference: keepalived's destination .11 and the rules file's .20 (now weight 4) are edited in
    // place, never recreated, so their connections and counters survive.
    expect(listing(d)).toEqual(['TCP 198.18.1.100:8080 wlc: 198.18.2.20:80/4', 'TCP 198.18.1.100:80 rr: 198.18.2.11:80/1 198.18.2.12:80/1']);
    expect(destIds(d)['198.18.1.100:80'][0]).toEqual(before['198.18.1.100:80'][0]);
    expect(destIds(d)['198.18.1.100:8080']).toEqual(before['198.18.1.100:8080']);
    expect(snapshot(d).marks).toHaveLength(1);
    // a broken rules file stops the whole reload
    writeFileSync(rulesFile, '-A -t 198.18.1.100:8080 -s nosuch\n');
    const bad = reloadOnSighup(c, rulesFile, new Logger('text', 'info', () => {}));
    expect(!bad.ok && bad.message).toContain(`${rulesFile}:1:`);
    expect(listing(d)).toEqual(['TCP 198.18.1.100:8080 wlc: 198.18.2.20:80/4', 'TCP 198.18.1.100:80 rr: 198.18.2.11:80/1 198.18.2.12:80/1']);
    // a keepalived service the rules file also defines is refused
    writeFileSync(rulesFile, '-A -t 198.18.1.100:80 -s wlc\n');
    const clash = reloadOnSighup(c, rulesFile, new Logger('text', 'info', () => {}));
    expect(!clash.ok && clash.message).toBe(`reload refused, configuration unchanged: ${file}:1: virtual_server TCP 198.18.1.100:80: its service is also defined by the rules file`);
  });
});

describe('--check', () => {
  it('exits like keepalived -t: 0 clean, 4 fixed-up values or unknown keywords, 3 cannot run', () => {
    expect(checkKeepalived(write(NAT(80, RS('198.18.2.11')))).code).toBe(0);
    expect(checkKeepalived(join(FIXTURES, 'seed-000-lvs-nat.conf')).code).toBe(4);
    expect(checkKeepalived(join(FIXTURES, 'seed-001-tcp-http.conf')).code).toBe(4);
    expect(checkKeepalived(join(FIXTURES, 'all-keywords.conf')).code).toBe(4); // warnings only (deprecated keywords)
    expect(checkKeepalived(join(FIXTURES, 'ipv6-vs.conf')).code).toBe(0);
    expect(checkKeepalived(join(FIXTURES, 'pe-vs.conf')).code).toBe(3); // refused by the data plane
    expect(checkKeepalived(join(tmp, 'missing.conf')).code).toBe(3);
  });

  it('reports the data plane refusal at the virtual_server line, without a TAP', () => {
    const file = join(FIXTURES, 'pe-vs.conf');
    const out: string[] = [];
    const err: string[] = [];
    const code = runKeepalivedCheck(file, undefined, (s) => out.push(s), (s) => err.push(s));
    expect(code).toBe(3);
    expect(err.join('')).toBe(
      `${file}:4: error: virtual_server TCP 198.18.1.100:80: add-service TCP 198.18.1.100:80 (wrr) refused by tapvsd: persistence engines (--pe) are not supported yet\n`,
    );
    expect(out.join('')).toBe(`${file}: 1 virtual server(s), 1 service(s), 1 destination(s); 1 error(s), 0 warning(s)\n`);
  });

  it('checks against the --rules table', () => {
    const rulesFile = write('-A -t 198.18.1.100:80 -s rr\n', 'rules-clash');
    const err: string[] = [];
    const code = runKeepalivedCheck(write(NAT(80, RS('198.18.2.11'))), rulesFile, () => {}, (s) => err.push(s));
    expect(code).toBe(3);
    expect(err.join('')).toContain('add-service TCP 198.18.1.100:80 (rr) refused by tapvsd: Service already exists');
    const badRules = write('-A -t 198.18.1.100:80 -s nosuch-option -x\n', 'rules-bad');
    const err2: string[] = [];
    expect(runKeepalivedCheck(write(NAT(80, RS('198.18.2.11'))), badRules, () => {}, (s) => err2.push(s))).toBe(3);
    expect(err2.join('')).toMatch(new RegExp(`^${badRules}:1: `));
  });
});
