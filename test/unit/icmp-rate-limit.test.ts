/**
 * The director's ICMP errors are limited as the kernel limits a host's (icmp_global_allow: 1000 a second,
 * a burst of 50, shared by IPv4 and IPv6), except the ones path MTU discovery needs.
 */
import { describe, expect, it } from 'vitest';
import { IcmpRateLimit } from '../../src/dataplane/icmp-rate-limit.js';
import { HostStack } from '../../src/dataplane/host.js';
import { RecordingTap } from '../recording-tap.js';

const PORT_UNREACH: [number, number] = [3, 3];
const FRAG_NEEDED: [number, number] = [3, 4];
const TIME_EXCEEDED: [number, number] = [11, 0];

describe('the global ICMP error limit', () => {
  it('lets a burst of 50 through, then 1000 a second topped up every 20 ms at the soonest', () => {
    let now = 0;
    const limit = new IcmpRateLimit(1000, 50, () => now);
    const sent = (n: number, [type, code] = PORT_UNREACH): number => {
      let ok = 0;
      for (let i = 0; i < n; i++) if (limit.allows4(type, code)) ok++;
      return ok;
    };
    expect(sent(80)).toBe(50);
    expect(limit.suppressed).toBe(30);
    now = 10; // less than 20 ms later: nothing yet
    expect(sent(5)).toBe(0);
    now = 30; // 30 ms after the last top-up: 30 credits
    expect(sent(100)).toBe(30);
    now = 5000; // a long pause banks no more than the burst
    expect(sent(100)).toBe(50);
    // Errors path MTU discovery needs, and echo replies (not errors), are never limited.
    expect(sent(100, FRAG_NEEDED)).toBe(100);
    expect(sent(100, [0, 0])).toBe(100);
    expect(sent(10, TIME_EXCEEDED)).toBe(0);
  });

  it('is shared by IPv4 and IPv6; packet too big and informational ICMPv6 are exempt', () => {
    const now = 0;
    const limit = new IcmpRateLimit(1000, 50, () => now);
    for (let i = 0; i < 30; i++) expect(limit.allows4(...PORT_UNREACH)).toBe(true);
    let v6 = 0;
    for (let i = 0; i < 30; i++) if (limit.allows6(1)) v6++; // destination unreachable
    expect(v6).toBe(20);
    expect(limit.allows6(2)).toBe(true); // packet too big
    expect(limit.allows6(129)).toBe(true); // echo reply
    expect(limit.allows6(3)).toBe(false); // time exceeded
  });

  it('HostStack sends no more port unreachables than the limit allows', () => {
    const tap = new RecordingTap(2048, 4, 4);
    const tx = tap.txBatch();
    const host = new HostStack(Uint8Array.from([2, 0, 0, 0, 0, 0xfe]), tx, new IcmpRateLimit(1000, 50, () => 0));
    // A UDP datagram 198.18.1.2:40000 -> 198.18.1.100:9999 (only the headers matter to icmpError).
    const frame = new Uint8Array(14 + 20 + 8);
    frame.set([2, 0, 0, 0, 0, 0xfe, 2, 0, 0, 0, 0, 1, 8, 0]);
    frame.set([0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 1, 2, 198, 18, 1, 100], 14);
    frame.set([0x9c, 0x40, 0x27, 0x0f, 0, 8, 0, 0], 34);
    for (let i = 0; i < 60; i++) {
      host.icmpError(frame, 0, ...PORT_UNREACH, 0xc6120164);
      tx.flush();
    }
    expect(tap.sent).toHaveLength(50);
    expect(host.icmpLimit.suppressed).toBe(10);
    for (let i = 0; i < 5; i++) {
      host.icmpError(frame, 0, ...FRAG_NEEDED, 0xc6120164, 1400);
      tx.flush();
    }
    expect(tap.sent).toHaveLength(55);
  });
});
