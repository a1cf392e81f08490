/**
 * `ipvsadm -L` output, byte for byte. Expected strings are written out by hand from ipvsadm 1.31's
 * printf formats (e.g. the server line "  -> %-28s %-7s %-6d %-10u %-10u\n", whose InActConn
 * column leaves trailing spaces).
 */
import { describe, expect, it } from 'vitest';
import { FileNameDatabase } from '../../src/cli/address-port.js';
import {
  DEFAULT_LISTING_FORMAT,
  formatConnections,
  formatLargeNumber,
  formatLocalAddresses,
  formatMarkRules,
  formatSingleService,
  formatTable,
  formatTimeouts,
  ipvsSort,
  compareDestinations,
  markRuleText,
  type ListingFormat,
} from '../../src/control/listing.js';
import type {
  ConnectionSnapshot,
  DestinationSnapshot,
  MarkRule,
  ServiceSnapshot,
  TableSnapshot,
} from '../../src/control/model.js';
import { dest, service, table, ZERO_RATE, ZERO_STATS } from '../snapshot-builders.js';

const names = FileNameDatabase.fromText(
  '127.0.0.1 localhost\n10.0.0.9 web1.example web1\n10.0.0.77 averyveryverylonghostname.example.com\n2001:db8::10 v6real\n',
  'http 80/tcp www\nhttp 80/udp\ndomain 53/udp\nhttps 443/tcp\n',
);


/** Literal text pieces and (numbers) runs of spaces, counted by hand from the printf widths. */
function row(...parts: Array<string | number>): string {
  return `${parts.map((p) => (typeof p === 'number' ? ' '.repeat(p) : p)).join('')}\n`;
}

const fmt = (extra: Partial<ListingFormat> = {}): ListingFormat => ({ ...DEFAULT_LISTING_FORMAT, ...extra });

// Daemon order is deliberately not the listing order; dests are in kernel order (newest first).
const TABLE = table([
  service(6, '10.0.0.1', 80, [
    dest('10.0.0.3', 80, { weight: 2, activeConns: 5, inactConns: 7 }),
    dest('10.0.0.2', 80),
  ]),
  service(6, '2001:db8::1', 443, [dest('2001:db8::10', 443)]),
  service(17, '10.0.0.1', 53, [dest('10.0.0.2', 53)]),
  service(6, '192.168.0.1', 80, [dest('192.168.1.10', 8080)], { scheduler: 'rr' }),
]);

const HEADER = 'IP Virtual Server version 1.2.1 (size=4096)\n';
const TITLE =
  'Prot LocalAddress:Port Scheduler Flags\n' + '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';

describe('default listing', () => {
  it('-L -n: header, title, sorted services (u32-wrap quirk) and servers', () => {
    expect(formatTable(TABLE, fmt({ numeric: true }), names)).toBe(
      HEADER +
        TITLE +
        'TCP  192.168.0.1:80 rr\n' +
        row('  -> 192.168.1.10:8080', 12, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        'TCP  10.0.0.1:80 wlc\n' +
        row('  -> 10.0.0.2:80', 18, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        row('  -> 10.0.0.3:80', 18, 'Masq', 4, '2', 6, '5', 10, '7', 9) +
        'UDP  10.0.0.1:53 wlc\n' +
        row('  -> 10.0.0.2:53', 18, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        'TCP  [2001:db8::1]:443 wlc\n' +
        row('  -> [2001:db8::10]:443', 11, 'Masq', 4, '1', 6, '0', 10, '0', 9),
    );
  });

  it('--nosort keeps the daemon’s service order and the kernel’s server order', () => {
    expect(formatTable(TABLE, fmt({ numeric: true, nosort: true }), names)).toBe(
      HEADER +
        TITLE +
        'TCP  10.0.0.1:80 wlc\n' +
        row('  -> 10.0.0.3:80', 18, 'Masq', 4, '2', 6, '5', 10, '7', 9) +
        row('  -> 10.0.0.2:80', 18, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        'TCP  [2001:db8::1]:443 wlc\n' +
        row('  -> [2001:db8::10]:443', 11, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        'UDP  10.0.0.1:53 wlc\n' +
        row('  -> 10.0.0.2:53', 18, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        'TCP  192.168.0.1:80 rr\n' +
        row('  -> 192.168.1.10:8080', 12, 'Masq', 4, '1', 6, '0', 10, '0', 9),
    );
  });

  it('an empty table is header and title only', () => {
    expect(formatTable(table([]), fmt(), names)).toBe(HEADER + TITLE);
    expect(formatTable({ ...table([]), connTabSize: 65536 }, fmt(), names)).toBe(
      'IP Virtual Server version 1.2.1 (size=65536)\n' + TITLE,
    );
  });

  it('without -n: names from /etc/hosts and /etc/services, cut to 33 and 28 columns (IPv4)', () => {
    const t = table([
      service(6, '10.0.0.9', 80, [dest('10.0.0.77', 80), dest('10.0.0.9', 8080, { forward: 3 })]),
      service(6, '10.0.0.77', 80, []),
      service(17, '2001:db8::1', 53, [dest('2001:db8::10', 53)]),
    ]);
    expect(formatTable(t, fmt(), names)).toBe(
      HEADER +
        TITLE +
        'TCP  web1.example:http wlc\n' +
        row('  -> web1.example:8080', 12, 'Route', 3, '1', 6, '0', 10, '0', 9) +
        row('  -> averyveryverylonghostname.ex', 1, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        'TCP  averyveryverylonghostname.ex wlc\n' +
        'UDP  [2001:db8::1]:domain wlc\n' +
        row('  -> [v6real]:domain', 14, 'Masq', 4, '1', 6, '0', 10, '0', 9),
    );
  });

  it('service flags: scheduler flags, persistence, mask, pe, ops; fwmark labels; forward names', () => {
    const t = table([
      service(6, '10.0.0.1', 0, [dest('10.0.0.2', 0, { forward: 1 }), dest('10.0.0.3', 0, { forward: 2 })], {
        flags: 0x1 | 0x8 | 0x10,
        scheduler: 'sh',
        timeout: 360,
        netmask: '255.255.255.0',
        pe: 'sip',
      }),
      service(17, '10.0.0.1', 53, [], { flags: 0x4 | 0x20, scheduler: 'rr' }),
      service(6, '0.0.0.0', 0, [], { fwmark: 5, flags: 0x1, timeout: 60 }),
      service(6, '::', 0, [], { af: 6, fwmark: 7, netmask: '64', flags: 0x1, timeout: 60, scheduler: 'mh' }),
    ]);
    expect(formatTable(t, fmt({ numeric: true }), names)).toBe(
      HEADER +
        TITLE +
        'TCP  10.0.0.1:0 sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0 pe sip\n' +
        row('  -> 10.0.0.2:0', 19, 'Local', 3, '1', 6, '0', 10, '0', 9) +
        row('  -> 10.0.0.3:0', 19, 'Tunnel', 2, '1', 6, '0', 10, '0', 9) +
        'UDP  10.0.0.1:53 rr (flag-3) ops\n' +
        'FWM  5 wlc persistent 60\n' +
        'FWM  7 IPv6 mh persistent 60 mask 64\n',
    );
  });
});

describe('persistence and fwmark services', () => {
  // What `-A -t 198.18.1.100:0 -s rr -p 200 [-M …]`, `-A -f 3 -s rr -p 600` and friends build.
  const PERSIST = table([
    service(6, '0.0.0.0', 0, [dest('192.168.1.42', 0, { weight: 2, activeConns: 1, persistConns: 4 }), dest('192.168.1.41', 0, { persistConns: 7, inactConns: 2 })], {
      fwmark: 3,
      scheduler: 'rr',
      flags: 0x1,
      timeout: 600,
    }),
    service(6, '198.18.1.100', 0, [dest('192.168.1.31', 0, { uThreshold: 100, lThreshold: 50, persistConns: 1 })], {
      scheduler: 'rr',
      flags: 0x1,
      timeout: 200,
    }),
    service(17, '198.18.1.100', 53, [dest('192.168.1.31', 53)], { scheduler: 'rr', flags: 0x1, timeout: 60, netmask: '255.255.255.0' }),
    service(6, '198.18.1.100', 80, [], { scheduler: 'sh', flags: 0x1 | 0x10, timeout: 360, netmask: '255.255.0.0' }),
    service(6, '0.0.0.0', 0, [], { fwmark: 4294967295, scheduler: 'wlc', netmask: '255.255.255.0' }),
  ]);

  it('-L -n: persistent N, mask only when not /32, FWM N labels after address services (marks ≥ 2^31 wrap)', () => {
    expect(formatTable(PERSIST, fmt({ numeric: true }), names)).toBe(
      HEADER +
        TITLE +
        // fwmark 4294967295 - 0 is -1 as an int in ipvs_cmp_services: it sorts first
        // (a mask without persistence is not shown: ipvsadm prints it inside the persistent branch)
        'FWM  4294967295 wlc\n' +
        'TCP  198.18.1.100:0 rr persistent 200\n' +
        row('  -> 192.168.1.31:0', 15, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        'TCP  198.18.1.100:80 sh (sh-port) persistent 360 mask 255.255.0.0\n' +
        'UDP  198.18.1.100:53 rr persistent 60 mask 255.255.255.0\n' +
        row('  -> 192.168.1.31:53', 14, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        'FWM  3 rr persistent 600\n' +
        row('  -> 192.168.1.41:0', 15, 'Masq', 4, '1', 6, '0', 10, '2', 9) +
        row('  -> 192.168.1.42:0', 15, 'Masq', 4, '2', 6, '1', 10, '0', 9),
    );
  });

  it('-L -n -f 3 (a single fwmark service) and without -n (FWM labels have no names)', () => {
    const fwm = PERSIST.services[0]!;
    expect(formatSingleService(fwm, fmt({ numeric: true }), names)).toBe(
      TITLE +
        'FWM  3 rr persistent 600\n' +
        row('  -> 192.168.1.41:0', 15, 'Masq', 4, '1', 6, '0', 10, '2', 9) +
        row('  -> 192.168.1.42:0', 15, 'Masq', 4, '2', 6, '1', 10, '0', 9),
    );
    expect(formatSingleService(fwm, fmt(), names).split('\n')[2]).toBe('FWM  3 rr persistent 600');
  });

  it('--thresholds: the default service line, then Uthreshold / Lthreshold per server', () => {
    expect(formatSingleService(PERSIST.services[1]!, fmt({ numeric: true, thresholds: true }), names)).toBe(
      row('Prot LocalAddress:Port', 12, 'Uthreshold Lthreshold ActiveConn InActConn', 1) +
        '  -> RemoteAddress:Port\n' +
        'TCP  198.18.1.100:0 rr persistent 200\n' +
        row('  -> 192.168.1.31:0', 15, '100', 8, '50', 9, '0', 10, '0', 9),
    );
  });

  it('--persistent-conn: PersistConn per server (templates it controls)', () => {
    expect(formatSingleService(PERSIST.services[0]!, fmt({ numeric: true, persistentConn: true }), names)).toBe(
      row('Prot LocalAddress:Port', 12, 'Weight', 4, 'PersistConn ActiveConn InActConn', 1) +
        '  -> RemoteAddress:Port\n' +
        'FWM  3 rr persistent 600\n' +
        row('  -> 192.168.1.41:0', 15, '1', 9, '7', 11, '0', 10, '2', 9) +
        row('  -> 192.168.1.42:0', 15, '2', 9, '4', 11, '1', 10, '0', 9),
    );
  });

  it('-L -c: templates, IP for fwmark ones (virtual address = the mark), then the connections they control', () => {
    const c = (extra: Partial<ConnectionSnapshot>): ConnectionSnapshot => ({
      protocol: 'TCP',
      expires: 359,
      state: 'NONE',
      af: 4,
      caddr: '203.0.113.7',
      cport: 0,
      vaddr: '0.0.0.7',
      vport: 0,
      daddr: '192.168.1.41',
      dport: 0,
      template: true,
      peName: '',
      peData: '',
      ...extra,
    });
    const conns = [
      c({ protocol: 'IP' }),
      c({ protocol: 'IP', state: 'ASSURED', expires: 61, caddr: '203.0.113.0', vaddr: '0.0.0.3' }),
      c({ caddr: '203.0.113.0', vaddr: '10.0.0.2', vport: 443, daddr: '192.168.1.31', dport: 443 }),
      c({ template: false, state: 'ESTABLISHED', expires: 899, cport: 40000, vaddr: '198.18.1.100', vport: 443, dport: 443 }),
    ];
    expect(formatConnections(conns, fmt({ numeric: true }), names)).toBe(
      'IPVS connection entries\n' +
        row('pro expire state', 7, 'source', 13, 'virtual', 12, 'destination') +
        'IP  05:59  NONE        203.0.113.7:0      0.0.0.7:0          192.168.1.41:0\n' +
        'IP  01:01  ASSURED     203.0.113.0:0      0.0.0.3:0          192.168.1.41:0\n' +
        'TCP 05:59  NONE        203.0.113.0:0      10.0.0.2:443       192.168.1.31:443\n' +
        'TCP 14:59  ESTABLISHED 203.0.113.7:40000  198.18.1.100:443   192.168.1.41:443\n',
    );
    // without -n: hosts are named; an IP template's ports have no service name (protocol 0)
    const named = [c({ protocol: 'IP', caddr: '10.0.0.9', dport: 80 }), c({ caddr: '10.0.0.9', dport: 80 })];
    expect(formatConnections(named, fmt(), names).split('\n').slice(2, 4)).toEqual([
      'IP  05:59  NONE        web1.example:0     0.0.0.7:0          192.168.1.41:80',
      'TCP 05:59  NONE        web1.example:0     0.0.0.7:0          192.168.1.41:http',
    ]);
  });
});

describe('mark rules (tapvs -L --marks)', () => {
  const rule = (extra: Partial<MarkRule>): MarkRule => ({ af: 4, addr: '198.18.1.100', protocol: 6, ports: [], mark: 3, ...extra });

  it('one rule in --add-mark syntax, always numeric', () => {
    expect(markRuleText(rule({ ports: [[80, 80], [443, 443]] }))).toBe('-d 198.18.1.100 -p tcp --dports 80,443 --set-mark 3');
    expect(markRuleText(rule({ ports: [[80, 80]] }))).toBe('-d 198.18.1.100 -p tcp --dport 80 --set-mark 3');
    expect(markRuleText(rule({ protocol: 17, ports: [[5000, 5010]] }))).toBe('-d 198.18.1.100 -p udp --dport 5000:5010 --set-mark 3');
    expect(markRuleText(rule({ ports: [[8000, 8080], [22, 22], [0, 65535]] }))).toBe(
      '-d 198.18.1.100 -p tcp --dports 8000:8080,22,0:65535 --set-mark 3',
    );
    expect(markRuleText(rule({ protocol: 6 }))).toBe('-d 198.18.1.100 -p tcp --set-mark 3');
    expect(markRuleText(rule({ protocol: 0, addr: '10.0.0.9', mark: 4294967295 }))).toBe('-d 10.0.0.9 --set-mark 4294967295');
  });

  it('the block: a title and one indented line per rule, in match order; empty without rules', () => {
    expect(formatMarkRules([rule({ ports: [[80, 80], [443, 443]] }), rule({ addr: '198.18.1.101', protocol: 0, mark: 4 })])).toBe(
      'Mark rules\n' + '  -d 198.18.1.100 -p tcp --dports 80,443 --set-mark 3\n' + '  -d 198.18.1.101 --set-mark 4\n',
    );
    expect(formatMarkRules([])).toBe('');
  });

  it('formatTable ignores them: plain -L stays ipvsadm’s', () => {
    const t: TableSnapshot = { ...table([]), marks: [rule({})] };
    expect(formatTable(t, fmt({ numeric: true }), names)).toBe(HEADER + TITLE);
  });
});

describe('single service, --stats, --rate, --thresholds, --persistent-conn, --tun-info', () => {
  const svc = service(
    6,
    '10.0.0.1',
    80,
    [
      dest('10.0.0.2', 80, {
        weight: 3,
        uThreshold: 100,
        lThreshold: 50,
        activeConns: 4,
        inactConns: 9,
        persistConns: 2,
        stats: { conns: 99_999_999, inpkts: 100_000_000, outpkts: 999_999_999, inbytes: 1_000_000_000, outbytes: 99_999_999_999 },
        rate: { cps: 12, inpps: 345, outpps: 6789, inbps: 123_456_789, outbps: 5 },
      }),
    ],
    {
      stats: { conns: 100_000_000_000, inpkts: 99_999_999_999_999, outpkts: 100_000_000_000_000, inbytes: 7, outbytes: 0 },
      rate: { cps: 1, inpps: 2, outpps: 3, inbps: 4, outbps: 5 },
    },
  );

  it('a single service has a title but no version header', () => {
    expect(formatSingleService(svc, fmt({ numeric: true }), names)).toBe(
      TITLE + 'TCP  10.0.0.1:80 wlc\n' + row('  -> 10.0.0.2:80', 18, 'Masq', 4, '3', 6, '4', 10, '9', 9),
    );
  });

  it('--stats: large numbers scaled K/M/G/T at their boundaries', () => {
    expect(formatSingleService(svc, fmt({ numeric: true, stats: true }), names)).toBe(
      row('Prot LocalAddress:Port', 15, 'Conns', 3, 'InPkts', 2, 'OutPkts', 2, 'InBytes', 1, 'OutBytes') +
        '  -> RemoteAddress:Port\n' +
        row('TCP  10.0.0.1:80', 22, '100G', 3, '99999G', 5, '100T', 8, '7', 8, '0') +
        row('  -> 10.0.0.2:80', 18, '99999999', 2, '100000K', 2, '999999K', 4, '1000M', 3, '99999M'),
    );
  });

  it('--stats --exact: exact numbers, width 9 or digits+1', () => {
    expect(formatSingleService(svc, fmt({ numeric: true, stats: true, exact: true }), names)).toBe(
      row('Prot LocalAddress:Port', 15, 'Conns', 3, 'InPkts', 2, 'OutPkts', 2, 'InBytes', 1, 'OutBytes') +
        '  -> RemoteAddress:Port\n' +
        row('TCP  10.0.0.1:80', 18, '100000000000 99999999999999 100000000000000', 8, '7', 8, '0') +
        row('  -> 10.0.0.2:80', 18, '99999999 100000000 999999999 1000000000 99999999999'),
    );
  });

  it('--rate: servers print cps/pps plain in 8 columns, bps as large numbers', () => {
    expect(formatSingleService(svc, fmt({ numeric: true, rate: true }), names)).toBe(
      row('Prot LocalAddress:Port', 17, 'CPS', 4, 'InPPS', 3, 'OutPPS', 4, 'InBPS', 3, 'OutBPS') +
        '  -> RemoteAddress:Port\n' +
        row('TCP  10.0.0.1:80', 25, '1', 8, '2', 8, '3', 8, '4', 8, '5') +
        row('  -> 10.0.0.2:80', 24, '12', 6, '345', 5, '6789', 2, '123456K', 8, '5'),
    );
  });

  it('--thresholds', () => {
    expect(formatSingleService(svc, fmt({ numeric: true, thresholds: true }), names)).toBe(
      row('Prot LocalAddress:Port', 12, 'Uthreshold Lthreshold ActiveConn InActConn', 1) +
        '  -> RemoteAddress:Port\n' +
        'TCP  10.0.0.1:80 wlc\n' +
        row('  -> 10.0.0.2:80', 18, '100', 8, '50', 9, '4', 10, '9', 9),
    );
  });

  it('--persistent-conn', () => {
    expect(formatSingleService(svc, fmt({ numeric: true, persistentConn: true }), names)).toBe(
      row('Prot LocalAddress:Port', 12, 'Weight', 4, 'PersistConn ActiveConn InActConn', 1) +
        '  -> RemoteAddress:Port\n' +
        'TCP  10.0.0.1:80 wlc\n' +
        row('  -> 10.0.0.2:80', 18, '3', 9, '2', 11, '4', 10, '9', 9),
    );
  });

  it('--tun-info', () => {
    const t = service(6, '10.0.0.1', 80, [
      dest('10.0.0.2', 80, { forward: 2, tunType: 1, tunPort: 6080, tunFlags: 2 }),
      dest('10.0.0.3', 80, { forward: 2, tunType: 2, tunFlags: 1 }),
      dest('10.0.0.4', 80, { forward: 2 }),
      dest('10.0.0.5', 80),
    ]);
    expect(formatSingleService(t, fmt({ numeric: true, tunInfo: true }), names)).toBe(
      'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n' +
        'TCP  10.0.0.1:80 wlc\n' +
        row('  -> 10.0.0.2:80', 18, 'Tunnel', 2, 'gue:6080:r+c', 2, '1', 6, '0', 10, '0', 9) +
        row('  -> 10.0.0.3:80', 18, 'Tunnel', 2, 'gre:+c', 8, '1', 6, '0', 10, '0', 9) +
        row('  -> 10.0.0.4:80', 18, 'Tunnel', 2, 'ipip', 10, '1', 6, '0', 10, '0', 9) +
        row('  -> 10.0.0.5:80', 18, 'Masq', 4, 'n/a', 11, '1', 6, '0', 10, '0', 9),
    );
  });

  it('title precedence: stats > rate > thresholds > persistent-conn', () => {
    const both = formatSingleService(svc, fmt({ numeric: true, stats: true, rate: true, thresholds: true }), names);
    expect(both.startsWith(`Prot LocalAddress:Port${' '.repeat(15)}Conns`)).toBe(true);
  });
});

describe('FULLNAT (tapvs’s own): FullNat servers, client address options, -G local addresses', () => {
  const FULLNAT = table([
    service(6, '198.18.1.100', 80, [dest('10.0.0.3', 8080, { forward: 5, weight: 2, activeConns: 3, inactConns: 1 }), dest('10.0.0.2', 80, { forward: 5 })], {
      scheduler: 'rr',
      clientAddress: 'proxy-protocol',
      laddrs: ['198.18.2.2', '198.18.2.1', '198.18.2.3'],
    }),
    service(6, '198.18.1.100', 0, [dest('10.0.0.4', 0)], {
      scheduler: 'sh',
      flags: 0x1 | 0x8,
      timeout: 360,
      netmask: '255.255.255.0',
      clientAddress: 'toa',
      laddrs: ['198.18.2.9'],
    }),
    service(6, '0.0.0.0', 0, [], { fwmark: 3, clientAddress: 'none', laddrs: [] }),
    service(17, '198.18.1.100', 53, [dest('10.0.0.5', 5353, { forward: 5 })]),
  ]);

  it('-L: Forward FullNat (7 columns), proxy-protocol / toa after the other flags; none prints nothing', () => {
    expect(formatTable(FULLNAT, fmt({ numeric: true }), names)).toBe(
      HEADER +
        TITLE +
        'TCP  198.18.1.100:0 sh (sh-fallback) persistent 360 mask 255.255.255.0 toa\n' +
        row('  -> 10.0.0.4:0', 19, 'Masq', 4, '1', 6, '0', 10, '0', 9) +
        'TCP  198.18.1.100:80 rr proxy-protocol\n' +
        row('  -> 10.0.0.2:80', 18, 'FullNat', 1, '1', 6, '0', 10, '0', 9) +
        row('  -> 10.0.0.3:8080', 16, 'FullNat', 1, '2', 6, '3', 10, '1', 9) +
        'UDP  198.18.1.100:53 wlc\n' +
        row('  -> 10.0.0.5:5353', 16, 'FullNat', 1, '1', 6, '0', 10, '0', 9) +
        'FWM  3 wlc\n',
    );
  });

  it('--stats has no flags; --thresholds and --tun-info keep the default service line', () => {
    const svc = FULLNAT.services[0]!;
    expect(formatSingleService(svc, fmt({ numeric: true, stats: true }), names)).toBe(
      'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n' +
        '  -> RemoteAddress:Port\n' +
        row('TCP  198.18.1.100:80', 21, '0', 8, '0', 8, '0', 8, '0', 8, '0') +
        row('  -> 10.0.0.2:80', 25, '0', 8, '0', 8, '0', 8, '0', 8, '0') +
        row('  -> 10.0.0.3:8080', 23, '0', 8, '0', 8, '0', 8, '0', 8, '0'),
    );
    expect(formatSingleService(svc, fmt({ numeric: true, tunInfo: true }), names)).toBe(
      'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n' +
        'TCP  198.18.1.100:80 rr proxy-protocol\n' +
        row('  -> 10.0.0.2:80', 18, 'FullNat', 1, 'n/a', 11, '1', 6, '0', 10, '0', 9) +
        row('  -> 10.0.0.3:8080', 16, 'FullNat', 1, 'n/a', 11, '2', 6, '3', 10, '1', 9),
    );
  });

  it('-G: title, then per service its label (numeric, 33 columns), the count, the first LIP, the others below', () => {
    expect(formatLocalAddresses(FULLNAT.services, names)).toBe(
      'VIP:VPORT                         TOTAL    SNAT_IP\n' +
        'TCP  198.18.1.100:80              3        198.18.2.2\n' +
        '                                           198.18.2.1\n' +
        '                                           198.18.2.3\n' +
        'TCP  198.18.1.100:0               1        198.18.2.9\n' +
        'FWM  3                            0\n' +
        'UDP  198.18.1.100:53              0\n',
    );
    expect(formatLocalAddresses([], names)).toBe('VIP:VPORT                         TOTAL    SNAT_IP\n');
  });

  it('-G: always numeric; an IPv6 label longer than 33 columns pushes the count right (printf %-33s)', () => {
    const t = table([
      service(6, '10.0.0.9', 80, [], { laddrs: ['198.18.2.1'] }),
      service(6, '2001:db8:aaaa:bbbb:cccc:dddd:eeee:1', 443, [], { laddrs: ['198.18.2.1', '198.18.2.2'] }),
    ]);
    expect(formatLocalAddresses(t.services, names)).toBe(
      'VIP:VPORT                         TOTAL    SNAT_IP\n' +
        'TCP  10.0.0.9:80                  1        198.18.2.1\n' +
        'TCP  [2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:443 2        198.18.2.1\n' +
        '                                           198.18.2.2\n',
    );
  });
});

describe('print_largenum', () => {
  it('scales by 1000s at the ipvsadm boundaries', () => {
    const cases: Array<[number, string]> = [
      [0, '        0'],
      [99_999_999, ' 99999999'],
      [100_000_000, '  100000K'],
      [999_999_999, '  999999K'],
      [1_000_000_000, '    1000M'],
      [99_999_999_999, '   99999M'],
      [100_000_000_000, '     100G'],
      [99_999_999_999_999, '   99999G'],
      [100_000_000_000_000, '     100T'],
      [Number.MAX_SAFE_INTEGER, '    9007T'],
    ];
    for (const [n, text] of cases) expect([n, formatLargeNumber(n, false)]).toEqual([n, text]);
  });

  it('--exact', () => {
    expect(formatLargeNumber(0, true)).toBe('        0');
    expect(formatLargeNumber(12_345_678, true)).toBe(' 12345678');
    expect(formatLargeNumber(123_456_789, true)).toBe(' 123456789');
    expect(formatLargeNumber(9_007_199_254_740_991, true)).toBe(' 9007199254740991');
  });
});

describe('sorting', () => {
  it('addresses 2^31 or more apart compare wrapped (10.0.0.5 after 200.0.0.1)', () => {
    const sorted = ipvsSort([dest('10.0.0.5', 80), dest('200.0.0.1', 80), dest('10.0.0.4', 81), dest('10.0.0.4', 80)], compareDestinations);
    expect(sorted.map((d) => `${d.addr}:${d.port}`)).toEqual(['200.0.0.1:80', '10.0.0.4:80', '10.0.0.4:81', '10.0.0.5:80']);
  });

  it('a non-transitive cycle sorts as glibc’s merge sort does', () => {
    // 0.0.0.1 < 96.0.0.0 < 192.0.0.0 < 0.0.0.1 under the wrapped comparison
    const a = dest('0.0.0.1', 80);
    const b = dest('96.0.0.0', 80);
    const c = dest('192.0.0.0', 80);
    expect(ipvsSort([a, b, c], compareDestinations)).toEqual([a, b, c]);
    expect(ipvsSort([c, b, a], compareDestinations)).toEqual([c, a, b]);
  });

  it('services: address services before fwmark services, IPv4 before IPv6, TCP < UDP < SCTP', () => {
    const t = table([
      service(6, '0.0.0.0', 0, [], { fwmark: 2 }),
      service(132, '10.0.0.1', 80, []),
      service(6, '::1', 80, []),
      service(17, '10.0.0.1', 80, []),
      service(6, '0.0.0.0', 0, [], { fwmark: 1 }),
      service(6, '10.0.0.1', 81, []),
      service(6, '10.0.0.1', 80, []),
    ]);
    const lines = formatTable(t, fmt({ numeric: true }), names).split('\n').slice(3, -1);
    expect(lines).toEqual([
      'TCP  10.0.0.1:80 wlc',
      'TCP  10.0.0.1:81 wlc',
      'UDP  10.0.0.1:80 wlc',
      'SCTP 10.0.0.1:80 wlc',
      'TCP  [::1]:80 wlc',
      'FWM  1 wlc',
      'FWM  2 wlc',
    ]);
  });
});

describe('connections and timeouts', () => {
  const conn = (extra: Partial<ConnectionSnapshot>): ConnectionSnapshot => ({
    protocol: 'TCP',
    expires: 899,
    state: 'ESTABLISHED',
    af: 4,
    caddr: '10.0.0.100',
    cport: 41234,
    vaddr: '10.0.0.9',
    vport: 80,
    daddr: '10.0.0.2',
    dport: 80,
    template: false,
    peName: '',
    peData: '',
    ...extra,
  });
  const CONNS = [
    conn({}),
    conn({ protocol: 'UDP', state: 'UDP', expires: 6000, cport: 5353, vport: 53, dport: 53 }),
    conn({ protocol: 'IP', state: 'NONE', expires: 360, cport: 0, vport: 0, dport: 0, template: true }),
    conn({ af: 6, caddr: '2001:db8::100', cport: 5000, vaddr: '2001:db8::1', vport: 443, daddr: '2001:db8::10', dport: 443, expires: 61 }),
    conn({ protocol: 'UDP', state: 'UDP', expires: 5, peName: 'sip', peData: 'call-1@example', vport: 5060, dport: 5060, cport: 5060 }),
  ];

  it('-L -c -n', () => {
    expect(formatConnections(CONNS, fmt({ numeric: true }), names)).toBe(
      'IPVS connection entries\n' +
        row('pro expire state', 7, 'source', 13, 'virtual', 12, 'destination') +
        row('TCP 14:59', 2, 'ESTABLISHED 10.0.0.100:41234', 3, '10.0.0.9:80', 8, '10.0.0.2:80') +
        row('UDP 100:00 UDP', 9, '10.0.0.100:5353', 4, '10.0.0.9:53', 8, '10.0.0.2:53') +
        row('IP', 2, '06:00', 2, 'NONE', 8, '10.0.0.100:0', 7, '10.0.0.9:0', 9, '10.0.0.2:0') +
        row('TCP 01:01', 2, 'ESTABLISHED [2001:db8::100]:5000 [2001:db8::1]:443', 2, '[2001:db8::10]:443') +
        row('UDP 00:05', 2, 'UDP', 9, '10.0.0.100:5060', 4, '10.0.0.9:5060', 6, '10.0.0.2:5060'),
    );
  });

  it('-L -c resolves names unless -n', () => {
    expect(formatConnections([CONNS[0]!], fmt(), names)).toBe(
      'IPVS connection entries\n' +
        row('pro expire state', 7, 'source', 13, 'virtual', 12, 'destination') +
        row('TCP 14:59', 2, 'ESTABLISHED 10.0.0.100:41234', 3, 'web1.example:http', 2, '10.0.0.2:http'),
    );
  });

  it('-L -c --persistent-conn: PE columns only on entries with PE data (widths swapped vs header)', () => {
    expect(formatConnections([CONNS[0]!, CONNS[4]!], fmt({ numeric: true, persistentConn: true }), names)).toBe(
      'IPVS connection entries\n' +
        row('pro expire state', 7, 'source', 13, 'virtual', 12, 'destination', 8, 'pe name', 10, 'pe_data') +
        row('TCP 14:59', 2, 'ESTABLISHED 10.0.0.100:41234', 3, '10.0.0.9:80', 8, '10.0.0.2:80') +
        row('UDP 00:05', 2, 'UDP', 9, '10.0.0.100:5060', 4, '10.0.0.9:5060', 6, '10.0.0.2:5060', 4, 'sip', 16, 'call-1@example'),
    );
  });

  it('--timeout', () => {
    expect(formatTimeouts({ tcp: 900, tcpfin: 120, udp: 300 })).toBe('Timeout (tcp tcpfin udp): 900 120 300\n');
  });
});
