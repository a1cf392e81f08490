import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checksum, pseudoHeaderSum4, sumWords, updateChecksum16, updateChecksum32 } from '../../src/dataplane/wire/checksum.js';
import { EthernetView, ETHERTYPE_IPV4 } from '../../src/dataplane/wire/ethernet.js';
import { formatIpv4, Ipv4View, parseIpv4 } from '../../src/dataplane/wire/ipv4.js';
import { TcpView, TCP_ACK, TCP_SYN } from '../../src/dataplane/wire/tcp.js';
import { UdpView } from '../../src/dataplane/wire/udp.js';
import { ArpView, ARP_OP_REQUEST } from '../../src/dataplane/wire/arp.js';
import { rewriteNatInbound, rewriteNatOutbound } from '../../src/modes/nat.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// A real TCP SYN (captured shape): 02:..:01 <- 02:..:02, 198.18.1.2:40000 -> 198.18.1.100:80, MSS option.
const SYN_FRAME = hex(`
  020000000001 020000000002 0800
  4500 003c 1c46 4000 4006 0000 c612 0102 c612 0164
  9c40 0050 0000 0001 0000 0000 a002 faf0 0000 0000 0204 05b4 0402 080a 0001 e240 0000 0000 0103 0307`);

/** Full TCP/UDP checksum of an IPv4 packet at `ipOff`, computed from scratch. */
function l4Checksum(buf: Uint8Array, ipOff: number): number {
  const ip = new Ipv4View().at(buf, ipOff);
  const l4len = ip.totalLength - ip.headerLength;
  const csumOff = ip.payloadOff + (ip.protocol === 6 ? 16 : 6);
  const saved = (buf[csumOff] << 8) | buf[csumOff + 1];
  buf[csumOff] = 0;
  buf[csumOff + 1] = 0;
  const c = checksum(buf, ip.payloadOff, l4len, pseudoHeaderSum4(ip.src, ip.dst, ip.protocol, l4len));
  buf[csumOff] = saved >> 8;
  buf[csumOff + 1] = saved & 0xff;
  return c;
}

function withValidChecksums(frame: Uint8Array): Uint8Array {
  const f = frame.slice();
  const ip = new Ipv4View().at(f, 14);
  ip.fillChecksum();
  const c = l4Checksum(f, 14);
  const o = ip.payloadOff + (ip.protocol === 6 ? 16 : 6);
  f[o] = c >> 8;
  f[o + 1] = c & 0xff;
  return f;
}

describe('checksum', () => {
  it('matches the RFC 1071 example', () => {
    // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2 (folded), checksum 0x220d.
    const b = hex('0001f203f4f5f6f7');
    expect(checksum(b, 0, b.length)).toBe(0x220d);
  });

  it('verifies a known IPv4 header (Wikipedia example, checksum b861)', () => {
    const h = hex('450000730000400040110000c0a80001c0a800c7');
    expect(checksum(h, 0, 20)).toBe(0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    expect(new Ipv4View().at(h, 0).checksumValid()).toBe(true);
  });

  it('pads an odd length with a zero byte', () => {
    expect(sumWords(hex('0102 03'), 0, 3, 0)).toBe(0x0102 + 0x0300);
  });

  it('incremental 16-bit update equals full recomputation (RFC 1624)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 64 }).filter((a) => a.length % 2 === 0), fc.nat(31), fc.integer({ min: 0, max: 0xffff }), (data, w, nw) => {
        const word = (w % (data.length / 2)) * 2;
        const before = checksum(data, 0, data.length);
        const old = (data[word] << 8) | data[word + 1];
        data[word] = nw >> 8;
        data[word + 1] = nw & 0xff;
        const full = checksum(data, 0, data.length);
        const inc = updateChecksum16(before, old, nw);
        // 0x0000 and 0xffff are the same one's complement value; the incremental form never yields -0 wrongly.
        expect(inc === full || (inc ^ full) === 0xffff && (inc === 0 || full === 0)).toBe(true);
      }),
    );
  });

  it('incremental 32-bit update equals full recomputation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 40 }).filter((a) => a.length % 2 === 0), fc.integer({ min: 0, max: 0xffffffff }), (data, nv) => {
        const before = checksum(data, 0, data.length);
        const old = ((data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3]) >>> 0;
        data[0] = nv >>> 24;
        data[1] = (nv >>> 16) & 0xff;
        data[2] = (nv >>> 8) & 0xff;
        data[3] = nv & 0xff;
        const full = checksum(data, 0, data.length);
        const inc = updateChecksum32(before, old, nv);
        expect(inc === full || ((inc === 0 || full === 0) && (inc ^ full) === 0xffff)).toBe(true);
      }),
    );
  });
});

describe('header views', () => {
  it('read the fields of a known TCP SYN frame', () => {
    const eth = new EthernetView().at(SYN_FRAME, 0);
    expect(eth.etherType).toBe(ETHERTYPE_IPV4);
    const ip = new Ipv4View().at(SYN_FRAME, 14);
    expect(ip.version).toBe(4);
    expect(ip.headerLength).toBe(20);
    expect(ip.totalLength).toBe(60);
    expect(ip.dontFragment).toBe(true);
    expect(ip.isFragment).toBe(false);
    expect(ip.ttl).toBe(64);
    expect(ip.protocol).toBe(6);
    expect(formatIpv4(ip.src)).toBe('198.18.1.2');
    expect(formatIpv4(ip.dst)).toBe('198.18.1.100');
    const tcp = new TcpView().at(SYN_FRAME, ip.payloadOff);
    expect(tcp.srcPort).toBe(40000);
    expect(tcp.dstPort).toBe(80);
    expect(tcp.seq).toBe(1);
    expect(tcp.headerLength).toBe(40);
    expect(tcp.flags & (TCP_SYN | TCP_ACK)).toBe(TCP_SYN);
  });

  it('TTL decrement keeps the header checksum valid', () => {
    const f = withValidChecksums(SYN_FRAME);
    const ip = new Ipv4View().at(f, 14);
    ip.decrementTtl();
    expect(ip.ttl).toBe(63);
    expect(ip.checksumValid()).toBe(true);
  });

  it('ARP view reads a request', () => {
    const f = hex('ffffffffffff 020000000002 0806 0001 0800 06 04 0001 020000000002 c6120102 000000000000 c6120164');
    const a = new ArpView().at(f, 14);
    expect(a.isEthernetIpv4()).toBe(true);
    expect(a.op).toBe(ARP_OP_REQUEST);
    expect(formatIpv4(a.senderIp)).toBe('198.18.1.2');
    expect(formatIpv4(a.targetIp)).toBe('198.18.1.100');
  });

  it('parses and formats dotted quads, rejecting junk', () => {
    expect(parseIpv4('198.18.255.1')).toBe(0xc612ff01);
    expect(formatIpv4(0xc612ff01)).toBe('198.18.255.1');
    for (const bad of ['1.2.3', '1.2.3.256', '1.2.3.4.5', 'a.b.c.d', '', '01234.1.1.1']) expect(parseIpv4(bad)).toBeNaN();
  });
});

describe('NAT rewrite', () => {
  const RIP = parseIpv4('198.18.2.11');
  const VIP = parseIpv4('198.18.1.100');

  it('inbound DNAT of a known SYN: fields and both checksums', () => {
    const f = withValidChecksums(SYN_FRAME);
    const ip = new Ipv4View().at(f, 14);
    rewriteNatInbound(ip, ip.payloadOff, RIP, 8080);
    expect(formatIpv4(ip.dst)).toBe('198.18.2.11');
    expect(new TcpView().at(f, ip.payloadOff).dstPort).toBe(8080);
    expect(ip.checksumValid()).toBe(true);
    const tcp = new TcpView().at(f, ip.payloadOff);
    expect(tcp.checksum).toBe(l4Checksum(f, 14));
  });

  it('incremental TCP/UDP rewrites equal full recomputation for random packets', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 1, max: 0xffff }),
        fc.integer({ min: 1, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 1, max: 0xffff }),
        (isTcp, payload, src, dst, sport, dport, newAddr, newPort) => {
          const l4h = isTcp ? 20 : 8;
          const total = 20 + l4h + payload.length;
          const f = new Uint8Array(14 + total);
          f[12] = 8;
          const ip = new Ipv4View().at(f, 14);
          ip.write(0, total, 7, true, 64, isTcp ? 6 : 17, src >>> 0, dst >>> 0);
          const l4 = 34;
          if (isTcp) new TcpView().at(f, l4).write(sport, dport, 1, 2, TCP_ACK, 100);
          else {
            const u = new UdpView().at(f, l4);
            u.srcPort = sport;
            u.dstPort = dport;
            f[l4 + 4] = (8 + payload.length) >> 8;
            f[l4 + 5] = (8 + payload.length) & 0xff;
          }
          f.set(payload, l4 + l4h);
          const good = withValidChecksums(f);
          const view = new Ipv4View().at(good, 14);
          if (Math.random() < 0.5) rewriteNatInbound(view, l4, newAddr >>> 0, newPort);
          else rewriteNatOutbound(view, l4, newAddr >>> 0, newPort);
          expect(view.checksumValid()).toBe(true);
          const csumOff = l4 + (isTcp ? 16 : 6);
          const got = (good[csumOff] << 8) | good[csumOff + 1];
          const want = l4Checksum(good, 14);
          // UDP transmits a computed 0 as 0xffff; TCP's -0/+0 are equivalent for receivers.
          if (isTcp) expect(got === want || (got ^ want) === 0xffff).toBe(true);
          else expect(got === want || (want === 0 && got === 0xffff) || (got ^ want) === 0xffff).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a UDP datagram without checksum gets a full one after rewriting (as IPVS does)', () => {
    const payload = new TextEncoder().encode('hello');
    const total = 20 + 8 + payload.length;
    const f = new Uint8Array(14 + total);
    const ip = new Ipv4View().at(f, 14);
    ip.write(0, total, 1, false, 64, 17, parseIpv4('198.18.1.2'), VIP);
    const u = new UdpView().at(f, 34);
    u.srcPort = 5000;
    u.dstPort = 53;
    f[38] = 0;
    f[39] = 8 + payload.length;
    f.set(payload, 42);
    expect(u.checksum).toBe(0);
    rewriteNatInbound(ip, 34, RIP, 53);
    expect(u.checksum).not.toBe(0);
    expect(u.checksum).toBe(l4Checksum(f, 14) || 0xffff);
  });
});
