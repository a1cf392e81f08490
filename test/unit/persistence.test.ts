import { describe, expect, it } from 'vitest';
import { ServiceTable } from '../../src/control/service-table.js';
import { ConnectionTracker, TEMPLATE_ASSURED, TEMPLATE_NONE } from '../../src/conntrack/connection-tracker.js';
import { PERSIST_NO_DESTINATION, schedulePersistent } from '../../src/conntrack/persistence.js';
import { CONN_F_TEMPLATE } from '../../src/conntrack/connection-flags.js';
import { TICK_MS } from '../../src/conntrack/connection-table.js';
import { DIR_INPUT, DIR_OUTPUT } from '../../src/conntrack/tcp-state.js';
import { IpvsSysctls } from '../../src/control/sysctls.js';
import { ForwardMethod, SVC_F_PERSISTENT, type DestinationConfig, type ServiceConfig } from '../../src/control/model.js';
import { parseIpv4 } from '../../src/dataplane/wire/ipv4.js';

const TCP = 6, UDP = 17, SYN = 2, ACK = 0x10;
const VIP = parseIpv4('198.18.1.100');

function service(port: number, extra: Partial<ServiceConfig> = {}): ServiceConfig {
  return { af: 4, protocol: TCP, addr: '198.18.1.100', port, fwmark: 0, scheduler: 'rr', flags: SVC_F_PERSISTENT, timeout: 360, netmask: '255.255.255.255', pe: '', ...extra };
}

function dest(addr: string, port: number, weight = 1): DestinationConfig {
  return { af: 4, addr, port, forward: ForwardMethod.Masq, weight, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 };
}

function setup(cfg: ServiceConfig, rsPort = cfg.port, sysctls = new IpvsSysctls()) {
  const services = new ServiceTable();
  expect(services.addService(cfg)).toBeNull();
  expect(services.addDest(cfg, dest('198.18.2.11', rsPort))).toBeNull();
  expect(services.addDest(cfg, dest('198.18.2.12', rsPort))).toBeNull();
  const tracker = new ConnectionTracker(services.dests, 1000, 0, sysctls);
  tracker.onDestinationUnreferenced = (d) => services.releaseIfUnreferenced(d);
  const svc = services.find(cfg)!;
  const tuple = { saddr: 0, daddr: 0, sport: 0, dport: 0 };
  const connect = (caddr: string, cport: number, vport: number, now: number, protocol = cfg.protocol): number =>
    schedulePersistent(tracker, svc, protocol, parseIpv4(caddr), cport, VIP, vport, now, () => svc.scheduler.schedule(svc.dests, services.dests, tuple));
  const rsOf = (id: number): string => ({ [parseIpv4('198.18.2.11')]: 'rs1', [parseIpv4('198.18.2.12')]: 'rs2' })[tracker.table.daddrOf(id)] ?? '?';
  const templates = (): number[] => {
    const out: number[] = [];
    tracker.table.forEach((i) => {
      if (tracker.table.flagsOf(i) & CONN_F_TEMPLATE) out.push(i);
    });
    return out;
  };
  return { services, tracker, svc, connect, rsOf, templates };
}

describe('persistence (-p)', () => {
  it('keeps a client on one real server while rr would alternate, and keys the template as the kernel does', () => {
    const s = setup(service(80));
    const a = [s.connect('198.18.1.2', 1000, 80, 0), s.connect('198.18.1.2', 1001, 80, 1), s.connect('198.18.1.2', 1002, 80, 2)];
    expect(a.map(s.rsOf)).toEqual(['rs2', 'rs2', 'rs2']);
    // Another client gets the next real server in rr order.
    expect(s.rsOf(s.connect('198.18.1.3', 1000, 80, 3))).toBe('rs1');
    const t = s.tracker.table;
    const ct = s.templates().find((i) => t.caddrOf(i) === parseIpv4('198.18.1.2'))!;
    // <TCP, 198.18.1.2, 0, VIP, 80> -> RS:80
    expect([t.protocolOf(ct), t.caddrOf(ct), t.cportOf(ct), t.vaddrOf(ct), t.vportOf(ct), t.dportOf(ct)]).toEqual([TCP, parseIpv4('198.18.1.2'), 0, VIP, 80, 80]);
    expect(t.nControl[ct]).toBe(3);
    expect(s.services.dests.persistConns[s.svc.dests[0]]).toBe(1);
  });

  it('groups clients by the -M netmask', () => {
    const s = setup(service(80, { netmask: '255.255.255.0' }));
    expect(s.rsOf(s.connect('198.18.1.2', 1000, 80, 0))).toBe('rs2');
    expect(s.rsOf(s.connect('198.18.1.77', 1000, 80, 0))).toBe('rs2');
    expect(s.rsOf(s.connect('198.18.9.1', 1000, 80, 0))).toBe('rs1');
    expect(s.templates().map((i) => s.tracker.table.caddrOf(i)).sort()).toEqual([parseIpv4('198.18.1.0'), parseIpv4('198.18.9.0')]);
  });

  it('PCC: a port-0 service sends every port of the VIP to the same real server, keeping the port', () => {
    const s = setup(service(0), 0);
    const web = s.connect('198.18.1.2', 1000, 80, 0);
    const ssh = s.connect('198.18.1.2', 1001, 22, 0);
    expect(s.rsOf(web)).toBe(s.rsOf(ssh));
    expect(s.tracker.table.dportOf(web)).toBe(80);
    expect(s.tracker.table.dportOf(ssh)).toBe(22);
    const [ct] = s.templates();
    expect([s.tracker.table.vportOf(ct), s.tracker.table.dportOf(ct)]).toEqual([0, 0]);
  });

  it('fwmark templates are <IPPROTO_IP, snet, 0, mark, 0> and cover every port and protocol of the mark', () => {
    const cfg = service(0, { fwmark: 3, addr: '0.0.0.0', timeout: 600 });
    const s = setup(cfg, 0);
    const http = s.connect('198.18.1.2', 1000, 80, 0);
    const https = s.connect('198.18.1.2', 1001, 443, 0);
    expect(s.rsOf(http)).toBe(s.rsOf(https));
    const [ct] = s.templates();
    const t = s.tracker.table;
    expect([t.protocolOf(ct), t.vaddrOf(ct), t.vportOf(ct), t.dportOf(ct)]).toEqual([0, 3, 0, 0]);
    expect(t.remainingSeconds(ct, 0)).toBe(600);
  });

  it('template lifetime: re-armed by new connections only, kept 60 s at a time while it controls connections', () => {
    const s = setup(service(80, { timeout: 10 }));
    const t = s.tracker.table;
    const c1 = s.connect('198.18.1.2', 1000, 80, 0);
    const [ct] = s.templates();
    s.tracker.transition(c1, DIR_INPUT, SYN, 0);
    s.tracker.transition(c1, DIR_OUTPUT, SYN | ACK, 0);
    s.tracker.transition(c1, DIR_INPUT, ACK, 0); // ESTABLISHED: 900 s
    expect(t.stateOf(ct)).toBe(TEMPLATE_ASSURED);
    // Packets of the existing connection do not touch the template.
    s.tracker.transition(c1, DIR_INPUT, ACK, 8_000);
    expect(t.remainingSeconds(ct, 8_000)).toBe(2);
    // At 10 s it still controls c1: re-armed for 60 s, and 60 s becomes its timeout.
    s.tracker.expire(10_000 + TICK_MS);
    expect(t.live[ct]).toBe(1);
    expect(t.timeout[ct]).toBe(60_000);
    // A new connection re-arms it with that (60 s) timeout, as the kernel does.
    s.connect('198.18.1.2', 1001, 80, 30_000);
    expect(t.remainingSeconds(ct, 30_000)).toBe(60);
    expect(t.nControl[ct]).toBe(2);
  });

  it('a template expires once no connection depends on it, and the client is scheduled anew', () => {
    const s = setup(service(80, { timeout: 10 }));
    const c1 = s.connect('198.18.1.2', 1000, 80, 0); // rs2, SYN_RECV... still NONE: 3 s initial timeout
    expect(s.rsOf(c1)).toBe('rs2');
    s.tracker.expire(3_000 + TICK_MS); // c1 gone (never got a packet)
    s.tracker.expire(10_000 + TICK_MS); // template gone
    expect(s.templates()).toEqual([]);
    expect(s.services.dests.persistConns[s.svc.dests[0]] + s.services.dests.persistConns[s.svc.dests[1]]).toBe(0);
    expect(s.rsOf(s.connect('198.18.1.2', 1001, 80, 11_000))).toBe('rs1');
  });

  it('a template whose real server was deleted is invalidated and the client moves', () => {
    const s = setup(service(80));
    expect(s.rsOf(s.connect('198.18.1.2', 1000, 80, 0))).toBe('rs2');
    expect(s.services.deleteDest(s.svc.config, { af: 4, addr: '198.18.2.12', port: 80 })).toBeNull();
    expect(s.rsOf(s.connect('198.18.1.2', 1001, 80, 1))).toBe('rs1');
    const t = s.tracker.table;
    const old = s.templates().find((i) => t.vportOf(i) === 0xffff);
    expect(old).toBeDefined(); // left to expire, never matched again
  });

  it('expire_quiescent_template moves clients off a weight-0 server; by default they stay', () => {
    for (const q of [0, 1]) {
      const sys = new IpvsSysctls();
      sys.set(`expire_quiescent_template=${q}`);
      const s = setup(service(80), 80, sys);
      expect(s.rsOf(s.connect('198.18.1.2', 1000, 80, 0))).toBe('rs2');
      expect(s.services.editDest(s.svc.config, dest('198.18.2.12', 80, 0))).toBeNull();
      expect(s.rsOf(s.connect('198.18.1.2', 1001, 80, 1))).toBe(q === 0 ? 'rs2' : 'rs1');
    }
  });

  it('no destination at all -> no template, no connection', () => {
    const services = new ServiceTable();
    const cfg = service(80);
    services.addService(cfg);
    const tracker = new ConnectionTracker(services.dests, 10, 0);
    const svc = services.find(cfg)!;
    expect(schedulePersistent(tracker, svc, TCP, 1, 1, VIP, 80, 0, () => -1)).toBe(PERSIST_NO_DESTINATION);
    expect(tracker.table.count).toBe(0);
  });

  it('UDP replies assure the template', () => {
    const s = setup(service(53, { protocol: UDP }));
    const c = s.connect('198.18.1.2', 5000, 53, 0);
    const [ct] = s.templates();
    expect(s.tracker.table.stateOf(ct)).toBe(TEMPLATE_NONE);
    s.tracker.transition(c, DIR_OUTPUT, 0, 1);
    expect(s.tracker.table.stateOf(ct)).toBe(TEMPLATE_ASSURED);
  });
});

describe('service lookup for scheduling and mark rules', () => {
  it('uses the fwmark service first, then the exact service, then the port-0 service', () => {
    const services = new ServiceTable();
    services.addService(service(0, { fwmark: 3, addr: '0.0.0.0' }));
    services.addService(service(80, { flags: 0 }));
    services.addService(service(0));
    expect(services.addMarkRule({ af: 4, addr: '198.18.1.100', protocol: TCP, ports: [[80, 80], [443, 443]], mark: 3 })).toBeNull();
    const fw = services.find({ af: 4, protocol: TCP, addr: '0.0.0.0', port: 0, fwmark: 3 })!.id;
    const exact = services.find(service(80))!.id;
    const pcc = services.find(service(0))!.id;
    const at = (port: number): number => services.lookupForScheduling(TCP, VIP, port, services.classify(TCP, VIP, port));
    expect(at(443)).toBe(fw);
    expect(at(80)).toBe(fw);
    expect(at(8080)).toBe(pcc);
    expect(services.lookupForScheduling(TCP, VIP, 80, 0)).toBe(exact);
    expect(services.classify(UDP, VIP, 443)).toBe(0);
    expect(services.isVip(VIP)).toBe(true);
  });

  it('mark rules: first match wins, ranges, any protocol, duplicates and bad rules refused', () => {
    const services = new ServiceTable();
    const other = parseIpv4('198.18.1.101');
    expect(services.addMarkRule({ af: 4, addr: '198.18.1.101', protocol: UDP, ports: [[1000, 2000]], mark: 7 })).toBeNull();
    expect(services.addMarkRule({ af: 4, addr: '198.18.1.101', protocol: 0, ports: [], mark: 8 })).toBeNull();
    expect(services.classify(UDP, other, 1500)).toBe(7);
    expect(services.classify(UDP, other, 2001)).toBe(8);
    expect(services.classify(TCP, other, 1500)).toBe(8);
    expect(services.isVip(other)).toBe(true);
    expect(services.addMarkRule({ af: 4, addr: '198.18.1.101', protocol: 0, ports: [], mark: 8 })?.errno).toBe('EEXIST');
    expect(services.addMarkRule({ af: 4, addr: '198.18.1.101', protocol: 0, ports: [[80, 80]], mark: 9 })?.errno).toBe('EINVAL');
    expect(services.addMarkRule({ af: 4, addr: 'x', protocol: TCP, ports: [], mark: 9 })?.errno).toBe('EINVAL');
    expect(services.addMarkRule({ af: 4, addr: '198.18.1.9', protocol: TCP, ports: [[90, 80]], mark: 9 })?.errno).toBe('EINVAL');
    expect(services.deleteMarkRule({ af: 4, addr: '198.18.1.101', protocol: 0, ports: [], mark: 8 })).toBeNull();
    expect(services.deleteMarkRule({ af: 4, addr: '198.18.1.101', protocol: 0, ports: [], mark: 8 })?.errno).toBe('ENOENT');
    expect(services.classify(TCP, other, 1500)).toBe(0);
  });

  it('refuses a non-persistent port-0 service', () => {
    const services = new ServiceTable();
    expect(services.addService(service(0, { flags: 0 }))?.errno).toBe('EINVAL');
  });
});
