/** IPv6 groundwork: address text, the pseudo-header checksum and ND messages against known vectors. */
import { describe, expect, it } from 'vitest';
import { formatIpv6, IPPROTO_ICMPV6, Ipv6View, parseIpv6 } from '../../src/dataplane/wire/ipv6.js';
import { icmpv6Checksum, isIcmpv6Error, multicastMac, NA_FLAG_OVERRIDE, NA_FLAG_SOLICITED, solicitedNodeAddress, writeNeighborAdvert } from '../../src/dataplane/wire/icmpv6.js';

describe('IPv6 addresses', () => {
  it('parses and prints RFC 5952 forms', () => {
    for (const [text, canonical] of [
      ['fd00::1', 'fd00::1'],
      ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
      ['fd00:0:0:1:0:0:0:1', 'fd00:0:0:1::1'],
      ['fd00:1:2:3:4:5:6:7', 'fd00:1:2:3:4:5:6:7'],
      ['::', '::'],
      ['::ffff:198.18.1.2', '::ffff:c612:102'],
      ['fd00:0:0:0:1:0:0:0', 'fd00::1:0:0:0'],
    ]) {
      const a = parseIpv6(text);
      expect(a, text).not.toBeNull();
      expect(formatIpv6(a!)).toBe(canonical);
    }
    for (const bad of ['fd00::1::2', 'fd00:1:2:3:4:5:6:7:8', 'g::1', '1:2:3', '::1.2.3.256']) expect(parseIpv6(bad), bad).toBeNull();
  });
});

describe('IPv6 and ICMPv6 wire', () => {
  function packet(icmp: number[]): Uint8Array {
    const f = new Uint8Array(40 + icmp.length);
    new Ipv6View().at(f, 0).write(0, icmp.length, IPPROTO_ICMPV6, 64, parseIpv6('fd00::1')!, 0, parseIpv6('fd00::2')!, 0);
    f.set(icmp, 40);
    return f;
  }

  it('computes the ICMPv6 checksum over the pseudo-header (echo request vector)', () => {
    const f = packet([128, 0, 0, 0, 0x12, 0x34, 0, 1, ...Buffer.from('abcd')]);
    const v = new Ipv6View().at(f, 0);
    expect([v.version, v.payloadLength, v.nextHeader, v.hopLimit]).toEqual([6, 12, 58, 64]);
    expect(icmpv6Checksum(f, 0, 40, 12)).toBe(0xaeb8); // computed independently
  });

  it('builds a solicited, override neighbour advertisement (vector)', () => {
    const f = packet(new Array(32).fill(0));
    const mac = Uint8Array.from([2, 0, 0, 0, 0, 0xfe]);
    expect(writeNeighborAdvert(f, 40, NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE, parseIpv6('fd00::1')!, 0, mac)).toBe(32);
    expect(icmpv6Checksum(f, 0, 40, 32)).toBe(0x1b9f);
    expect(Array.from(f.subarray(64, 72))).toEqual([2, 1, 2, 0, 0, 0, 0, 0xfe]);
  });

  it('derives the solicited-node address and its multicast MAC', () => {
    const target = parseIpv6('fd00::12:3456')!;
    const sn = new Uint8Array(16), mac = new Uint8Array(6);
    solicitedNodeAddress(target, 0, sn, 0);
    expect(formatIpv6(sn)).toBe('ff02::1:ff12:3456');
    multicastMac(sn, 0, mac, 0);
    expect(Array.from(mac)).toEqual([0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
  });

  it('classifies error and informational types', () => {
    expect([1, 2, 3, 4].every(isIcmpv6Error)).toBe(true);
    expect([128, 129, 135, 136].some(isIcmpv6Error)).toBe(false);
  });
});
