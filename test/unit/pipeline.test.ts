/**
 * The data plane without a TAP: frames in, frames out, through the real Pipeline with a recording
 * transmit side. Golden NAT frames in both directions, ARP and ICMP behaviour, and hostile input.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ServiceTable } from '../../src/control/service-table.js';
import { ConnectionTracker } from '../../src/conntrack/connection-tracker.js';
import { HostStack } from '../../src/dataplane/host.js';
import { NeighborTable } from '../../src/dataplane/neighbors.js';
import { Pipeline } from '../../src/dataplane/pipeline.js';
import { RoutingTable } from '../../src/dataplane/routes.js';
import { RecordingTap } from '../recording-tap.js';
import { checksum, pseudoHeaderSum4 } from '../../src/dataplane/wire/checksum.js';
import { formatIpv4, Ipv4View, parseIpv4 } from '../../src/dataplane/wire/ipv4.js';
import { TcpView, TCP_ACK, TCP_SYN } from '../../src/dataplane/wire/tcp.js';
import { ForwardMethod } from '../../src/control/model.js';
import { DROP_REASON_NAMES } from '../../src/dataplane/drops.js';
import { IpvsSysctls } from '../../src/control/sysctls.js';
import { Ipv6Addresses } from '../../src/dataplane/addresses6.js';
import { formatIpv6, Ipv6View, parseIpv6 } from '../../src/dataplane/wire/ipv6.js';
import { icmpv6Checksum, solicitedNodeAddress } from '../../src/dataplane/wire/icmpv6.js';

const SLOT = 2048;
const HEADROOM = 64;
const DIRECTOR_MAC = Uint8Array.from([2, 0, 0, 0, 0, 0xfe]);
const CLIENT_MAC = Uint8Array.from([2, 0, 0, 0, 0, 1]);
const RS_MAC = Uint8Array.from([2, 0, 0, 0, 0, 0x11]);
const VIP = '198.18.1.100', CIP = '198.18.1.2', RIP = '198.18.2.11';

function director(opts: { knownRs?: boolean; sysctls?: IpvsSysctls } = {}) {
  const tap = new RecordingTap(SLOT, 8, 8);
  const tx = tap.txBatch();
  const services = new ServiceTable();
  const tracker = new ConnectionTracker(services.dests, 1000, 0, opts.sysctls ?? new IpvsSysctls());
  tracker.onDestinationUnreferenced = (d) => services.releaseIfUnreferenced(d);
  const routes = new RoutingTable([
    { addr: parseIpv4('198.18.1.1'), prefix: 24 },
    { addr: parseIpv4('198.18.2.1'), prefix: 24 },
  ]);
  const neighbors = new NeighborTable(64, 16);
  if (opts.knownRs !== false) neighbors.learn(parseIpv4(RIP), RS_MAC, 0, 0);
  neighbors.learn(parseIpv4(CIP), CLIENT_MAC, 0, 0);
  const host = new HostStack(DIRECTOR_MAC, tx);
  const pipeline = new Pipeline(DIRECTOR_MAC, services, tracker, routes, neighbors, host, tx);
  const svc = { af: 4 as const, protocol: 6, addr: VIP, port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
  expect(services.addService(svc)).toBeNull();
  const feed = (frame: Uint8Array): Uint8Array[] => {
    tap.sent.length = 0;
    tap.arena.set(frame, HEADROOM);
    const lengths = new Int32Array(8);
    lengths[0] = frame.length;
    pipeline.processBatch(tap.arena, SLOT, HEADROOM, lengths, 1, 1);
    return tap.sent.slice();
  };
  /** Up to 8 frames (the RX slots) in one batch, as the TAP hands them over. */
  const feedBatch = (frames: Uint8Array[]): Uint8Array[] => {
    tap.sent.length = 0;
    const lengths = new Int32Array(8);
    frames.forEach((f, i) => {
      tap.arena.set(f, i * SLOT + HEADROOM);
      lengths[i] = f.length;
    });
    pipeline.processBatch(tap.arena, SLOT, HEADROOM, lengths, frames.length, 1);
    return tap.sent.slice();
  };
  const addRs = (forward = ForwardMethod.Masq, tunType = 0, tunPort = 0, tunFlags = 0): void => {
    const port = forward === ForwardMethod.Masq ? 8080 : 80; // ipvsadm forces the service port for -g/-i
    expect(services.addDest(svc, { af: 4, addr: RIP, port, forward, weight: 1, uThreshold: 0, lThreshold: 0, tunType, tunPort, tunFlags })).toBeNull();
  };
  const deleteRs = (): void => {
    expect(services.deleteDest(svc, { af: 4, addr: RIP, port: 8080 })).toBeNull();
  };
  return { pipeline, services, tracker, tap, feed, feedBatch, addRs, deleteRs, svc };
}

function tcpFrame(dstMac: Uint8Array, srcMac: Uint8Array, src: string, sport: number, dst: string, dport: number, flags: number, payload = 0, df = true, tos = 0): Uint8Array {
  const total = 40 + payload;
  const f = new Uint8Array(14 + total);
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  f[12] = 8;
  new Ipv4View().at(f, 14).write(tos, total, 0x1234, df, 64, 6, parseIpv4(src), parseIpv4(dst));
  const t = new TcpView().at(f, 34);
  t.write(sport, dport, 1000, flags & TCP_ACK ? 5000 : 0, flags, 65535);
  for (let i = 0; i < payload; i++) f[54 + i] = i & 0xff;
  t.checksum = checksum(f, 34, 20 + payload, pseudoHeaderSum4(parseIpv4(src), parseIpv4(dst), 6, 20 + payload));
  return f;
}

function arpRequest(target: string): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xff, 0, 6);
  f.set(CLIENT_MAC, 6);
  f.set([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1], 12);
  f.set(CLIENT_MAC, 22);
  f.set([198, 18, 1, 2], 28);
  f.set(parseIpv4(target) === parseIpv4(VIP) ? [198, 18, 1, 100] : target.split('.').map(Number), 38);
  return f;
}

/** The real server's ARP reply to the director's request for the RIP (from the DIP). */
function arpReplyFromRs(): Uint8Array {
  const f = new Uint8Array(42);
  f.set(DIRECTOR_MAC, 0);
  f.set(RS_MAC, 6);
  f.set([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2], 12);
  f.set(RS_MAC, 22);
  f.set([198, 18, 2, 11], 28);
  f.set(DIRECTOR_MAC, 32);
  f.set([198, 18, 2, 1], 38);
  return f;
}

function l4Valid(frame: Uint8Array): boolean {
  const ip = new Ipv4View().at(frame, 14);
  const len = ip.totalLength - ip.headerLength;
  return checksum(frame, ip.payloadOff, len, pseudoHeaderSum4(ip.src, ip.dst, ip.protocol, len)) === 0;
}

const mac = (f: Uint8Array, off: number): string => Array.from(f.subarray(off, off + 6), (b) => b.toString(16).padStart(2, '0')).join(':');

describe('Pipeline (NAT)', () => {
  it('answers ARP for the VIP with the director MAC', () => {
    const d = director();
    const out = d.feed(arpRequest(VIP));
    expect(out).toHaveLength(1);
    const r = out[0];
    expect(mac(r, 0)).toBe('02:00:00:00:00:01');
    expect(mac(r, 6)).toBe('02:00:00:00:00:fe');
    expect(r[21]).toBe(2); // ARP reply
    expect(mac(r, 22)).toBe('02:00:00:00:00:fe');
    expect(Array.from(r.subarray(28, 32))).toEqual([198, 18, 1, 100]);
    expect(mac(r, 32)).toBe('02:00:00:00:00:01');
    // Not for an address we do not own.
    expect(d.feed(arpRequest('198.18.1.77'))).toHaveLength(0);
  });

  it('DNATs a client SYN to the real server and SNATs the reply back to the VIP (golden fields)', () => {
    const d = director();
    d.addRs();
    const [fwd] = d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 40000, VIP, 80, TCP_SYN));
    expect(mac(fwd, 0)).toBe('02:00:00:00:00:11');
    expect(mac(fwd, 6)).toBe('02:00:00:00:00:fe');
    const ip = new Ipv4View().at(fwd, 14);
    expect([formatIpv4(ip.src), formatIpv4(ip.dst), ip.ttl]).toEqual([CIP, RIP, 63]);
    expect(new TcpView().at(fwd, 34).dstPort).toBe(8080);
    expect(ip.checksumValid()).toBe(true);
    expect(l4Valid(fwd)).toBe(true);

    const [back] = d.feed(tcpFrame(DIRECTOR_MAC, RS_MAC, RIP, 8080, CIP, 40000, TCP_SYN | TCP_ACK, 10));
    const bip = new Ipv4View().at(back, 14);
    expect(mac(back, 0)).toBe('02:00:00:00:00:01');
    expect([formatIpv4(bip.src), formatIpv4(bip.dst), bip.ttl]).toEqual([VIP, CIP, 63]);
    expect(new TcpView().at(back, 34).srcPort).toBe(80);
    expect(bip.checksumValid()).toBe(true);
    expect(l4Valid(back)).toBe(true);
    expect(d.pipeline.forwardedIn).toBe(1);
    expect(d.pipeline.forwardedOut).toBe(1);
  });

  it('multiqueue: queue 0 relays the ARP reply another queue waits for, within 200 frames a second', () => {
    // Queue 1 resolves the real server; its reply arrives on queue 0 (not TCP/UDP), which relays it.
    const q1 = director({ knownRs: false });
    q1.addRs();
    expect(q1.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 40001, VIP, 80, TCP_SYN))[0][21]).toBe(1); // ARP request
    const q0 = director({ knownRs: false });
    const relayed: Uint8Array[] = [];
    q0.pipeline.onNeighborFrame = (f) => relayed.push(f);
    const reply = arpReplyFromRs();
    q0.feed(reply);
    expect(relayed).toHaveLength(1);
    expect(Array.from(relayed[0])).toEqual(Array.from(reply));
    // Queue 1 learns from the copy, sends the SYN it held, and answers nothing.
    q1.tap.sent.length = 0;
    q1.pipeline.learnFromRelayedFrame(relayed[0], 0, relayed[0].length, 2);
    expect(q1.tap.sent).toHaveLength(1);
    expect(mac(q1.tap.sent[0], 0)).toBe('02:00:00:00:00:11');
    // A flood of ARP replies: 200 relayed in a second, the rest counted.
    for (let i = 0; i < 250; i++) q0.feed(reply);
    expect(relayed).toHaveLength(200);
    expect(q0.pipeline.neighborRelaysSuppressed).toBe(51);
  });

  it('queues a frame until the real server answers ARP, then sends it', () => {
    const d = director({ knownRs: false });
    d.addRs();
    const out = d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 40001, VIP, 80, TCP_SYN));
    expect(out).toHaveLength(1);
    expect(out[0][21]).toBe(1); // an ARP request ...
    expect(Array.from(out[0].subarray(38, 42))).toEqual([198, 18, 2, 11]); // ... for the RIP
    expect(Array.from(out[0].subarray(28, 32))).toEqual([198, 18, 2, 1]); // from the DIP
    const reply = arpReplyFromRs();
    const flushed = d.feed(reply);
    expect(flushed).toHaveLength(1);
    expect(mac(flushed[0], 0)).toBe('02:00:00:00:00:11');
    expect(formatIpv4(new Ipv4View().at(flushed[0], 14).dst)).toBe(RIP);
  });

  it('sends ICMP port unreachable from the VIP when no destination is available', () => {
    const d = director();
    const syn = tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 40002, VIP, 80, TCP_SYN);
    const [icmp] = d.feed(syn);
    const ip = new Ipv4View().at(icmp, 14);
    expect([formatIpv4(ip.src), formatIpv4(ip.dst), ip.protocol]).toEqual([VIP, CIP, 1]);
    expect([icmp[34], icmp[35]]).toEqual([3, 3]);
    expect(checksum(icmp, 34, ip.totalLength - 20)).toBe(0);
    expect(Array.from(icmp.subarray(42, 42 + 28))).toEqual(Array.from(syn.subarray(14, 42))); // original header + 8 bytes
    expect(d.pipeline.drops.snapshot()['no-destination']).toBe(1);
  });

  it('resets a TCP segment to the VIP that belongs to no connection', () => {
    const d = director();
    d.addRs();
    const [rst] = d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 40003, VIP, 80, TCP_ACK));
    const t = new TcpView().at(rst, 34);
    expect(t.flags & 0x04).toBe(0x04);
    expect(t.seq).toBe(5000); // seq = the segment's ack
    expect(l4Valid(rst)).toBe(true);
    expect(d.tracker.table.count).toBe(0);
  });

  it('TUN: encapsulates the untouched client packet in IPIP from the DIP to the RIP (golden outer header)', () => {
    const d = director();
    d.addRs(ForwardMethod.Tunnel);
    const syn = tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 42000, VIP, 80, TCP_SYN, 0, true, 0xb8 | 3); // DSCP EF, ECN CE
    const [out] = d.feed(syn);
    expect(out.length).toBe(syn.length + 20);
    expect(mac(out, 0)).toBe('02:00:00:00:00:11');
    const outer = new Ipv4View().at(out, 14);
    expect([formatIpv4(outer.src), formatIpv4(outer.dst), outer.protocol, outer.ttl, outer.totalLength]).toEqual(['198.18.2.1', RIP, 4, 63, 60]);
    expect(outer.tos).toBe(0xb8 | 2); // CE carried as ECT(0)
    expect(outer.dontFragment).toBe(true);
    expect(outer.checksumValid()).toBe(true);
    const inner = new Ipv4View().at(out, 34);
    expect([formatIpv4(inner.src), formatIpv4(inner.dst), inner.ttl]).toEqual([CIP, VIP, 63]);
    expect(inner.checksumValid()).toBe(true);
    expect(Array.from(out.subarray(54))).toEqual(Array.from(syn.subarray(34))); // TCP untouched
    expect(d.tracker.table.count).toBe(1);
  });

  it('TUN: too big with DF -> ICMP fragmentation needed (MTU 1480) from the VIP; without DF -> outer fragments', () => {
    const d = director();
    d.addRs(ForwardMethod.Tunnel);
    d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 42001, VIP, 80, TCP_SYN));
    const big = tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 42001, VIP, 80, TCP_ACK, 1460); // 1500 bytes of IP
    const [icmp] = d.feed(big);
    const ip = new Ipv4View().at(icmp, 14);
    expect([formatIpv4(ip.src), formatIpv4(ip.dst), icmp[34], icmp[35], (icmp[40] << 8) | icmp[41]]).toEqual([VIP, CIP, 3, 4, 1480]);
    expect(d.pipeline.drops.snapshot()['too-big']).toBe(1);

    const frags = d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 42001, VIP, 80, TCP_ACK, 1460, false));
    expect(frags).toHaveLength(2);
    const a = new Ipv4View().at(frags[0], 14), b = new Ipv4View().at(frags[1], 14);
    expect([a.totalLength, a.fragmentWord, b.totalLength, b.fragmentWord]).toEqual([1500, 0x2000, 40, 1480 / 8]);
    expect(a.id).toBe(b.id);
    expect(a.checksumValid() && b.checksumValid()).toBe(true);
    // Reassembled payload = the inner packet.
    const inner = new Uint8Array([...frags[0].subarray(34), ...frags[1].subarray(34)]);
    expect(inner.length).toBe(1500);
    expect(formatIpv4(new Ipv4View().at(inner, 0).dst)).toBe(VIP);
  });

  it('ICMP errors: port unreachable from the real server reaches the client as an error about VIP:80', () => {
    const d = director();
    d.addRs();
    const syn = tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 43000, VIP, 80, TCP_SYN);
    const [fwd] = d.feed(syn); // CIP:43000 -> RIP:8080 now
    // The real server's ICMP port unreachable about that packet: RIP -> CIP, embedding CIP:43000 -> RIP:8080.
    const embedded = fwd.subarray(14, 14 + 28);
    const f = new Uint8Array(14 + 20 + 8 + 28);
    f.set(DIRECTOR_MAC, 0);
    f.set(RS_MAC, 6);
    f[12] = 8;
    new Ipv4View().at(f, 14).write(0, 56, 9, false, 64, 1, parseIpv4(RIP), parseIpv4(CIP));
    f[34] = 3;
    f[35] = 3;
    f.set(embedded, 42);
    const c = checksum(f, 34, 36);
    f[36] = c >> 8;
    f[37] = c & 0xff;
    const [out] = d.feed(f);
    const outer = new Ipv4View().at(out, 14), inner = new Ipv4View().at(out, 42);
    expect(mac(out, 0)).toBe('02:00:00:00:00:01');
    expect([formatIpv4(outer.src), formatIpv4(outer.dst), outer.ttl]).toEqual([VIP, CIP, 63]);
    expect([formatIpv4(inner.src), formatIpv4(inner.dst)]).toEqual([CIP, VIP]);
    expect([(out[62] << 8) | out[63], (out[64] << 8) | out[65]]).toEqual([43000, 80]);
    expect(outer.checksumValid() && inner.checksumValid()).toBe(true);
    expect(checksum(out, 34, 36)).toBe(0);
  });

  it('ICMP errors: fragmentation needed from the client about a reply reaches the real server translated', () => {
    const d = director();
    d.addRs();
    d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 43001, VIP, 80, TCP_SYN));
    // The client's error about the reply VIP:80 -> CIP:43001.
    const reply = tcpFrame(CLIENT_MAC, DIRECTOR_MAC, VIP, 80, CIP, 43001, TCP_SYN | TCP_ACK);
    const f = new Uint8Array(14 + 20 + 8 + 28);
    f.set(DIRECTOR_MAC, 0);
    f.set(CLIENT_MAC, 6);
    f[12] = 8;
    new Ipv4View().at(f, 14).write(0, 56, 9, false, 64, 1, parseIpv4(CIP), parseIpv4(VIP));
    f[34] = 3;
    f[35] = 4;
    f[40] = 0x05;
    f[41] = 0x00; // MTU 1280
    f.set(reply.subarray(14, 42), 42);
    const c = checksum(f, 34, 36);
    f[36] = c >> 8;
    f[37] = c & 0xff;
    const [out] = d.feed(f);
    const outer = new Ipv4View().at(out, 14), inner = new Ipv4View().at(out, 42);
    expect(mac(out, 0)).toBe('02:00:00:00:00:11');
    expect([formatIpv4(outer.src), formatIpv4(outer.dst)]).toEqual([CIP, RIP]);
    expect([formatIpv4(inner.src), formatIpv4(inner.dst), (out[62] << 8) | out[63]]).toEqual([RIP, CIP, 8080]);
    expect(checksum(out, 34, 36)).toBe(0);
    // A corrupted ICMP checksum is dropped.
    f[60] ^= 0xff;
    expect(d.feed(f)).toHaveLength(0);
  });

  it('FULLNAT: CIP -> VIP becomes LIP:lport -> RIP, the reply to LIP:lport becomes VIP -> CIP', () => {
    const d = director();
    d.addRs(ForwardMethod.FullNat);
    const LIP = '198.18.2.200';
    // No local address yet: the connection cannot be made.
    expect(d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 44000, VIP, 80, TCP_SYN))).toHaveLength(0);
    expect(d.pipeline.drops.snapshot()['no-local-port']).toBe(1);
    expect(d.tracker.table.count).toBe(0);
    expect(d.services.addLocalAddress(d.svc, LIP)).toBeNull();
    expect(d.services.addLocalAddress(d.svc, LIP)?.errno).toBe('EEXIST');
    const [fwd] = d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 44000, VIP, 80, TCP_SYN));
    const ip = new Ipv4View().at(fwd, 14), t = new TcpView().at(fwd, 34);
    expect(mac(fwd, 0)).toBe('02:00:00:00:00:11');
    expect([formatIpv4(ip.src), t.srcPort, formatIpv4(ip.dst), t.dstPort]).toEqual([LIP, 5000, RIP, 80]);
    expect(ip.checksumValid() && l4Valid(fwd)).toBe(true);
    // A second connection gets the next local port.
    const [fwd2] = d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 44001, VIP, 80, TCP_SYN));
    expect(new TcpView().at(fwd2, 34).srcPort).toBe(5001);
    // The real server answers the local address.
    const [back] = d.feed(tcpFrame(DIRECTOR_MAC, RS_MAC, RIP, 80, LIP, 5000, TCP_SYN | TCP_ACK));
    const bip = new Ipv4View().at(back, 14), bt = new TcpView().at(back, 34);
    expect(mac(back, 0)).toBe('02:00:00:00:00:01');
    expect([formatIpv4(bip.src), bt.srcPort, formatIpv4(bip.dst), bt.dstPort]).toEqual([VIP, 80, CIP, 44000]);
    expect(bip.checksumValid() && l4Valid(back)).toBe(true);
    // The LIP is answered for ARP like the director's own addresses.
    expect(d.feed(arpRequest(LIP))).toHaveLength(1);
    // A segment to the LIP that belongs to no connection is reset.
    const [rst] = d.feed(tcpFrame(DIRECTOR_MAC, RS_MAC, RIP, 80, LIP, 6000, TCP_ACK));
    expect(new TcpView().at(rst, 34).flags & 0x04).toBe(0x04);
  });

  it('FULLNAT + PROXY protocol v2: header before the first data, sequence and ACK/SACK shifted, MSS clamped', () => {
    const d = director();
    d.addRs(ForwardMethod.FullNat);
    const LIP = '198.18.2.200';
    d.services.editService({ ...d.svc, clientAddress: 'proxy-protocol' });
    d.services.addLocalAddress(d.svc, LIP);
    const seg = (o: { from: 'client' | 'rs'; seq: number; ack: number; flags: number; payload?: number; options?: number[] }): Uint8Array => {
      const opts = o.options ?? [];
      const thl = 20 + opts.length;
      const total = 20 + thl + (o.payload ?? 0);
      const f = new Uint8Array(14 + total);
      f.set(DIRECTOR_MAC, 0);
      f.set(o.from === 'client' ? CLIENT_MAC : RS_MAC, 6);
      f[12] = 8;
      const [src, sport, dst, dport] = o.from === 'client' ? [CIP, 45000, VIP, 80] : [RIP, 80, LIP, 5000];
      new Ipv4View().at(f, 14).write(0, total, 1, true, 64, 6, parseIpv4(src as string), parseIpv4(dst as string));
      const t = new TcpView().at(f, 34);
      t.write(sport as number, dport as number, o.seq, o.ack, o.flags, 65535);
      f[46] = (thl / 4) << 4;
      f.set(opts, 54);
      for (let i = 0; i < (o.payload ?? 0); i++) f[34 + thl + i] = 0x41 + (i % 26);
      t.checksum = checksum(f, 34, total - 20, pseudoHeaderSum4(parseIpv4(src as string), parseIpv4(dst as string), 6, total - 20));
      return f;
    };
    const ISN = 0xfffffff0; // wraps: sequence arithmetic must be modular
    const [syn] = d.feed(seg({ from: 'client', seq: ISN, ack: 0, flags: TCP_SYN }));
    expect(syn.length).toBe(54);
    // SYN-ACK from the real server announcing MSS 1460: the client is told 1432.
    const [synack] = d.feed(seg({ from: 'rs', seq: 5000, ack: (ISN + 1) >>> 0, flags: TCP_SYN | TCP_ACK, options: [2, 4, 0x05, 0xb4] }));
    expect((synack[54 + 2] << 8) | synack[54 + 3]).toBe(1432);
    expect(new TcpView().at(synack, 34).ack).toBe((ISN + 1) >>> 0);
    expect(l4Valid(synack)).toBe(true);
    // The handshake's ACK carries no data: unchanged.
    const [ack] = d.feed(seg({ from: 'client', seq: (ISN + 1) >>> 0, ack: 5001, flags: TCP_ACK }));
    expect(ack.length).toBe(54);
    // The first data segment gets the PROXY v2 header in front of its payload.
    const [data] = d.feed(seg({ from: 'client', seq: (ISN + 1) >>> 0, ack: 5001, flags: TCP_ACK, payload: 10 }));
    expect(data.length).toBe(54 + 28 + 10);
    const ip = new Ipv4View().at(data, 14), t = new TcpView().at(data, 34);
    expect([formatIpv4(ip.src), formatIpv4(ip.dst), ip.totalLength, t.seq]).toEqual([LIP, RIP, 20 + 20 + 28 + 10, (ISN + 1) >>> 0]);
    expect(ip.checksumValid() && l4Valid(data)).toBe(true);
    expect(Array.from(data.subarray(54, 66))).toEqual([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
    expect(Array.from(data.subarray(66, 82))).toEqual([0x21, 0x11, 0, 12, 198, 18, 1, 2, 198, 18, 1, 100, 45000 >> 8, 45000 & 0xff, 0, 80]);
    expect(String.fromCharCode(...data.subarray(82, 86))).toBe('ABCD');
    // A retransmission of that segment gets the header again.
    const [again] = d.feed(seg({ from: 'client', seq: (ISN + 1) >>> 0, ack: 5001, flags: TCP_ACK, payload: 10 }));
    expect(again.length).toBe(54 + 28 + 10);
    // Later client segments move up by 28.
    const [next] = d.feed(seg({ from: 'client', seq: (ISN + 11) >>> 0, ack: 5001, flags: TCP_ACK, payload: 5 }));
    expect(new TcpView().at(next, 34).seq).toBe((ISN + 11 + 28) >>> 0);
    expect(l4Valid(next)).toBe(true);
    // The real server's ACK (and SACK block) of header + data come back in the client's numbering.
    const sackLeft = (ISN + 1 + 28 + 10) >>> 0, sackRight = (ISN + 1 + 28 + 15) >>> 0;
    const sack = [1, 1, 5, 10, sackLeft >>> 24, (sackLeft >>> 16) & 255, (sackLeft >>> 8) & 255, sackLeft & 255, sackRight >>> 24, (sackRight >>> 16) & 255, (sackRight >>> 8) & 255, sackRight & 255];
    const [rsAck] = d.feed(seg({ from: 'rs', seq: 5001, ack: (ISN + 1 + 28 + 10) >>> 0, flags: TCP_ACK, options: sack }));
    const rt = new TcpView().at(rsAck, 34);
    expect(rt.ack).toBe((ISN + 11) >>> 0);
    const view = new DataView(rsAck.buffer, rsAck.byteOffset);
    expect([view.getUint32(54 + 4), view.getUint32(54 + 8)]).toEqual([(ISN + 11) >>> 0, (ISN + 16) >>> 0]);
    expect(l4Valid(rsAck)).toBe(true);
  });

  it('FULLNAT + TOA: option 254 with the client address in the SYN and the ACK of the server ISN + 1; MSS clamped by 8', () => {
    const d = director();
    d.addRs(ForwardMethod.FullNat);
    d.services.editService({ ...d.svc, clientAddress: 'toa' });
    d.services.addLocalAddress(d.svc, '198.18.2.200');
    const [syn] = d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 46000, VIP, 80, TCP_SYN));
    const st = new TcpView().at(syn, 34);
    expect(st.headerLength).toBe(28);
    expect(Array.from(syn.subarray(54, 62))).toEqual([254, 8, 46000 >> 8, 46000 & 0xff, 198, 18, 1, 2]);
    expect(new Ipv4View().at(syn, 14).totalLength).toBe(48);
    expect(l4Valid(syn) && new Ipv4View().at(syn, 14).checksumValid()).toBe(true);
    // SYN-ACK from the real server (ISN 7000, MSS 1460): the client sees MSS 1452.
    const sa = new Uint8Array(14 + 44);
    sa.set(DIRECTOR_MAC, 0);
    sa.set(RS_MAC, 6);
    sa[12] = 8;
    new Ipv4View().at(sa, 14).write(0, 44, 1, true, 64, 6, parseIpv4(RIP), parseIpv4('198.18.2.200'));
    new TcpView().at(sa, 34).write(80, 5000, 7000, 1001, TCP_SYN | TCP_ACK, 65535);
    sa[46] = 6 << 4;
    sa.set([2, 4, 0x05, 0xb4], 54);
    const tv = new TcpView().at(sa, 34);
    tv.checksum = checksum(sa, 34, 24, pseudoHeaderSum4(parseIpv4(RIP), parseIpv4('198.18.2.200'), 6, 24));
    const [synack] = d.feed(sa);
    expect((synack[56] << 8) | synack[57]).toBe(1452);
    expect(l4Valid(synack)).toBe(true);
    // The client's ACK of 7001 gets the option; a later ACK of other data does not.
    const ack = tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 46000, VIP, 80, TCP_ACK);
    new TcpView().at(ack, 34).ack = 7001;
    const tc = new TcpView().at(ack, 34);
    tc.checksum = 0;
    tc.checksum = checksum(ack, 34, 20, pseudoHeaderSum4(parseIpv4(CIP), parseIpv4(VIP), 6, 20));
    const [fwdAck] = d.feed(ack);
    expect(new TcpView().at(fwdAck, 34).headerLength).toBe(28);
    expect(l4Valid(fwdAck)).toBe(true);
    const later = tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 46000, VIP, 80, TCP_ACK); // ack 5000 != 7001
    expect(new TcpView().at(d.feed(later)[0], 34).headerLength).toBe(20);
  });

  it('TUN over GUE and GRE: outer IPv4 + UDP/GUE (checksum with --tun-csum) or GRE (RFC 2784 checksum), inner untouched', () => {
    const syn = tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 47000, VIP, 80, TCP_SYN);
    // GUE on port 6080 with a UDP checksum
    const g = director();
    g.addRs(ForwardMethod.Tunnel, 1, 6080, 1);
    const [gue] = g.feed(syn);
    const go = new Ipv4View().at(gue, 14);
    expect([go.protocol, go.totalLength, formatIpv4(go.dst)]).toEqual([17, 40 + 32, RIP]);
    const udpOff = 34;
    expect((gue[udpOff + 2] << 8) | gue[udpOff + 3]).toBe(6080);
    expect((gue[udpOff + 4] << 8) | gue[udpOff + 5]).toBe(8 + 4 + 40);
    expect([gue[42], gue[43], gue[44], gue[45]]).toEqual([0, 4, 0, 0]); // GUE: version 0, proto_ctype IPIP
    expect(checksum(gue, udpOff, 52, pseudoHeaderSum4(go.src, go.dst, 17, 52))).toBe(0);
    expect(formatIpv4(new Ipv4View().at(gue, 46).dst)).toBe(VIP);
    expect(go.checksumValid()).toBe(true);
    // GUE without checksum: UDP checksum 0
    const g0 = director();
    g0.addRs(ForwardMethod.Tunnel, 1, 6080, 0);
    const [gue0] = g0.feed(syn);
    expect((gue0[udpOff + 6] << 8) | gue0[udpOff + 7]).toBe(0);
    // GRE with checksum: C bit, protocol 0x0800, checksum over GRE header + payload
    const r = director();
    r.addRs(ForwardMethod.Tunnel, 2, 0, 1);
    const [gre] = r.feed(syn);
    const ro = new Ipv4View().at(gre, 14);
    expect([ro.protocol, ro.totalLength]).toEqual([47, 40 + 28]);
    expect([gre[34], gre[35], gre[36], gre[37]]).toEqual([0x80, 0, 0x08, 0x00]);
    expect(checksum(gre, 34, 8 + 40)).toBe(0);
    expect(formatIpv4(new Ipv4View().at(gre, 42).src)).toBe(CIP);
    // GRE without checksum: 4 bytes
    const r0 = director();
    r0.addRs(ForwardMethod.Tunnel, 2, 0, 0);
    const [gre0] = r0.feed(syn);
    expect(new Ipv4View().at(gre0, 14).totalLength).toBe(40 + 24);
    // The tunnel MTU shrinks with the overhead: a 1500-byte DF packet over GUE gets MTU 1468.
    g.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 47000, VIP, 80, TCP_ACK)); // (same connection)
    const [icmp] = g.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 47000, VIP, 80, TCP_ACK, 1460));
    expect([icmp[34], icmp[35], (icmp[40] << 8) | icmp[41]]).toEqual([3, 4, 1468]);
  });

  it('IPv6 presence: neighbour solicitation -> advertisement, DAD -> all nodes, echo -> reply, bad checksum dropped', () => {
    const d = director();
    const OWN = parseIpv6('fd00:1::1')!, PEER = parseIpv6('fd00:1::2')!;
    d.pipeline.setAddresses6(new Ipv6Addresses([{ addr: OWN, prefix: 64 }]));
    const icmp6 = (dstMac: number[], src: Uint8Array, dst: Uint8Array, body: number[], hop = 255): Uint8Array => {
      const f = new Uint8Array(14 + 40 + body.length);
      f.set(dstMac, 0);
      f.set(CLIENT_MAC, 6);
      f[12] = 0x86;
      f[13] = 0xdd;
      new Ipv6View().at(f, 14).write(0, body.length, 58, hop, src, 0, dst, 0);
      f.set(body, 54);
      const c = icmpv6Checksum(f, 14, 54, body.length);
      f[56] = c >> 8;
      f[57] = c & 0xff;
      return f;
    };
    const sn = new Uint8Array(16);
    solicitedNodeAddress(OWN, 0, sn, 0);
    const ns = (src: Uint8Array): Uint8Array => icmp6([0x33, 0x33, 0xff, 0, 0, 1], src, sn, [135, 0, 0, 0, 0, 0, 0, 0, ...OWN, 1, 1, ...CLIENT_MAC]);
    const [na] = d.feed(ns(PEER));
    expect(mac(na, 0)).toBe('02:00:00:00:00:01');
    expect([na[54], na[58]]).toEqual([136, 0x60]); // NA, solicited + override
    expect(formatIpv6(na.subarray(22, 38))).toBe('fd00:1::1');
    expect(formatIpv6(na.subarray(38, 54))).toBe('fd00:1::2');
    expect(Array.from(na.subarray(78, 86))).toEqual([2, 1, 2, 0, 0, 0, 0, 0xfe]);
    expect(icmpv6Checksum(na, 14, 54, 32)).toBe((na[56] << 8) | na[57]);
    // Duplicate address detection (source ::): advertised to all nodes, not solicited.
    const [dad] = d.feed(ns(new Uint8Array(16)));
    expect(mac(dad, 0)).toBe('33:33:00:00:00:01');
    expect([dad[54], dad[58]]).toEqual([136, 0x20]);
    // A solicitation for an address that is not ours, or with a hop limit below 255, gets nothing.
    expect(d.feed(icmp6([0x33, 0x33, 0xff, 0, 0, 1], PEER, sn, [135, 0, 0, 0, 0, 0, 0, 0, ...PEER]))).toHaveLength(0);
    expect(d.feed(icmp6([0x33, 0x33, 0xff, 0, 0, 1], PEER, sn, [135, 0, 0, 0, 0, 0, 0, 0, ...OWN], 64))).toHaveLength(0);
    // Echo request to our address -> reply in place.
    const echo = icmp6(Array.from(DIRECTOR_MAC), PEER, OWN, [128, 0, 0, 0, 0x12, 0x34, 0, 1, 0x61, 0x62]);
    const [rep] = d.feed(echo);
    expect(rep[54]).toBe(129);
    expect(formatIpv6(rep.subarray(38, 54))).toBe('fd00:1::2');
    expect(icmpv6Checksum(rep, 14, 54, 10)).toBe((rep[56] << 8) | rep[57]);
    // A corrupted checksum is dropped.
    echo[60] ^= 1;
    expect(d.feed(echo)).toHaveLength(0);
    // Without IPv6 addresses, IPv6 is unsupported.
    const plain = director();
    expect(plain.feed(ns(PEER))).toHaveLength(0);
  });

  it('expire_nodest_conn: packets of a deleted real server are dropped by default, rescheduled with 1', () => {
    for (const mode of [0, 1]) {
      const sysctls = new IpvsSysctls();
      sysctls.set(`expire_nodest_conn=${mode}`);
      const d = director({ sysctls });
      d.addRs();
      expect(d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 41000, VIP, 80, TCP_SYN))).toHaveLength(1);
      d.deleteRs();
      const out = d.feed(tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 41000, VIP, 80, TCP_ACK));
      if (mode === 0) {
        expect(out).toHaveLength(0);
        expect(d.pipeline.drops.snapshot()['destination-unavailable']).toBe(1);
        expect(d.tracker.table.count).toBe(1); // kept until it times out
      } else {
        // The connection is expired; the ACK cannot open a new one, so the director's stack resets it.
        expect(out).toHaveLength(1);
        expect(new TcpView().at(out[0], 34).flags & 0x04).toBe(0x04);
        expect(d.tracker.table.count).toBe(0);
      }
    }
  });

  it('counts every hostile frame as handled or dropped and never throws', () => {
    const d = director();
    d.addRs();
    const valid = tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 40004, VIP, 80, TCP_SYN, 20);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 200 }),
          fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(valid.length)).map(([at, v, cut]) => {
            const f = valid.slice(0, Math.max(cut, 1));
            if (at < f.length) f[at] = v;
            return f;
          }),
        ),
        (frame) => {
          const before = d.pipeline.framesIn;
          const drops = Array.from(d.pipeline.drops.counts).reduce((a, b) => a + b, 0);
          const fwd = d.pipeline.forwardedIn + d.pipeline.forwardedOut;
          const out = d.feed(frame);
          expect(d.pipeline.framesIn).toBe(before + 1);
          const dropsAfter = Array.from(d.pipeline.drops.counts).reduce((a, b) => a + b, 0);
          const fwdAfter = d.pipeline.forwardedIn + d.pipeline.forwardedOut;
          // Every frame is accounted for: forwarded, answered/dropped with a reason, or a host reply.
          expect(dropsAfter - drops + (fwdAfter - fwd) + (out.length > 0 ? 1 : 0)).toBeGreaterThan(0);
        },
      ),
      { numRuns: 2000 },
    );
    expect(DROP_REASON_NAMES.length).toBe(d.pipeline.drops.counts.length);
  });

  it('a batch (with its connection-prefetch pass) gives the same frames and counts as one frame at a time', () => {
    const one = director(), batched = director();
    one.addRs();
    batched.addRs();
    const valid = [
      tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 40004, VIP, 80, TCP_SYN, 20),
      tcpFrame(DIRECTOR_MAC, RS_MAC, RIP, 8080, CIP, 40004, TCP_SYN | TCP_ACK, 0),
      tcpFrame(DIRECTOR_MAC, CLIENT_MAC, CIP, 40004, VIP, 80, TCP_ACK, 100),
    ];
    const frame = fc.oneof(
      fc.constantFrom(...valid),
      fc.uint8Array({ minLength: 0, maxLength: 120 }),
      fc.tuple(fc.nat(2), fc.nat(79), fc.integer({ min: 0, max: 255 }), fc.nat(80)).map(([k, at, v, cut]) => {
        const f = valid[k].slice(0, Math.max(cut, 1));
        if (at < f.length) f[at] = v;
        return f;
      }),
    );
    fc.assert(
      fc.property(fc.array(frame, { minLength: 2, maxLength: 8 }), (frames) => {
        const sentOne = frames.flatMap((f) => one.feed(f));
        const sentBatched = batched.feedBatch(frames);
        expect(sentBatched).toEqual(sentOne);
        expect(Array.from(batched.pipeline.drops.counts)).toEqual(Array.from(one.pipeline.drops.counts));
        expect(batched.tracker.table.count).toBe(one.tracker.table.count);
      }),
      { numRuns: 500 },
    );
    expect(one.tracker.table.count).toBeGreaterThan(0);
  });
});
