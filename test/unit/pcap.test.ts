/**
 * The lab's pcap reader/writer and frame decoder on known bytes (frames captured by the packet walk in the
 * TUN lab, IPv4 and IPv6: the client's SYN into the director, and the same SYN leaving it inside IPIP or
 * IPv6-in-IPv6), and the walk's table built from synthetic captures of an LVS-NAT connection and from the
 * captured IPv6 TUN frames.
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame, PROTOCOL_NAMES, readPcap, tcpFlagsText, writePcap, type PcapRecord } from '../../src/lab/pcap.js';
import { buildWalk, type Seen } from '../../src/lab/walk.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// 198.18.1.2:45486 -> 198.18.1.100:80 SYN, seq 1055863284, client 9e:3c:71:6e:1b:bb -> director 6a:03:61:76:4c:19
const SYN = hex(`
  6a03 6176 4c19 9e3c 716e 1bbb 0800 4500 003c 5b51 4000 4006 50e0 c612 0102 c612
  0164 b1ae 0050 3eef 31f4 0000 0000 a002 faf0 0462 0000 0204 05b4 0402 080a fb81
  9bbb 0000 0000 0103 030a`);
// The same SYN in IPIP: outer 198.18.2.1 -> 198.18.2.12, director -> rs2 6e:62:35:95:46:48
const SYN_IPIP = hex(`
  6e62 3595 4648 6a03 6176 4c19 0800 4500 0050 000c 4000 3f04 ab6c c612 0201 c612
  020c 4500 003c 5b51 4000 3f06 51e0 c612 0102 c612 0164 b1ae 0050 3eef 31f4 0000
  0000 a002 faf0 0462 0000 0204 05b4 0402 080a fb81 9bbb 0000 0000 0103 030a`);

// [fd00:1::2]:39044 -> [fd00:1::100]:80 SYN, seq 3382118857, hop limit 64, client a2:b3:9d:aa:9d:16 -> director f6:3d:f3:59:c2:7c
const SYN6 = hex(`
  f63d f359 c27c a2b3 9daa 9d16 86dd 600e 77ab 0028 0640 fd00 0001 0000 0000 0000
  0000 0000 0002 fd00 0001 0000 0000 0000 0000 0000 0100 9884 0050 c997 09c9 0000
  0000 a002 fd20 fb33 0000 0204 05a0 0402 080a daa5 0502 0000 0000 0103 030a`);
// The same SYN in IPv6-in-IPv6 (next header 41): outer fd00:2::1 -> fd00:2::12, director -> rs2 62:7c:39:bd:70:93
const SYN6_IP6IP6 = hex(`
  627c 39bd 7093 f63d f359 c27c 86dd 6000 0000 0050 293f fd00 0002 0000 0000 0000
  0000 0000 0001 fd00 0002 0000 0000 0000 0000 0000 0012 600e 77ab 0028 063f fd00
  0001 0000 0000 0000 0000 0000 0002 fd00 0001 0000 0000 0000 0000 0000 0100 9884
  0050 c997 09c9 0000 0000 a002 fd20 040e 0000 0204 05a0 0402 080a daa5 0502 0000
  0000 0103 030a`);
// The client's request on that connection: PSH-ACK with 58 bytes of HTTP (payload length 90 = 32 + 58)
const REQUEST6 = hex(`
  f63d f359 c27c a2b3 9daa 9d16 86dd 600e 77ab 005a 0640 fd00 0001 0000 0000 0000
  0000 0000 0002 fd00 0001 0000 0000 0000 0000 0000 0100 9884 0050 c997 09ca f987
  77a2 8018 0040 fb65 0000 0101 080a daa5 0508 69b5 3cca 4745 5420 2f20 4854 5450
  2f31 2e31 0d0a 636f 6e6e 6563 7469 6f6e 3a20 636c 6f73 650d 0a48 6f73 743a 205b
  6664 3030 3a31 3a3a 3130 305d 0d0a 0d0a`);

const GLOBAL_LE = 'd4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000';

describe('pcap writer', () => {
  it('writes the classic little-endian microsecond format byte for byte', () => {
    const rec: PcapRecord = { timeUs: 1_700_000_000_123_456, origLen: SYN.length, data: SYN };
    const file = writePcap([rec]);
    // 1700000000 = 0x6553f100, 123456 = 0x0001e240, 74 = 0x4a
    const expected = hex(`${GLOBAL_LE} 00f15365 40e20100 4a000000 4a000000`);
    expect(Buffer.from(file.subarray(0, 40)).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
    expect(file.subarray(40)).toEqual(SYN);
    expect(file.length).toBe(24 + 16 + 74);
  });

  it('round-trips records through the reader', () => {
    const recs: PcapRecord[] = [
      { timeUs: 1_700_000_000_000_001, origLen: SYN.length, data: SYN },
      { timeUs: 1_700_000_000_999_999, origLen: 1500, data: SYN_IPIP }, // a truncated capture
    ];
    const back = readPcap(writePcap(recs));
    expect(back.linkType).toBe(1);
    expect(back.snaplen).toBe(65535);
    expect(back.nanoseconds).toBe(false);
    expect(back.truncated).toBe(false);
    expect(back.records).toHaveLength(2);
    expect(back.records[0]).toEqual(recs[0]);
    expect(back.records[1].origLen).toBe(1500);
    expect(back.records[1].timeUs).toBe(1_700_000_000_999_999);
    expect(back.records[1].data).toEqual(SYN_IPIP);
  });
});

describe('pcap reader', () => {
  it('reads big-endian files and nanosecond timestamps', () => {
    const be = hex(`a1b2c3d4 0002 0004 00000000 00000000 00000100 00000001  6553f100 0001e240 00000004 00000004 deadbeef`);
    const f = readPcap(be);
    expect(f.snaplen).toBe(256);
    expect(f.records).toEqual([{ timeUs: 1_700_000_000_123_456, origLen: 4, data: hex('deadbeef') }]);
    const ns = hex(`4d3cb2a1 0200 0400 00000000 00000000 ffff0000 01000000  00f15365 15cd5b07 02000000 02000000 abcd`);
    const g = readPcap(ns);
    expect(g.nanoseconds).toBe(true);
    expect(g.records[0].timeUs).toBe(1_700_000_000_123_456); // 123456789 ns
  });

  it('drops a record cut off by a stopped capture and says so', () => {
    const file = writePcap([{ timeUs: 1, origLen: 74, data: SYN }, { timeUs: 2, origLen: 74, data: SYN }]);
    const cut = readPcap(file.subarray(0, file.length - 10));
    expect(cut.truncated).toBe(true);
    expect(cut.records).toHaveLength(1);
    expect(readPcap(file.subarray(0, 24 + 8)).records).toHaveLength(0);
  });

  it('refuses what is not pcap', () => {
    expect(() => readPcap(hex('0a0d0d0a 1c000000 4d3c2b1a 01000000 ffffffff ffffffff'))).toThrow(/not a pcap file/); // pcapng
    expect(() => readPcap(new Uint8Array(10))).toThrow(/shorter than/);
  });
});

describe('frame decoder', () => {
  it('decodes Ethernet, IPv4 and TCP with the data plane views', () => {
    const f = decodeFrame(SYN)!;
    expect(f.srcMac).toBe('9e:3c:71:6e:1b:bb');
    expect(f.dstMac).toBe('6a:03:61:76:4c:19');
    expect(f.etherType).toBe(0x0800);
    expect(f.ip).toMatchObject({ src: '198.18.1.2', dst: '198.18.1.100', protocol: 6, ttl: 64, srcPort: 45486, dstPort: 80 });
    expect(f.ip!.tcp).toEqual({ flags: 0x02, seq: 1055863284, ack: 0, payloadLength: 0 });
    expect(tcpFlagsText(f.ip!.tcp!.flags)).toBe('SYN');
    expect(tcpFlagsText(0x18)).toBe('PSH-ACK');
    expect(tcpFlagsText(0x12)).toBe('SYN-ACK');
  });

  it('decodes the outer and inner addresses of IPIP', () => {
    const f = decodeFrame(SYN_IPIP)!;
    expect(f.ip).toMatchObject({ src: '198.18.2.1', dst: '198.18.2.12', protocol: 4, ttl: 63 });
    expect(f.ip!.srcPort).toBeUndefined();
    expect(f.ip!.inner).toMatchObject({ src: '198.18.1.2', dst: '198.18.1.100', protocol: 6, ttl: 63, srcPort: 45486, dstPort: 80 });
    expect(f.ip!.inner!.tcp!.seq).toBe(1055863284);
  });

  it('decodes Ethernet, IPv6 and TCP, with the hop limit as TTL', () => {
    const f = decodeFrame(SYN6)!;
    expect(f).toMatchObject({ srcMac: 'a2:b3:9d:aa:9d:16', dstMac: 'f6:3d:f3:59:c2:7c', etherType: 0x86dd });
    expect(f.ip).toMatchObject({ src: 'fd00:1::2', dst: 'fd00:1::100', protocol: 6, ttl: 64, srcPort: 39044, dstPort: 80 });
    expect(f.ip!.tcp).toEqual({ flags: 0x02, seq: 3382118857, ack: 0, payloadLength: 0 });
    expect(f.ip!.inner).toBeUndefined();
    const req = decodeFrame(REQUEST6)!.ip!;
    expect(req.tcp).toEqual({ flags: 0x18, seq: 3382118858, ack: 4186404770, payloadLength: 58 });
    // A capture cut after the TCP header still knows the payload length from the IPv6 header.
    expect(decodeFrame(REQUEST6.subarray(0, 14 + 40 + 32))!.ip!.tcp!.payloadLength).toBe(58);
    expect(PROTOCOL_NAMES[f.ip!.protocol]).toBe('tcp');
  });

  it('decodes the outer and inner addresses of IPv6-in-IPv6', () => {
    const f = decodeFrame(SYN6_IP6IP6)!;
    expect(f.ip).toMatchObject({ src: 'fd00:2::1', dst: 'fd00:2::12', protocol: 41, ttl: 63 });
    expect(f.ip!.srcPort).toBeUndefined();
    expect(f.ip!.tcp).toBeUndefined();
    expect(f.ip!.inner).toMatchObject({ src: 'fd00:1::2', dst: 'fd00:1::100', protocol: 6, ttl: 63, srcPort: 39044, dstPort: 80 });
    expect(f.ip!.inner!.tcp).toEqual({ flags: 0x02, seq: 3382118857, ack: 0, payloadLength: 0 });
    expect(PROTOCOL_NAMES[41]).toBe('ipv6');
  });

  it('decodes ICMPv6 to its addresses, and survives short IPv6 frames', () => {
    const icmp = Uint8Array.from(SYN6);
    icmp[14 + 6] = 58; // next header ICMPv6
    expect(decodeFrame(icmp)!.ip).toEqual({ src: 'fd00:1::2', dst: 'fd00:1::100', protocol: 58, ttl: 64 });
    expect(PROTOCOL_NAMES[58]).toBe('icmpv6');
    expect(decodeFrame(SYN6.subarray(0, 14 + 39))!.ip).toBeUndefined();
    expect(decodeFrame(SYN6.subarray(0, 14 + 40))!.ip).toEqual({ src: 'fd00:1::2', dst: 'fd00:1::100', protocol: 6, ttl: 64 });
    // An outer header whose inner packet is cut off: the outer addresses, no inner packet.
    expect(decodeFrame(SYN6_IP6IP6.subarray(0, 14 + 40 + 20))!.ip).toEqual({ src: 'fd00:2::1', dst: 'fd00:2::12', protocol: 41, ttl: 63 });
    const notSix = Uint8Array.from(SYN6);
    notSix[14] = 0x45;
    expect(decodeFrame(notSix)!.ip).toBeUndefined();
  });

  it('survives short and non-IP frames', () => {
    expect(decodeFrame(SYN.subarray(0, 10))).toBeNull();
    expect(decodeFrame(SYN.subarray(0, 20))!.ip).toBeUndefined();
    const arp = Uint8Array.from(SYN);
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(decodeFrame(arp)!.ip).toBeUndefined();
  });
});

// ---- the walk's table from synthetic captures ---------------------------------------------------------

const MAC = { client: '02:00:00:00:00:01', director: '02:00:00:00:00:fe', rs1: '02:00:00:00:00:11' };
const ip4 = (s: string): number[] => s.split('.').map(Number);

function tcpFrame(srcMac: string, dstMac: string, src: string, sport: number, dst: string, dport: number, flags: number, seq: number, ack: number, payload = 0): Uint8Array {
  const b = new Uint8Array(14 + 20 + 20 + payload);
  b.set(hex(dstMac.replace(/:/g, '')), 0);
  b.set(hex(srcMac.replace(/:/g, '')), 6);
  b.set([0x08, 0x00, 0x45, 0, (40 + payload) >> 8, (40 + payload) & 255, 0, 0, 0x40, 0, 64, 6, 0, 0, ...ip4(src), ...ip4(dst)], 12);
  const dv = new DataView(b.buffer);
  dv.setUint16(34, sport);
  dv.setUint16(36, dport);
  dv.setUint32(38, seq);
  dv.setUint32(42, ack);
  b[46] = 0x50;
  b[47] = flags;
  return b;
}

function seen(point: string, frames: Uint8Array[], t0: number): Seen[] {
  return frames.map((data, index) => {
    const frame = decodeFrame(data)!;
    return { point, frame, ip: frame.ip!, t: frame.ip!.inner ?? frame.ip!, timeUs: t0 + index * 100, index };
  });
}

describe('packet walk table', () => {
  it('follows one NAT connection from the client to the real server and back', () => {
    const C = '198.18.1.2', V = '198.18.1.100', R = '198.18.2.11';
    const isn = 1000, sisn = 5000;
    const client = [
      tcpFrame(MAC.client, MAC.director, C, 40000, V, 80, 0x02, isn, 0),
      tcpFrame(MAC.director, MAC.client, V, 80, C, 40000, 0x12, sisn, isn + 1),
      tcpFrame(MAC.client, MAC.director, C, 40000, V, 80, 0x10, isn + 1, sisn + 1),
      tcpFrame(MAC.client, MAC.director, C, 40000, V, 80, 0x18, isn + 1, sisn + 1, 50),
      tcpFrame(MAC.director, MAC.client, V, 80, C, 40000, 0x18, sisn + 1, isn + 51, 200),
      tcpFrame(MAC.client, MAC.director, C, 40000, V, 80, 0x11, isn + 51, sisn + 201),
      // another connection the walk must leave out
      tcpFrame(MAC.client, MAC.director, C, 40001, V, 80, 0x02, 777, 0),
    ];
    const director = [
      client[0],
      tcpFrame(MAC.director, MAC.rs1, C, 40000, R, 80, 0x02, isn, 0),
      tcpFrame(MAC.rs1, MAC.director, R, 80, C, 40000, 0x12, sisn, isn + 1),
      client[1],
    ];
    const rs1 = [director[1], director[2]];
    const perPoint = new Map<string, Seen[]>([
      ['client', seen('client', client, 1000)],
      ['director', seen('director', director, 1010)],
      ['rs1', seen('rs1', rs1, 1020)],
      ['rs2', []],
    ]);
    const roles = { [C]: 'CIP', [V]: 'VIP', [R]: 'RIP' };
    const w = buildWalk(perPoint, { target: `${V}:80`, roles, files: {}, backend: 'cap', macNames: { [MAC.rs1]: 'rs1' }, all: false, pcapDir: '/tmp/x' });
    expect(w.client).toEqual({ src: `${C}:40000`, dst: `${V}:80` });
    expect(w.servedBy).toEqual(['rs1']);
    const table = (n: number): string[] => w.rows.filter((r) => r.packet === n).map((r) => `${r.hop}: ${r.macText}: ${r.roles}`);
    expect(w.rows[0].label).toBe('SYN');
    expect(table(1)).toEqual(['client: client → director: CIP → VIP', 'director in: client → director: CIP → VIP', 'director out: director → rs1: CIP → RIP', 'rs1: director → rs1: CIP → RIP']);
    expect(w.rows.find((r) => r.packet === 2)!.label).toBe('SYN-ACK');
    expect(table(2)).toEqual(['rs1: rs1 → director: RIP → CIP', 'director in: rs1 → director: RIP → CIP', 'director out: director → client: VIP → CIP', 'client: director → client: VIP → CIP']);
    expect(w.rows.map((r) => r.label).filter((l, i, a) => a.indexOf(l) === i)).toEqual(['SYN', 'SYN-ACK', 'ACK', 'request (PSH-ACK, 50 B)', 'response (PSH-ACK, 200 B)']);
    expect(w.moreAfter).toBe(1); // the FIN
    expect(w.text).toContain('director out  director → rs1     198.18.1.2:40000 → 198.18.2.11:80');
    expect(buildWalk(perPoint, { target: `${V}:80`, roles, files: {}, backend: 'cap', macNames: {}, all: true, pcapDir: '/tmp/x' }).moreAfter).toBe(0);
  });

  it('lays out an IPv6 TUN connection with [addr]:port endpoints and the IPv6-in-IPv6 outer addresses', () => {
    const C = 'fd00:1::2', V = 'fd00:1::100', D = 'fd00:2::1', R = 'fd00:2::12';
    const perPoint = new Map<string, Seen[]>([
      ['client', seen('client', [SYN6, REQUEST6], 1000)],
      ['director', seen('director', [SYN6, SYN6_IP6IP6], 1010)],
      ['rs1', []],
      ['rs2', seen('rs2', [SYN6_IP6IP6], 1020)],
    ]);
    const roles = { [C]: 'CIP', [V]: 'VIP', [D]: 'DIP', [R]: 'RIP' };
    const w = buildWalk(perPoint, { target: `[${V}]:80`, roles, files: {}, backend: 'cap', macNames: { '62:7c:39:bd:70:93': 'rs2' }, all: true, pcapDir: '/tmp/x' });
    expect(w.client).toEqual({ src: `[${C}]:39044`, dst: `[${V}]:80` });
    expect(w.servedBy).toEqual(['rs2']);
    const syn = w.rows.filter((r) => r.packet === 1);
    expect(syn.map((r) => `${r.hop}: ${r.macText}: ${r.src} → ${r.dst}: ${r.roles}`)).toEqual([
      `client: client → director: [${C}]:39044 → [${V}]:80: CIP → VIP`,
      `director in: client → director: [${C}]:39044 → [${V}]:80: CIP → VIP`,
      `director out: director → rs2: ${D} → ${R}: DIP → RIP`,
      `rs2: director → rs2: ${D} → ${R}: DIP → RIP`,
    ]);
    expect(syn[2].inner).toEqual({ src: `[${C}]:39044`, dst: `[${V}]:80`, roles: 'CIP → VIP' });
    expect(w.rows.find((r) => r.packet === 2)).toMatchObject({ label: 'request (PSH-ACK, 58 B)', hop: 'client', toServer: true });
    expect(w.text).toContain('DIP → RIP [CIP → VIP]');
    expect(w.text).toContain('inside IPv6-in-IPv6');
  });

  it('fails clearly when the client saw no SYN', () => {
    expect(() => buildWalk(new Map([['client', []]]), { target: '198.18.1.100:80', roles: {}, files: {}, backend: 'cap', macNames: {}, all: false, pcapDir: '/' })).toThrow(/no SYN/);
  });
});
