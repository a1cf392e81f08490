/**
 * keepalived model -> control commands (src/keepalived/to-commands.ts): which destinations keepalived
 * puts in IPVS at start (ipwrapper.c init_service_rs / update_quorum_state: alpha, inhibit_on_failure,
 * quorum and sorry server), forwarding methods and ports (ipvswrapper.c), and the reload difference.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ForwardMethod, SVC_F_PERSISTENT, type DestinationConfig, type ServiceConfig } from '../../src/control/model.js';
import type { Command } from '../../src/control/protocol.js';
import { loadKeepalivedConfig } from '../../src/keepalived/load.js';
import {
  PlanState,
  commandOrigin,
  describeCommand,
  diffCommands,
  initialCommands,
  planTable,
  reloadCommands,
  type Plan,
  type RuntimeState,
  type TableLike,
} from '../../src/keepalived/to-commands.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/keepalived');
const tmp = mkdtempSync(join(tmpdir(), 'tapvs-ka-cmd-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function plan(text: string, runtime?: RuntimeState): Plan {
  const p = join(tmp, `c${n++}.conf`);
  writeFileSync(p, text);
  return planTable(loadKeepalivedConfig(p).config, runtime);
}

function vs(body: string, head = '198.18.1.100 80', kind = 'NAT'): string {
  return `virtual_server ${head} {\n  protocol TCP\n  lb_algo rr\n  lb_kind ${kind}\n${body}\n}\n`;
}

/** The destinations of each service as `addr:port/weight/forward`. */
function table(p: { services: TableLike['services'] }): string[] {
  const fwd = ['NAT', 'local', 'TUN', 'DR'];
  return p.services.map(
    (s) => `${s.fwmark ? `FWM ${s.fwmark}` : `${s.protocol === 6 ? 'TCP' : 'UDP'} ${s.addr}:${s.port}`} ${s.scheduler}: ${s.dests.map((d) => `${d.addr}:${d.port}/w${d.weight}/${fwd[d.forward]}`).join(' ')}`,
  );
}

const svc = (over: Partial<ServiceConfig> = {}): ServiceConfig => ({
  af: 4,
  protocol: 6,
  addr: '198.18.1.100',
  port: 80,
  fwmark: 0,
  scheduler: 'rr',
  flags: 0,
  timeout: 0,
  netmask: '255.255.255.255',
  pe: '',
  ...over,
});
const dst = (addr: string, weight = 1, over: Partial<DestinationConfig> = {}): DestinationConfig => ({
  af: 4,
  addr,
  port: 80,
  forward: ForwardMethod.Masq,
  weight,
  uThreshold: 0,
  lThreshold: 0,
  tunType: 0,
  tunPort: 0,
  tunFlags: 0,
  ...over,
});
const key = (s: ServiceConfig) => ({ af: s.af, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark });

describe('the seed configurations map to ipvsadm commands', () => {
  it('seed 000: -A -t VIP:15000 -s rr; -a ... -m -w 100 twice', () => {
    const p = planTable(loadKeepalivedConfig(join(FIXTURES, 'seed-000-lvs-nat.conf')).config);
    expect(p.diagnostics).toEqual([]);
    const s = svc({ addr: '198.18.1.100', port: 15000 });
    expect(initialCommands(p)).toEqual([
      { op: 'add-service', service: s },
      { op: 'add-server', service: key(s), dest: dst('198.18.2.69', 100, { port: 15000 }) },
      { op: 'add-server', service: key(s), dest: dst('198.18.2.76', 100, { port: 15000 }) },
    ]);
  });

  it('seed 001: -A -t VIP:9376 -s wrr; two real servers with weight 1', () => {
    const p = planTable(loadKeepalivedConfig(join(FIXTURES, 'seed-001-tcp-http.conf')).config);
    const s = svc({ addr: '198.18.1.117', port: 9376, scheduler: 'wrr' });
    expect(initialCommands(p)).toEqual([
      { op: 'add-service', service: s },
      { op: 'add-server', service: key(s), dest: dst('198.18.2.148', 1, { port: 9376 }) },
      { op: 'add-server', service: key(s), dest: dst('198.18.2.147', 1, { port: 9376 }) },
    ]);
    expect(initialCommands(p).map(describeCommand)).toEqual([
      'add-service TCP 198.18.1.117:9376 (wrr)',
      'add-server TCP 198.18.1.117:9376 -> 198.18.2.148:9376 (NAT, weight 1)',
      'add-server TCP 198.18.1.117:9376 -> 198.18.2.147:9376 (NAT, weight 1)',
    ]);
  });
});

describe('start-up state (ipwrapper.c)', () => {
  it('alpha: a real server whose checker is alpha is not added, or added with weight 0 under inhibit_on_failure', () => {
    const p = plan(
      vs(`  real_server 198.18.2.11 80 { weight 2 }
  real_server 198.18.2.12 80 { alpha\n TCP_CHECK { } }
  real_server 198.18.2.13 80 { alpha\n inhibit_on_failure\n weight 3\n TCP_CHECK { } }
  real_server 198.18.2.14 80 { alpha }
  real_server 198.18.2.15 80 { TCP_CHECK { alpha } }`),
    );
    // .14 has alpha but no checker: nothing can fail, so it is added (as keepalived does).
    expect(table(p)).toEqual(['TCP 198.18.1.100:80 rr: 198.18.2.11:80/w2/NAT 198.18.2.13:80/w0/NAT 198.18.2.14:80/w1/NAT']);
    expect([...p.state.alive.entries()]).toEqual([
      ['TCP 198.18.1.100:80|198.18.2.11:80', true],
      ['TCP 198.18.1.100:80|198.18.2.12:80', false],
      ['TCP 198.18.1.100:80|198.18.2.13:80', false],
      ['TCP 198.18.1.100:80|198.18.2.14:80', true],
      ['TCP 198.18.1.100:80|198.18.2.15:80', false],
    ]);
  });

  it('quorum down at start brings in the sorry server instead of the real servers', () => {
    const p = plan(
      vs(`  quorum 5\n  sorry_server 198.18.2.99 8080
  real_server 198.18.2.11 80 { weight 2 }
  real_server 198.18.2.12 80 { weight 3\n inhibit_on_failure\n TCP_CHECK { alpha } }`),
    );
    expect(table(p)).toEqual(['TCP 198.18.1.100:80 rr: 198.18.2.12:80/w0/NAT 198.18.2.99:8080/w1/NAT']);
    expect(p.state.quorum.get('TCP 198.18.1.100:80')).toBe(false);
  });

  it('quorum met: real servers in, the sorry server out (kept with weight 0 under sorry_server_inhibit)', () => {
    expect(table(plan(vs('  sorry_server 198.18.2.99 80\n  real_server 198.18.2.11 80 { }')))).toEqual(['TCP 198.18.1.100:80 rr: 198.18.2.11:80/w1/NAT']);
    expect(table(plan(vs('  sorry_server 198.18.2.99 80\n  sorry_server_inhibit\n  real_server 198.18.2.11 80 { }')))).toEqual([
      'TCP 198.18.1.100:80 rr: 198.18.2.11:80/w1/NAT 198.18.2.99:80/w0/NAT',
    ]);
  });

  it('hysteresis: start needs quorum + hysteresis; once up, it holds down to quorum - hysteresis', () => {
    const text = vs('  quorum 3\n  hysteresis 1\n  sorry_server 198.18.2.99 80\n  real_server 198.18.2.11 80 { weight 3 }\n  real_server 198.18.2.12 80 { weight 1 }');
    const up = new PlanState();
    up.quorum.set('TCP 198.18.1.100:80', true);
    up.alive.set('TCP 198.18.1.100:80|198.18.2.11:80', false);
    // .11 is down, .12 is new and so alive: alive weight 1 < quorum 3 - hysteresis 1 -> quorum lost
    expect(plan(text, up).state.quorum.get('TCP 198.18.1.100:80')).toBe(false);
    const up2 = new PlanState();
    up2.quorum.set('TCP 198.18.1.100:80', true);
    up2.alive.set('TCP 198.18.1.100:80|198.18.2.12:80', false);
    // alive weight 3 >= 3 - 1: still up
    expect(table(plan(text, up2))).toEqual(['TCP 198.18.1.100:80 rr: 198.18.2.11:80/w3/NAT']);
    // from down (or at start) 3 < 3 + 1: down, sorry server in
    const down = new PlanState();
    down.quorum.set('TCP 198.18.1.100:80', false);
    down.alive.set('TCP 198.18.1.100:80|198.18.2.12:80', false);
    expect(table(plan(text, down))).toEqual(['TCP 198.18.1.100:80 rr: 198.18.2.99:80/w1/NAT']);
  });
});

describe('forwarding methods, ports, services', () => {
  it('DR and TUN are never turned into NAT: Route / Tunnel destinations on the service port', () => {
    const p = plan(
      vs('  real_server 198.18.2.11 80 { }\n  real_server 198.18.2.12 { lvs_method TUN type gue port 6080 remcsum }', '198.18.1.100 80', 'DR'),
    );
    expect(p.services[0].dests).toEqual([
      expect.objectContaining({ addr: '198.18.2.11', port: 80, forward: ForwardMethod.Route, tunType: 0 }),
      expect.objectContaining({ addr: '198.18.2.12', port: 80, forward: ForwardMethod.Tunnel, tunType: 1, tunPort: 6080, tunFlags: 2 }),
    ]);
  });

  it('fwmark services: protocol TCP as ipvsadm -f sets it, DR destinations on port 0, NAT keeps the port', () => {
    const p = plan(vs('  real_server 198.18.2.11 80 { }\n  real_server 198.18.2.12 8080 { lvs_method NAT }', 'fwmark 7', 'DR'));
    expect(p.services.map((s) => [s.fwmark, s.protocol, s.addr, s.port])).toEqual([[7, 6, '0.0.0.0', 0]]);
    expect(table(p)).toEqual(['FWM 7 rr: 198.18.2.11:0/w1/DR 198.18.2.12:8080/w1/NAT']);
  });

  it('a group is one service per address, and one per fwmark, sharing the real servers', () => {
    const p = plan(`virtual_server_group G {\n 198.18.1.10-11 80\n fwmark 3\n}\n` + vs('  persistence_timeout 60\n  real_server 198.18.2.11 80 { }', 'group G'));
    expect(table(p)).toEqual([
      'TCP 198.18.1.10:80 rr: 198.18.2.11:80/w1/NAT',
      'TCP 198.18.1.11:80 rr: 198.18.2.11:80/w1/NAT',
      'FWM 3 rr: 198.18.2.11:80/w1/NAT',
    ]);
    expect(p.services.every((s) => s.flags === SVC_F_PERSISTENT && s.timeout === 60)).toBe(true);
  });

  it('persistence: -p timeout -M granularity', () => {
    const [s] = plan(vs('  persistence_timeout 300\n  persistence_granularity 255.255.255.0\n  real_server 198.18.2.11 80 { }')).services;
    expect([s.flags, s.timeout, s.netmask, s.pe]).toEqual([SVC_F_PERSISTENT, 300, '255.255.255.0', '']);
  });

  it('thresholds and weights go to the destination', () => {
    const [s] = plan(vs('  real_server 198.18.2.11 80 { weight 7\n uthreshold 50\n lthreshold 5 }')).services;
    expect(s.dests[0]).toMatchObject({ weight: 7, uThreshold: 50, lThreshold: 5 });
  });

  it('FULLNAT (lb_kind FNAT) becomes FullNat destinations with the local addresses (more in keepalived-fullnat.test.ts)', () => {
    const p = plan('local_address_group L {\n 198.18.2.200\n}\n' + vs('  laddr_group_name L\n  real_server 198.18.2.11 8080 { }', '198.18.1.100 80', 'FNAT'));
    expect(p.diagnostics).toEqual([]);
    expect(p.services[0]).toMatchObject({ laddrs: ['198.18.2.200'], dests: [expect.objectContaining({ addr: '198.18.2.11', port: 8080, forward: ForwardMethod.FullNat })] });
  });

  it('a service defined by two virtual servers is used once, with a warning', () => {
    const p = plan(`virtual_server_group G {\n 198.18.1.100 80\n}\n` + vs('  real_server 198.18.2.11 80 { }') + vs('  real_server 198.18.2.12 80 { }', 'group G'));
    expect(table(p)).toEqual(['TCP 198.18.1.100:80 rr: 198.18.2.11:80/w1/NAT']);
    expect(p.diagnostics).toEqual([expect.objectContaining({ severity: 'warning', message: expect.stringContaining('is already defined by virtual_server TCP 198.18.1.100:80') })]);
  });

  it('lvs_flush and lvs_timeouts come first', () => {
    const p = plan('global_defs {\n lvs_flush\n lvs_timeouts tcp 600 udp 30\n}\n' + vs('  real_server 198.18.2.11 80 { }'));
    expect(initialCommands(p).slice(0, 3).map((c) => c.op)).toEqual(['flush', 'set-timeouts', 'add-service']);
    expect(initialCommands(p)[1]).toEqual({ op: 'set-timeouts', timeouts: { tcp: 600, tcpfin: 0, udp: 30 } });
  });

  it('commandOrigin names the virtual_server and real_server lines', () => {
    const p = plan(vs('  real_server 198.18.2.11 80 { }\n  real_server 198.18.2.12 80 { }'));
    const cmds = initialCommands(p);
    expect(commandOrigin(p, cmds[0])).toMatchObject({ vsId: 'TCP 198.18.1.100:80', vs: { line: 1 } });
    expect(commandOrigin(p, cmds[2])).toMatchObject({ rsId: '198.18.2.12:80', rs: { line: 6 }, role: 'real' });
  });
});

describe('diffCommands', () => {
  const s80 = svc();
  const s81 = svc({ port: 81 });
  const current: TableLike = { services: [{ ...s80, dests: [dst('198.18.2.11'), dst('198.18.2.12', 2)] }, { ...s81, dests: [dst('198.18.2.11')] }] };

  it('nothing to do for an equal table', () => {
    expect(diffCommands(current, current)).toEqual([]);
  });

  it('edits weights and schedulers in place, adds and deletes only what changed', () => {
    const desired: TableLike = {
      services: [
        { ...s80, scheduler: 'wrr', dests: [dst('198.18.2.11'), dst('198.18.2.12', 5), dst('198.18.2.13')] },
        { ...svc({ port: 82 }), dests: [dst('198.18.2.14')] },
      ],
    };
    expect(diffCommands(current, desired)).toEqual<Command[]>([
      { op: 'delete-service', service: key(s81) },
      { op: 'edit-service', service: { ...s80, scheduler: 'wrr' } },
      { op: 'edit-server', service: key(s80), dest: dst('198.18.2.12', 5) },
      { op: 'add-server', service: key(s80), dest: dst('198.18.2.13') },
      { op: 'add-service', service: svc({ port: 82 }) },
      { op: 'add-server', service: key(svc({ port: 82 })), dest: dst('198.18.2.14') },
    ]);
  });

  it('deletes destinations before anything else, and a protocol change is a different service', () => {
    const desired: TableLike = { services: [{ ...s80, dests: [dst('198.18.2.12', 2)] }, { ...s81, protocol: 17, dests: [dst('198.18.2.11')] }] };
    expect(diffCommands(current, desired).map((c) => c.op)).toEqual(['delete-server', 'delete-service', 'add-service', 'add-server']);
  });

  it('forwarding method, thresholds and tunnel parameters are edits', () => {
    const desired: TableLike = {
      services: [{ ...s80, dests: [dst('198.18.2.11', 1, { forward: ForwardMethod.Route }), dst('198.18.2.12', 2, { uThreshold: 9 })] }, { ...s81, dests: [dst('198.18.2.11')] }],
    };
    expect(diffCommands(current, desired).map((c) => c.op)).toEqual(['edit-server', 'edit-server']);
  });

  it('persistence timeout only matters for persistent services', () => {
    const cur: TableLike = { services: [{ ...s80, timeout: 300, dests: [] }] };
    expect(diffCommands(cur, { services: [{ ...s80, dests: [] }] })).toEqual([]);
    const p = svc({ flags: SVC_F_PERSISTENT, timeout: 300 });
    expect(diffCommands({ services: [{ ...p, dests: [] }] }, { services: [{ ...p, timeout: 600, dests: [] }] }).map((c) => c.op)).toEqual(['edit-service']);
  });

  it('with an ownership list, leaves foreign services and destinations alone', () => {
    const foreign = svc({ port: 9999 });
    const cur: TableLike = { services: [...current.services, { ...foreign, dests: [dst('198.18.2.50')] }] };
    const owned: TableLike = { services: [{ ...s80, dests: [dst('198.18.2.11')] }, { ...s81, dests: [] }] };
    const desired: TableLike = { services: [{ ...s80, dests: [] }] };
    // .12 in :80 is not owned (e.g. added with tapvs -a), :9999 is not owned: both stay.
    expect(diffCommands(cur, desired, owned)).toEqual<Command[]>([
      { op: 'delete-server', service: key(s80), dest: { af: 4, addr: '198.18.2.11', port: 80 } },
      { op: 'delete-service', service: key(s81) },
    ]);
  });
});

describe('reload', () => {
  const v1 = vs('  real_server 198.18.2.11 80 { weight 1 }\n  real_server 198.18.2.12 80 { weight 1 }');

  it('applies only the difference and keeps the start-up decisions of kept real servers', () => {
    const p1 = plan(vs(`  real_server 198.18.2.11 80 { }\n  real_server 198.18.2.12 80 { inhibit_on_failure\n TCP_CHECK { alpha } }`));
    expect(table(p1)).toEqual(['TCP 198.18.1.100:80 rr: 198.18.2.11:80/w1/NAT 198.18.2.12:80/w0/NAT']);
    // The new configuration drops alpha on .12: a real server that was down stays down until its
    // checker says otherwise (keepalived 2.2+), so .12 keeps weight 0; .13 is new and starts up.
    const p2 = plan(vs(`  real_server 198.18.2.11 80 { weight 4 }\n  real_server 198.18.2.12 80 { inhibit_on_failure\n TCP_CHECK { } }\n  real_server 198.18.2.13 80 { }`), p1.state);
    const cur: TableLike = { services: p1.services };
    expect(reloadCommands(p2, cur, p1).map(describeCommand)).toEqual([
      'edit-server TCP 198.18.1.100:80 -> 198.18.2.11:80 (NAT, weight 4)',
      'add-server TCP 198.18.1.100:80 -> 198.18.2.13:80 (NAT, weight 1)',
    ]);
  });

  it('removes real servers and virtual servers the new configuration no longer has, never foreign ones', () => {
    const p1 = plan(v1 + vs('  real_server 198.18.2.11 80 { }', '198.18.1.100 81'));
    const foreign = { ...svc({ port: 9000 }), dests: [dst('198.18.2.70')] };
    const cur: TableLike = { services: [...p1.services, foreign] };
    const p2 = plan(vs('  real_server 198.18.2.11 80 { }'), p1.state);
    expect(reloadCommands(p2, cur, p1).map(describeCommand)).toEqual([
      'delete-server TCP 198.18.1.100:80 -> 198.18.2.12:80',
      'delete-service TCP 198.18.1.100:81',
    ]);
  });

  it('re-applies lvs_timeouts only when they differ from the table', () => {
    const p = plan('global_defs { lvs_timeouts tcp 600 }\n' + v1);
    const cur = { services: p.services, timeouts: { tcp: 900, tcpfin: 120, udp: 300 } };
    expect(reloadCommands(p, cur, p)).toEqual([{ op: 'set-timeouts', timeouts: { tcp: 600, tcpfin: 0, udp: 0 } }]);
    expect(reloadCommands(p, { ...cur, timeouts: { tcp: 600, tcpfin: 120, udp: 300 } }, p)).toEqual([]);
  });

  it('takes the health-check engine\'s view when given one', () => {
    const p1 = plan(v1);
    const runtime: RuntimeState = {
      realServerAlive: (_vs, rs) => rs !== '198.18.2.12:80',
      quorumUp: () => true,
      realServerWeight: (_vs, rs) => (rs === '198.18.2.11:80' ? 9 : undefined),
    };
    const p2 = plan(v1, runtime);
    expect(reloadCommands(p2, { services: p1.services }, p1).map(describeCommand)).toEqual([
      'delete-server TCP 198.18.1.100:80 -> 198.18.2.12:80',
      'edit-server TCP 198.18.1.100:80 -> 198.18.2.11:80 (NAT, weight 9)',
    ]);
  });
});
