/**
 * `ipvsadm -S` output and `-R` input: exact rule lines (print_service_entry with FMT_RULE), the
 * config_stream tokeniser, and the round trip -S → tokeniser → parser giving back the commands that
 * build the same table.
 */
import { describe, expect, it } from 'vitest';
import { FileNameDatabase } from '../../src/cli/address-port.js';
import { parseIpvsadmArgs } from '../../src/cli/ipvsadm-options.js';
import { compareDestinations, compareServices, ipvsSort } from '../../src/control/listing.js';
import type { DestinationSnapshot, MarkRule, ServiceSnapshot, TableSnapshot } from '../../src/control/model.js';
import type { Command } from '../../src/control/protocol.js';
import { formatSave, tokenizeRestoreInput } from '../../src/control/save-format.js';
import { dest, service, table, ZERO_RATE, ZERO_STATS } from '../snapshot-builders.js';

const names = FileNameDatabase.fromText(
  '10.0.0.9 web1.example web1\n10.0.0.10 web2.example\n',
  'http 80/tcp www\nhttp-alt 8080/tcp\ndomain 53/udp\n',
);


/** Plain NAT services: what tapvs supports today. */
const NAT_TABLE = table([
  service(6, '10.0.0.1', 80, [dest('10.0.0.3', 80, { weight: 2, uThreshold: 9, lThreshold: 3 }), dest('10.0.0.2', 8080)]),
  service(6, '2001:db8::1', 443, [dest('2001:db8::10', 443)]),
  service(17, '10.0.0.1', 53, [dest('10.0.0.2', 53, { weight: 0 })]),
  service(6, '192.168.0.1', 80, [dest('192.168.1.10', 8080)], { scheduler: 'rr' }),
  service(132, '10.0.0.1', 5060, [dest('10.0.0.2', 5060)]),
]);

/** Everything ipvsadm can save. */
const FULL_TABLE = table([
  service(
    6,
    '10.0.0.1',
    0,
    [
      dest('10.0.0.3', 0, { forward: 2, tunType: 1, tunPort: 6080, tunFlags: 2 }),
      dest('10.0.0.2', 0, { forward: 3, weight: 5 }),
      dest('10.0.0.4', 0, { forward: 2, tunType: 2, tunFlags: 1 }),
      dest('10.0.0.5', 0, { forward: 2 }),
      dest('10.0.0.6', 0, { forward: 2, tunType: 1, tunPort: 7, tunFlags: 0 }),
    ],
    { scheduler: 'sh', flags: 0x1 | 0x8 | 0x10, timeout: 360, netmask: '255.255.255.0', pe: 'sip' },
  ),
  service(17, '10.0.0.1', 53, [], { scheduler: 'rr', flags: 0x4 | 0x20 }),
  service(6, '0.0.0.0', 0, [dest('10.0.0.2', 80, { forward: 0 })], { fwmark: 5, flags: 0x1, timeout: 60 }),
  service(6, '::', 0, [dest('2001:db8::2', 0, { forward: 3 })], {
    af: 6,
    fwmark: 7,
    flags: 0x1 | 0x8,
    timeout: 60,
    netmask: '64',
    scheduler: 'mh',
  }),
]);

/** What the daemon supports now: persistence (-p, -M), IPv4 fwmark services, thresholds, -b; mark rules. */
const MARKS: MarkRule[] = [
  { af: 4, addr: '198.18.1.100', protocol: 6, ports: [[80, 80], [443, 443]], mark: 3 },
  { af: 4, addr: '198.18.1.100', protocol: 17, ports: [[53, 53]], mark: 5 },
  { af: 4, addr: '198.18.1.101', protocol: 0, ports: [], mark: 3 },
  { af: 4, addr: '10.0.0.9', protocol: 6, ports: [[1000, 2000], [8080, 8080]], mark: 5 },
];

const PERSIST_TABLE: TableSnapshot = {
  ...table([
    service(
      6,
      '0.0.0.0',
      0,
      [dest('192.168.1.42', 0, { weight: 2, uThreshold: 100, lThreshold: 50 }), dest('192.168.1.41', 0)],
      { fwmark: 3, scheduler: 'rr', flags: 0x1, timeout: 600 },
    ),
    service(6, '198.18.1.100', 80, [], { scheduler: 'sh', flags: 0x1 | 0x8 | 0x10, timeout: 360 }),
    service(6, '198.18.1.100', 0, [dest('192.168.1.31', 0, { uThreshold: 10 })], {
      scheduler: 'rr',
      flags: 0x1,
      timeout: 200,
      netmask: '255.255.255.0',
    }),
    service(17, '198.18.1.100', 53, [dest('192.168.1.31', 53)], { netmask: '255.255.0.0' }),
    service(6, '0.0.0.0', 0, [], { fwmark: 5, scheduler: 'mh', flags: 0x10 }),
  ]),
  marks: MARKS,
};

/** FULLNAT (tapvs's own): --fullnat servers, client address passing, local addresses in use order. */
const FULLNAT_TABLE: TableSnapshot = {
  ...table([
    service(6, '198.18.1.100', 80, [dest('10.0.0.3', 8080, { forward: 5, weight: 2 }), dest('10.0.0.2', 80, { forward: 5 })], {
      scheduler: 'rr',
      clientAddress: 'proxy-protocol',
      laddrs: ['198.18.2.2', '198.18.2.1'],
    }),
    service(6, '10.0.0.9', 80, [dest('10.0.0.10', 8080, { forward: 5 })], { clientAddress: 'toa', laddrs: ['198.18.2.3'] }),
    service(6, '198.18.1.100', 0, [dest('10.0.0.4', 0, { forward: 5 })], {
      scheduler: 'sh',
      flags: 0x1 | 0x8,
      timeout: 360,
      netmask: '255.255.255.0',
      clientAddress: 'toa',
    }),
    service(6, '0.0.0.0', 0, [dest('10.0.0.5', 443, { forward: 5 })], { fwmark: 3, clientAddress: 'none', laddrs: ['198.18.2.4'] }),
    service(17, '198.18.1.100', 53, [dest('10.0.0.6', 5353, { forward: 5 }), dest('10.0.0.7', 53)], { laddrs: ['198.18.2.5'] }),
  ]),
  marks: [MARKS[2]!],
};

describe('-S', () => {
  it('-S -n: rules in listing order; thresholds are not saved', () => {
    expect(formatSave(NAT_TABLE, true, names)).toBe(
      '-A -t 192.168.0.1:80 -s rr\n' +
        '-a -t 192.168.0.1:80 -r 192.168.1.10:8080 -m -w 1\n' +
        '-A -t 10.0.0.1:80 -s wlc\n' +
        '-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 1\n' +
        '-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 2\n' +
        '-A -u 10.0.0.1:53 -s wlc\n' +
        '-a -u 10.0.0.1:53 -r 10.0.0.2:53 -m -w 0\n' +
        '-A --sctp-service 10.0.0.1:5060 -s wlc\n' +
        '-a --sctp-service 10.0.0.1:5060 -r 10.0.0.2:5060 -m -w 1\n' +
        '-A -t [2001:db8::1]:443 -s wlc\n' +
        '-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -m -w 1\n',
    );
  });

  it('-S without -n resolves names, uncut', () => {
    const t = table([service(6, '10.0.0.9', 80, [dest('10.0.0.10', 8080), dest('10.0.0.2', 80)])]);
    expect(formatSave(t, false, names)).toBe(
      '-A -t web1.example:http -s wlc\n' +
        '-a -t web1.example:http -r 10.0.0.2:http -m -w 1\n' +
        '-a -t web1.example:http -r web2.example:http-alt -m -w 1\n',
    );
  });

  it('persistence, mask, pe, ops, scheduler flags, fwmark, tunnels, Local as -g', () => {
    expect(formatSave(FULL_TABLE, true, names)).toBe(
      '-A -t 10.0.0.1:0 -s sh -p 360 -M 255.255.255.0 --pe sip -b sh-fallback,sh-port\n' +
        '-a -t 10.0.0.1:0 -r 10.0.0.2:0 -g -w 5\n' +
        '-a -t 10.0.0.1:0 -r 10.0.0.3:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum\n' +
        '-a -t 10.0.0.1:0 -r 10.0.0.4:0 -i -w 1 --tun-type gre --tun-csum\n' +
        '-a -t 10.0.0.1:0 -r 10.0.0.5:0 -i -w 1 --tun-type ipip\n' +
        '-a -t 10.0.0.1:0 -r 10.0.0.6:0 -i -w 1 --tun-type gue --tun-port 7 --tun-nocsum\n' +
        '-A -u 10.0.0.1:53 -s rr -o -b flag-3\n' +
        '-A -f 5 -s wlc -p 60\n' +
        '-a -f 5 -r 10.0.0.2:80 -m -w 1\n' +
        '-A -f 7 -6 -s mh -p 60 -M 64 -b mh-fallback\n' +
        '-a -f 7 -6 -r [2001:db8::2]:0 -g -w 1\n',
    );
    const local = table([service(6, '10.0.0.1', 80, [dest('10.0.0.2', 80, { forward: 1 })])]);
    expect(formatSave(local, true, names)).toBe('-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1\n');
  });

  it('a mask is saved only for persistent services (as ipvsadm does)', () => {
    const t = table([service(6, '10.0.0.1', 80, [], { netmask: '255.255.0.0' })]);
    expect(formatSave(t, true, names)).toBe('-A -t 10.0.0.1:80 -s wlc\n');
  });

  it('mark rules first (in match order, always numeric), then persistence, -M (persistent only), -b, fwmark services', () => {
    const expected =
      '--add-mark -d 198.18.1.100 -p tcp --dports 80,443 --set-mark 3\n' +
      '--add-mark -d 198.18.1.100 -p udp --dport 53 --set-mark 5\n' +
      '--add-mark -d 198.18.1.101 --set-mark 3\n' +
      '--add-mark -d 10.0.0.9 -p tcp --dports 1000:2000,8080 --set-mark 5\n' +
      '-A -t 198.18.1.100:0 -s rr -p 200 -M 255.255.255.0\n' +
      '-a -t 198.18.1.100:0 -r 192.168.1.31:0 -m -w 1\n' +
      '-A -t 198.18.1.100:80 -s sh -p 360 -b sh-fallback,sh-port\n' +
      '-A -u 198.18.1.100:53 -s wlc\n' +
      '-a -u 198.18.1.100:53 -r 192.168.1.31:53 -m -w 1\n' +
      '-A -f 3 -s rr -p 600\n' +
      '-a -f 3 -r 192.168.1.41:0 -m -w 1\n' +
      '-a -f 3 -r 192.168.1.42:0 -m -w 2\n' +
      '-A -f 5 -s mh -b mh-port\n';
    expect(formatSave(PERSIST_TABLE, true, names)).toBe(expected);
    // without -n only the service/server names change; mark rules stay numeric
    const t: TableSnapshot = { ...table([service(6, '10.0.0.9', 80, [], { flags: 1, timeout: 60 })]), marks: [MARKS[3]!] };
    expect(formatSave(t, false, names)).toBe(
      '--add-mark -d 10.0.0.9 -p tcp --dports 1000:2000,8080 --set-mark 5\n-A -t web1.example:http -s wlc -p 60\n',
    );
  });

  it('mark rules without services, and a daemon that reports none', () => {
    expect(formatSave({ ...table([]), marks: [MARKS[2]!] }, true, names)).toBe('--add-mark -d 198.18.1.101 --set-mark 3\n');
    expect(formatSave({ ...table([]), marks: [] }, true, names)).toBe('');
  });

  it('FULLNAT: --fullnat servers, --proxy-protocol/--toa last on -A, laddr lines between -A and -a', () => {
    expect(formatSave(FULLNAT_TABLE, true, names)).toBe(
      '--add-mark -d 198.18.1.101 --set-mark 3\n' +
        // sorted as ipvsadm sorts (the u32-wrap quirk puts 198.18.1.100 before 10.0.0.9)
        '-A -t 198.18.1.100:0 -s sh -p 360 -M 255.255.255.0 -b sh-fallback --toa\n' +
        '-a -t 198.18.1.100:0 -r 10.0.0.4:0 --fullnat -w 1\n' +
        '-A -t 198.18.1.100:80 -s rr --proxy-protocol\n' +
        '--add-laddr -t 198.18.1.100:80 -z 198.18.2.2\n' +
        '--add-laddr -t 198.18.1.100:80 -z 198.18.2.1\n' +
        '-a -t 198.18.1.100:80 -r 10.0.0.2:80 --fullnat -w 1\n' +
        '-a -t 198.18.1.100:80 -r 10.0.0.3:8080 --fullnat -w 2\n' +
        '-A -t 10.0.0.9:80 -s wlc --toa\n' +
        '--add-laddr -t 10.0.0.9:80 -z 198.18.2.3\n' +
        '-a -t 10.0.0.9:80 -r 10.0.0.10:8080 --fullnat -w 1\n' +
        '-A -u 198.18.1.100:53 -s wlc\n' +
        '--add-laddr -u 198.18.1.100:53 -z 198.18.2.5\n' +
        '-a -u 198.18.1.100:53 -r 10.0.0.6:5353 --fullnat -w 1\n' +
        '-a -u 198.18.1.100:53 -r 10.0.0.7:53 -m -w 1\n' +
        '-A -f 3 -s wlc\n' +
        '--add-laddr -f 3 -z 198.18.2.4\n' +
        '-a -f 3 -r 10.0.0.5:443 --fullnat -w 1\n',
    );
  });

  it('FULLNAT without -n: service and server names resolve, local addresses stay numeric', () => {
    const t = table([
      service(6, '10.0.0.9', 80, [dest('10.0.0.10', 8080, { forward: 5 })], { clientAddress: 'toa', laddrs: ['10.0.0.9'] }),
    ]);
    expect(formatSave(t, false, names)).toBe(
      '-A -t web1.example:http -s wlc --toa\n' +
        '--add-laddr -t web1.example:http -z 10.0.0.9\n' +
        '-a -t web1.example:http -r web2.example:http-alt --fullnat -w 1\n',
    );
  });

  it('an empty table saves nothing', () => {
    expect(formatSave(table([]), true, names)).toBe('');
  });
});

describe('-R tokeniser (config_stream_read)', () => {
  it('splits on blanks, tabs and CRs; drops ipvsadm/tapvs tokens; skips empty lines; counts every line', () => {
    const text = 'ipvsadm -A -t 1.2.3.4:80 -s rr\r\n\n  \t\n-C\ntapvs\n-a\t-t 1.2.3.4:80  -r 5.6.7.8 -m ipvsadm\n-Z';
    expect(tokenizeRestoreInput(text)).toEqual([
      { lineNumber: 1, args: ['-A', '-t', '1.2.3.4:80', '-s', 'rr'] },
      { lineNumber: 4, args: ['-C'] },
      { lineNumber: 6, args: ['-a', '-t', '1.2.3.4:80', '-r', '5.6.7.8', '-m'] },
      { lineNumber: 7, args: ['-Z'] },
    ]);
  });

  it('has no comment syntax: # is an ordinary token', () => {
    expect(tokenizeRestoreInput('# saved rules\n')).toEqual([{ lineNumber: 1, args: ['#', 'saved', 'rules'] }]);
    const parsed = parseIpvsadmArgs(['#', 'saved']);
    expect(parsed.ok).toBe(false);
  });

  it('empty input has no lines', () => {
    expect(tokenizeRestoreInput('')).toEqual([]);
    expect(tokenizeRestoreInput('\n\n')).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------------
// Round trip

/** The commands that build `t`, in ipvsadm's save order, as the parser must produce them. */
function commandsFor(t: TableSnapshot): Command[] {
  const commands: Command[] = (t.marks ?? []).map((rule) => ({ op: 'add-mark', rule }));
  for (const s of ipvsSort(t.services, compareServices)) {
    const key = { af: s.af, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark };
    // -M is saved for persistent services only; otherwise -R gives the default mask
    const netmask = s.flags & 0x1 ? s.netmask : s.af === 6 ? '128' : '255.255.255.255';
    commands.push({
      op: 'add-service',
      service: { ...key, scheduler: s.scheduler, flags: s.flags, timeout: s.timeout, netmask, pe: s.pe, clientAddress: s.clientAddress ?? 'none' },
    });
    for (const laddr of s.laddrs ?? []) commands.push({ op: 'add-laddr', service: key, laddr });
    for (const d of ipvsSort(s.dests, compareDestinations)) {
      commands.push({
        op: 'add-server',
        service: key,
        dest: {
          af: d.af,
          addr: d.addr,
          port: d.port,
          forward: d.forward,
          weight: d.weight,
          uThreshold: 0, // not saved
          lThreshold: 0,
          tunType: d.tunType,
          tunPort: d.tunPort,
          tunFlags: d.tunFlags,
        },
      });
    }
  }
  return commands;
}

function restore(text: string, all: boolean): Command[] {
  return tokenizeRestoreInput(text).map(({ lineNumber, args }) => {
    const parsed = parseIpvsadmArgs(args, all ? { names, notSupportedYet: [] } : { names });
    if (!parsed.ok) throw new Error(`line ${lineNumber}: ${parsed.failure.message}`);
    if (parsed.invocation.kind !== 'command') throw new Error(`line ${lineNumber}: not a command`);
    return parsed.invocation.command;
  });
}

describe('-S then -R gives back the same commands', () => {
  it('NAT services, numeric, with today’s restrictions', () => {
    expect(restore(formatSave(NAT_TABLE, true, names), false)).toEqual(commandsFor(NAT_TABLE));
  });

  it('NAT services through names', () => {
    const t = table([service(6, '10.0.0.9', 80, [dest('10.0.0.10', 8080, { weight: 7 }), dest('10.0.0.2', 80)])]);
    expect(restore(formatSave(t, false, names), false)).toEqual(commandsFor(t));
  });

  it('persistence, fwmark services, scheduler flags and mark rules, with today’s restrictions', () => {
    expect(restore(formatSave(PERSIST_TABLE, true, names), false)).toEqual(commandsFor(PERSIST_TABLE));
    expect(restore(formatSave(PERSIST_TABLE, false, names), false)).toEqual(commandsFor(PERSIST_TABLE));
  });

  it('mark rules through every port form come back equal (one-port ranges as the port)', () => {
    const marks: MarkRule[] = [
      { af: 4, addr: '10.0.0.1', protocol: 17, ports: [[0, 65535]], mark: 1 },
      { af: 4, addr: '10.0.0.1', protocol: 6, ports: [[443, 443], [80, 80], [0, 1023], [1024, 65535], [7, 7]], mark: 4294967295 },
      { af: 4, addr: '10.0.0.2', protocol: 6, ports: [], mark: 2 },
      { af: 4, addr: '10.0.0.2', protocol: 0, ports: [], mark: 2 },
    ];
    const t: TableSnapshot = { ...table([]), marks };
    expect(restore(formatSave(t, true, names), false)).toEqual(commandsFor(t));
  });

  it('FULLNAT services, local addresses and client address options, numeric and through names', () => {
    expect(restore(formatSave(FULLNAT_TABLE, true, names), false)).toEqual(commandsFor(FULLNAT_TABLE));
    expect(restore(formatSave(FULLNAT_TABLE, false, names), false)).toEqual(commandsFor(FULLNAT_TABLE));
    // the laddr commands come right after their service's add-service, before its add-server commands
    const ops = restore(formatSave(FULLNAT_TABLE, true, names), false).map((c) => c.op);
    expect(ops).toEqual([
      'add-mark',
      'add-service', 'add-server',
      'add-service', 'add-laddr', 'add-laddr', 'add-server', 'add-server',
      'add-service', 'add-laddr', 'add-server',
      'add-service', 'add-laddr', 'add-server', 'add-server',
      'add-service', 'add-laddr', 'add-server',
    ]);
  });

  it('every savable feature, with no feature refused', () => {
    const expected = commandsFor(FULL_TABLE).map((c) =>
      // Local is saved as -g and comes back as Route
      c.op === 'add-server' && c.dest.forward === 1 ? { ...c, dest: { ...c.dest, forward: 3 } } : c,
    );
    expect(restore(formatSave(FULL_TABLE, true, names), true)).toEqual(expected);
  });

  it('with today’s restrictions the full table is refused on its first line (--pe)', () => {
    const first = tokenizeRestoreInput(formatSave(FULL_TABLE, true, names))[0]!;
    const parsed = parseIpvsadmArgs(first.args, { names });
    expect(parsed).toEqual({
      ok: false,
      failure: { message: '--pe (persistence engine) is not supported yet', exitCode: 2, prefixed: true },
    });
  });
});
