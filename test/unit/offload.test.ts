/**
 * Offloaded frames (virtio_net_hdr) through the real Pipeline: a partial checksum updated for NAT's
 * address change only and the header passed on; a TCP super-frame forwarded whole by NAT and cut into
 * segments for a tunnel; segmentation vectors.
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
import { checksum, fold, pseudoHeaderSum4 } from '../../src/dataplane/wire/checksum.js';
import { formatIpv4, Ipv4View, parseIpv4 } from '../../src/dataplane/wire/ipv4.js';
import { TcpView, TCP_ACK, TCP_SYN } from '../../src/dataplane/wire/tcp.js';
import { ForwardMethod } from '../../src/control/model.js';
import { IpvsSysctls } from '../../src/control/sysctls.js';
import { tcpSegmentCount, writeTcpSegment } from '../../src/dataplane/offload.js';

const SLOT = 16384;
const HEADROOM = 64;
const DIRECTOR_MAC = Uint8Array.from([2, 0, 0, 0, 0, 0xfe]);
const CLIENT_MAC = Uint8Array.from([2, 0, 0, 0, 0, 1]);
const RS_MAC = Uint8Array.from([2, 0, 0, 0, 0, 0x11]);
const VIP = '198.18.1.100', CIP = '198.18.1.2', RIP = '198.18.2.11', LIP = '198.18.2.200';
const FIN = 0x01, PSH = 0x08;

function director(forward: ForwardMethod, clientAddress?: 'proxy-protocol') {
  const tap = new RecordingTap(SLOT, 2, 4, 4, HEADROOM);
  const tx = tap.txBatch();
  const services = new ServiceTable();
  const tracker = new ConnectionTracker(services.dests, 100, 0, new IpvsSysctls());
  const routes = new RoutingTable([
    { addr: parseIpv4('198.18.1.1'), prefix: 24 },
    { addr: parseIpv4('198.18.2.1'), prefix: 24 },
  ]);
  const neighbors = new NeighborTable(16, 4);
  neighbors.learn(parseIpv4(RIP), RS_MAC, 0, 0);
  neighbors.learn(parseIpv4(CIP), CLIENT_MAC, 0, 0);
  const pipeline = new Pipeline(DIRECTOR_MAC, services, tracker, routes, neighbors, new HostStack(DIRECTOR_MAC, tx), tx);
  pipeline.offload.rxVnet = tap.rxVnet;
  const svc = { af: 4 as const, protocol: 6, addr: VIP, port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', clientAddress };
  expect(services.addService(svc)).toBeNull();
  if (forward === ForwardMethod.FullNat) expect(services.addLocalAddress(svc, LIP)).toBeNull();
  const port = forward === ForwardMethod.Masq || forward === ForwardMethod.FullNat ? 8080 : 80;
  expect(services.addDest(svc, { af: 4, addr: RIP, port, forward, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 })).toBeNull();
  /** Feed one frame with virtio_net_hdr `vnet` (10 bytes; zeros = not offloaded). */
  const feed = (frame: Uint8Array, vnet: number[] = []): { frame: Uint8Array; vnet: Uint8Array }[] => {
    tap.clear();
    tap.arena.set(frame, HEADROOM);
    tap.rxVnet.fill(0);
    tap.rxVnet.set(vnet, 0);
    const lengths = new Int32Array(2);
    lengths[0] = frame.length;
    pipeline.processBatch(tap.arena, SLOT, HEADROOM, lengths, 1, 1);
    return tap.sent.map((f, i) => ({ frame: f, vnet: tap.sentVnet[i] }));
  };
  return { pipeline, feed };
}

/** A TCP frame; with `partial`, its checksum field holds only the pseudo-header sum (CHECKSUM_PARTIAL). */
function tcpFrame(src: string, sport: number, dst: string, dport: number, flags: number, payload: number, partial: boolean, seq = 1000): Uint8Array {
  const total = 40 + payload;
  const f = new Uint8Array(14 + total);
  f.set(DIRECTOR_MAC, 0);
  f.set(CLIENT_MAC, 6);
  f[12] = 8;
  new Ipv4View().at(f, 14).write(0, total, 0x1234, true, 64, 6, parseIpv4(src), parseIpv4(dst));
  const t = new TcpView().at(f, 34);
  t.write(sport, dport, seq, flags & TCP_ACK ? 5000 : 0, flags, 65535);
  for (let i = 0; i < payload; i++) f[54 + i] = (i * 7) & 0xff;
  const pseudo = pseudoHeaderSum4(parseIpv4(src), parseIpv4(dst), 6, 20 + payload);
  t.checksum = partial ? fold(pseudo) : checksum(f, 34, 20 + payload, pseudo);
  return f;
}

/** virtio_net_hdr: NEEDS_CSUM at 34/16, and GSO TCPV4 with `gsoSize` when given. */
function vnetTcp4(gsoSize = 0): number[] {
  return [1, gsoSize ? 1 : 0, 54, 0, gsoSize & 0xff, gsoSize >> 8, 34, 0, 16, 0];
}

function tcpValid(f: Uint8Array, ipOff = 14): boolean {
  const ip = new Ipv4View().at(f, ipOff);
  const len = ip.totalLength - ip.headerLength;
  return checksum(f, ip.payloadOff, len, pseudoHeaderSum4(ip.src, ip.dst, 6, len)) === 0;
}

/** What the device does with a NEEDS_CSUM frame: sum from csum_start to the end into the field. */
function completeAsDevice(f: Uint8Array, start = 34, offset = 16): Uint8Array {
  const c = checksum(f, start, f.length - start);
  f[start + offset] = c >> 8;
  f[start + offset + 1] = c & 0xff;
  return f;
}

describe('offloaded frames through the pipeline', () => {
  it('NAT: a partial checksum gets the address change only, and the virtio_net_hdr goes out with the frame', () => {
    const d = director(ForwardMethod.Masq);
    const [syn] = d.feed(tcpFrame(CIP, 40000, VIP, 80, TCP_SYN, 0, true), vnetTcp4());
    expect(formatIpv4(new Ipv4View().at(syn.frame, 14).dst)).toBe(RIP);
    expect(Array.from(syn.vnet)).toEqual(vnetTcp4());
    expect(tcpValid(syn.frame)).toBe(false); // still partial: the device completes it
    expect(tcpValid(completeAsDevice(syn.frame))).toBe(true);
  });

  it('NAT: a 3-segment super-frame is forwarded whole, its GSO header intact', () => {
    const d = director(ForwardMethod.Masq);
    d.feed(tcpFrame(CIP, 40001, VIP, 80, TCP_SYN, 0, false));
    const [big] = d.feed(tcpFrame(CIP, 40001, VIP, 80, TCP_ACK | PSH, 3000, true), vnetTcp4(1000));
    expect(big.frame.length).toBe(54 + 3000);
    expect(Array.from(big.vnet)).toEqual(vnetTcp4(1000));
    expect(tcpValid(completeAsDevice(big.frame))).toBe(true);
    expect(d.pipeline.offload.superFrames).toBe(1);
    expect(d.pipeline.offload.segmented).toBe(0);
  });

  it('TUN: a super-frame is cut into segments, each complete and encapsulated; no virtio_net_hdr goes out', () => {
    const d = director(ForwardMethod.Tunnel);
    d.feed(tcpFrame(CIP, 40002, VIP, 80, TCP_SYN, 0, false));
    const out = d.feed(tcpFrame(CIP, 40002, VIP, 80, TCP_ACK | PSH, 2500, true, 7000), vnetTcp4(1000));
    expect(out).toHaveLength(3);
    const inner = out.map((o) => {
      expect(Array.from(o.vnet)).toEqual(new Array(10).fill(0));
      expect(o.frame[23]).toBe(4); // IPIP
      expect(tcpValid(o.frame, 34)).toBe(true);
      const t = new TcpView().at(o.frame, 54);
      return [new Ipv4View().at(o.frame, 34).totalLength - 40, t.seq, t.flags & PSH];
    });
    expect(inner).toEqual([
      [1000, 7000, 0],
      [1000, 8000, 0],
      [500, 9000, PSH],
    ]);
    expect(d.pipeline.offload.segmented).toBe(1);
  });

  it('DR: a super-frame goes to the real server unchanged but for MACs and TTL, its header intact', () => {
    const d = director(ForwardMethod.Route);
    d.feed(tcpFrame(CIP, 40004, VIP, 80, TCP_SYN, 0, false));
    const input = tcpFrame(CIP, 40004, VIP, 80, TCP_ACK, 3000, true);
    const [o] = d.feed(input, vnetTcp4(1448));
    expect(Array.from(o.vnet)).toEqual(vnetTcp4(1448));
    expect(Array.from(o.frame.subarray(34))).toEqual(Array.from(input.subarray(34))); // TCP untouched
    expect(new Ipv4View().at(o.frame, 14).ttl).toBe(63);
    expect(Array.from(o.frame.subarray(0, 6))).toEqual(Array.from(RS_MAC));
  });

  it('FULLNAT: both addresses go into a partial checksum; the super-frame is forwarded whole', () => {
    const d = director(ForwardMethod.FullNat);
    const [syn] = d.feed(tcpFrame(CIP, 40005, VIP, 80, TCP_SYN, 0, false));
    const lport = new TcpView().at(syn.frame, 34).srcPort;
    const [o] = d.feed(tcpFrame(CIP, 40005, VIP, 80, TCP_ACK, 3000, true), vnetTcp4(1000));
    const ip = new Ipv4View().at(o.frame, 14), t = new TcpView().at(o.frame, 34);
    expect([formatIpv4(ip.src), t.srcPort, formatIpv4(ip.dst), t.dstPort]).toEqual([LIP, lport, RIP, 8080]);
    expect(Array.from(o.vnet)).toEqual(vnetTcp4(1000));
    expect(tcpValid(completeAsDevice(o.frame))).toBe(true);
  });

  it('FULLNAT + PROXY protocol: the first data super-frame is cut; the header leads the first segment, the rest shift by 28', () => {
    const d = director(ForwardMethod.FullNat, 'proxy-protocol');
    d.feed(tcpFrame(CIP, 40006, VIP, 80, TCP_SYN, 0, false, 999)); // first data byte: 1000
    const out = d.feed(tcpFrame(CIP, 40006, VIP, 80, TCP_ACK, 2000, true, 1000), vnetTcp4(1000));
    expect(out).toHaveLength(2);
    const segs = out.map((o) => {
      expect(Array.from(o.vnet)).toEqual(new Array(10).fill(0));
      expect(tcpValid(o.frame)).toBe(true);
      return [new Ipv4View().at(o.frame, 14).totalLength - 40, new TcpView().at(o.frame, 34).seq];
    });
    expect(segs).toEqual([
      [1028, 1000],
      [1000, 2028],
    ]);
    expect(Array.from(out[0].frame.subarray(54, 66))).toEqual([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  });

  it('TUN: a partial checksum without GSO is completed before encapsulation', () => {
    const d = director(ForwardMethod.Tunnel);
    const [o] = d.feed(tcpFrame(CIP, 40003, VIP, 80, TCP_SYN, 0, true), vnetTcp4());
    expect(tcpValid(o.frame, 34)).toBe(true);
    expect(Array.from(o.vnet)).toEqual(new Array(10).fill(0));
  });
});

describe('hostile offloaded frames', () => {
  it('never throw: random frames under random virtio_net_hdrs, every method', () => {
    for (const method of [ForwardMethod.Masq, ForwardMethod.Tunnel, ForwardMethod.Route]) {
      const d = director(method);
      d.feed(tcpFrame(CIP, 40100, VIP, 80, TCP_SYN, 0, false));
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 0, maxLength: 400 }),
          fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 10, maxLength: 10 }),
          fc.boolean(),
          (noise, vnet, valid) => {
            // Half the time a real segment of the connection with the noise as payload, else raw noise.
            const f = valid ? tcpFrame(CIP, 40100, VIP, 80, TCP_ACK, noise.length, true) : new Uint8Array(Math.max(14, noise.length));
            if (valid) f.set(noise, 54);
            else f.set(noise.subarray(0, f.length));
            d.feed(f, vnet);
          },
        ),
        { numRuns: 300 },
      );
    }
  });
});

describe('writeTcpSegment', () => {
  it('cuts headers and payload: lengths, ids, sequence numbers, FIN/PSH on the last only, complete checksums', () => {
    const f = tcpFrame(CIP, 1234, RIP, 80, TCP_ACK | PSH | FIN, 2100, true, 0xfffffc00);
    expect(tcpSegmentCount(f, 0, f.length, 1000)).toBe(3);
    const out = new Uint8Array(4096);
    const segs = [0, 1, 2].map((i) => {
      const len = writeTcpSegment(f, 0, f.length, 1000, i, out, 0);
      const s = out.slice(0, len);
      const ip = new Ipv4View().at(s, 14);
      expect(ip.checksumValid()).toBe(true);
      expect(tcpValid(s)).toBe(true);
      // The payload is the right slice of the original.
      expect(Array.from(s.subarray(54, 58))).toEqual(Array.from(f.subarray(54 + 1000 * i, 58 + 1000 * i)));
      return [len - 54, ip.id, new TcpView().at(s, 34).seq, s[47]];
    });
    expect(segs).toEqual([
      [1000, 0x1234, 0xfffffc00, TCP_ACK],
      [1000, 0x1235, 0xfffffc00 + 1000, TCP_ACK],
      [100, 0x1236, 0xfffffc00 + 2000 - 0x100000000, TCP_ACK | PSH | FIN], // the sequence number wraps
    ]);
    expect(tcpSegmentCount(f.subarray(0, 40), 0, 40, 1000)).toBe(0); // truncated: not TCP
  });
});
