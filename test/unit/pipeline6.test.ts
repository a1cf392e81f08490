/**
 * IPv6 services without a TAP: frames in, frames out through the real Pipeline. Golden frames per
 * forwarding method and direction (NAT, DR, TUN as IPv6-in-IPv6, FULLNAT), Neighbour Discovery resolution
 * of next hops, ICMPv6 errors translated both ways, address-id reference counting, hostile input.
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
import { checksum } from '../../src/dataplane/wire/checksum.js';
import { parseIpv4 } from '../../src/dataplane/wire/ipv4.js';
import { TCP_ACK, TCP_SYN } from '../../src/dataplane/wire/tcp.js';
import { ForwardMethod, type DestinationConfig, type ServiceConfig } from '../../src/control/model.js';
import { IpvsSysctls } from '../../src/control/sysctls.js';
import { Ipv6Addresses } from '../../src/dataplane/addresses6.js';
import { formatIpv6, Ipv6View, parseIpv6, pseudoHeaderSum6 } from '../../src/dataplane/wire/ipv6.js';
import { icmpv6Checksum, solicitedNodeAddress } from '../../src/dataplane/wire/icmpv6.js';
import { Ipv6AddressIds } from '../../src/dataplane/ipv6-address-ids.js';
import { connectionSnapshot } from '../../src/control/snapshot.js';
import { DROP_REASON_NAMES } from '../../src/dataplane/drops.js';

const SLOT = 2048;
const HEADROOM = 64;
const DIRECTOR_MAC = Uint8Array.from([2, 0, 0, 0, 0, 0xfe]);
const CLIENT_MAC = Uint8Array.from([2, 0, 0, 0, 0, 1]);
const RS_MAC = Uint8Array.from([2, 0, 0, 0, 0, 0x11]);
const VIP = 'fd00:1::100', CIP = 'fd00:1::2', RIP = 'fd00:2::11', LIP = 'fd00:2::200';
const OWN_FRONT = 'fd00:1::1', OWN_BACK = 'fd00:2::1';

const a6 = (t: string): Uint8Array => parseIpv6(t)!;

function director(
  forward: ForwardMethod = ForwardMethod.Masq,
  opts: { persistent?: boolean; prefix?: number; clientAddress?: 'proxy-protocol' | 'toa'; gateway?: string; maxConnections?: number } = {},
) {
  const tap = new RecordingTap(SLOT, 8, 8, 8, HEADROOM);
  const tx = tap.txBatch();
  const services = new ServiceTable();
  const tracker = new ConnectionTracker(services.dests, opts.maxConnections ?? 1000, 0, new IpvsSysctls());
  tracker.onDestinationUnreferenced = (d) => services.releaseIfUnreferenced(d);
  const routes = new RoutingTable([{ addr: parseIpv4('198.18.1.1'), prefix: 24 }]);
  const host = new HostStack(DIRECTOR_MAC, tx);
  const pipeline = new Pipeline(DIRECTOR_MAC, services, tracker, routes, new NeighborTable(64, 16), host, tx);
  pipeline.setAddresses6(new Ipv6Addresses([{ addr: a6(OWN_FRONT), prefix: 64 }, { addr: a6(OWN_BACK), prefix: 64 }], opts.gateway ? a6(opts.gateway) : null));
  const svc: ServiceConfig = {
    af: 6, protocol: 6, addr: VIP, port: 80, fwmark: 0, scheduler: 'rr', flags: opts.persistent ? 1 : 0, timeout: opts.persistent ? 300 : 0,
    netmask: String(opts.prefix ?? 128), pe: '', clientAddress: opts.clientAddress,
  };
  expect(services.addService(svc)).toBeNull();
  const udpSvc: ServiceConfig = { ...svc, protocol: 17, port: 53, clientAddress: undefined };
  expect(services.addService(udpSvc)).toBeNull();
  if (forward === ForwardMethod.FullNat) expect(services.addLocalAddress(svc, LIP)).toBeNull();
  const rs: DestinationConfig = { af: 6, addr: RIP, port: forward === ForwardMethod.Masq || forward === ForwardMethod.FullNat ? 8080 : 80, forward, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 };
  expect(services.addDest(svc, rs)).toBeNull();
  expect(services.addDest(udpSvc, { ...rs, port: 53 })).toBeNull();
  let now = 1;
  pipeline.offload.rxVnet = tap.rxVnet;
  /** Feed one frame (with virtio_net_hdr `vnet`: none by default); the frames sent, their headers in tap.sentVnet. */
  const feed = (frame: Uint8Array, vnet: number[] = []): Uint8Array[] => {
    tap.clear();
    tap.rxVnet.fill(0);
    tap.rxVnet.set(vnet, 0);
    tap.arena.fill(0, 0, SLOT);
    tap.arena.set(frame, HEADROOM);
    const lengths = new Int32Array(8);
    lengths[0] = frame.length;
    pipeline.processBatch(tap.arena, SLOT, HEADROOM, lengths, 1, now);
    return tap.sent.slice();
  };
  const advance = (ms: number): void => {
    now += ms;
    tracker.expire(now);
  };
  return { pipeline, services, tracker, feed, advance, svc, rs, tap };
}

function frame6(dstMac: Uint8Array, srcMac: Uint8Array, src: string, dst: string, next: number, body: Uint8Array, hop = 64): Uint8Array {
  const f = new Uint8Array(54 + body.length);
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  f[12] = 0x86;
  f[13] = 0xdd;
  new Ipv6View().at(f, 14).write(0, body.length, next, hop, a6(src), 0, a6(dst), 0);
  f.set(body, 54);
  return f;
}

function tcp6(dstMac: Uint8Array, srcMac: Uint8Array, src: string, sport: number, dst: string, dport: number, flags: number, payload = 0, hop = 64, seq = 1000, ack = 5000): Uint8Array {
  const body = new Uint8Array(20 + payload);
  body[0] = sport >> 8;
  body[1] = sport & 0xff;
  body[2] = dport >> 8;
  body[3] = dport & 0xff;
  new DataView(body.buffer).setUint32(4, seq);
  if (flags & TCP_ACK) new DataView(body.buffer).setUint32(8, ack);
  body[12] = 5 << 4;
  body[13] = flags;
  body[14] = 0xff;
  body[15] = 0xff;
  for (let i = 0; i < payload; i++) body[20 + i] = i & 0xff;
  const f = frame6(dstMac, srcMac, src, dst, 6, body, hop);
  const c = checksum(f, 54, body.length, pseudoHeaderSum6(f, 14, 6, body.length));
  f[54 + 16] = c >> 8;
  f[54 + 17] = c & 0xff;
  return f;
}

function udp6(dstMac: Uint8Array, srcMac: Uint8Array, src: string, sport: number, dst: string, dport: number, payload: number[]): Uint8Array {
  const body = new Uint8Array(8 + payload.length);
  body.set([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, 0, body.length], 0);
  body.set(payload, 8);
  const f = frame6(dstMac, srcMac, src, dst, 17, body);
  const c = checksum(f, 54, body.length, pseudoHeaderSum6(f, 14, 17, body.length));
  f[54 + 6] = c >> 8;
  f[54 + 7] = c & 0xff;
  return f;
}

function icmp6(dstMac: Uint8Array, srcMac: Uint8Array, src: string, dst: string, body: number[] | Uint8Array, hop = 64): Uint8Array {
  const f = frame6(dstMac, srcMac, src, dst, 58, Uint8Array.from(body), hop);
  const c = icmpv6Checksum(f, 14, 54, body.length);
  f[56] = c >> 8;
  f[57] = c & 0xff;
  return f;
}

/** A neighbour advertisement from `who` (solicited, override) with its MAC in the target option. */
function advert(who: string, whoMac: Uint8Array): Uint8Array {
  return icmp6(DIRECTOR_MAC, whoMac, who, OWN_BACK, [136, 0, 0, 0, 0x60, 0, 0, 0, ...a6(who), 2, 1, ...whoMac], 255);
}

const src6 = (f: Uint8Array): string => formatIpv6(f, 22);
const dst6 = (f: Uint8Array): string => formatIpv6(f, 38);
const port = (f: Uint8Array, at: number): number => (f[at] << 8) | f[at + 1];
const mac = (f: Uint8Array, off: number): string => Array.from(f.subarray(off, off + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
function l4Valid(f: Uint8Array, ipOff = 14): boolean {
  const plen = (f[ipOff + 4] << 8) | f[ipOff + 5];
  return checksum(f, ipOff + 40, plen, pseudoHeaderSum6(f, ipOff, f[ipOff + 6], plen)) === 0;
}

/** Resolve the real server and the client by Neighbour Discovery; returns the first forwarded frame. */
function resolveBoth(d: ReturnType<typeof director>, first: Uint8Array): Uint8Array {
  const sol = d.feed(first);
  // Unresolved real server: the SYN waits, a solicitation goes to RIP's solicited-node group.
  expect(sol).toHaveLength(1);
  expect(mac(sol[0], 0)).toBe('33:33:ff:00:00:11');
  expect(sol[0][54]).toBe(135);
  expect(formatIpv6(sol[0], 54 + 8)).toBe(RIP);
  expect(src6(sol[0])).toBe(OWN_BACK); // from our address on the real server's prefix
  expect(dst6(sol[0])).toBe('ff02::1:ff00:11');
  expect(icmpv6Checksum(sol[0], 14, 54, 32)).toBe((sol[0][56] << 8) | sol[0][57]);
  const released = d.feed(advert(RIP, RS_MAC));
  expect(released).toHaveLength(1);
  return released[0];
}

describe('Ipv6AddressIds', () => {
  it('gives an address one id while it is referenced, and frees it with the last reference', () => {
    const ids = new Ipv6AddressIds(8, 2);
    const a = ids.acquireText('fd00::1'), b = ids.acquireText('fd00::2');
    expect(a).toBeGreaterThan(0);
    expect(b).not.toBe(a);
    expect(ids.acquireText('fd00::1')).toBe(a);
    expect(ids.findText('fd00::1')).toBe(a);
    expect(ids.text(a)).toBe('fd00::1');
    ids.release(a);
    expect(ids.findText('fd00::1')).toBe(a);
    ids.release(a);
    expect(ids.findText('fd00::1')).toBe(-1);
    expect(ids.count).toBe(1);
    // IPVS's scheduler fold: the xor of the four words.
    expect(ids.fold(b)).toBe((0xfd000000 ^ 0 ^ 0 ^ 2) >>> 0);
  });

  it('is bounded: acquire() returns -1 when every id is in use', () => {
    const ids = new Ipv6AddressIds(3, 2);
    expect([1, 2, 3].map((i) => ids.acquireText(`fd00::${i}`) > 0)).toEqual([true, true, true]);
    expect(ids.acquireText('fd00::4')).toBe(-1);
    ids.release(ids.findText('fd00::2'));
    expect(ids.acquireText('fd00::4')).toBeGreaterThan(0);
  });

  it('matches a map under random acquire/release (deletion keeps colliding ids findable)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 400 }), (ops) => {
        const ids = new Ipv6AddressIds(1000, 2);
        const model = new Map<number, number>();
        for (const [acquire, n] of ops) {
          const text = `fd00::${n.toString(16)}`;
          if (acquire) {
            ids.acquireText(text);
            model.set(n, (model.get(n) ?? 0) + 1);
          } else if (model.has(n)) {
            ids.release(ids.findText(text));
            if (model.get(n) === 1) model.delete(n);
            else model.set(n, model.get(n)! - 1);
          }
        }
        for (let n = 0; n <= 40; n++) {
          const id = ids.findText(`fd00::${n.toString(16)}`);
          if (model.has(n)) {
            expect(id).toBeGreaterThan(0);
            expect(ids.references(id)).toBe(model.get(n));
          } else expect(id).toBe(-1);
        }
        expect(ids.count).toBe(model.size);
      }),
    );
  });
});

describe('Pipeline, IPv6 services', () => {
  it('answers neighbour solicitations for a VIP and a FULLNAT local address, not for other addresses', () => {
    const d = director(ForwardMethod.FullNat);
    const ns = (target: string): Uint8Array => {
      const group = new Uint8Array(16);
      solicitedNodeAddress(a6(target), 0, group, 0);
      const groupMac = Uint8Array.from([0x33, 0x33, ...group.subarray(12)]);
      return icmp6(groupMac, CLIENT_MAC, CIP, formatIpv6(group), [135, 0, 0, 0, 0, 0, 0, 0, ...a6(target), 1, 1, ...CLIENT_MAC], 255);
    };
    for (const target of [VIP, LIP]) {
      const out = d.feed(ns(target));
      expect(out).toHaveLength(1);
      expect(out[0][54]).toBe(136);
      expect(formatIpv6(out[0], 54 + 8)).toBe(target);
      expect(mac(out[0], 54 + 26)).toBe('02:00:00:00:00:fe');
    }
    expect(d.feed(ns('fd00:1::77'))).toHaveLength(0);
  });

  it('NAT: CIP -> [VIP]:80 becomes CIP -> [RIP]:8080 after ND, and the reply VIP -> CIP; checksums valid, hop limit 63', () => {
    const d = director(ForwardMethod.Masq);
    const syn = tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47000, VIP, 80, TCP_SYN);
    const out = resolveBoth(d, syn);
    expect(mac(out, 0)).toBe('02:00:00:00:00:11');
    expect(mac(out, 6)).toBe('02:00:00:00:00:fe');
    expect([src6(out), port(out, 54), dst6(out), port(out, 56)]).toEqual([CIP, 47000, RIP, 8080]);
    expect(out[21]).toBe(63);
    expect(l4Valid(out)).toBe(true);
    // The reply: the client is not resolved yet either.
    const synAck = tcp6(DIRECTOR_MAC, RS_MAC, RIP, 8080, CIP, 47000, TCP_SYN | TCP_ACK);
    const sol = d.feed(synAck);
    expect(sol).toHaveLength(1);
    expect(formatIpv6(sol[0], 54 + 8)).toBe(CIP);
    expect(src6(sol[0])).toBe(OWN_FRONT);
    const [back] = d.feed(icmp6(DIRECTOR_MAC, CLIENT_MAC, CIP, OWN_FRONT, [136, 0, 0, 0, 0x60, 0, 0, 0, ...a6(CIP), 2, 1, ...CLIENT_MAC], 255));
    expect(mac(back, 0)).toBe('02:00:00:00:00:01');
    expect([src6(back), port(back, 54), dst6(back), port(back, 56)]).toEqual([VIP, 80, CIP, 47000]);
    expect(l4Valid(back)).toBe(true);
    // Established both ways, listed as ipvsadm -L -c lists IPv6.
    d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47000, VIP, 80, TCP_ACK));
    const conns = connectionSnapshot(d.tracker, 2);
    expect(conns.map((c) => [c.af, c.protocol, c.state, c.caddr, c.cport, c.vaddr, c.vport, c.daddr, c.dport])).toEqual([[6, 'TCP', 'ESTABLISHED', CIP, 47000, VIP, 80, RIP, 8080]]);
  });

  it('NAT UDP: a datagram and its answer; a zero UDP checksum (invalid over IPv6) is replaced by a real one', () => {
    const d = director(ForwardMethod.Masq);
    const q = udp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 5353, VIP, 53, [1, 2, 3, 4, 5]);
    const out = resolveBoth(d, q);
    expect([dst6(out), port(out, 56)]).toEqual([RIP, 53]);
    expect(l4Valid(out)).toBe(true);
    const zero = udp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 5353, VIP, 53, [9, 9, 9]);
    zero[60] = 0;
    zero[61] = 0;
    const [z] = d.feed(zero);
    expect((z[60] << 8) | z[61]).not.toBe(0);
    expect(l4Valid(z)).toBe(true);
  });

  it('DR: only the MACs and the hop limit change', () => {
    const d = director(ForwardMethod.Route);
    const syn = tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47001, VIP, 80, TCP_SYN, 10);
    const out = resolveBoth(d, syn);
    expect(mac(out, 0)).toBe('02:00:00:00:00:11');
    const expected = syn.slice();
    expected.set(RS_MAC, 0);
    expected.set(DIRECTOR_MAC, 6);
    expected[21] = 63;
    expect(Array.from(out)).toEqual(Array.from(expected));
  });

  it('TUN: IPv6 in IPv6 from our back address to the RIP, inner packet untouched but for the hop limit; too big -> packet too big', () => {
    const d = director(ForwardMethod.Tunnel);
    const syn = tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47002, VIP, 80, TCP_SYN);
    const out = resolveBoth(d, syn);
    expect(out.length).toBe(syn.length + 40);
    expect(out[20]).toBe(41); // next header: IPv6
    expect([src6(out), dst6(out)]).toEqual([OWN_BACK, RIP]);
    expect((out[18] << 8) | out[19]).toBe(syn.length - 14);
    const inner = out.subarray(54);
    expect(formatIpv6(inner, 8)).toBe(CIP);
    expect(formatIpv6(inner, 24)).toBe(VIP);
    expect(inner[7]).toBe(63);
    expect(l4Valid(out, 54)).toBe(true);
    // 1461 bytes of IPv6 + 40 of tunnel header do not fit a 1500-byte link.
    const big = tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47002, VIP, 80, TCP_ACK, 1401);
    const [ptb] = d.feed(big);
    expect([ptb[54], ptb[55]]).toEqual([2, 0]);
    expect((ptb[58] << 24) | (ptb[59] << 16) | (ptb[60] << 8) | ptb[61]).toBe(1460);
    expect([src6(ptb), dst6(ptb)]).toEqual([VIP, CIP]);
    expect(mac(ptb, 0)).toBe('02:00:00:00:00:01');
  });

  it('FULLNAT: CIP -> VIP becomes LIP:lport -> RIP:8080, and the reply to LIP:lport goes back as VIP -> CIP', () => {
    const d = director(ForwardMethod.FullNat);
    const out = resolveBoth(d, tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47003, VIP, 80, TCP_SYN));
    const lport = port(out, 54);
    expect([src6(out), dst6(out), port(out, 56)]).toEqual([LIP, RIP, 8080]);
    expect(lport).toBeGreaterThanOrEqual(5000);
    expect(l4Valid(out)).toBe(true);
    d.feed(tcp6(DIRECTOR_MAC, RS_MAC, RIP, 8080, LIP, lport, TCP_SYN | TCP_ACK)); // client unresolved: solicited
    const [back] = d.feed(icmp6(DIRECTOR_MAC, CLIENT_MAC, CIP, OWN_FRONT, [136, 0, 0, 0, 0x60, 0, 0, 0, ...a6(CIP), 2, 1, ...CLIENT_MAC], 255));
    expect([src6(back), port(back, 54), dst6(back), port(back, 56)]).toEqual([VIP, 80, CIP, 47003]);
    expect(l4Valid(back)).toBe(true);
  });

  it('FULLNAT + PROXY protocol v2 (AF_INET6, 52 bytes) before the first data; later sequence numbers shifted both ways', () => {
    const d = director(ForwardMethod.FullNat, { clientAddress: 'proxy-protocol' });
    const syn = resolveBoth(d, tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47010, VIP, 80, TCP_SYN, 0, 64, 1000));
    const lport = port(syn, 54);
    expect(syn.length).toBe(74); // no header on the SYN
    d.feed(tcp6(DIRECTOR_MAC, RS_MAC, RIP, 8080, LIP, lport, TCP_SYN | TCP_ACK, 0, 64, 7000, 1001));
    d.feed(icmp6(DIRECTOR_MAC, CLIENT_MAC, CIP, OWN_FRONT, [136, 0, 0, 0, 0x60, 0, 0, 0, ...a6(CIP), 2, 1, ...CLIENT_MAC], 255));
    const [first] = d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47010, VIP, 80, TCP_ACK, 10, 64, 1001, 7001));
    expect(first.length).toBe(74 + 52 + 10);
    expect((first[18] << 8) | first[19]).toBe(20 + 52 + 10);
    const h = 74;
    expect(Array.from(first.subarray(h, h + 16))).toEqual([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0, 36]);
    expect([formatIpv6(first, h + 16), formatIpv6(first, h + 32), port(first, h + 48), port(first, h + 50)]).toEqual([CIP, VIP, 47010, 80]);
    expect([src6(first), dst6(first)]).toEqual([LIP, RIP]);
    expect(new DataView(first.buffer, first.byteOffset).getUint32(58)).toBe(1001);
    expect(l4Valid(first)).toBe(true);
    const [second] = d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47010, VIP, 80, TCP_ACK, 5, 64, 1011, 7001));
    expect(new DataView(second.buffer, second.byteOffset).getUint32(58)).toBe(1011 + 52);
    expect(l4Valid(second)).toBe(true);
    // The real server acknowledges header and data (1001 + 52 + 15): the client hears 1016.
    const [ack] = d.feed(tcp6(DIRECTOR_MAC, RS_MAC, RIP, 8080, LIP, lport, TCP_ACK, 0, 64, 7001, 1001 + 52 + 15));
    expect([src6(ack), dst6(ack)]).toEqual([VIP, CIP]);
    expect(new DataView(ack.buffer, ack.byteOffset).getUint32(62)).toBe(1016);
    expect(l4Valid(ack)).toBe(true);
  });

  it('FULLNAT + TOA: the IPv6 option (kind 253, length 20) goes into the SYN and the ACK of the server ISN + 1', () => {
    const d = director(ForwardMethod.FullNat, { clientAddress: 'toa' });
    const syn = resolveBoth(d, tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47011, VIP, 80, TCP_SYN));
    expect(syn.length).toBe(74 + 20);
    expect(syn[54 + 12] >>> 4).toBe(10); // data offset: 40 bytes
    expect([syn[74], syn[75], port(syn, 76), formatIpv6(syn, 78)]).toEqual([253, 20, 47011, CIP]);
    expect(l4Valid(syn)).toBe(true);
    const lport = port(syn, 54);
    d.feed(tcp6(DIRECTOR_MAC, RS_MAC, RIP, 8080, LIP, lport, TCP_SYN | TCP_ACK, 0, 64, 7000, 1001));
    d.feed(icmp6(DIRECTOR_MAC, CLIENT_MAC, CIP, OWN_FRONT, [136, 0, 0, 0, 0x60, 0, 0, 0, ...a6(CIP), 2, 1, ...CLIENT_MAC], 255));
    const [ack] = d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47011, VIP, 80, TCP_ACK, 0, 64, 1001, 7001));
    expect(ack.length).toBe(74 + 20);
    expect(l4Valid(ack)).toBe(true);
    const [later] = d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47011, VIP, 80, TCP_ACK, 3, 64, 1001, 7100));
    expect(later.length).toBe(74 + 3);
  });

  it('offloads: a partial IPv6 checksum gets the address change only (NAT); a TCPv6 super-frame is forwarded whole', () => {
    const d = director(ForwardMethod.Masq);
    resolveBoth(d, tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47020, VIP, 80, TCP_SYN));
    const big = tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47020, VIP, 80, TCP_ACK, 3000, 64, 1001, 7001);
    // Partial: the field holds the pseudo-header sum only.
    const plen = 20 + 3000;
    const pseudo = pseudoHeaderSum6(big, 14, 6, plen);
    const folded = ((pseudo & 0xffff) + (pseudo >>> 16)) & 0xffff;
    big[54 + 16] = folded >> 8;
    big[54 + 17] = folded & 0xff;
    const vnet = [1, 4, 74, 0, 1000 & 0xff, 1000 >> 8, 54, 0, 16, 0]; // NEEDS_CSUM, TCPV6, gso_size 1000
    const [out] = d.feed(big, vnet);
    expect([dst6(out), port(out, 56)]).toEqual([RIP, 8080]);
    expect(Array.from(d.tap.sentVnet[0])).toEqual(vnet);
    const c = checksum(out, 54, out.length - 54); // what the device does
    out[70] = c >> 8;
    out[71] = c & 0xff;
    expect(l4Valid(out)).toBe(true);
  });

  it('offloads: a TCPv6 super-frame for a tunnel is cut into complete segments, each in IPv6-in-IPv6', () => {
    const d = director(ForwardMethod.Tunnel);
    resolveBoth(d, tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47021, VIP, 80, TCP_SYN));
    const big = tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 47021, VIP, 80, TCP_ACK, 2500, 64, 1001, 7001);
    const out = d.feed(big, [0, 4, 74, 0, 1000 & 0xff, 1000 >> 8, 54, 0, 16, 0]);
    expect(out.map((f) => [f[20], (f[18] << 8) | f[19], new DataView(f.buffer, f.byteOffset).getUint32(94 + 4)])).toEqual([
      [41, 40 + 20 + 1000, 1001],
      [41, 40 + 20 + 1000, 2001],
      [41, 40 + 20 + 500, 3001],
    ]);
    for (const f of out) expect(l4Valid(f, 54)).toBe(true);
    expect(d.tap.sentVnet.every((v) => v.every((b) => b === 0))).toBe(true);
  });

  it('a client beyond the on-link prefixes is answered through the IPv6 gateway (resolved by ND); without one, not routed', () => {
    const FAR = 'fd00:9::5', GW = 'fd00:1::fe', GW_MAC = Uint8Array.from([2, 0, 0, 0, 0, 0x77]);
    const d = director(ForwardMethod.Masq, { gateway: GW });
    resolveBoth(d, tcp6(DIRECTOR_MAC, GW_MAC, FAR, 47030, VIP, 80, TCP_SYN));
    const [sol] = d.feed(tcp6(DIRECTOR_MAC, RS_MAC, RIP, 8080, FAR, 47030, TCP_SYN | TCP_ACK));
    expect([sol[54], formatIpv6(sol, 54 + 8), src6(sol)]).toEqual([135, GW, OWN_FRONT]); // who has the gateway?
    const [back] = d.feed(icmp6(DIRECTOR_MAC, GW_MAC, GW, OWN_FRONT, [136, 0, 0, 0, 0x60, 0, 0, 0, ...a6(GW), 2, 1, ...GW_MAC], 255));
    expect([mac(back, 0), src6(back), dst6(back)]).toEqual(['02:00:00:00:00:77', VIP, FAR]);
    const none = director(ForwardMethod.Masq);
    resolveBoth(none, tcp6(DIRECTOR_MAC, GW_MAC, FAR, 47031, VIP, 80, TCP_SYN));
    expect(none.feed(tcp6(DIRECTOR_MAC, RS_MAC, RIP, 8080, FAR, 47031, TCP_SYN | TCP_ACK))).toHaveLength(0);
    expect(none.pipeline.drops.snapshot()['not-routed']).toBe(1);
  });

  it('ICMPv6 errors: port unreachable from the real server reaches the client about VIP; packet too big from the client reaches the real server', () => {
    const d = director(ForwardMethod.Masq);
    const q = udp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 5354, VIP, 53, [1, 2, 3]);
    const toRs = resolveBoth(d, q);
    // The real server answers the forwarded datagram with port unreachable, quoting it.
    const err = icmp6(DIRECTOR_MAC, RS_MAC, RIP, CIP, [1, 4, 0, 0, 0, 0, 0, 0, ...toRs.subarray(14)]);
    expect(d.feed(err)[0][54]).toBe(135); // the client is solicited first
    const [toClient] = d.feed(icmp6(DIRECTOR_MAC, CLIENT_MAC, CIP, OWN_FRONT, [136, 0, 0, 0, 0x60, 0, 0, 0, ...a6(CIP), 2, 1, ...CLIENT_MAC], 255));
    expect([src6(toClient), dst6(toClient)]).toEqual([VIP, CIP]);
    expect([toClient[54], toClient[55]]).toEqual([1, 4]);
    expect(icmpv6Checksum(toClient, 14, 54, toClient.length - 54)).toBe((toClient[56] << 8) | toClient[57]);
    const e = 62;
    expect([formatIpv6(toClient, e + 8), port(toClient, e + 40), formatIpv6(toClient, e + 24), port(toClient, e + 42)]).toEqual([CIP, 5354, VIP, 53]);
    // The client says a reply (VIP:53 -> CIP:5354) was too big: the real server hears it about RIP:53.
    const reply = udp6(CLIENT_MAC, DIRECTOR_MAC, VIP, 53, CIP, 5354, [7, 7]);
    const ptb = icmp6(DIRECTOR_MAC, CLIENT_MAC, CIP, VIP, [2, 0, 0, 0, 0, 0, 5, 0, ...reply.subarray(14)]);
    const [toRs2] = d.feed(ptb);
    expect([src6(toRs2), dst6(toRs2)]).toEqual([CIP, RIP]);
    expect([formatIpv6(toRs2, e + 8), port(toRs2, e + 40)]).toEqual([RIP, 53]);
    expect(icmpv6Checksum(toRs2, 14, 54, toRs2.length - 54)).toBe((toRs2[56] << 8) | toRs2[57]);
  });

  it('a UDP datagram to a VIP port without a service gets port unreachable; a TCP segment that opens nothing gets a RST', () => {
    const d = director();
    const [pu] = d.feed(udp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 5000, VIP, 54, [1]));
    expect([pu[54], pu[55], src6(pu), dst6(pu)]).toEqual([1, 4, VIP, CIP]);
    const [rst] = d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 5000, VIP, 80, TCP_ACK));
    expect([src6(rst), port(rst, 54), dst6(rst), port(rst, 56)]).toEqual([VIP, 80, CIP, 5000]);
    expect(rst[54 + 13]).toBe(0x04); // RST, seq = the segment's ack (5000)
    expect(new DataView(rst.buffer, rst.byteOffset).getUint32(58)).toBe(5000);
    expect(l4Valid(rst)).toBe(true);
    // A SYN to a port without a service: RST+ACK of seq + 1; a RST is never answered.
    const [rst2] = d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 5001, VIP, 81, TCP_SYN));
    expect(rst2[54 + 13]).toBe(0x14);
    expect(new DataView(rst2.buffer, rst2.byteOffset).getUint32(62)).toBe(1001);
    expect(d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 5002, VIP, 81, 0x04))).toHaveLength(0);
  });

  it('persistence by /64: two clients of one prefix share the template, all ids are released when everything expired', () => {
    const d = director(ForwardMethod.Masq, { persistent: true, prefix: 64 });
    const base = d.services.addresses6.count;
    resolveBoth(d, tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 40000, VIP, 80, TCP_SYN));
    d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, 'fd00:1::3', 40001, VIP, 80, TCP_SYN));
    const conns = connectionSnapshot(d.tracker, 2);
    const template = conns.filter((c) => c.template);
    expect(template.map((c) => [c.caddr, c.vaddr, c.vport, c.daddr])).toEqual([['fd00:1::', VIP, 80, RIP]]);
    expect(conns.filter((c) => !c.template).map((c) => c.caddr).sort()).toEqual([CIP, 'fd00:1::3']);
    expect(d.services.addresses6.count).toBeGreaterThan(base);
    d.advance(400_000); // connections (SYN_RECV 30 s) and then the template (300 s) expire
    d.advance(400_000);
    expect(connectionSnapshot(d.tracker, 800_002)).toEqual([]);
    // Left: the VIP, RIP, LIP-less service addresses and the neighbour entries (RIP, and the clients solicited).
    expect(d.services.addresses6.findText('fd00:1::')).toBe(-1);
    expect(d.services.addresses6.findText('fd00:1::3')).toBe(-1);
  });

  it('a SYN flood from random IPv6 sources: refusals counted once the table is full, address ids bounded, all freed after expiry', () => {
    const d = director(ForwardMethod.Masq, { maxConnections: 50 });
    resolveBoth(d, tcp6(DIRECTOR_MAC, CLIENT_MAC, CIP, 1, VIP, 80, TCP_SYN));
    const base = d.services.addresses6.count; // VIP, RIP, the client above, neighbour entries
    for (let i = 0; i < 500; i++) d.feed(tcp6(DIRECTOR_MAC, CLIENT_MAC, `fd00:1::${(0x1000 + i).toString(16)}`, 2000 + i, VIP, 80, TCP_SYN));
    expect(d.tracker.table.count).toBe(50);
    expect(d.pipeline.drops.snapshot()['table-full']).toBe(451);
    expect(d.services.addresses6.count).toBe(base + 49); // one id per live connection's client, none for the refused
    d.advance(60_000); // SYN_RECV entries time out
    d.advance(60_000);
    expect(d.tracker.table.count).toBe(0);
    expect(d.services.addresses6.count).toBeLessThanOrEqual(base);
  });

  it('a VIP coming up is announced: an unsolicited, override neighbour advertisement to all nodes', () => {
    const tap = new RecordingTap(SLOT, 1, 2);
    const tx = tap.txBatch();
    new HostStack(DIRECTOR_MAC, tx).unsolicitedNeighborAdvert(a6(VIP), 0);
    tx.flush();
    const [na] = tap.sent;
    expect(mac(na, 0)).toBe('33:33:00:00:00:01');
    expect([src6(na), dst6(na), na[21]]).toEqual([VIP, 'ff02::1', 255]);
    expect([na[54], na[55], na[58]]).toEqual([136, 0, 0x20]); // override, not solicited
    expect(formatIpv6(na, 62)).toBe(VIP);
    expect([na[78], na[79], mac(na, 80)]).toEqual([2, 1, '02:00:00:00:00:fe']);
    expect(icmpv6Checksum(na, 14, 54, 32)).toBe((na[56] << 8) | na[57]);
  });

  it('deleting the services releases their addresses', () => {
    const d = director(ForwardMethod.Masq);
    const before = d.services.addresses6.count;
    expect(before).toBe(2); // VIP and RIP
    expect(d.services.flush()).toBeNull();
    expect(d.services.addresses6.count).toBe(0);
  });

  it('survives arbitrary IPv6 frames without throwing, counting what it drops', () => {
    const d = director(ForwardMethod.Masq);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.integer({ min: 0, max: 3 }), (bytes, kind) => {
        const f = new Uint8Array(Math.max(14, bytes.length));
        f.set(bytes.subarray(0, f.length));
        f.set(DIRECTOR_MAC, 0);
        f[12] = 0x86;
        f[13] = 0xdd;
        if (f.length > 54) {
          f[14] = 0x60;
          f[20] = [6, 17, 58, 0][kind];
          f.set(a6(VIP), 38);
        }
        d.feed(f);
      }),
    );
    const total = d.pipeline.drops.snapshot();
    expect(DROP_REASON_NAMES.reduce((s, n) => s + total[n], 0)).toBeGreaterThan(0);
  });
});
