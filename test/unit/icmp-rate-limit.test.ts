/**
 * The director's ICMP errors are limited as the kernel limits a host's: per peer (inet_peer_xrlim_allow,
 * one a second with bursts of 6) and for the whole host (icmp_global_allow: 1000 a second, a burst of 50,
 * shared by IPv4 and IPv6), except the ones path MTU discovery needs.
 */
import { describe, expect, it } from 'vitest';
import { IcmpRateLimit } from '../../src/dataplane/icmp-rate-limit.js';
import { HostStack } from '../../src/dataplane/host.js';
import { RecordingTap } from '../recording-tap.js';

const PORT_UNREACH: [number, number] = [3, 3];
const FRAG_NEEDED: [number, number] = [3, 4];
const TIME_EXCEEDED: [number, number] = [11, 0];
const CLIENT = 0xc6120102;

describe('the per-peer ICMP error limit', () => {
  it('lets a burst of 6 through to one peer, then one a second; other peers have their own', () => {
    let now = 0;
    const limit = new IcmpRateLimit(1000, 50, () => now);
    const sent = (n: number, peer = CLIENT, [type, code] = PORT_UNREACH): number => {
      let ok = 0;
      for (let i = 0; i < n; i++) if (limit.allows4(type, code, peer)) ok++;
      return ok;
    };
    expect(sent(10)).toBe(6);
    expect(sent(10, CLIENT + 1)).toBe(6);
    now = 999;
    expect(sent(5)).toBe(0); // not yet a whole second
    now = 1000;
    expect(sent(5)).toBe(1);
    now = 3500; // 2.5 s later: two tokens
    expect(sent(5)).toBe(2);
    now = 100_000; // a long pause banks no more than the burst
    expect(sent(10)).toBe(6);
    // Errors path MTU discovery needs, and echo replies (not errors), are never limited.
    expect(sent(100, CLIENT, FRAG_NEEDED)).toBe(100);
    expect(sent(100, CLIENT, [0, 0])).toBe(100);
    expect(sent(10, CLIENT, TIME_EXCEEDED)).toBe(0); // the same peer's bucket
    expect(limit.suppressed).toBe(10 - 6 + 10 - 6 + 5 + 4 + 3 + 4 + 10);
  });

  it('IPv6 peers: a /64 peer gets one every 250 ms; packet too big and informational ICMPv6 are exempt', () => {
    let now = 0;
    const limit = new IcmpRateLimit(1000, 50, () => now);
    let ok = 0;
    for (let i = 0; i < 10; i++) if (limit.allows6(1, 0xfd000001)) ok++;
    expect(ok).toBe(6);
    now = 250;
    expect(limit.allows6(1, 0xfd000001)).toBe(true);
    expect(limit.allows6(1, 0xfd000001)).toBe(false);
    expect(limit.allows6(2, 0xfd000001)).toBe(true); // packet too big
    expect(limit.allows6(129, 0xfd000001)).toBe(true); // echo reply
  });
});

describe('the global ICMP error limit', () => {
  it('lets 50 through at once over many peers, then 1000 a second topped up every 20 ms at the soonest', () => {
    let now = 0;
    const limit = new IcmpRateLimit(1000, 50, () => now);
    let peer = 0xc6130000;
    const sent = (n: number): number => {
      let ok = 0;
      for (let i = 0; i < n; i++) if (limit.allows4(...PORT_UNREACH, peer++)) ok++; // a new peer each time
      return ok;
    };
    expect(sent(80)).toBe(50);
    now = 10; // less than 20 ms later: nothing yet
    expect(sent(5)).toBe(0);
    now = 30; // 30 ms after the last top-up: 30 credits
    expect(sent(100)).toBe(30);
    now = 5000; // a long pause banks no more than the burst
    expect(sent(100)).toBe(50);
  });

  it('is shared by IPv4 and IPv6, and a peer\'s refusal takes no global credit', () => {
    const limit = new IcmpRateLimit(1000, 50, () => 0);
    for (let i = 0; i < 30; i++) expect(limit.allows4(...PORT_UNREACH, 0xc6130000 + i)).toBe(true);
    for (let i = 0; i < 100; i++) limit.allows4(...PORT_UNREACH, CLIENT); // 6 pass, 94 stopped by the peer's bucket
    let v6 = 0;
    for (let i = 0; i < 30; i++) if (limit.allows6(1, 0xfd000000 + i)) v6++;
    expect(v6).toBe(50 - 30 - 6);
  });
});

describe('HostStack', () => {
  it('sends a flooding client no more port unreachables than its bucket holds', () => {
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
    expect(tap.sent).toHaveLength(6);
    expect(host.icmpLimit.suppressed).toBe(54);
    for (let i = 0; i < 5; i++) {
      host.icmpError(frame, 0, ...FRAG_NEEDED, 0xc6120164, 1400);
      tx.flush();
    }
    expect(tap.sent).toHaveLength(11);
  });
});
