/** tapvsd's command line: addresses of both families, gateways, offloads, and clear refusals. */
import { describe, expect, it } from 'vitest';
import { parseDaemonArgs, UsageError, type DaemonArgs } from '../../src/cli/tapvsd-options.js';
import { formatIpv4 } from '../../src/dataplane/wire/ipv4.js';
import { formatIpv6 } from '../../src/dataplane/wire/ipv6.js';

const parse = (line: string): DaemonArgs => parseDaemonArgs(line.split(' ')) as DaemonArgs;
const refusal = (line: string): string => {
  try {
    parseDaemonArgs(line.split(' '));
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${line}`);
};

describe('tapvsd options', () => {
  it('takes IPv4 and IPv6 addresses with their prefixes, and one gateway per family', () => {
    const a = parse('--tap t0 --address 198.18.1.1/24 --address fd00:1::1/64 --address FD00:2:0::1/48 --gateway 198.18.1.254 --gateway fd00:1::fe');
    expect(a.addresses.map((x) => [formatIpv4(x.addr), x.prefix])).toEqual([['198.18.1.1', 24]]);
    expect(a.addresses6.map((x) => [formatIpv6(x.addr), x.prefix])).toEqual([
      ['fd00:1::1', 64],
      ['fd00:2::1', 48],
    ]);
    expect(formatIpv4(a.gateway!)).toBe('198.18.1.254');
    expect(formatIpv6(a.gateway6!)).toBe('fd00:1::fe');
  });

  it('runs IPv6-only (no IPv4 address needed)', () => {
    expect(parse('--tap t0 --address fd00:1::1/64').addresses).toEqual([]);
  });

  it('offloads: on unless --no-offload (the last one given wins)', () => {
    expect(parse('--tap t0 --address 198.18.1.1/24').offload).toBeUndefined(); // the Director's default: on
    expect(parse('--tap t0 --address 198.18.1.1/24 --no-offload').offload).toBe(false);
    expect(parse('--tap t0 --address 198.18.1.1/24 --no-offload --offload').offload).toBe(true);
  });

  it('--queues N: 1..16 worker queues', () => {
    expect(parse('--tap t0 --address 198.18.1.1/24').queues).toBeUndefined();
    expect(parse('--tap t0 --address 198.18.1.1/24 --queues 2').queues).toBe(2);
    expect(refusal('--tap t0 --address 198.18.1.1/24 --queues 0')).toBe("invalid --queues '0' (1..16)");
    expect(refusal('--tap t0 --address 198.18.1.1/24 --queues 17')).toBe("invalid --queues '17' (1..16)");
    expect(refusal('--tap t0 --address 198.18.1.1/24 --queues two')).toBe("invalid --queues 'two' (1..16)");
  });

  it('--steer-by address|address-port, only with --queues', () => {
    expect(parse('--tap t0 --address 198.18.1.1/24 --queues 2').steerByAddress).toBeUndefined();
    expect(parse('--tap t0 --address 198.18.1.1/24 --queues 2 --steer-by address').steerByAddress).toBe(true);
    expect(parse('--tap t0 --address 198.18.1.1/24 --queues 2 --steer-by address-port').steerByAddress).toBe(false);
    expect(refusal('--tap t0 --address 198.18.1.1/24 --queues 2 --steer-by port')).toBe("invalid --steer-by 'port' (address or address-port)");
    expect(refusal('--tap t0 --address 198.18.1.1/24 --steer-by address')).toBe('--steer-by needs --queues 2 or more');
  });

  it('refuses bad input with a message that names it', () => {
    expect(refusal('--tap t0')).toBe('at least one --address is required');
    expect(refusal('--tap t0 --address fd00::1/129')).toBe("invalid address 'fd00::1/129' (expected IPv6/PREFIX)");
    expect(refusal('--tap t0 --address fd00:::1/64')).toBe("invalid address 'fd00:::1/64' (expected IPv6/PREFIX)");
    expect(refusal('--tap t0 --address 198.18.1.1/33')).toBe("invalid address '198.18.1.1/33' (expected IPv4/PREFIX)");
    expect(refusal('--tap t0 --address 198.18.1.1/24 --gateway fd00::zz')).toBe("invalid gateway 'fd00::zz'");
    expect(refusal('--tap t0 --address 198.18.1.1/24 --gateway')).toBe('option --gateway needs a value');
    expect(refusal('--tap t0 --address 198.18.1.1/24 --offlaod')).toBe("unknown option '--offlaod'");
  });
});
