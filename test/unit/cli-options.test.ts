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
const DEFAULT_SERVICE_FIELDS = { scheduler: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };

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

  it('features parsed for later work produce full objects when not refused', () => {
    expect(command('-A -t 10.0.0.1:0 -p', true)).toMatchObject({ service: { port: 0, flags: 1, timeout: 360 } });
    expect(command('-A -t 10.0.0.1:80 -p 100 -M 255.255.255.0', true)).toMatchObject({
      service: { flags: 1, timeout: 100, netmask: '255.255.255.0' },
    });
    expect(command('-A -u 10.0.0.1:53 -o', true)).toMatchObject({ service: { flags: 4 } });
    expect(command('-A -t 10.0.0.1:80 -s sh -b sh-port,sh-fallback', true)).toMatchObject({ service: { flags: 0x18 } });
    expect(command('-A -t 10.0.0.1:80 -b flag-3', true)).toMatchObject({ service: { flags: 0x20 } });
    expect(command('-A -f 5 -6 -M 64', true)).toEqual({
      op: 'add-service',
      service: { af: 6, protocol: 6, addr: '::', port: 0, fwmark: 5, ...DEFAULT_SERVICE_FIELDS, netmask: '64' },
    });
    expect(command('-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-remcsum -x 10 -y 5', true)).toMatchObject({
      dest: { forward: 2, tunType: 1, tunPort: 6080, tunFlags: 2, uThreshold: 10, lThreshold: 5 },
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
      [
        'daemon-listing',
        'fwmark-service',
        'gatewaying',
        'ipip',
        'ipv6',
        'l-threshold',
        'netmask',
        'ops',
        'pe',
        'persistent',
        'sched-flags',
        'start-daemon',
        'stop-daemon',
        'tun-info',
        'tunnel-options',
        'u-threshold',
      ].sort(),
    );
  });

  it('-a without -m is direct routing, ipvsadm’s default', () => {
    refused(
      '-a -t 10.0.0.1:80 -r 10.0.0.2',
      "-g (gatewaying, direct routing: ipvsadm's default forwarding method, used when -m is not given)",
    );
    refused('-e -t 10.0.0.1:80 -r 10.0.0.2 -w 2', "-g (gatewaying, direct routing: ipvsadm's default forwarding method, used when -m is not given)");
    refused('-a -t 10.0.0.1:80 -r 10.0.0.2 -g', '-g (gatewaying, direct routing)');
    // -d carries no forwarding method
    expect(command('-d -t 10.0.0.1:80 -r 10.0.0.2')).toMatchObject({ op: 'delete-server' });
  });

  it('each pending option', () => {
    refused('-a -t 10.0.0.1:80 -r 10.0.0.2 -i', '-i (ipip, tunneling)');
    refused('-A -t 10.0.0.1:0 -p', '-p (persistent service)');
    refused('-A -t 10.0.0.1:80 -M 255.255.255.0', '-M (persistence netmask)');
    refused('-A -f 1', '-f (fwmark service)');
    refused('-L -f 1', '-f (fwmark service)');
    refused('-Z -f 1 -6', '-f (fwmark service)');
    refused('-A -t 10.0.0.1:80 -b flag-1', '-b (scheduler flags)');
    refused('-a -t 10.0.0.1:80 -r 10.0.0.2 -m -x 5', '-x (upper threshold)');
    refused('-a -t 10.0.0.1:80 -r 10.0.0.2 -m -y 5', '-y (lower threshold)');
    refused('-A -u 10.0.0.1:53 -o', '-o (one-packet scheduling)');
    refused('-A -t 10.0.0.1:80 --pe sip', '--pe (persistence engine)');
    refused('--start-daemon master', '--start-daemon (connection synchronisation)');
    refused('--stop-daemon backup', '--stop-daemon (connection synchronisation)');
    refused('-L --daemon', '--daemon (sync daemon listing)');
    refused('-L --tun-info', '--tun-info (tunnel listing)');
  });

  it('ipvsadm’s own errors come first', () => {
    expect(failure('-A -t 10.0.0.1:80 -p 0')).toEqual(fail2("invalid timeout value `0' specified"));
    expect(failure('-a -t 10.0.0.1:80 -r [::1]:80')).toEqual(fail2('Different address family is allowed only for tunneling servers'));
    expect(failure('-L --daemon --stats')).toEqual(fail2('options conflicts in the list command'));
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
    const n = await run(['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2'], okReply);
    expect(n.code).toBe(2);
    expect(n.stderr).toBe(
      "tapvs: -g (gatewaying, direct routing: ipvsadm's default forwarding method, used when -m is not given) is not supported yet\n",
    );
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
    const dr = await run(['-R'], okReply, '-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -g -w 1\n');
    expect(dr).toMatchObject({ code: 2, stderr: 'tapvs: line 2: -g (gatewaying, direct routing) is not supported yet\n' });
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
