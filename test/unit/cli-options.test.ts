/**
 * The ipvsadm-compatible command line: parsing vectors taken from ipvsadm 1.31's source
 * (parse_options / process_options / generic_opt_check and their messages), the host[:port]
 * grammar, and runTapvs wired to a fake control channel and to a real Unix socket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileNameDatabase, formatIPv6, inetAton, inetPton6, parseHostPort, stringToNumber } from '../../src/cli/address-port.js';
import {
  NOT_SUPPORTED_YET,
  parseIpvsadmArgs,
  usageText,
  type Invocation,
  type ParseResult,
  type UsageFailure,
} from '../../src/cli/ipvsadm-options.js';
import { runTapvs, type TapvsIo } from '../../src/cli/tapvs.js';
import { ControlClient, ControlConnectionError, type ControlChannel } from '../../src/control/client.js';
import type { Command, Reply, Request } from '../../src/control/protocol.js';
import type { TableSnapshot } from '../../src/control/model.js';

const HOSTS = ['127.0.0.1 localhost', '10.0.0.9 web1.example web1   # a comment', '::1 localhost ip6-localhost', ''].join('\n');
const SERVICES = ['http 80/tcp www', 'http 80/udp', 'domain 53/tcp', 'domain 53/udp', 'sip 5060/udp', ''].join('\n');
const names = FileNameDatabase.fromText(HOSTS, SERVICES);

const TRY_HELP = "Try `tapvs -h' or 'tapvs --help' for more information.";

function parse(line: string, all = false): ParseResult {
  const args = line === '' ? [] : line.split(' ');
  return parseIpvsadmArgs(args, all ? { names, notSupportedYet: [] } : { names });
}

function ok(line: string, all = false): Invocation {
  const r = parse(line, all);
  if (!r.ok) throw new Error(`expected success for "${line}", got ${JSON.stringify(r.failure)}`);
  return r.invocation;
}

function command(line: string, all = false): Command {
  const inv = ok(line, all);
  if (inv.kind !== 'command') throw new Error(`not a command: ${line}`);
  return inv.command;
}

function failure(line: string, all = false): UsageFailure {
  const r = parse(line, all);
  if (r.ok) throw new Error(`expected failure for "${line}", got ${JSON.stringify(r.invocation)}`);
  return r.failure;
}

/** An ipvsadm fail(2, …) message. */
function fail2(message: string): UsageFailure {
  return { message, exitCode: 2, prefixed: false };
}

const SVC_10_0_0_1_80 = { af: 4, protocol: 6, addr: '10.0.0.1', port: 80, fwmark: 0 };
const DEFAULT_SERVICE_FIELDS = { scheduler: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', clientAddress: 'none' };

describe('numbers and addresses as ipvsadm reads them', () => {
  it('string_to_number: strtol base 10 over the whole string, then the range', () => {
    expect(stringToNumber('65535', 0, 65535)).toBe(65535);
    expect(stringToNumber('65536', 0, 65535)).toBeUndefined();
    expect(stringToNumber(' +7', 0, 10)).toBe(7);
    expect(stringToNumber('-0', 0, 10)).toBe(0);
    expect(stringToNumber('7x', 0, 10)).toBeUndefined();
    expect(stringToNumber('', 0, 10)).toBeUndefined();
    expect(stringToNumber('0x10', 0, 100)).toBeUndefined();
  });

  it('inet_aton accepts the short and radix forms', () => {
    expect(inetAton('10.1')).toBe(0x0a000001);
    expect(inetAton('1234')).toBe(1234);
    expect(inetAton('0x7f.1')).toBe(0x7f000001);
    expect(inetAton('010.0.0.1')).toBe(0x08000001);
    expect(inetAton('1.2.3.4 trailing')).toBe(0x01020304);
    expect(inetAton('1.2.3.256')).toBeUndefined();
    expect(inetAton('1.2.3.4.5')).toBeUndefined();
    expect(inetAton('08')).toBeUndefined();
    expect(inetAton('')).toBeUndefined();
  });

  it('inet_pton/inet_ntop for IPv6 give glibc canonical text', () => {
    const canon = (s: string): string | undefined => {
      const b = inetPton6(s);
      return b === undefined ? undefined : formatIPv6(b);
    };
    expect(canon('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canon('::')).toBe('::');
    expect(canon('::1')).toBe('::1');
    expect(canon('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(canon('1:0:2:3:4:5:6:7')).toBe('1:0:2:3:4:5:6:7');
    expect(canon('::ffff:1.2.3.4')).toBe('::ffff:1.2.3.4');
    expect(canon('::1.2.3.4')).toBe('::1.2.3.4');
    expect(canon('1::2::3')).toBeUndefined();
    expect(canon(':1::2')).toBeUndefined();
    expect(canon('1:2:3:4:5:6:7:8:9')).toBeUndefined();
    expect(canon('fe80::1%eth0')).toBeUndefined();
  });

  it('host[:port]: names from /etc/hosts and /etc/services, brackets for IPv6 ports', () => {
    expect(parseHostPort('10.0.0.1:80', 6, names)).toEqual({ af: 4, addr: '10.0.0.1', port: 80 });
    expect(parseHostPort('10.0.0.1', 6, names)).toEqual({ af: 4, addr: '10.0.0.1' });
    expect(parseHostPort('web1:http', 6, names)).toEqual({ af: 4, addr: '10.0.0.9', port: 80 });
    expect(parseHostPort('WEB1.example:www', 6, names)).toEqual({ af: 4, addr: '10.0.0.9', port: 80 });
    expect(parseHostPort('10.0.0.1:sip', 6, names)).toBeUndefined(); // sip is udp only here
    expect(parseHostPort('10.0.0.1:sip', 17, names)).toEqual({ af: 4, addr: '10.0.0.1', port: 5060 });
    expect(parseHostPort('[2001:db8::1]:443', 6, names)).toEqual({ af: 6, addr: '2001:db8::1', port: 443 });
    expect(parseHostPort('2001:db8::1', 6, names)).toEqual({ af: 6, addr: '2001:db8::1' });
    expect(parseHostPort('[2001:db8::1]', 6, names)).toBeUndefined();
    expect(parseHostPort('[2001:db8::1]:', 6, names)).toBeUndefined();
    expect(parseHostPort('1234', 6, names)).toBeUndefined(); // all digits
    expect(parseHostPort('', 6, names)).toBeUndefined();
    expect(parseHostPort('1234:80', 6, names)).toEqual({ af: 4, addr: '0.0.4.210', port: 80 });
    expect(parseHostPort('10.0.0.1:65536', 6, names)).toBeUndefined();
    expect(parseHostPort('nosuchhost:80', 6, names)).toBeUndefined();
    // ipvsadm looks for the port again after the bracket: an IPv4 address in brackets loses it
    expect(parseHostPort('[10.0.0.1]:80', 6, names)).toEqual({ af: 4, addr: '10.0.0.1' });
  });
});

describe('commands built from defaults', () => {
  it('-A fills every field: scheduler wlc, no flags, mask /32', () => {
    expect(command('-A -t 10.0.0.1:80')).toEqual({
      op: 'add-service',
      service: { ...SVC_10_0_0_1_80, ...DEFAULT_SERVICE_FIELDS },
    });
  });

  it('-E without -s resets the scheduler to wlc (edit resets unspecified fields)', () => {
    expect(command('-E -t 10.0.0.1:80')).toEqual({
      op: 'edit-service',
      service: { ...SVC_10_0_0_1_80, ...DEFAULT_SERVICE_FIELDS },
    });
    expect(command('-E -t 10.0.0.1:80 -s rr')).toMatchObject({ service: { scheduler: 'rr' } });
  });

  it('long forms, attached arguments and option clusters', () => {
    const expected = { op: 'add-service', service: { ...SVC_10_0_0_1_80, ...DEFAULT_SERVICE_FIELDS, scheduler: 'rr' } };
    expect(command('--add-service --tcp-service=10.0.0.1:80 --scheduler rr')).toEqual(expected);
    expect(command('-At10.0.0.1:80 -srr')).toEqual(expected);
    expect(command('-At 10.0.0.1:80 -s=rr')).toEqual(expected);
  });

  it('service and port names, UDP, SCTP and IPv6 services', () => {
    expect(command('-A -t web1:http')).toMatchObject({ service: { addr: '10.0.0.9', port: 80, protocol: 6 } });
    expect(command('-A -u 10.0.0.1:domain')).toMatchObject({ service: { port: 53, protocol: 17 } });
    expect(command('-A --sctp-service 10.0.0.1:5060')).toMatchObject({ service: { protocol: 132, port: 5060 } });
    expect(command('-A -t [2001:DB8::1]:80')).toEqual({
      op: 'add-service',
      service: { af: 6, protocol: 6, addr: '2001:db8::1', port: 80, fwmark: 0, ...DEFAULT_SERVICE_FIELDS, netmask: '128' },
    });
  });

  it('the scheduler name is cut to 15 characters (IP_VS_SCHEDNAME_MAXLEN - 1)', () => {
    expect(command('-A -t 10.0.0.1:80 -s abcdefghijklmnopq')).toMatchObject({ service: { scheduler: 'abcdefghijklmno' } });
  });

  it('-a: weight 1 by default, -r without port takes the service port', () => {
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2 -m')).toEqual({
      op: 'add-server',
      service: SVC_10_0_0_1_80,
      dest: { af: 4, addr: '10.0.0.2', port: 80, forward: 0, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 },
    });
    expect(command('-e -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 0')).toMatchObject({
      op: 'edit-server',
      dest: { port: 8080, weight: 0, forward: 0 },
    });
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 65535')).toMatchObject({ dest: { weight: 65535 } });
  });

  it('-r before -t sees the service port of that moment (0), as in ipvsadm', () => {
    expect(command('-a -r 10.0.0.2 -t 10.0.0.1:80 -m')).toMatchObject({ dest: { port: 0 } });
  });

  it('direct routing forces the real-server port to the service port', () => {
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2:8080', true)).toMatchObject({ dest: { port: 80, forward: 3 } });
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -i', true)).toMatchObject({ dest: { port: 80, forward: 2 } });
  });

  it('-d, -D, -C, -Z, --set', () => {
    expect(command('-d -t 10.0.0.1:80 -r 10.0.0.2')).toEqual({
      op: 'delete-server',
      service: SVC_10_0_0_1_80,
      dest: { af: 4, addr: '10.0.0.2', port: 80 },
    });
    expect(command('-D -u 10.0.0.1:53')).toEqual({
      op: 'delete-service',
      service: { af: 4, protocol: 17, addr: '10.0.0.1', port: 53, fwmark: 0 },
    });
    expect(command('-C')).toEqual({ op: 'flush' });
    expect(command('--clear')).toEqual({ op: 'flush' });
    expect(command('-Z')).toEqual({ op: 'zero' });
    expect(command('-Z -t 10.0.0.1:80')).toEqual({ op: 'zero', service: SVC_10_0_0_1_80 });
    expect(command('--set 900 120 300')).toEqual({ op: 'set-timeouts', timeouts: { tcp: 900, tcpfin: 120, udp: 300 } });
    expect(command('--set 0 0 2678400')).toEqual({ op: 'set-timeouts', timeouts: { tcp: 0, tcpfin: 0, udp: 2678400 } });
  });

  it('features still refused produce full objects when nothing is refused', () => {
    expect(command('-A -u 10.0.0.1:53 -o', true)).toMatchObject({ service: { flags: 4 } });
    expect(command('-A -u 10.0.0.1:53 --pe sip -p', true)).toMatchObject({ service: { flags: 1, pe: 'sip' } });
    expect(command('-A -f 5 -6 -M 64', true)).toEqual({
      op: 'add-service',
      service: { af: 6, protocol: 6, addr: '::', port: 0, fwmark: 5, ...DEFAULT_SERVICE_FIELDS, netmask: '64' },
    });
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-remcsum -x 10 -y 5', true)).toMatchObject({
      dest: { forward: 2, tunType: 1, tunPort: 6080, tunFlags: 2, uThreshold: 10, lThreshold: 5 },
    });
  });
});

describe('persistence, fwmark services, thresholds and scheduler flags', () => {
  const PERSISTENT_0 = { af: 4, protocol: 6, addr: '198.18.1.100', port: 0, fwmark: 0 };
  const FWM_3 = { af: 4, protocol: 6, addr: '0.0.0.0', port: 0, fwmark: 3 };
  const DEST_DEFAULTS = { af: 4, forward: 0, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 };

  it('-p TIMEOUT: SVC_F_PERSISTENT and the timeout; a port-0 service is allowed when persistent', () => {
    expect(command('-A -t 198.18.1.100:0 -s rr -p 200')).toEqual({
      op: 'add-service',
      service: { ...PERSISTENT_0, scheduler: 'rr', flags: 1, timeout: 200, netmask: '255.255.255.255', pe: '', clientAddress: 'none' },
    });
    expect(command('--add-service --tcp-service 198.18.1.100:0 --scheduler rr --persistent=200')).toEqual(
      command('-A -t 198.18.1.100:0 -s rr -p 200'),
    );
    expect(command('-A -t 10.0.0.1:80 -p 2678400')).toMatchObject({ service: { flags: 1, timeout: 2678400 } });
    expect(command('-A -t 10.0.0.1:80 -p1')).toMatchObject({ service: { flags: 1, timeout: 1 } });
  });

  it('-p without a value: 360 s (IPVS_SVC_PERSISTENT_TIMEOUT); a following option is not taken as the value', () => {
    expect(command('-A -t 198.18.1.100:0 -p')).toEqual({
      op: 'add-service',
      service: { ...PERSISTENT_0, scheduler: 'wlc', flags: 1, timeout: 360, netmask: '255.255.255.255', pe: '', clientAddress: 'none' },
    });
    expect(command('-A -t 198.18.1.100:0 -p -s rr')).toMatchObject({ service: { scheduler: 'rr', flags: 1, timeout: 360 } });
    expect(command('-E -t 198.18.1.100:0 -p -M 255.255.255.0')).toMatchObject({
      op: 'edit-service',
      service: { flags: 1, timeout: 360, netmask: '255.255.255.0' },
    });
  });

  it('-M: the persistence mask as a dotted quad (an inet_aton form or a hosts name)', () => {
    expect(command('-A -t 198.18.1.100:0 -s rr -p 200 -M 255.255.255.0')).toEqual({
      op: 'add-service',
      service: { ...PERSISTENT_0, scheduler: 'rr', flags: 1, timeout: 200, netmask: '255.255.255.0', pe: '', clientAddress: 'none' },
    });
    expect(command('-A -t 10.0.0.1:80 -p -M 0xffff0000')).toMatchObject({ service: { netmask: '255.255.0.0' } });
    // ipvsadm accepts -M without -p (the kernel keeps it; -S writes it only for persistent services)
    expect(command('-A -t 10.0.0.1:80 -M 255.255.0.0')).toMatchObject({ service: { flags: 0, netmask: '255.255.0.0' } });
  });

  it('-E without -p clears persistence, as every omitted field is reset', () => {
    expect(command('-E -t 198.18.1.100:80 -s rr')).toMatchObject({ service: { flags: 0, timeout: 0, netmask: '255.255.255.255' } });
  });

  it('-f N: an IPv4 fwmark service, address 0.0.0.0, port 0, protocol TCP (as ipvsadm sets it)', () => {
    expect(command('-A -f 3 -s rr -p 600')).toEqual({
      op: 'add-service',
      service: { ...FWM_3, scheduler: 'rr', flags: 1, timeout: 600, netmask: '255.255.255.255', pe: '', clientAddress: 'none' },
    });
    // no port, no persistence: still fine for a fwmark service
    expect(command('--add-service --fwmark-service 3')).toEqual({ op: 'add-service', service: { ...FWM_3, ...DEFAULT_SERVICE_FIELDS } });
    expect(command('-A -f 4294967295')).toMatchObject({ service: { fwmark: 4294967295 } });
    expect(command('-E -f 3 -s wrr')).toEqual({ op: 'edit-service', service: { ...FWM_3, ...DEFAULT_SERVICE_FIELDS, scheduler: 'wrr' } });
    expect(command('-D -f 3')).toEqual({ op: 'delete-service', service: FWM_3 });
    expect(command('-Z -f 3')).toEqual({ op: 'zero', service: FWM_3 });
    expect(ok('-L -n -f 3')).toMatchObject({ kind: 'list-service', service: FWM_3 });
  });

  it('real servers of a fwmark service: port 0 unless given', () => {
    expect(command('-a -f 3 -r 192.168.1.41 -m -w 2')).toEqual({
      op: 'add-server',
      service: FWM_3,
      dest: { ...DEST_DEFAULTS, addr: '192.168.1.41', port: 0, weight: 2 },
    });
    expect(command('-e -f 3 -r 192.168.1.41:8080 -m')).toEqual({
      op: 'edit-server',
      service: FWM_3,
      dest: { ...DEST_DEFAULTS, addr: '192.168.1.41', port: 8080 },
    });
    expect(command('-d -f 3 -r 192.168.1.41')).toEqual({
      op: 'delete-server',
      service: FWM_3,
      dest: { af: 4, addr: '192.168.1.41', port: 0 },
    });
  });

  it('-x / -y: upper and lower connection thresholds', () => {
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2 -m -x 100 -y 50')).toEqual({
      op: 'add-server',
      service: SVC_10_0_0_1_80,
      dest: { ...DEST_DEFAULTS, addr: '10.0.0.2', port: 80, uThreshold: 100, lThreshold: 50 },
    });
    expect(command('-e -t 10.0.0.1:80 -r 10.0.0.2 -m --u-threshold 2147483647')).toMatchObject({
      dest: { uThreshold: 2147483647, lThreshold: 0 },
    });
    expect(command('-e -t 10.0.0.1:80 -r 10.0.0.2 -m --l-threshold=0')).toMatchObject({ dest: { uThreshold: 0, lThreshold: 0 } });
    expect(command('-a -f 3 -r 192.168.1.41 -m -x 10')).toMatchObject({ service: FWM_3, dest: { uThreshold: 10 } });
  });

  it('-b: scheduler flag bits (SCHED1 0x08, SCHED2 0x10, SCHED3 0x20), next to the persistent bit', () => {
    const flagsOf = (line: string): number => {
      const c = command(line);
      if (c.op !== 'add-service' && c.op !== 'edit-service') throw new Error(line);
      return c.service.flags;
    };
    expect(flagsOf('-A -t 10.0.0.1:80 -s sh -b sh-fallback')).toBe(0x08);
    expect(flagsOf('-A -t 10.0.0.1:80 -s sh -b sh-port')).toBe(0x10);
    expect(flagsOf('-A -t 10.0.0.1:80 -s sh -b sh-port,sh-fallback')).toBe(0x18);
    expect(flagsOf('-A -t 10.0.0.1:80 -s mh --sched-flags mh-fallback,mh-port')).toBe(0x18);
    expect(flagsOf('-A -t 10.0.0.1:80 -b flag-1,flag-2,flag-3')).toBe(0x38);
    expect(flagsOf('-E -t 10.0.0.1:0 -s sh -p 60 -b sh-port')).toBe(0x11);
    // -b before -s: checked against the final scheduler, as ipvsadm parses flags after all options
    expect(flagsOf('-A -f 3 -b sh-port -s sh')).toBe(0x10);
    expect(command('-A -t 10.0.0.1:80 -s sh -b sh-port')).toEqual({
      op: 'add-service',
      service: { ...SVC_10_0_0_1_80, ...DEFAULT_SERVICE_FIELDS, scheduler: 'sh', flags: 0x10 },
    });
  });
});

describe('listing, save, restore, help and version invocations', () => {
  const plain = { numeric: false, stats: false, rate: false, thresholds: false, persistentConn: false, tunInfo: false, nosort: false, exact: false };

  it('-L variants', () => {
    expect(ok('-L')).toEqual({ kind: 'list-all', format: plain });
    expect(ok('-l')).toEqual({ kind: 'list-all', format: plain });
    expect(ok('-Ln --stats --exact --nosort')).toEqual({
      kind: 'list-all',
      format: { ...plain, numeric: true, stats: true, exact: true, nosort: true },
    });
    expect(ok('--list -X --rate --sort --sort')).toEqual({ kind: 'list-all', format: { ...plain, rate: true, exact: true } });
    expect(ok('-L -n -t 10.0.0.1:80 --thresholds')).toEqual({
      kind: 'list-service',
      service: SVC_10_0_0_1_80,
      format: { ...plain, numeric: true, thresholds: true },
    });
    expect(ok('-L -c --persistent-conn')).toEqual({ kind: 'list-connections', format: { ...plain, persistentConn: true } });
    expect(ok('-L --timeout')).toEqual({ kind: 'list-timeouts' });
  });

  it('-S, -R, -h, -v', () => {
    expect(ok('-S')).toEqual({ kind: 'save', numeric: false });
    expect(ok('--save -n')).toEqual({ kind: 'save', numeric: true });
    expect(ok('-R')).toEqual({ kind: 'restore' });
    expect(ok('-h')).toEqual({ kind: 'help' });
    expect(ok('--help whatever --bogus')).toEqual({ kind: 'help' });
    expect(ok('-v')).toEqual({ kind: 'version' });
  });

  it('usage text is ipvsadm’s with the program name tapvs', () => {
    const text = usageText();
    expect(text.startsWith('tapvs v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n  tapvs -A|E virtual-service [-s scheduler]')).toBe(true);
    expect(text).not.toContain('ipvsadm');
    expect(text).toContain('  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,\n');
    expect(text).toContain('  tapvs -h\n\nCommands:\n');
    expect(text.endsWith('  --mcast-ttl ttl                     Multicast TTL (default=1)\n')).toBe(true);
  });
});

describe('ipvsadm errors, in ipvsadm’s order, with its exit statuses', () => {
  it('the command must come first; no command → the Try hint, 255', () => {
    expect(failure('-t 10.0.0.1:80 -A')).toEqual({ message: TRY_HELP, exitCode: 255, prefixed: false });
    expect(failure('-n')).toEqual({ message: TRY_HELP, exitCode: 255, prefixed: false });
    expect(failure('foo')).toEqual({ message: TRY_HELP, exitCode: 255, prefixed: false });
    expect(failure('--bogus')).toEqual({ message: TRY_HELP, exitCode: 255, prefixed: false });
  });

  it('a second command is an invalid option (2)', () => {
    expect(failure('-A -t 10.0.0.1:80 -E')).toEqual(fail2("invalid option `-E'"));
    expect(failure('-L -h')).toEqual(fail2("invalid option `-h'"));
    expect(failure('-LE')).toEqual(fail2("invalid option `-LE'"));
    expect(failure('-L --start-daemon master')).toEqual(fail2("invalid option `master'"));
  });

  it('popt errors: "<word>: <popt message>", 255', () => {
    expect(failure('-L --bogus')).toEqual({ message: '--bogus: unknown option', exitCode: 255, prefixed: false });
    expect(failure('-Lq')).toEqual({ message: '-Lq: unknown option', exitCode: 255, prefixed: false });
    expect(failure('-A -t')).toEqual({ message: '-t: missing argument', exitCode: 255, prefixed: false });
    expect(failure('-L --numeric=1')).toEqual({
      message: '--numeric=1: option does not take an argument',
      exitCode: 255,
      prefixed: false,
    });
  });

  it('every option at most once', () => {
    expect(failure('-A -t 10.0.0.1:80 -t 10.0.0.2:80')).toEqual(fail2("multiple 'service-address' options specified"));
    expect(failure('-A -t 10.0.0.1:80 -f 1')).toEqual(fail2("multiple 'service-address' options specified"));
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -m -g')).toEqual(fail2("multiple 'forwarding-method' options specified"));
    expect(failure('-L -n -n')).toEqual(fail2("multiple 'numeric' options specified"));
  });

  it('commands_v_options: compulsory, illegal, exclusive', () => {
    expect(failure('-A')).toEqual(fail2("You need to supply the 'service-address' option for the 'add-service' command"));
    expect(failure('-a -t 10.0.0.1:80 -m')).toEqual(
      fail2("You need to supply the 'real-server' option for the 'add-server' command"),
    );
    expect(failure('-A -t 10.0.0.1:80 -r 10.0.0.2')).toEqual(fail2("Illegal 'real-server' option with the 'add-service' command"));
    expect(failure('-D -t 10.0.0.1:80 -s rr')).toEqual(fail2("Illegal 'scheduler' option with the 'delete-service' command"));
    expect(failure('-C -n')).toEqual(fail2("Illegal 'numeric' option with the 'flush' command"));
    expect(failure('-R -n')).toEqual(fail2("Illegal 'numeric' option with the 'restore' command"));
    expect(failure('-S -c')).toEqual(fail2("Illegal 'connection' option with the 'save' command"));
    expect(failure('-Z -n')).toEqual(fail2("Illegal 'numeric' option with the 'zero' command"));
    expect(failure('--set 1 2 3 -n')).toEqual(fail2("Illegal 'numeric' option with the 'set' command"));
    expect(failure('-d -t 10.0.0.1:80 -r 10.0.0.2 -m')).toEqual(
      fail2("Illegal 'forwarding-method' option with the 'delete-server' command"),
    );
    // in option order, not command-line order
    expect(failure('-L -t 10.0.0.1:80 -c')).toEqual(
      fail2("The option 'service-address' conflicts with the 'connection' option in the 'list' command"),
    );
    expect(failure('-L --timeout -c')).toEqual(
      fail2("The option 'timeout' conflicts with the 'connection' option in the 'list' command"),
    );
    expect(failure('-L -c --stats')).toEqual(fail2('options conflicts in the list command'));
    expect(failure('-L --timeout --persistent-conn')).toEqual(fail2('options conflicts in the list command'));
    expect(failure('-L -r 10.0.0.2')).toEqual(fail2("Illegal 'real-server' option with the 'list' command"));
  });

  it('address, port, weight and timeout values', () => {
    expect(failure('-A -t 1234')).toEqual(fail2('illegal virtual server address[:port] specified'));
    expect(failure('-A -t 10.0.0.1:http:80')).toEqual(fail2('illegal virtual server address[:port] specified'));
    expect(failure('-A -t nosuchhost:80')).toEqual(fail2('illegal virtual server address[:port] specified'));
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2:99999 -m')).toEqual(fail2('illegal real server address[:port] specified'));
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -m -w 65536')).toEqual(fail2('illegal weight specified'));
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -m -w -1')).toEqual(fail2('illegal weight specified'));
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -m -x 2147483648')).toEqual(fail2('illegal u_threshold specified'));
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -m -y abc')).toEqual(fail2('illegal l_threshold specified'));
    expect(failure('-A -t 10.0.0.1:80 -p 0')).toEqual(fail2("invalid timeout value `0' specified"));
    expect(failure('-A -t 10.0.0.1:80 -p 2678401')).toEqual(fail2("invalid timeout value `2678401' specified"));
    expect(failure('-A -f 0')).toEqual(fail2("invalid fwmark value `0' specified"));
    expect(failure('-A -f 4294967296')).toEqual(fail2("invalid fwmark value `4294967296' specified"));
    expect(failure('-A -t 10.0.0.1:80 -M 255.255.255.256')).toEqual(fail2('illegal virtual server persistent mask specified'));
    expect(failure('-A -f 1 -6 -M 129')).toEqual(fail2('illegal ipv6 netmask specified'));
    expect(failure('-A -t 10.0.0.1:80 -6')).toEqual(fail2('-6 used before -f\n'));
  });

  it('--set and leftover arguments', () => {
    expect(failure('--set 1 2')).toEqual(fail2('--set option requires 3 timeout values'));
    expect(failure('--set 1 2 3 4')).toEqual(fail2('unexpected argument 4'));
    expect(failure('--set 1 2 x')).toEqual(fail2("invalid timeout value `x' specified"));
    expect(failure('--set 2678401 0 0')).toEqual(fail2("invalid timeout value `2678401' specified"));
    expect(failure('-L foo')).toEqual(fail2('unexpected argument foo'));
    expect(failure('-L -- -n')).toEqual(fail2('unexpected argument -n'));
  });

  it('service checks after the matrix: zero port, one-packet, scheduler flags', () => {
    expect(failure('-A -t 10.0.0.1:0')).toEqual(fail2('Zero port specified for non-persistent service'));
    expect(failure('-A -t 10.0.0.1')).toEqual(fail2('Zero port specified for non-persistent service'));
    expect(failure('-E -t [10.0.0.1]:80')).toEqual(fail2('Zero port specified for non-persistent service'));
    expect(failure('-A -t 10.0.0.1:80 -o')).toEqual(fail2('One-Packet Scheduling is only for UDP virtual services'));
    expect(failure('-A -t 10.0.0.1:80 -b sh-port')).toEqual(fail2("incompatible scheduler flag `sh-port'"));
    expect(failure('-A -t 10.0.0.1:80 -s sh -b mh-port')).toEqual(fail2("incompatible scheduler flag `mh-port'"));
    expect(failure('-A -t 10.0.0.1:80 -b flag-1,bogus')).toEqual(fail2("invalid scheduler flag `bogus'"));
    // scheduler flags are parsed before the matrix is checked
    expect(failure('-D -t 10.0.0.1:80 -b bogus')).toEqual(fail2("invalid scheduler flag `bogus'"));
  });

  it('real-server checks: address family, tunnel options', () => {
    expect(failure('-a -t 10.0.0.1:80 -r [::1]:80 -m')).toEqual(
      fail2('Different address family is allowed only for tunneling servers'),
    );
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gre')).toEqual(
      fail2('Tunnel options conflict with forward method'),
    );
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue')).toEqual(
      fail2("You need to supply the 'tun-port' option for the 'gue' tunnel type"),
    );
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-port 5')).toEqual(
      fail2("Illegal 'tun-port' option with the 'ipip' tunnel type"),
    );
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 5 --tun-csum --tun-nocsum')).toEqual(
      fail2("The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type"),
    );
    expect(failure('-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type vxlan')).toEqual(fail2('illegal tunnel type specified'));
  });

  it('sync daemon arguments are validated before being refused', () => {
    expect(failure('--start-daemon primary')).toEqual(fail2('illegal start-daemon parameter specified'));
    expect(failure('--stop-daemon primary')).toEqual(fail2('illegal start_daemon specified'));
    expect(failure('--start-daemon master --syncid 256')).toEqual(fail2('illegal syncid specified'));
    expect(failure('--start-daemon master --mcast-group 10.0.0.1')).toEqual(fail2("invalid IPv4 mcast-group `10.0.0.1'"));
    expect(failure('--start-daemon master --mcast-port 0')).toEqual(fail2('illegal mcast-port specified'));
    expect(failure('--stop-daemon master --mcast-ttl 2')).toEqual(fail2("Illegal 'mcast-ttl' option with the 'stop-daemon' command"));
  });
});

describe('features not supported yet: refused after ipvsadm validation, exit 2', () => {
  const refused = (line: string, what: string): void => {
    expect(failure(line)).toEqual({ message: `${what} is not supported yet`, exitCode: 2, prefixed: true });
  };

  it('the list holds exactly the pending features', () => {
    expect([...NOT_SUPPORTED_YET].sort()).toEqual(
      ['daemon-listing', 'pe', 'start-daemon', 'stop-daemon'].sort(),
    );
  });

  it('-a without -m is direct routing, ipvsadm’s default; DR forces the service port', () => {
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2')).toMatchObject({ op: 'add-server', dest: { forward: 3, port: 80, weight: 1 } });
    expect(command('-e -t 10.0.0.1:80 -r 10.0.0.2:8080 -w 2')).toMatchObject({ op: 'edit-server', dest: { forward: 3, port: 80, weight: 2 } });
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2 -g')).toMatchObject({ dest: { forward: 3 } });
    // -d carries no forwarding method
    expect(command('-d -t 10.0.0.1:80 -r 10.0.0.2')).toMatchObject({ op: 'delete-server' });
  });

  it('-o builds a one-packet UDP or fwmark service', () => {
    expect(command('-A -u 10.0.0.1:53 -o')).toMatchObject({ op: 'add-service', service: { protocol: 17, port: 53, flags: 0x0004 } });
    expect(command('-A -f 3 --ops')).toMatchObject({ op: 'add-service', service: { fwmark: 3, flags: 0x0004 } });
  });

  it('each pending option', () => {
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -i')).toMatchObject({ dest: { forward: 2, port: 80, tunType: 0 } });
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-csum')).toMatchObject({ dest: { forward: 2, tunType: 2, tunFlags: 1 } });
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080')).toMatchObject({ dest: { forward: 2, tunType: 1, tunPort: 6080, tunFlags: 0 } });
    // -6 with -f: an IPv6 fwmark service (supported now).
    expect(command('-A -f 1 -6 -s rr')).toMatchObject({ op: 'add-service', service: { af: 6, fwmark: 1, addr: '::', netmask: '128' } });
    expect(command('-Z -f 1 -6')).toMatchObject({ op: 'zero', service: { af: 6, fwmark: 1 } });
    expect(command('-A -f 1 -6 -p -M 64')).toMatchObject({ service: { af: 6, fwmark: 1, flags: 1, netmask: '64' } });
    refused('-A -t 10.0.0.1:80 --pe sip', '--pe (persistence engine)');
    refused('--start-daemon master', '--start-daemon (connection synchronisation)');
    refused('--stop-daemon backup', '--stop-daemon (connection synchronisation)');
    refused('-L --daemon', '--daemon (sync daemon listing)');
  });

  it('ipvsadm’s own errors come first', () => {
    expect(failure('-A -t 10.0.0.1:80 -p 0')).toEqual(fail2("invalid timeout value `0' specified"));
    expect(failure('-a -t 10.0.0.1:80 -r [::1]:80')).toEqual(fail2('Different address family is allowed only for tunneling servers'));
    expect(failure('-L --daemon --stats')).toEqual(fail2('options conflicts in the list command'));
  });
});

// ------------------------------------------------------------------------------------------------
// Mark rules (tapvs's own)

describe('mark rules: --add-mark / --del-mark', () => {
  /** A tapvs usage error: `tapvs: <message>`, exit 2. */
  const markError = (message: string): UsageFailure => ({ message, exitCode: 2, prefixed: true });
  const HINT = 'a mark rule takes -d, -p, --dport or --dports, and --set-mark';

  it('the iptables MARK line, rewritten', () => {
    expect(ok('--add-mark -d 192.168.1.10 -p tcp --dport 80 --set-mark 3')).toEqual({
      kind: 'command',
      command: { op: 'add-mark', rule: { af: 4, addr: '192.168.1.10', protocol: 6, ports: [[80, 80]], mark: 3 } },
    });
    expect(command('--del-mark -d 192.168.1.10 -p tcp --dport 80 --set-mark 3')).toEqual({
      op: 'delete-mark',
      rule: { af: 4, addr: '192.168.1.10', protocol: 6, ports: [[80, 80]], mark: 3 },
    });
  });

  it('protocol and ports are optional: any protocol, any port', () => {
    expect(command('--add-mark -d 198.18.1.100 --set-mark 7')).toEqual({
      op: 'add-mark',
      rule: { af: 4, addr: '198.18.1.100', protocol: 0, ports: [], mark: 7 },
    });
    expect(command('--add-mark -d 198.18.1.100 -p all --set-mark 7')).toMatchObject({ rule: { protocol: 0, ports: [] } });
    expect(command('--add-mark -d 198.18.1.100 --protocol UDP --set-mark 4294967295')).toMatchObject({
      rule: { protocol: 17, mark: 4294967295 },
    });
  });

  it('--dports: ports and ranges in the order given; names from /etc/services for the protocol', () => {
    expect(command('--add-mark -d 198.18.1.100 -p tcp --dports 443,80,8000:8080,www --set-mark 3')).toMatchObject({
      rule: { ports: [[443, 443], [80, 80], [8000, 8080], [80, 80]] },
    });
    expect(command('--add-mark -d 198.18.1.100 -p udp --dports domain,sip --set-mark 3')).toMatchObject({
      rule: { protocol: 17, ports: [[53, 53], [5060, 5060]] },
    });
    expect(command('--add-mark -d 198.18.1.100 -p tcp --dport :1023 --set-mark 3')).toMatchObject({ rule: { ports: [[0, 1023]] } });
    expect(command('--add-mark -d 198.18.1.100 -p tcp --dport 1024: --set-mark 3')).toMatchObject({ rule: { ports: [[1024, 65535]] } });
    expect(command('--add-mark -d 198.18.1.100 -p tcp --dport 80:80 --set-mark 3')).toMatchObject({ rule: { ports: [[80, 80]] } });
    expect(command('--add-mark -d 198.18.1.100 -p tcp --dport 0 --set-mark 3')).toMatchObject({ rule: { ports: [[0, 0]] } });
  });

  it('at most 15 multiport slots, a range taking two (iptables multiport)', () => {
    const list = (n: number): string => Array.from({ length: n }, (_, i) => String(i + 1)).join(',');
    expect(command(`--add-mark -d 10.0.0.1 -p tcp --dports ${list(15)} --set-mark 1`)).toMatchObject({ rule: { mark: 1 } });
    expect(failure(`--add-mark -d 10.0.0.1 -p tcp --dports ${list(16)} --set-mark 1`)).toEqual(
      markError(`too many ports specified in \`${list(16)}' (at most 15; a range counts as two)`),
    );
    const ranges = (n: number): string => Array.from({ length: n }, (_, i) => `${i * 10}:${i * 10 + 5}`).join(',');
    expect(command(`--add-mark -d 10.0.0.1 -p tcp --dports ${ranges(7)},99 --set-mark 1`)).toMatchObject({ rule: { mark: 1 } });
    expect(failure(`--add-mark -d 10.0.0.1 -p tcp --dports ${ranges(8)} --set-mark 1`).message).toMatch(/^too many ports specified/);
  });

  it('options in any order, long and attached forms; -d takes a hosts name, an inet_aton form or /32', () => {
    const expected = { op: 'add-mark', rule: { af: 4, addr: '10.0.0.9', protocol: 6, ports: [[80, 80]], mark: 3 } };
    expect(command('--add-mark --set-mark 3 --dport 80 -p tcp -d 10.0.0.9')).toEqual(expected);
    expect(command('--add-mark --destination=10.0.0.9 --protocol=tcp --dport=80 --set-mark=3')).toEqual(expected);
    expect(command('--add-mark -d10.0.0.9 -ptcp --dport 80 --set-mark 3')).toEqual(expected);
    expect(command('--add-mark -d web1 -p tcp --dport http --set-mark 3')).toEqual(expected);
    expect(command('--add-mark -d 10.0.0.9/32 -p tcp --dport 80 --set-mark 3')).toEqual(expected);
    expect(command('--add-mark -d 10.9 -p tcp --dport 80 --set-mark 3')).toEqual(expected);
    expect(command('--add-mark -d 10.0.0.9 -p tcp --dport 80 --set-mark 3 --')).toEqual(expected);
  });

  it('required options, in ipvsadm’s words', () => {
    expect(failure('--add-mark')).toEqual(markError("You need to supply the 'destination' option for the 'add-mark' command"));
    expect(failure('--del-mark --set-mark 3')).toEqual(
      markError("You need to supply the 'destination' option for the 'del-mark' command"),
    );
    expect(failure('--add-mark -d 10.0.0.1 -p tcp')).toEqual(
      markError("You need to supply the 'set-mark' option for the 'add-mark' command"),
    );
  });

  it('unknown options are refused, never ignored (also the iptables parts that do not belong)', () => {
    expect(failure('--add-mark -d 10.0.0.1 -j MARK --set-mark 3')).toEqual(markError(`-j: unknown option (${HINT})`));
    expect(failure('--add-mark -d 10.0.0.1 -p tcp -m multiport --dports 80 --set-mark 3')).toEqual(
      markError(`-m: unknown option (${HINT})`),
    );
    expect(failure('--add-mark -s 10.0.0.2 -d 10.0.0.1 --set-mark 3')).toEqual(markError(`-s: unknown option (${HINT})`));
    expect(failure('--add-mark -d 10.0.0.1 --set-mark 3 --persistent')).toEqual(markError(`--persistent: unknown option (${HINT})`));
    expect(failure('--add-mark -d 10.0.0.1 --set-mark 3 --dport-range 80')).toEqual(markError(`--dport-range: unknown option (${HINT})`));
    expect(failure('--add-mark -d 10.0.0.1 --set-mark 3 -')).toEqual(markError('unexpected argument -'));
    expect(failure('--add-mark -d 10.0.0.1 MARK --set-mark 3')).toEqual(markError('unexpected argument MARK'));
    expect(failure('--add-mark -d 10.0.0.1 --set-mark 3 -- -p')).toEqual(markError('unexpected argument -p'));
    expect(failure('PREROUTING --add-mark -d 10.0.0.1 --set-mark 3')).toEqual(markError('unexpected argument PREROUTING'));
  });

  it('missing arguments and repeated options', () => {
    expect(failure('--add-mark -d 10.0.0.1 --set-mark')).toEqual(markError('--set-mark: missing argument'));
    expect(failure('--add-mark -d')).toEqual(markError('-d: missing argument'));
    expect(failure('--add-mark -d 10.0.0.1 -d 10.0.0.2 --set-mark 3')).toEqual(markError("multiple 'destination' options specified"));
    expect(failure('--add-mark -d 10.0.0.1 -p tcp --protocol udp --set-mark 3')).toEqual(markError("multiple 'protocol' options specified"));
    expect(failure('--add-mark -d 10.0.0.1 --set-mark 3 --set-mark 3')).toEqual(markError("multiple 'set-mark' options specified"));
    expect(failure('--add-mark -d 10.0.0.1 -p tcp --dport 80 --dports 81 --set-mark 3')).toEqual(
      markError("The option 'dports' conflicts with the 'dport' option in the 'add-mark' command"),
    );
  });

  it('IPv6 destinations (for -f N -6 services): bare, bracketed or /128, written canonically', () => {
    for (const d of ['fd00:1::100', '[fd00:1::100]', 'FD00:1:0::100/128']) {
      const inv = ok(`--add-mark -d ${d} -p tcp --dports 80,443 --set-mark 3`);
      expect(inv.kind === 'command' && inv.command).toEqual({ op: 'add-mark', rule: { af: 6, addr: 'fd00:1::100', protocol: 6, ports: [[80, 80], [443, 443]], mark: 3 } });
    }
  });

  it('bad values', () => {
    const bad = (args: string, message: string): void => {
      expect(failure(`--add-mark ${args}`)).toEqual(markError(message));
    };
    bad('-d 10.0.0.0/24 --set-mark 3', "illegal mark-rule destination `10.0.0.0/24' specified (one host: no prefix other than /32)");
    bad('-d fd00:1::100/64 --set-mark 3', "illegal mark-rule destination `fd00:1::100/64' specified (one host: no prefix other than /128)");
    bad('-d ff02::1 --set-mark 3', "illegal mark-rule destination `ff02::1' specified (not a unicast host address)");
    bad('-d :: --set-mark 3', "illegal mark-rule destination `::' specified (not a unicast host address)");
    bad('-d nosuchhost --set-mark 3', "illegal mark-rule destination `nosuchhost' specified (an IPv4 or IPv6 host address)");
    bad('-d /32 --set-mark 3', "illegal mark-rule destination `/32' specified (an IPv4 or IPv6 host address)");
    bad('-d 0.0.0.0 --set-mark 3', "illegal mark-rule destination `0.0.0.0' specified (not a unicast host address)");
    bad('-d 224.0.0.1 --set-mark 3', "illegal mark-rule destination `224.0.0.1' specified (not a unicast host address)");
    bad('-d 255.255.255.255 --set-mark 3', "illegal mark-rule destination `255.255.255.255' specified (not a unicast host address)");
    bad('-d 10.0.0.1 -p icmp --set-mark 3', "illegal protocol `icmp' specified (tcp, udp or all)");
    bad('-d 10.0.0.1 -p 6 --set-mark 3', "illegal protocol `6' specified (tcp, udp or all)");
    bad('-d 10.0.0.1 --dport 80 --set-mark 3', "the 'dport' option needs -p tcp or -p udp");
    bad('-d 10.0.0.1 -p all --dports 80 --set-mark 3', "the 'dports' option needs -p tcp or -p udp");
    bad('-d 10.0.0.1 -p tcp --dport 80,443 --set-mark 3', "illegal port `80,443' specified");
    bad('-d 10.0.0.1 -p tcp --dport 65536 --set-mark 3', "illegal port `65536' specified");
    bad('-d 10.0.0.1 -p tcp --dport sip --set-mark 3', "illegal port `sip' specified"); // sip is udp only here
    bad('-d 10.0.0.1 -p tcp --dport -1 --set-mark 3', "illegal port `-1' specified");
    bad('-d 10.0.0.1 -p tcp --dports 80, --set-mark 3', "illegal port `' specified");
    bad('-d 10.0.0.1 -p tcp --dport 90:80 --set-mark 3', "invalid port range `90:80' specified (min > max)");
    bad('-d 10.0.0.1 -p tcp --dport 1:2:3 --set-mark 3', "illegal port `2:3' specified");
    bad('-d 10.0.0.1 --set-mark 0', "invalid mark value `0' specified");
    bad('-d 10.0.0.1 --set-mark 4294967296', "invalid mark value `4294967296' specified");
    bad('-d 10.0.0.1 --set-mark 0x3', "invalid mark value `0x3' specified");
    bad('-d 10.0.0.1 --set-mark 3/0xff', "invalid mark value `3/0xff' specified");
  });

  it('the command comes first, as every ipvsadm command', () => {
    expect(failure('--add-mark=1 -d 10.0.0.1 --set-mark 3')).toEqual({ message: TRY_HELP, exitCode: 255, prefixed: false });
    // -d is ipvsadm's --delete-server; --add-mark after it is a second command
    expect(failure('-d 10.0.0.1 --add-mark')).toEqual(fail2("invalid option `--add-mark'"));
    expect(failure('-L --add-mark')).toEqual(fail2("invalid option `--add-mark'"));
    expect(failure('-A -t 10.0.0.1:80 --del-mark')).toEqual(fail2("invalid option `--del-mark'"));
  });
});

describe('FULLNAT: --fullnat, --proxy-protocol / --toa, -P|--add-laddr, -Q|--del-laddr, -G|--get-laddr', () => {
  const VIP = { af: 4, protocol: 6, addr: '198.18.1.100', port: 80, fwmark: 0 };
  const DEST_FIELDS = { weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 };

  it('--fullnat (long only) on -a/-e: forward 5, the real-server port is kept (port mapping, as NAT)', () => {
    expect(command('-a -t 198.18.1.100:80 -r 10.0.0.2:8080 --fullnat')).toEqual({
      op: 'add-server',
      service: VIP,
      dest: { af: 4, addr: '10.0.0.2', port: 8080, forward: 5, ...DEST_FIELDS },
    });
    expect(command('-e -t 198.18.1.100:80 -r 10.0.0.2 --fullnat -w 3')).toEqual({
      op: 'edit-server',
      service: VIP,
      dest: { af: 4, addr: '10.0.0.2', port: 80, forward: 5, ...DEST_FIELDS, weight: 3 },
    });
    expect(command('--add-server --tcp-service=198.18.1.100:80 --real-server=web1:8080 --fullnat')).toMatchObject({
      dest: { addr: '10.0.0.9', port: 8080, forward: 5 },
    });
    // a fwmark service's FULLNAT server: port 0 unless given
    expect(command('-a -f 3 -r 10.0.0.2 --fullnat')).toMatchObject({ dest: { port: 0, forward: 5 } });
    // edit resets: -e without a forwarding method is DR again
    expect(command('-e -t 198.18.1.100:80 -r 10.0.0.2:8080')).toMatchObject({ dest: { port: 80, forward: 3 } });
  });

  it('--fullnat is a forwarding method like -g/-i/-m', () => {
    expect(failure('-a -t 198.18.1.100:80 -r 10.0.0.2 --fullnat -m')).toEqual(fail2("multiple 'forwarding-method' options specified"));
    expect(failure('-a -t 198.18.1.100:80 -r 10.0.0.2 -g --fullnat')).toEqual(fail2("multiple 'forwarding-method' options specified"));
    expect(failure('-a -t 198.18.1.100:80 -r 10.0.0.2 --fullnat --fullnat')).toEqual(
      fail2("multiple 'forwarding-method' options specified"),
    );
    expect(failure('-A -t 198.18.1.100:80 --fullnat')).toEqual(fail2("Illegal 'forwarding-method' option with the 'add-service' command"));
    expect(failure('-d -t 198.18.1.100:80 -r 10.0.0.2 --fullnat')).toEqual(
      fail2("Illegal 'forwarding-method' option with the 'delete-server' command"),
    );
    expect(failure('-a -t 198.18.1.100:80 -r 10.0.0.2 --fullnat --tun-type ipip', true)).toEqual(
      fail2('Tunnel options conflict with forward method'),
    );
    expect(failure('-a -t 198.18.1.100:80 -r [2001:db8::2]:80 --fullnat')).toEqual(
      fail2('Different address family is allowed only for tunneling servers'),
    );
    // -b stays ipvsadm's --sched-flags; DPVS's -b|--fullnat is not an alias
    expect(failure('-a -t 198.18.1.100:80 -r 10.0.0.2 -b flag-1')).toEqual(fail2("Illegal 'sched-flags' option with the 'add-server' command"));
    expect(failure('--fullnat -t 198.18.1.100:80')).toEqual({ message: TRY_HELP, exitCode: 255, prefixed: false });
  });

  it('--proxy-protocol / --toa on -A/-E set clientAddress; without them it is none (-E resets it too)', () => {
    expect(command('-A -t 198.18.1.100:80 -s rr --proxy-protocol')).toEqual({
      op: 'add-service',
      service: { ...VIP, ...DEFAULT_SERVICE_FIELDS, scheduler: 'rr', clientAddress: 'proxy-protocol' },
    });
    expect(command('-E -t 198.18.1.100:80 --toa')).toEqual({
      op: 'edit-service',
      service: { ...VIP, ...DEFAULT_SERVICE_FIELDS, clientAddress: 'toa' },
    });
    expect(command('-E -t 198.18.1.100:80 -s rr')).toEqual({
      op: 'edit-service',
      service: { ...VIP, ...DEFAULT_SERVICE_FIELDS, scheduler: 'rr', clientAddress: 'none' },
    });
    expect(command('-A -f 3 --toa')).toMatchObject({ service: { fwmark: 3, clientAddress: 'toa' } });
    expect(command('-A -t 198.18.1.100:0 -p --toa')).toMatchObject({ service: { flags: 1, clientAddress: 'toa' } });
  });

  it('--proxy-protocol and --toa exclude each other; TCP (or fwmark) services only; -A/-E only', () => {
    expect(failure('-A -t 198.18.1.100:80 --toa --proxy-protocol')).toEqual(fail2("multiple 'client-address' options specified"));
    expect(failure('-E -t 198.18.1.100:80 --toa --toa')).toEqual(fail2("multiple 'client-address' options specified"));
    expect(failure('-A -u 198.18.1.100:53 --proxy-protocol')).toEqual(fail2('PROXY protocol and TOA are only for TCP virtual services'));
    expect(failure('-E --sctp-service 198.18.1.100:5060 --toa')).toEqual(fail2('PROXY protocol and TOA are only for TCP virtual services'));
    expect(failure('-a -t 198.18.1.100:80 -r 10.0.0.2 --fullnat --toa')).toEqual(
      fail2("Illegal 'client-address' option with the 'add-server' command"),
    );
    expect(failure('-D -t 198.18.1.100:80 --toa')).toEqual(fail2("Illegal 'client-address' option with the 'delete-service' command"));
    expect(failure('-L --proxy-protocol')).toEqual(fail2("Illegal 'client-address' option with the 'list' command"));
    expect(failure('-A -t 198.18.1.100:80 --toa=1')).toEqual({
      message: '--toa=1: option does not take an argument',
      exitCode: 255,
      prefixed: false,
    });
  });

  it('-P|--add-laddr and -Q|--del-laddr with a service and -z|--laddr', () => {
    expect(ok('-P -t 198.18.1.100:80 -z 198.18.2.1')).toEqual({
      kind: 'command',
      command: { op: 'add-laddr', service: VIP, laddr: '198.18.2.1' },
    });
    expect(command('--del-laddr --tcp-service 198.18.1.100:80 --laddr 198.18.2.1')).toEqual({
      op: 'delete-laddr',
      service: VIP,
      laddr: '198.18.2.1',
    });
    expect(command('-Q -t 198.18.1.100:80 -z 198.18.2.1')).toEqual({ op: 'delete-laddr', service: VIP, laddr: '198.18.2.1' });
    // attached arguments, clusters, names, inet_aton forms, any option order
    expect(command('--add-laddr -z198.18.2.1 -t198.18.1.100:http')).toEqual({ op: 'add-laddr', service: VIP, laddr: '198.18.2.1' });
    expect(command('-P --laddr=web1 -t 198.18.1.100:80')).toMatchObject({ laddr: '10.0.0.9' });
    expect(command('-P -t 198.18.1.100:80 -z 10.1')).toMatchObject({ laddr: '10.0.0.1' });
    expect(command('-Pt 198.18.1.100:80 -z 198.18.2.1')).toMatchObject({ op: 'add-laddr', service: VIP });
    expect(command('-P -u 198.18.1.100:53 -z 198.18.2.1')).toMatchObject({ service: { protocol: 17, port: 53 } });
    expect(command('-P -f 3 -z 198.18.2.1')).toEqual({
      op: 'add-laddr',
      service: { af: 4, protocol: 6, addr: '0.0.0.0', port: 0, fwmark: 3 },
      laddr: '198.18.2.1',
    });
  });

  it('-P/-Q: required options, illegal options, bad local addresses', () => {
    expect(failure('-P -t 198.18.1.100:80')).toEqual(fail2("You need to supply the 'local-address' option for the 'add-laddr' command"));
    expect(failure('-Q -z 198.18.2.1')).toEqual(fail2("You need to supply the 'service-address' option for the 'del-laddr' command"));
    expect(failure('-P -t 198.18.1.100:80 -z 198.18.2.1 -z 198.18.2.2')).toEqual(fail2("multiple 'local-address' options specified"));
    expect(failure('-P -t 198.18.1.100:80 -z 198.18.2.1 -s rr')).toEqual(fail2("Illegal 'scheduler' option with the 'add-laddr' command"));
    expect(failure('-Q -t 198.18.1.100:80 -z 198.18.2.1 -r 10.0.0.2')).toEqual(
      fail2("Illegal 'real-server' option with the 'del-laddr' command"),
    );
    expect(failure('-P -t 198.18.1.100:80 -z 198.18.2.1 -n')).toEqual(fail2("Illegal 'numeric' option with the 'add-laddr' command"));
    expect(failure('-A -t 198.18.1.100:80 -z 198.18.2.1')).toEqual(fail2("Illegal 'local-address' option with the 'add-service' command"));
    expect(failure('-a -t 198.18.1.100:80 -r 10.0.0.2 --fullnat -z 198.18.2.1')).toEqual(
      fail2("Illegal 'local-address' option with the 'add-server' command"),
    );
    expect(failure('-P -t 198.18.1.100:80 -z')).toEqual({ message: '-z: missing argument', exitCode: 255, prefixed: false });
    expect(failure('-P -t 198.18.1.100:80 -z nosuchhost')).toEqual(fail2("illegal local address `nosuchhost' specified"));
    expect(failure('-P -t 198.18.1.100:80 -z 198.18.2.1:80')).toEqual(fail2("illegal local address `198.18.2.1:80' specified"));
    expect(failure('-P -t 198.18.1.100:80 -z 2001:db8::1')).toEqual(fail2('a local address must have the address family of its service'));
    expect(failure('-P -t [2001:db8::100]:80 -z 198.18.2.1')).toEqual(fail2('a local address must have the address family of its service'));
    expect(failure('-P -t [2001:db8::100]:80 -z ff02::1')).toEqual(fail2("illegal local address `ff02::1' specified (not a unicast address)"));
    expect(parse('-P -t [2001:db8::100]:80 -z 2001:DB8:0::200')).toMatchObject({
      ok: true,
      invocation: { kind: 'command', command: { op: 'add-laddr', laddr: '2001:db8::200', service: { af: 6, addr: '2001:db8::100', port: 80 } } },
    });
    for (const bad of ['0.0.0.0', '127.0.0.1', '224.0.0.1', '255.255.255.255']) {
      expect(failure(`-P -t 198.18.1.100:80 -z ${bad}`)).toEqual(
        fail2(`illegal local address \`${bad}' specified (not a unicast address outside 0.0.0.0/8 and 127.0.0.0/8)`),
      );
    }
    // the command comes first
    expect(failure('-t 198.18.1.100:80 -P -z 198.18.2.1')).toEqual({ message: TRY_HELP, exitCode: 255, prefixed: false });
    expect(failure('-A -t 198.18.1.100:80 --add-laddr')).toEqual(fail2("invalid option `--add-laddr'"));
    expect(failure('-L -G')).toEqual(fail2("invalid option `-G'"));
    expect(failure('-P -t 198.18.1.100:80 -z 198.18.2.1 extra')).toEqual(fail2('unexpected argument extra'));
  });

  it('-G|--get-laddr: one service or all; only -n may come with it', () => {
    expect(ok('-G')).toEqual({ kind: 'list-laddrs' });
    expect(ok('--get-laddr -n')).toEqual({ kind: 'list-laddrs' });
    expect(ok('-Gn -t 198.18.1.100:80')).toEqual({ kind: 'list-laddrs', service: VIP });
    expect(ok('-G -f 3')).toEqual({ kind: 'list-laddrs', service: { af: 4, protocol: 6, addr: '0.0.0.0', port: 0, fwmark: 3 } });
    expect(failure('-G -z 198.18.2.1')).toEqual(fail2("Illegal 'local-address' option with the 'get-laddr' command"));
    expect(failure('-G --stats')).toEqual(fail2("Illegal 'stats' option with the 'get-laddr' command"));
    expect(failure('-G -c')).toEqual(fail2("Illegal 'connection' option with the 'get-laddr' command"));
  });
});

describe('-L --marks', () => {
  it('lists mark rules; only -n may come with it', () => {
    expect(ok('-L --marks')).toEqual({ kind: 'list-marks' });
    expect(ok('-Ln --marks')).toEqual({ kind: 'list-marks' });
    expect(ok('--list --marks --numeric')).toEqual({ kind: 'list-marks' });
    expect(failure('-L --marks --marks')).toEqual(fail2("multiple 'marks' options specified"));
    expect(failure('-L --marks --stats')).toEqual(fail2("The option 'stats' conflicts with the 'marks' option in the 'list' command"));
    expect(failure('-L -c --marks')).toEqual(fail2("The option 'connection' conflicts with the 'marks' option in the 'list' command"));
    expect(failure('-L --marks -f 3')).toEqual(
      fail2("The option 'service-address' conflicts with the 'marks' option in the 'list' command"),
    );
    expect(failure('-L --marks --nosort')).toEqual(fail2("The option 'nosort' conflicts with the 'marks' option in the 'list' command"));
    expect(failure('-S --marks')).toEqual(fail2("Illegal 'marks' option with the 'save' command"));
    expect(failure('-S -c --marks')).toEqual(fail2("Illegal 'connection' option with the 'save' command"));
    expect(failure('--marks')).toEqual({ message: TRY_HELP, exitCode: 255, prefixed: false });
  });
});

// ------------------------------------------------------------------------------------------------
// runTapvs with a fake daemon

interface Captured {
  stdout: string;
  stderr: string;
  requests: Request[];
  socketPaths: string[];
  code: number;
}

const EMPTY_TABLE: TableSnapshot = { connTabSize: 4096, services: [], timeouts: { tcp: 900, tcpfin: 120, udp: 300 } };

async function run(argv: string[], respond: (req: Request) => Reply, stdin = ''): Promise<Captured> {
  const captured: Captured = { stdout: '', stderr: '', requests: [], socketPaths: [], code: -1 };
  const io: TapvsIo = {
    stdout: { write: (t: string) => (captured.stdout += t) },
    stderr: { write: (t: string) => (captured.stderr += t) },
    stdin,
    names,
    connect(socketPath: string): ControlChannel {
      captured.socketPaths.push(socketPath);
      return {
        request: async (req) => {
          captured.requests.push(req);
          return respond(req);
        },
        close: () => undefined,
      };
    },
  };
  captured.code = await runTapvs(argv, io);
  return captured;
}

const okReply = (): Reply => ({ ok: true });

describe('runTapvs', () => {
  it('sends a command and prints nothing on success', async () => {
    const r = await run(['-A', '-t', '10.0.0.1:80', '-s', 'rr'], okReply);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(r.requests).toEqual([{ op: 'add-service', service: { ...SVC_10_0_0_1_80, ...DEFAULT_SERVICE_FIELDS, scheduler: 'rr' } }]);
  });

  it('prints libipvs messages for kernel errors, exit 255', async () => {
    const cases: Array<[string[], Reply & { ok: false }, string]> = [
      [['-A', '-t', '10.0.0.1:80'], { ok: false, errno: 'EEXIST' }, 'Service already exists'],
      [['-A', '-t', '10.0.0.1:80', '-s', 'foo'], { ok: false, errno: 'ENOENT' }, 'Scheduler or persistence engine not found'],
      [['-E', '-t', '10.0.0.1:80'], { ok: false, errno: 'ESRCH' }, 'No such service'],
      [['-D', '-t', '10.0.0.1:80'], { ok: false, errno: 'ESRCH' }, 'No such service'],
      [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-m'], { ok: false, errno: 'ESRCH' }, 'Service not defined'],
      [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-m'], { ok: false, errno: 'EEXIST' }, 'Destination already exists'],
      [['-e', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-m'], { ok: false, errno: 'ENOENT' }, 'No such destination'],
      [['-d', '-t', '10.0.0.1:80', '-r', '10.0.0.2'], { ok: false, errno: 'ENOENT' }, 'No such destination'],
      [['-Z', '-t', '10.0.0.1:80'], { ok: false, errno: 'ESRCH' }, 'No such service'],
      [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-m'], { ok: false, errno: 'ERANGE' }, 'Numerical result out of range'],
      [['-C'], { ok: false, errno: 'EPERM' }, 'Permission denied (you must be root)'],
      [
        ['-A', '-t', '10.0.0.1:80'],
        { ok: false, errno: 'EINVAL' },
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      ],
      [['-A', '-t', '10.0.0.1:80'], { ok: false, errno: 'EAFNOSUPPORT' }, 'Operation not supported with specified address family'],
    ];
    for (const [argv, reply, message] of cases) {
      const r = await run(argv, () => reply);
      expect({ argv, code: r.code, stderr: r.stderr }).toEqual({ argv, code: 255, stderr: `${message}\n` });
    }
  });

  it('usage failures go to stderr without contacting the daemon', async () => {
    const r = await run(['-A', '-t', '10.0.0.1:0'], okReply);
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: 'Zero port specified for non-persistent service\n' });
    expect(r.socketPaths).toEqual([]);
    const t = await run(['-t', '10.0.0.1:80', '-A'], okReply);
    expect(t).toMatchObject({ code: 255, stderr: `${TRY_HELP}\n` });
    const n = await run(['-A', '-t', '10.0.0.1:80', '--pe', 'sip'], okReply);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/^tapvs: --pe.* is not supported yet\n$/);
    expect(n.requests).toEqual([]);
  });

  it('-h and -v print on stdout', async () => {
    const h = await run(['-h'], okReply);
    expect(h).toMatchObject({ code: 0, stdout: usageText(), stderr: '' });
    const v = await run(['--version'], okReply);
    expect(v).toMatchObject({ code: 0, stdout: 'tapvs v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n' });
  });

  it('no arguments lists the table; --socket chooses the daemon and may appear anywhere', async () => {
    const r = await run([], () => ({ ok: true, table: EMPTY_TABLE }));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n',
    );
    expect(r.requests).toEqual([{ op: 'get-table' }]);

    const s = await run(['--socket', '/tmp/x.sock'], () => ({ ok: true, table: EMPTY_TABLE }));
    expect(s.socketPaths).toEqual(['/tmp/x.sock']);
    const l = await run(['-Ln', '--socket=/tmp/y.sock'], () => ({ ok: true, table: EMPTY_TABLE }));
    expect(l.socketPaths).toEqual(['/tmp/y.sock']);
    expect(l.code).toBe(0);
    const m = await run(['-L', '--socket', '/a', '--socket', '/b'], okReply);
    expect(m).toMatchObject({ code: 2, stderr: "multiple 'socket' options specified\n" });
    const missing = await run(['-L', '--socket'], okReply);
    expect(missing).toMatchObject({ code: 255, stderr: '--socket: missing argument\n' });
  });

  it('-L -t of an unknown service: "No such service", exit 1', async () => {
    const r = await run(['-L', '-t', '10.0.0.1:80'], () => ({ ok: true, table: EMPTY_TABLE }));
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: 'No such service\n' });
  });

  it('--timeout and -c fetch their own data', async () => {
    const t = await run(['-L', '--timeout'], (req) =>
      req.op === 'get-timeouts' ? { ok: true, timeouts: { tcp: 900, tcpfin: 120, udp: 300 } } : { ok: false, errno: 'EINVAL' },
    );
    expect(t).toMatchObject({ code: 0, stdout: 'Timeout (tcp tcpfin udp): 900 120 300\n' });
    const c = await run(['-L', '-c', '-n'], (req) =>
      req.op === 'get-connections' ? { ok: true, connections: [] } : { ok: false, errno: 'EINVAL' },
    );
    expect(c.stdout).toBe('IPVS connection entries\npro expire state       source             virtual            destination\n');
  });

  it('a daemon that cannot be reached: exit 255 with the reason', async () => {
    const captured = { stderr: '' };
    const code = await runTapvs(['-C'], {
      stdout: { write: () => undefined },
      stderr: { write: (t: string) => (captured.stderr += t) },
      stdin: '',
      names,
      connect: (path) => ({
        request: () => Promise.reject(new ControlConnectionError(path, 'Connection refused')),
        close: () => undefined,
      }),
    });
    expect(code).toBe(255);
    expect(captured.stderr).toMatch(/^tapvs: cannot connect to tapvsd at .+: Connection refused\n$/);
  });
});

describe('runTapvs -R: all or nothing', () => {
  const RULES = [
    '-A -t 10.0.0.1:80 -s rr', // line 1
    '', // line 2
    'ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\r', // line 3
    'tapvs\t-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 2', // line 4
    '', // line 5
  ].join('\n');

  it('sends every line as one batch', async () => {
    const r = await run(['-R'], okReply, RULES);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(r.requests).toHaveLength(1);
    const batch = r.requests[0]!;
    expect(batch.op).toBe('batch');
    if (batch.op !== 'batch') return;
    expect(batch.commands.map((c) => c.op)).toEqual(['add-service', 'add-server', 'add-server']);
    expect(batch.commands[2]).toMatchObject({ dest: { addr: '10.0.0.3', weight: 2, forward: 0 } });
  });

  it('a bad line stops everything before anything is sent', async () => {
    const r = await run(['-R'], okReply, `${RULES}\n\n-a -t 10.0.0.1:80 -r 10.0.0.4:80 -w 1 -m -m\n`);
    expect(r).toMatchObject({ code: 2, stderr: "tapvs: line 7: multiple 'forwarding-method' options specified\n" });
    expect(r.requests).toEqual([]);
    const dr = await run(['-R'], okReply, '-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80 --pe sip\n');
    expect(dr.code).toBe(2);
    expect(dr.stderr).toMatch(/^tapvs: line 2: --pe.* is not supported yet\n$/);
    expect(dr.requests).toEqual([]);
  });

  it('a failed batch names the input line and restores nothing', async () => {
    const r = await run(['-R'], () => ({ ok: false, errno: 'EEXIST', failedIndex: 2 }), RULES);
    expect(r.code).toBe(255);
    expect(r.stderr).toBe('tapvs: line 4: Destination already exists\ntapvs: no rules restored\n');
  });

  it('empty input does nothing', async () => {
    const r = await run(['-R'], okReply, '\n \n\t\n');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.requests).toEqual([]);
  });
});

describe('runTapvs: mark rules', () => {
  const RULE = { af: 4 as const, addr: '198.18.1.100', protocol: 6, ports: [[80, 80], [443, 443]] as [number, number][], mark: 3 };
  const MARK_TABLE: TableSnapshot = {
    ...EMPTY_TABLE,
    services: [
      {
        af: 4,
        protocol: 6,
        addr: '0.0.0.0',
        port: 0,
        fwmark: 3,
        scheduler: 'rr',
        flags: 1,
        timeout: 600,
        netmask: '255.255.255.255',
        pe: '',
        dests: [],
        stats: { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 },
        rate: { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 },
      },
    ],
    marks: [RULE, { af: 4, addr: '198.18.1.101', protocol: 0, ports: [], mark: 4 }],
  };

  it('--add-mark / --del-mark send add-mark / delete-mark', async () => {
    const a = await run(['--add-mark', '-d', '198.18.1.100', '-p', 'tcp', '--dports', '80,443', '--set-mark', '3'], okReply);
    expect(a).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(a.requests).toEqual([{ op: 'add-mark', rule: RULE }]);
    const d = await run(['--del-mark', '-d', '198.18.1.100', '-p', 'tcp', '--dports', '80,443', '--set-mark', '3'], okReply);
    expect(d.requests).toEqual([{ op: 'delete-mark', rule: RULE }]);
  });

  it('kernel-style errors: Mark rule already exists / No such mark rule, exit 255', async () => {
    const a = await run(['--add-mark', '-d', '198.18.1.100', '--set-mark', '3'], () => ({ ok: false, errno: 'EEXIST' }));
    expect(a).toMatchObject({ code: 255, stdout: '', stderr: 'Mark rule already exists\n' });
    const d = await run(['--del-mark', '-d', '198.18.1.100', '--set-mark', '3'], () => ({ ok: false, errno: 'ENOENT' }));
    expect(d).toMatchObject({ code: 255, stdout: '', stderr: 'No such mark rule\n' });
    const p = await run(['--add-mark', '-d', '198.18.1.100', '--set-mark', '3'], () => ({ ok: false, errno: 'EPERM' }));
    expect(p).toMatchObject({ code: 255, stderr: 'Permission denied (you must be root)\n' });
  });

  it('a malformed mark rule: tapvs: …, exit 2, nothing sent', async () => {
    const r = await run(['--add-mark', '-d', '198.18.1.100', '-j', 'MARK', '--set-mark', '3'], okReply);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'tapvs: -j: unknown option (a mark rule takes -d, -p, --dport or --dports, and --set-mark)\n',
    });
    expect(r.socketPaths).toEqual([]);
  });

  it('-L --marks prints the rules in match order; nothing without rules; plain -L never shows them', async () => {
    const m = await run(['-L', '--marks'], () => ({ ok: true, table: MARK_TABLE }));
    expect(m).toMatchObject({
      code: 0,
      stderr: '',
      stdout: 'Mark rules\n  -d 198.18.1.100 -p tcp --dports 80,443 --set-mark 3\n  -d 198.18.1.101 --set-mark 4\n',
    });
    expect(m.requests).toEqual([{ op: 'get-table' }]);
    const none = await run(['-Ln', '--marks'], () => ({ ok: true, table: { ...MARK_TABLE, marks: [] } }));
    expect(none).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const old = await run(['-L', '--marks'], () => ({ ok: true, table: EMPTY_TABLE }));
    expect(old).toMatchObject({ code: 0, stdout: '' });
    const plain = await run(['-L', '-n'], () => ({ ok: true, table: MARK_TABLE }));
    expect(plain.stdout).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
        'FWM  3 rr persistent 600\n',
    );
  });

  it('-S writes the mark rules first, then the services; -R reads them back', async () => {
    const saved = await run(['-S', '-n'], () => ({ ok: true, table: MARK_TABLE }));
    expect(saved.stdout).toBe(
      '--add-mark -d 198.18.1.100 -p tcp --dports 80,443 --set-mark 3\n' +
        '--add-mark -d 198.18.1.101 --set-mark 4\n' +
        '-A -f 3 -s rr -p 600\n',
    );
    const restored = await run(['-R'], okReply, saved.stdout);
    expect(restored).toMatchObject({ code: 0, stderr: '' });
    expect(restored.requests).toEqual([
      {
        op: 'batch',
        commands: [
          { op: 'add-mark', rule: RULE },
          { op: 'add-mark', rule: MARK_TABLE.marks![1] },
          { op: 'add-service', service: { ...serviceKeyFields(MARK_TABLE), scheduler: 'rr', flags: 1, timeout: 600, netmask: '255.255.255.255', pe: '', clientAddress: 'none' } },
        ],
      },
    ]);
  });

  it('-R: a failing mark rule is named by its line', async () => {
    const text = '--add-mark -d 198.18.1.100 --set-mark 3\n-A -f 3 -s rr\n--del-mark -d 198.18.1.100 --set-mark 4\n';
    const r = await run(['-R'], () => ({ ok: false, errno: 'ENOENT', failedIndex: 2 }), text);
    expect(r).toMatchObject({ code: 255, stderr: 'tapvs: line 3: No such mark rule\ntapvs: no rules restored\n' });
    const bad = await run(['-R'], okReply, '-A -f 3 -s rr\n--add-mark -d 198.18.1.100 --dport 80 --set-mark 3\n');
    expect(bad).toMatchObject({ code: 2, stderr: "tapvs: line 2: the 'dport' option needs -p tcp or -p udp\n" });
    expect(bad.requests).toEqual([]);
  });

  it('-R resolves names through the injected name database', async () => {
    const r = await run(['-R'], okReply, '-A -t web1:http -s rr -p\n--add-mark -d web1 -p tcp --dport www --set-mark 3\n');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.requests).toEqual([
      {
        op: 'batch',
        commands: [
          {
            op: 'add-service',
            service: { af: 4, protocol: 6, addr: '10.0.0.9', port: 80, fwmark: 0, scheduler: 'rr', flags: 1, timeout: 360, netmask: '255.255.255.255', pe: '', clientAddress: 'none' },
          },
          { op: 'add-mark', rule: { af: 4, addr: '10.0.0.9', protocol: 6, ports: [[80, 80]], mark: 3 } },
        ],
      },
    ]);
  });
});

describe('runTapvs: FULLNAT', () => {
  const VIP = { af: 4 as const, protocol: 6, addr: '198.18.1.100', port: 80, fwmark: 0 };
  const ZERO_STATS = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
  const ZERO_RATE = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
  const SERVICE_BASE = { scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', stats: ZERO_STATS, rate: ZERO_RATE };
  const FULLNAT_TABLE: TableSnapshot = {
    ...EMPTY_TABLE,
    services: [
      {
        ...VIP,
        ...SERVICE_BASE,
        clientAddress: 'proxy-protocol',
        laddrs: ['198.18.2.2', '198.18.2.1'],
        dests: [
          {
            af: 4,
            addr: '10.0.0.3',
            port: 8080,
            forward: 5,
            weight: 2,
            uThreshold: 0,
            lThreshold: 0,
            tunType: 0,
            tunPort: 0,
            tunFlags: 0,
            activeConns: 1,
            inactConns: 0,
            persistConns: 0,
            stats: ZERO_STATS,
            rate: ZERO_RATE,
          },
        ],
      },
      { ...VIP, addr: '198.18.1.101', ...SERVICE_BASE, clientAddress: 'toa', laddrs: ['198.18.2.3'], dests: [] },
      { ...VIP, protocol: 17, port: 53, ...SERVICE_BASE, dests: [] },
    ],
  };

  it('-P / -Q send add-laddr / delete-laddr', async () => {
    const a = await run(['-P', '-t', '198.18.1.100:80', '-z', '198.18.2.1'], okReply);
    expect(a).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(a.requests).toEqual([{ op: 'add-laddr', service: VIP, laddr: '198.18.2.1' }]);
    const d = await run(['--del-laddr', '-t', '198.18.1.100:80', '--laddr', '198.18.2.1'], okReply);
    expect(d.requests).toEqual([{ op: 'delete-laddr', service: VIP, laddr: '198.18.2.1' }]);
  });

  it('kernel-style errors, exit 255', async () => {
    const cases: Array<[string[], Reply & { ok: false }, string]> = [
      [['-P', '-t', '198.18.1.100:80', '-z', '198.18.2.1'], { ok: false, errno: 'ESRCH' }, 'Service not defined'],
      [['-P', '-t', '198.18.1.100:80', '-z', '198.18.2.1'], { ok: false, errno: 'EEXIST' }, 'Local address already exists'],
      [['-Q', '-t', '198.18.1.100:80', '-z', '198.18.2.1'], { ok: false, errno: 'ENOENT' }, 'No such local address'],
      [['-Q', '-t', '198.18.1.100:80', '-z', '198.18.2.1'], { ok: false, errno: 'ESRCH' }, 'Service not defined'],
      [
        ['-P', '-t', '198.18.1.100:80', '-z', '198.18.2.1'],
        { ok: false, errno: 'EINVAL' },
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      ],
      [['-a', '-t', '198.18.1.100:80', '-r', '10.0.0.2', '--fullnat'], { ok: false, errno: 'ESRCH' }, 'Service not defined'],
    ];
    for (const [argv, reply, message] of cases) {
      const r = await run(argv, () => reply);
      expect({ argv, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ argv, code: 255, stdout: '', stderr: `${message}\n` });
    }
  });

  it('-G lists all services (sorted) or one; an unknown service: "No such service", exit 1', async () => {
    const all = await run(['-G'], () => ({ ok: true, table: FULLNAT_TABLE }));
    expect(all.requests).toEqual([{ op: 'get-table' }]);
    expect(all).toMatchObject({
      code: 0,
      stderr: '',
      stdout:
        'VIP:VPORT                         TOTAL    SNAT_IP\n' +
        'TCP  198.18.1.100:80              2        198.18.2.2\n' +
        '                                           198.18.2.1\n' +
        'TCP  198.18.1.101:80              1        198.18.2.3\n' +
        'UDP  198.18.1.100:53              0\n',
    });
    const one = await run(['-G', '-t', '198.18.1.101:80'], () => ({ ok: true, table: FULLNAT_TABLE }));
    expect(one).toMatchObject({
      code: 0,
      stdout: 'VIP:VPORT                         TOTAL    SNAT_IP\nTCP  198.18.1.101:80              1        198.18.2.3\n',
    });
    const none = await run(['-G', '-t', '198.18.1.102:80'], () => ({ ok: true, table: FULLNAT_TABLE }));
    expect(none).toMatchObject({ code: 1, stdout: '', stderr: 'No such service\n' });
    const empty = await run(['-G'], () => ({ ok: true, table: EMPTY_TABLE }));
    expect(empty).toMatchObject({ code: 0, stdout: 'VIP:VPORT                         TOTAL    SNAT_IP\n' });
    const denied = await run(['-G'], () => ({ ok: false, errno: 'EPERM' }));
    expect(denied).toMatchObject({ code: 1, stdout: '', stderr: 'Permission denied (you must be root)\n' });
  });

  it('-L shows FullNat servers and the client address option', async () => {
    const r = await run(['-L', '-n'], () => ({ ok: true, table: FULLNAT_TABLE }));
    expect(r.stdout).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
        'TCP  198.18.1.100:80 rr proxy-protocol\n' +
        '  -> 10.0.0.3:8080                FullNat 2      1          0         \n' +
        'TCP  198.18.1.101:80 rr toa\n' +
        'UDP  198.18.1.100:53 rr\n',
    );
  });

  it('-S writes laddrs after their service, -R reads everything back as one batch', async () => {
    const saved = await run(['-S', '-n'], () => ({ ok: true, table: FULLNAT_TABLE }));
    expect(saved.stdout).toBe(
      '-A -t 198.18.1.100:80 -s rr --proxy-protocol\n' +
        '--add-laddr -t 198.18.1.100:80 -z 198.18.2.2\n' +
        '--add-laddr -t 198.18.1.100:80 -z 198.18.2.1\n' +
        '-a -t 198.18.1.100:80 -r 10.0.0.3:8080 --fullnat -w 2\n' +
        '-A -t 198.18.1.101:80 -s rr --toa\n' +
        '--add-laddr -t 198.18.1.101:80 -z 198.18.2.3\n' +
        '-A -u 198.18.1.100:53 -s rr\n',
    );
    const restored = await run(['-R'], okReply, saved.stdout);
    expect(restored).toMatchObject({ code: 0, stderr: '' });
    const SERVICE_FIELDS = { scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
    const VIP2 = { ...VIP, addr: '198.18.1.101' };
    expect(restored.requests).toEqual([
      {
        op: 'batch',
        commands: [
          { op: 'add-service', service: { ...VIP, ...SERVICE_FIELDS, clientAddress: 'proxy-protocol' } },
          { op: 'add-laddr', service: VIP, laddr: '198.18.2.2' },
          { op: 'add-laddr', service: VIP, laddr: '198.18.2.1' },
          {
            op: 'add-server',
            service: VIP,
            dest: { af: 4, addr: '10.0.0.3', port: 8080, forward: 5, weight: 2, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 },
          },
          { op: 'add-service', service: { ...VIP2, ...SERVICE_FIELDS, clientAddress: 'toa' } },
          { op: 'add-laddr', service: VIP2, laddr: '198.18.2.3' },
          { op: 'add-service', service: { ...VIP, protocol: 17, port: 53, ...SERVICE_FIELDS, clientAddress: 'none' } },
        ],
      },
    ]);
  });

  it('-R: a failing laddr line is named; -G is not a rule command', async () => {
    const text = '-A -t 198.18.1.100:80 -s rr\n--add-laddr -t 198.18.1.100:80 -z 198.18.2.1\n-P -t 198.18.1.100:80 -z 198.18.2.1\n';
    const r = await run(['-R'], () => ({ ok: false, errno: 'EEXIST', failedIndex: 2 }), text);
    expect(r).toMatchObject({ code: 255, stderr: 'tapvs: line 3: Local address already exists\ntapvs: no rules restored\n' });
    const g = await run(['-R'], okReply, '-A -t 198.18.1.100:80 -s rr\n-G\n');
    expect(g).toMatchObject({ code: 2, stderr: 'tapvs: line 2: not a rule command: -G\n' });
    expect(g.requests).toEqual([]);
    const bad = await run(['-R'], okReply, '-A -t 198.18.1.100:80 -s rr\n--add-laddr -t 198.18.1.100:80 -z 127.0.0.1\n');
    expect(bad).toMatchObject({
      code: 2,
      stderr: "tapvs: line 2: illegal local address `127.0.0.1' specified (not a unicast address outside 0.0.0.0/8 and 127.0.0.0/8)\n",
    });
  });
});

function serviceKeyFields(t: TableSnapshot): { af: 4 | 6; protocol: number; addr: string; port: number; fwmark: number } {
  const s = t.services[0]!;
  return { af: s.af, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark };
}

// ------------------------------------------------------------------------------------------------
// ControlClient over a real Unix socket

describe('ControlClient', () => {
  let dir: string;
  let server: Server;
  let socketPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tapvs-cli-'));
    socketPath = join(dir, 'ctl.sock');
    server = createServer((conn) => {
      let buffered = '';
      conn.setEncoding('utf8');
      conn.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const req = JSON.parse(buffered.slice(0, nl)) as Request;
          buffered = buffered.slice(nl + 1);
          const reply: Reply =
            req.op === 'get-timeouts' ? { ok: true, timeouts: { tcp: 1, tcpfin: 2, udp: 3 } } : { ok: false, errno: 'ESRCH' };
          conn.write(`${JSON.stringify(reply)}\n`);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends JSON lines and matches replies in order', async () => {
    const client = new ControlClient(socketPath);
    const [a, b] = await Promise.all([client.request({ op: 'get-timeouts' }), client.request({ op: 'flush' })]);
    client.close();
    expect(a).toEqual({ ok: true, timeouts: { tcp: 1, tcpfin: 2, udp: 3 } });
    expect(b).toEqual({ ok: false, errno: 'ESRCH' });
  });

  it('a missing socket is a connection error with the system reason', async () => {
    const client = new ControlClient(join(dir, 'missing.sock'));
    await expect(client.request({ op: 'flush' })).rejects.toThrow(
      `cannot connect to tapvsd at ${join(dir, 'missing.sock')}: No such file or directory`,
    );
    client.close();
  });

  it('runTapvs end to end through the socket', async () => {
    let out = '';
    const code = await runTapvs(['-L', '--timeout', '--socket', socketPath], {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: () => undefined },
      stdin: '',
      connect: (p) => new ControlClient(p),
    });
    expect(code).toBe(0);
    expect(out).toBe('Timeout (tcp tcpfin udp): 1 2 3\n');
  });
});
