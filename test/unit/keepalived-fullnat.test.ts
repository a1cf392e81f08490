/**
 * FULLNAT in keepalived.conf, as DPVS's keepalived (tools/keepalived, check_parser.c) spells it:
 * `local_address_group NAME { ADDR [IFNAME] | A.B.C.D-E }`, `lb_kind FNAT`, `laddr_group_name NAME`,
 * `proxy_protocol v2`, plus tapvs's `client_address proxy-protocol|toa|none`. Load diagnostics with
 * file:line, the plan (FullNat destinations, `laddrs`, clientAddress) and reload by difference of the
 * local addresses against a real Director's control handler.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ForwardMethod, type TableSnapshot } from '../../src/control/model.js';
import { Director } from '../../src/director.js';
import { checkKeepalived, KeepalivedController } from '../../src/keepalived/controller.js';
import { loadKeepalivedConfig } from '../../src/keepalived/load.js';
import { describeCommand, initialCommands, planTable, reloadCommands } from '../../src/keepalived/to-commands.js';
import { Logger } from '../../src/logger.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/keepalived');
const tmp = mkdtempSync(join(tmpdir(), 'tapvs-ka-fnat-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function write(text: string): string {
  const p = join(tmp, `f${n++}.conf`);
  writeFileSync(p, text);
  return p;
}
function load(text: string) {
  const r = loadKeepalivedConfig(write(text));
  const msgs = (sev: string): string[] => r.diagnostics.filter((d) => d.severity === sev).map((d) => `${d.line}: ${d.message}`);
  return { ...r, msgs };
}

const GROUP = (body = '  198.18.2.200\n', name = 'L'): string => `local_address_group ${name} {\n${body}}\n`;
/** A FULLNAT virtual server (line 1 of the returned text is its `virtual_server` line). */
const FNAT = (extra = '  laddr_group_name L\n', port = 80, proto = 'TCP', kind = 'FNAT'): string =>
  `virtual_server 198.18.1.100 ${port} {\n  protocol ${proto}\n  lb_algo rr\n  lb_kind ${kind}\n${extra}  real_server 198.18.2.11 8080 {\n  }\n}\n`;

describe('local_address_group, lb_kind FNAT, laddr_group_name', () => {
  it('the DPVS-style fixture loads cleanly: ranges expanded, FNAT, proxy_protocol v2', () => {
    const file = join(FIXTURES, 'fullnat.conf');
    const { config, diagnostics } = loadKeepalivedConfig(file);
    expect(diagnostics).toEqual([]);
    const g = config.localAddressGroups.get('laddr_g1')!;
    expect(g.addresses).toEqual(['198.18.2.200', '198.18.2.201', '198.18.2.202', '198.18.2.203']);
    expect(g.entries.map((e) => [e.at.line, e.first, e.last])).toEqual([
      [7, '198.18.2.200', '198.18.2.200'],
      [8, '198.18.2.201', '198.18.2.203'],
    ]);
    const [web, dns] = config.virtualServers;
    expect(web.forward.method).toBe('FULLNAT');
    expect(web.realServers.map((r) => [r.id, r.forward.method])).toEqual([
      ['198.18.2.11:8080', 'FULLNAT'],
      ['198.18.2.12:8080', 'FULLNAT'],
    ]);
    expect(web.localAddressGroup?.name).toBe('laddr_g1');
    expect(web.clientAddress).toBe('proxy-protocol');
    expect(dns.clientAddress).toBe('none');
    expect(checkKeepalived(file)).toMatchObject({ code: 0, diagnostics: [] });
  });

  it('FULLNAT is an alias of FNAT; lvs_method FNAT works per real server; the group may come after', () => {
    const r = load(FNAT('  laddr_group_name L\n', 80, 'TCP', 'FULLNAT') + GROUP());
    expect(r.diagnostics).toEqual([]);
    expect(r.config.virtualServers[0].realServers[0].forward.method).toBe('FULLNAT');
    const mixed = load(
      GROUP() +
        'virtual_server 198.18.1.100 80 {\n  protocol TCP\n  lb_algo rr\n  lb_kind NAT\n  laddr_group_name L\n' +
        '  real_server 198.18.2.11 80 {\n    lvs_method FNAT\n  }\n  real_server 198.18.2.12 80 {\n  }\n}\n',
    );
    expect(mixed.diagnostics).toEqual([]);
    expect(mixed.config.virtualServers[0].realServers.map((x) => x.forward.method)).toEqual(['FULLNAT', 'NAT']);
    expect(load(FNAT('', 80, 'TCP', 'SNAT')).msgs('warning')).toContain('4: PARSER : unknown [SNAT] routing method for virtual server.');
  });

  it('bad entries are reported at their line and skipped; an interface name is ignored with a note', () => {
    const r = load(
      GROUP(
        [
          '  198.18.2.200 dpdk0', // 2
          '  198.18.2.300', // 3
          '  198.18.2.10-5', // 4
          '  198.18.2.10-300', // 5
          '  198.18.2.0/24', // 6
          '  224.0.0.1', // 7
          '  198.18.2.199-201', // 8: .200 already listed
          '  198.18.2.210 eth0 extra', // 9
          '  nonsense', // 10
        ].join('\n') + '\n',
      ) + FNAT(),
    );
    expect(r.msgs('error')).toEqual([]);
    expect(r.msgs('warning')).toEqual([
      '3: local_address_group L: Invalid local address IP address - 198.18.2.300 - skipping',
      '4: local_address_group L: Address range end is not greater than address range start - 198.18.2.10-5 - skipping',
      '5: local_address_group L: Invalid range end - 198.18.2.10-300 - skipping',
      '6: local_address_group L: a prefix is not a local address (use a range A.B.C.D-E) - 198.18.2.0/24 - skipping',
      '7: local_address_group L: 224.0.0.1 is not a unicast address - 224.0.0.1 - skipping',
      `8: local_address_group L: local address 198.18.2.200 already listed at ${r.config.files[0]}:2 - skipping it`,
      '9: local_address_group L: extra words after 198.18.2.210 eth0 - ignored',
      '10: local_address_group L: Invalid local address IP address - nonsense - skipping',
    ]);
    expect(r.msgs('note')).toEqual([
      '2: local_address_group L: interface dpdk0 ignored (tapvs answers ARP for local addresses on its TAP)',
      '9: local_address_group L: interface eth0 ignored (tapvs answers ARP for local addresses on its TAP)',
    ]);
    expect(r.config.localAddressGroups.get('L')!.addresses).toEqual(['198.18.2.200', '198.18.2.199', '198.18.2.201', '198.18.2.210']);
  });

  it('errors with file:line: a missing group, FNAT without laddr_group_name, an empty group', () => {
    const missing = load(FNAT('  laddr_group_name NOPE\n'));
    expect(missing.msgs('error')).toEqual(['5: Virtual server 198.18.1.100:80/TCP: laddr_group_name NOPE: no local_address_group NOPE is configured']);
    expect(missing.diagnostics.find((d) => d.severity === 'error')!.file).toBe(missing.config.files[0]);
    const none = load(FNAT(''));
    expect(none.msgs('error')).toEqual([
      '1: Virtual server 198.18.1.100:80/TCP: lb_kind FNAT needs local addresses: add laddr_group_name NAME and a local_address_group NAME { ... }',
    ]);
    const empty = load(GROUP('  bogus\n') + FNAT());
    expect(empty.msgs('warning')).toContain('1: local address group L has no entries - removing');
    expect(empty.msgs('error')).toEqual(['8: Virtual server 198.18.1.100:80/TCP: laddr_group_name L: no local_address_group L is configured']);
    expect(load(FNAT('  laddr_group_name\n')).msgs('error')[0]).toMatch(/^5: Configuration line starting `laddr_group_name` is missing a parameter/);
    // Not FULLNAT: the group is not used.
    const nat = load(GROUP() + FNAT('  laddr_group_name L\n', 80, 'TCP', 'NAT'));
    expect(nat.msgs('error')).toEqual([]);
    expect(nat.msgs('warning')).toEqual(['8: Virtual server 198.18.1.100:80/TCP: laddr_group_name only applies to FULLNAT (lb_kind FNAT) real servers - ignoring']);
    expect(nat.config.virtualServers[0].localAddressGroup).toBeUndefined();
  });

  it("proxy_protocol (DPVS's values) and client_address (tapvs)", () => {
    const mode = (extra: string, proto = 'TCP', kind = 'FNAT') => load(GROUP() + FNAT(`  laddr_group_name L\n${extra}`, 80, proto, kind));
    expect(mode('  proxy_protocol v2\n').config.virtualServers[0].clientAddress).toBe('proxy-protocol');
    expect(mode('  proxy_protocol disable\n').config.virtualServers[0].clientAddress).toBe('none');
    expect(mode('  client_address toa\n').config.virtualServers[0].clientAddress).toBe('toa');
    expect(mode('  client_address proxy-protocol\n').config.virtualServers[0].clientAddress).toBe('proxy-protocol');
    const insecure = mode('  proxy_protocol v2-insecure\n');
    expect(insecure.config.virtualServers[0].clientAddress).toBe('proxy-protocol');
    expect(insecure.msgs('warning')).toEqual([expect.stringMatching(/^9: proxy_protocol v2-insecure: tapvs always inserts its own PROXY v2 header/)]);
    expect(mode('  proxy_protocol v1\n').msgs('error')).toEqual(['9: proxy_protocol v1: tapvs sends PROXY protocol v2 only (use proxy_protocol v2)']);
    const unknown = mode('  proxy_protocol v3\n');
    expect(unknown.msgs('warning')).toEqual(["9: unknown proxy_protocol 'v3' (v2, v2-insecure, v1, v1-insecure, disable) - disabling it, as DPVS does"]);
    expect(unknown.config.virtualServers[0].clientAddress).toBe('none');
    expect(mode('  client_address maybe\n').msgs('warning')).toEqual(["9: Invalid client_address 'maybe' (proxy-protocol, toa, none) - ignoring"]);
    const both = mode('  proxy_protocol v2\n  client_address toa\n');
    expect(both.config.virtualServers[0].clientAddress).toBe('toa');
    expect(both.msgs('warning')).toEqual([`10: client_address overrides proxy_protocol at ${both.config.files[0]}:9`]);
    expect(mode('  client_address toa\n', 'UDP').msgs('error')).toEqual(['9: Virtual server 198.18.1.100:80/UDP: client_address (toa) needs protocol TCP']);
    const nat = mode('  proxy_protocol v2\n', 'TCP', 'NAT');
    expect(nat.msgs('warning')).toContain('9: Virtual server 198.18.1.100:80/TCP: proxy_protocol only applies to FULLNAT (lb_kind FNAT) - ignoring');
    expect(nat.config.virtualServers[0].clientAddress).toBe('none');
  });
});

describe('planning', () => {
  it('FullNat destinations keep their port; every service lists the local addresses; clientAddress is set', () => {
    const plan = planTable(loadKeepalivedConfig(join(FIXTURES, 'fullnat.conf')).config);
    expect(plan.diagnostics).toEqual([]);
    const [web, dns] = plan.services;
    expect(web).toMatchObject({ protocol: 6, port: 80, clientAddress: 'proxy-protocol', laddrs: ['198.18.2.200', '198.18.2.201', '198.18.2.202', '198.18.2.203'] });
    expect(web.dests.map((d) => [d.addr, d.port, d.forward, d.weight])).toEqual([
      ['198.18.2.11', 8080, ForwardMethod.FullNat, 1],
      ['198.18.2.12', 8080, ForwardMethod.FullNat, 2],
    ]);
    expect(dns).toMatchObject({ protocol: 17, port: 53, laddrs: web.laddrs });
    expect('clientAddress' in dns).toBe(false);
    expect(initialCommands(plan).map(describeCommand).slice(0, 7)).toEqual([
      'add-service TCP 198.18.1.100:80 (rr)',
      'add-laddr TCP 198.18.1.100:80 local address 198.18.2.200',
      'add-laddr TCP 198.18.1.100:80 local address 198.18.2.201',
      'add-laddr TCP 198.18.1.100:80 local address 198.18.2.202',
      'add-laddr TCP 198.18.1.100:80 local address 198.18.2.203',
      'add-server TCP 198.18.1.100:80 -> 198.18.2.11:8080 (FNAT, weight 1)',
      'add-server TCP 198.18.1.100:80 -> 198.18.2.12:8080 (FNAT, weight 2)',
    ]);
  });

  it('a virtual_server_group with FNAT: each service of the group gets the pool; NAT services an empty one', () => {
    const plan = planTable(
      load(
        GROUP('  198.18.2.200-201\n') +
          'virtual_server_group G {\n  198.18.1.100-101 80\n}\n' +
          FNAT('  laddr_group_name L\n', 0, 'TCP').replace('198.18.1.100 0', 'group G') +
          FNAT('', 81, 'TCP', 'NAT'),
      ).config,
    );
    expect(plan.diagnostics).toEqual([]);
    expect(plan.services.map((s) => [s.addr, s.port, s.laddrs])).toEqual([
      ['198.18.1.100', 80, ['198.18.2.200', '198.18.2.201']],
      ['198.18.1.101', 80, ['198.18.2.200', '198.18.2.201']],
      ['198.18.1.100', 81, []],
    ]);
  });
});

describe('reload: local addresses by difference', () => {
  function director(): Director {
    return new Director({
      tap: 'tvtunit0',
      addresses: [{ addr: 0xc6120101, prefix: 24 }],
      socketPath: join(tmp, 'unused.sock'),
      connMax: 1024,
      logger: new Logger('text', 'info', () => {}),
    });
  }
  function snapshot(d: Director): TableSnapshot {
    const r = d.handle({ op: 'get-table' });
    if (!r.ok || !r.table) throw new Error('no table');
    return r.table;
  }

  it('diff: adds and deletes only the changed local addresses, edits clientAddress in place', () => {
    const v1 = planTable(load(GROUP('  198.18.2.200-202\n') + FNAT('  laddr_group_name L\n  proxy_protocol v2\n')).config);
    const v2 = planTable(load(GROUP('  198.18.2.201-203\n') + FNAT('  laddr_group_name L\n  client_address toa\n')).config);
    const current = { services: v1.services.map((s) => ({ ...s })) };
    expect(reloadCommands(v2, current, v1).map(describeCommand)).toEqual([
      'edit-service TCP 198.18.1.100:80 (rr)',
      'delete-laddr TCP 198.18.1.100:80 local address 198.18.2.200',
      'add-laddr TCP 198.18.1.100:80 local address 198.18.2.203',
    ]);
    expect(reloadCommands(v2, current, v1)[0]).toMatchObject({ op: 'edit-service', service: { clientAddress: 'toa' } });
    // FNAT -> NAT: the local addresses go, the destination is edited (never re-created).
    const nat = planTable(load(FNAT('', 80, 'TCP', 'NAT')).config);
    expect(reloadCommands(nat, current, v1).map((c) => c.op)).toEqual(['edit-service', 'delete-laddr', 'delete-laddr', 'delete-laddr', 'edit-server']);
  });

  it('the controller applies it to the live table; the real server keeps its identity', () => {
    const d = director();
    const file = write(GROUP('  198.18.2.200\n') + FNAT());
    const c = new KeepalivedController({ file, handle: (r) => d.handle(r), log: new Logger('text', 'info', () => {}) });
    expect(c.start().ok).toBe(true);
    const before = snapshot(d).services[0];
    expect(before.laddrs).toEqual(['198.18.2.200']);
    expect(before.dests.map((x) => [x.addr, x.port, x.forward])).toEqual([['198.18.2.11', 8080, ForwardMethod.FullNat]]);
    const ids = [...d.services.services[0].dests];

    writeFileSync(file, GROUP('  198.18.2.201-202\n') + FNAT('  laddr_group_name L\n  proxy_protocol v2\n'));
    const r = c.reload();
    expect(r).toEqual({ ok: true, message: 'keepalived configuration reloaded: 4 change(s) (2 added, 1 edited, 1 deleted)' });
    const after = snapshot(d).services[0];
    expect(after.laddrs).toEqual(['198.18.2.201', '198.18.2.202']);
    expect(after.clientAddress).toBe('proxy-protocol');
    expect([...d.services.services[0].dests]).toEqual(ids);
    expect(c.reload()).toEqual({ ok: true, message: 'keepalived configuration reloaded: 0 change(s) (0 added, 0 edited, 0 deleted)' });

    // A missing group refuses the reload with file:line and changes nothing.
    writeFileSync(file, FNAT('  laddr_group_name GONE\n'));
    const bad = c.reload();
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.message).toContain(`${file}:5: error: Virtual server 198.18.1.100:80/TCP: laddr_group_name GONE: no local_address_group GONE is configured`);
    expect(snapshot(d).services[0].laddrs).toEqual(['198.18.2.201', '198.18.2.202']);
  });
});
