/**
 * A small pcap (libpcap "savefile") reader and writer, and a frame decoder for the packet walk.
 *
 * The classic format only: a 24-byte global header (magic 0xa1b2c3d4 for microsecond or 0xa1b23c4d for
 * nanosecond timestamps, in either byte order), then per packet a 16-byte record header (seconds,
 * fraction, captured length, original length) and the captured bytes. The writer produces little-endian
 * microsecond files, which tcpdump and Wireshark read. Frames are decoded with the data plane's own
 * header views (src/dataplane/wire), so the walk sees packets exactly as tapvs parses them: IPv4 and IPv6
 * (the first next header only, as the data plane reads it), and the packet inside IPIP or IPv6-in-IPv6.
 */
import { EthernetView, ETH_HEADER_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../dataplane/wire/ethernet.js';
import { formatIpv4, IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HEADER_LEN, Ipv4View } from '../dataplane/wire/ipv4.js';
import { formatIpv6, IPPROTO_ICMPV6, IPV6_HEADER_LEN, Ipv6View } from '../dataplane/wire/ipv6.js';
import { IPPROTO_IPV6 } from '../modes/tun.js';
import { TCP_ACK, TCP_FIN, TCP_MIN_HEADER_LEN, TCP_PSH, TCP_RST, TCP_SYN, TcpView } from '../dataplane/wire/tcp.js';
import { UDP_HEADER_LEN, UdpView } from '../dataplane/wire/udp.js';

export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
export const PCAP_MAGIC_NSEC = 0xa1b23c4d;
export const PCAP_GLOBAL_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;
export const LINKTYPE_ETHERNET = 1;
export const PCAP_DEFAULT_SNAPLEN = 65535;

export interface PcapRecord {
  /** Capture time in microseconds since the epoch. */
  timeUs: number;
  /** Length of the packet on the wire (may exceed data.length when the capture was truncated). */
  origLen: number;
  data: Uint8Array;
}

export interface PcapFile {
  linkType: number;
  snaplen: number;
  /** True when the file stores nanosecond timestamps (times are still returned in microseconds). */
  nanoseconds: boolean;
  records: PcapRecord[];
  /** True when the file ended inside a record (a capture stopped mid-write); that record is dropped. */
  truncated: boolean;
}

/** The 24-byte global header of a little-endian microsecond pcap file. */
export function pcapGlobalHeader(linkType = LINKTYPE_ETHERNET, snaplen = PCAP_DEFAULT_SNAPLEN): Uint8Array {
  const h = new Uint8Array(PCAP_GLOBAL_HEADER_LEN);
  const v = new DataView(h.buffer);
  v.setUint32(0, PCAP_MAGIC_USEC, true);
  v.setUint16(4, 2, true); // version 2.4
  v.setUint16(6, 4, true);
  v.setInt32(8, 0, true); // thiszone
  v.setUint32(12, 0, true); // sigfigs
  v.setUint32(16, snaplen, true);
  v.setUint32(20, linkType, true);
  return h;
}

/** One record (header and data) of a little-endian microsecond pcap file. */
export function pcapRecord(rec: PcapRecord): Uint8Array {
  const out = new Uint8Array(PCAP_RECORD_HEADER_LEN + rec.data.length);
  const v = new DataView(out.buffer);
  const sec = Math.floor(rec.timeUs / 1e6);
  v.setUint32(0, sec, true);
  v.setUint32(4, Math.round(rec.timeUs - sec * 1e6), true);
  v.setUint32(8, rec.data.length, true);
  v.setUint32(12, Math.max(rec.origLen, rec.data.length), true);
  out.set(rec.data, PCAP_RECORD_HEADER_LEN);
  return out;
}

/** A whole pcap file in memory. */
export function writePcap(records: PcapRecord[], linkType = LINKTYPE_ETHERNET, snaplen = PCAP_DEFAULT_SNAPLEN): Uint8Array {
  const parts = [pcapGlobalHeader(linkType, snaplen), ...records.map(pcapRecord)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Parse a pcap file. Throws on a file that is not pcap; a cut-off last record is dropped and flagged. */
export function readPcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < PCAP_GLOBAL_HEADER_LEN) throw new Error(`not a pcap file: ${bytes.length} bytes, shorter than the 24-byte header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le: boolean;
  let nanoseconds: boolean;
  const magicLe = v.getUint32(0, true);
  const magicBe = v.getUint32(0, false);
  if (magicLe === PCAP_MAGIC_USEC || magicLe === PCAP_MAGIC_NSEC) {
    le = true;
    nanoseconds = magicLe === PCAP_MAGIC_NSEC;
  } else if (magicBe === PCAP_MAGIC_USEC || magicBe === PCAP_MAGIC_NSEC) {
    le = false;
    nanoseconds = magicBe === PCAP_MAGIC_NSEC;
  } else {
    throw new Error(`not a pcap file: magic 0x${magicBe.toString(16).padStart(8, '0')}`);
  }
  const major = v.getUint16(4, le);
  if (major !== 2) throw new Error(`unsupported pcap version ${major}.${v.getUint16(6, le)}`);
  const snaplen = v.getUint32(16, le);
  const linkType = v.getUint32(20, le) & 0x0fffffff; // the upper bits may carry FCS information
  const records: PcapRecord[] = [];
  let off = PCAP_GLOBAL_HEADER_LEN;
  let truncated = false;
  while (off < bytes.length) {
    if (off + PCAP_RECORD_HEADER_LEN > bytes.length) {
      truncated = true;
      break;
    }
    const sec = v.getUint32(off, le);
    const frac = v.getUint32(off + 4, le);
    const inclLen = v.getUint32(off + 8, le);
    const origLen = v.getUint32(off + 12, le);
    if (inclLen > Math.max(snaplen, PCAP_DEFAULT_SNAPLEN) + 65536) throw new Error(`corrupt pcap record at byte ${off}: captured length ${inclLen}`);
    if (off + PCAP_RECORD_HEADER_LEN + inclLen > bytes.length) {
      truncated = true;
      break;
    }
    const start = off + PCAP_RECORD_HEADER_LEN;
    records.push({ timeUs: sec * 1e6 + (nanoseconds ? Math.floor(frac / 1000) : frac), origLen, data: bytes.subarray(start, start + inclLen) });
    off = start + inclLen;
  }
  return { linkType, snaplen, nanoseconds, records, truncated };
}

// ---- decoding ----------------------------------------------------------------------------------------

export interface DecodedIp {
  /** Addresses as text: dotted quad, or RFC 5952 for IPv6. */
  src: string;
  dst: string;
  /** The IPv4 protocol, or the IPv6 next header. */
  protocol: number;
  /** TTL, or the IPv6 hop limit. */
  ttl: number;
  srcPort?: number;
  dstPort?: number;
  tcp?: { flags: number; seq: number; ack: number; payloadLength: number };
  /** The encapsulated packet of IPIP (protocol 4) or IPv6-in-IPv6 (next header 41). */
  inner?: DecodedIp;
}

export interface DecodedFrame {
  srcMac: string;
  dstMac: string;
  etherType: number;
  ip?: DecodedIp;
}

function mac(b: Uint8Array, off: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + b[off + i].toString(16).padStart(2, '0');
  return s;
}

const ipView = new Ipv4View();
const ip6View = new Ipv6View();
const tcpView = new TcpView();
const udpView = new UdpView();
const ethView = new EthernetView();

function decodeIpv4(b: Uint8Array, off: number, end: number, depth: number): DecodedIp | undefined {
  if (end - off < IPV4_MIN_HEADER_LEN) return undefined;
  const ip = ipView.at(b, off);
  if (ip.version !== 4 || ip.headerLength < IPV4_MIN_HEADER_LEN || off + ip.headerLength > end) return undefined;
  const out: DecodedIp = { src: formatIpv4(ip.src), dst: formatIpv4(ip.dst), protocol: ip.protocol, ttl: ip.ttl };
  const totalLength = ip.totalLength;
  const ipEnd = Math.min(end, off + totalLength);
  const l4 = ip.payloadOff;
  if (ip.isFragment && (ip.fragmentWord & 0x1fff) !== 0) return out; // a later fragment: no L4 header
  decodePayload(out, b, l4, ipEnd, off + totalLength, depth);
  return out;
}

function decodeIpv6(b: Uint8Array, off: number, end: number, depth: number): DecodedIp | undefined {
  if (end - off < IPV6_HEADER_LEN) return undefined;
  const ip = ip6View.at(b, off);
  if (ip.version !== 6) return undefined;
  const out: DecodedIp = { src: formatIpv6(b, ip.srcOff), dst: formatIpv6(b, ip.dstOff), protocol: ip.nextHeader, ttl: ip.hopLimit };
  const packetEnd = ip.payloadOff + ip.payloadLength;
  decodePayload(out, b, ip.payloadOff, Math.min(end, packetEnd), packetEnd, depth);
  return out;
}

/**
 * The transport ports (and TCP fields) of `out`, or the encapsulated packet of a tunnel. `ipEnd` is
 * where the captured bytes of the packet end, `packetEnd` where the packet ends on the wire.
 */
function decodePayload(out: DecodedIp, b: Uint8Array, l4: number, ipEnd: number, packetEnd: number, depth: number): void {
  if (out.protocol === IPPROTO_TCP && ipEnd - l4 >= TCP_MIN_HEADER_LEN) {
    const t = tcpView.at(b, l4);
    out.srcPort = t.srcPort;
    out.dstPort = t.dstPort;
    out.tcp = { flags: t.flags, seq: t.seq, ack: t.ack, payloadLength: Math.max(0, packetEnd - l4 - t.headerLength) };
  } else if (out.protocol === IPPROTO_UDP && ipEnd - l4 >= UDP_HEADER_LEN) {
    const u = udpView.at(b, l4);
    out.srcPort = u.srcPort;
    out.dstPort = u.dstPort;
  } else if ((out.protocol === IPPROTO_IPIP || out.protocol === IPPROTO_IPV6) && depth < 2) {
    out.inner = decodeIp(b, l4, ipEnd, depth + 1);
  }
}

/** An IPv4 or IPv6 packet, by its version nibble (a tunnel's inner packet may be either). */
function decodeIp(b: Uint8Array, off: number, end: number, depth: number): DecodedIp | undefined {
  if (off >= end) return undefined;
  return b[off] >>> 4 === 6 ? decodeIpv6(b, off, end, depth) : decodeIpv4(b, off, end, depth);
}

/** Decode an Ethernet frame down to the transport ports (and into IPIP or IPv6-in-IPv6). */
export function decodeFrame(data: Uint8Array): DecodedFrame | null {
  if (data.length < ETH_HEADER_LEN) return null;
  const eth = ethView.at(data, 0);
  const frame: DecodedFrame = { dstMac: mac(data, eth.dstOff), srcMac: mac(data, eth.srcOff), etherType: eth.etherType };
  if (frame.etherType === ETHERTYPE_IPV4) frame.ip = decodeIpv4(data, eth.payloadOff, data.length, 0);
  else if (frame.etherType === ETHERTYPE_IPV6) frame.ip = decodeIpv6(data, eth.payloadOff, data.length, 0);
  return frame;
}

/** TCP flags as tcpdump-like words: SYN, SYN-ACK, ACK, PSH-ACK, FIN-ACK, RST... */
export function tcpFlagsText(flags: number): string {
  const words: string[] = [];
  if (flags & TCP_SYN) words.push('SYN');
  if (flags & TCP_FIN) words.push('FIN');
  if (flags & TCP_RST) words.push('RST');
  if (flags & TCP_PSH) words.push('PSH');
  if (flags & TCP_ACK) words.push('ACK');
  return words.length ? words.join('-') : 'none';
}

export const PROTOCOL_NAMES: Record<number, string> = {
  [IPPROTO_ICMP]: 'icmp',
  [IPPROTO_IPIP]: 'ipip',
  [IPPROTO_TCP]: 'tcp',
  [IPPROTO_UDP]: 'udp',
  [IPPROTO_IPV6]: 'ipv6',
  [IPPROTO_ICMPV6]: 'icmpv6',
};
