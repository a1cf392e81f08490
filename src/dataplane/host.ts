/**
 * The director's own presence on the LAN: what a host stack would do for its addresses and VIPs.
 * ARP replies and requests (including gratuitous ARP), ICMP echo replies, ICMP errors (port
 * unreachable, time exceeded) and TCP resets for segments nobody accepts. Frames are built in transmit
 * slots; nothing is allocated per frame.
 */
import { copyMac, read16, read32, write16 } from './wire/bytes.js';
import { ARP_LEN, ARP_OP_REPLY, ARP_OP_REQUEST, ArpView } from './wire/arp.js';
import { checksum, pseudoHeaderSum4, updateChecksum16 } from './wire/checksum.js';
import { ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetView } from './wire/ethernet.js';
import { ICMP_ECHO_REPLY, ICMP_HEADER_LEN, IcmpView } from './wire/icmp.js';
import { IPPROTO_ICMP, IPPROTO_TCP, Ipv4View } from './wire/ipv4.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TcpView } from './wire/tcp.js';
import type { TxBatch } from './tx-batch.js';
import { IPPROTO_ICMPV6, IPV6_HEADER_LEN, Ipv6View, pseudoHeaderSum6 } from './wire/ipv6.js';
import {
  ICMPV6_ECHO_REPLY,
  icmpv6Checksum,
  multicastMac,
  NA_FLAG_OVERRIDE,
  NA_FLAG_SOLICITED,
  ND_NEIGHBOR_SOLICIT,
  ND_OPT_SOURCE_LL,
  solicitedNodeAddress,
  writeNeighborAdvert,
} from './wire/icmpv6.js';
import { ETHERTYPE_IPV6 } from './wire/ethernet.js';
import { IcmpRateLimit } from './icmp-rate-limit.js';

/** ff02::1, all nodes. */
const ALL_NODES = Uint8Array.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

function isUnspecified6(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[off + i] !== 0) return false;
  return true;
}

const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const ZERO_MAC = new Uint8Array(6);
/** RFC 1812: an ICMP error carries as much of the original as fits in 576 bytes. */
const ICMP_ERROR_MAX = 576;
const DEFAULT_TTL = 64;

export class HostStack {
  private readonly eth = new EthernetView();
  private readonly arp = new ArpView();
  private readonly ip = new Ipv4View();
  private readonly icmp = new IcmpView();
  private readonly tcp = new TcpView();
  private readonly ip6 = new Ipv6View();
  private ipId = 1;

  constructor(
    readonly mac: Uint8Array,
    private readonly tx: TxBatch,
    /** The kernel's global ICMP error limit (1000/s, burst 50), for both families. */
    readonly icmpLimit = new IcmpRateLimit(),
  ) {}

  /** Answer an ARP request for one of our addresses (`targetIp`) to the requester. */
  arpReply(req: Uint8Array, arpOff: number, targetIp: number): void {
    const a = this.arp.at(req, arpOff);
    const senderIp = a.senderIp;
    const senderMacOff = a.senderMacOff;
    const off = this.tx.allocate();
    const buf = this.tx.arena;
    copyMac(buf, off, req, senderMacOff);
    copyMac(buf, off + 6, this.mac, 0);
    write16(buf, off + 12, ETHERTYPE_ARP);
    this.arp.at(buf, off + ETH_HEADER_LEN).write(ARP_OP_REPLY, this.mac, targetIp, req, senderMacOff, senderIp);
    this.tx.send(off, ETH_HEADER_LEN + ARP_LEN);
  }

  /** Broadcast an ARP request for `targetIp` from `senderIp`. */
  arpRequest(senderIp: number, targetIp: number): void {
    const off = this.tx.allocate();
    const buf = this.tx.arena;
    copyMac(buf, off, BROADCAST, 0);
    copyMac(buf, off + 6, this.mac, 0);
    write16(buf, off + 12, ETHERTYPE_ARP);
    this.arp.at(buf, off + ETH_HEADER_LEN).write(ARP_OP_REQUEST, this.mac, senderIp, ZERO_MAC, 0, targetIp);
    this.tx.send(off, ETH_HEADER_LEN + ARP_LEN);
  }

  /** Gratuitous ARP (a request with sender = target = `ip`), as the kernel sends when an address comes up. */
  gratuitousArp(ip: number): void {
    this.arpRequest(ip, ip);
  }

  /** Turn an ICMP echo request (in the frame at `off`) into the reply, in place, and queue it. */
  echoReply(buf: Uint8Array, off: number): void {
    const eth = this.eth.at(buf, off);
    copyMac(buf, off, buf, off + 6); // destination := requester
    eth.setSrc(this.mac);
    const ip = this.ip.at(buf, off + ETH_HEADER_LEN);
    const src = ip.src;
    ip.src = ip.dst; // swapping addresses leaves the header sum unchanged
    ip.dst = src;
    const ttlWord = read16(buf, ip.off + 8);
    buf[ip.off + 8] = DEFAULT_TTL;
    ip.checksum = updateChecksum16(ip.checksum, ttlWord, read16(buf, ip.off + 8));
    const icmp = this.icmp.at(buf, ip.payloadOff);
    const typeWord = read16(buf, icmp.off);
    icmp.type = ICMP_ECHO_REPLY;
    icmp.checksum = updateChecksum16(icmp.checksum, typeWord, read16(buf, icmp.off));
    this.tx.send(off, ETH_HEADER_LEN + ip.totalLength);
  }

  /**
   * Send an ICMP error about the IPv4 packet in the frame at `off` back to its sender, from `src`
   * (the address the packet was sent to, as the kernel's icmp_send does for local destinations).
   */
  icmpError(buf: Uint8Array, off: number, type: number, code: number, src: number, info = 0): void {
    const orig = this.ip.at(buf, off + ETH_HEADER_LEN);
    if (!this.icmpLimit.allows4(type, code, orig.src)) return;
    const origLen = Math.min(orig.totalLength, ICMP_ERROR_MAX - 20 - ICMP_HEADER_LEN);
    const origOff = orig.off;
    const dst = orig.src;
    const o = this.replyFrame(buf, off, ETHERTYPE_IPV4);
    const out = this.tx.arena;
    const icmpOff = o + ETH_HEADER_LEN + 20;
    out.set(buf.subarray(origOff, origOff + origLen), icmpOff + ICMP_HEADER_LEN);
    out[icmpOff] = type;
    out[icmpOff + 1] = code;
    write16(out, icmpOff + 2, 0);
    write16(out, icmpOff + 4, 0);
    write16(out, icmpOff + 6, info); // e.g. next-hop MTU for fragmentation needed
    write16(out, icmpOff + 2, checksum(out, icmpOff, ICMP_HEADER_LEN + origLen));
    this.ip.at(out, o + ETH_HEADER_LEN).write(0xc0, 20 + ICMP_HEADER_LEN + origLen, this.nextId(), false, DEFAULT_TTL, IPPROTO_ICMP, src, dst);
    this.tx.send(o, ETH_HEADER_LEN + 20 + ICMP_HEADER_LEN + origLen);
  }

  /**
   * Reset a TCP segment nobody accepts (RFC 9293 §3.10.7.1), as the director's own stack would for a
   * VIP port without a service or a segment of an unknown connection. Never answers a RST.
   */
  tcpReset(buf: Uint8Array, off: number): void {
    const ip = this.ip.at(buf, off + ETH_HEADER_LEN);
    const seg = this.tcp.at(buf, ip.payloadOff);
    const flags = seg.flags;
    if (flags & TCP_RST) return;
    const saddr = ip.src, daddr = ip.dst, sport = seg.srcPort, dport = seg.dstPort;
    let seq = 0, ack = 0, outFlags = TCP_RST;
    if (flags & TCP_ACK) seq = seg.ack;
    else {
      const dataLen = ip.totalLength - ip.headerLength - seg.headerLength;
      ack = (seg.seq + dataLen + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0)) >>> 0;
      outFlags |= TCP_ACK;
    }
    const o = this.replyFrame(buf, off, ETHERTYPE_IPV4);
    const out = this.tx.arena;
    this.ip.at(out, o + ETH_HEADER_LEN).write(0, 40, 0, true, DEFAULT_TTL, IPPROTO_TCP, daddr, saddr);
    const t = this.tcp.at(out, o + ETH_HEADER_LEN + 20);
    t.write(dport, sport, seq, ack, outFlags, 0);
    t.checksum = checksum(out, t.off, 20, pseudoHeaderSum4(daddr, saddr, IPPROTO_TCP, 20));
    this.tx.send(o, ETH_HEADER_LEN + 40);
  }

  /**
   * Answer a neighbour solicitation (the frame at `off`, ICMPv6 at `icmpOff`) for our address `target`
   * (16 bytes at targetOff in `buf`): a solicited, override advertisement with our MAC to the soliciting
   * node — or, for duplicate address detection (source ::), unsolicited to all nodes (RFC 4861 §7.2.4).
   */
  neighborAdvert(buf: Uint8Array, off: number, ipOff: number, targetOff: number): void {
    const dad = isUnspecified6(buf, ipOff + 8);
    const o = this.tx.allocate();
    const out = this.tx.arena;
    if (dad) multicastMac(ALL_NODES, 0, out, o);
    else copyMac(out, o, buf, off + 6);
    copyMac(out, o + 6, this.mac, 0);
    write16(out, o + 12, ETHERTYPE_IPV6);
    const ip6 = o + ETH_HEADER_LEN;
    const icmp = ip6 + IPV6_HEADER_LEN;
    // Source: the target address itself; destination: the solicitor, or all nodes for DAD.
    this.ip6.at(out, ip6).write(0, 32, IPPROTO_ICMPV6, 255, buf, targetOff, dad ? ALL_NODES : buf, dad ? 0 : ipOff + 8);
    writeNeighborAdvert(out, icmp, (dad ? 0 : NA_FLAG_SOLICITED) | NA_FLAG_OVERRIDE, buf, targetOff, this.mac);
    write16(out, icmp + 2, icmpv6Checksum(out, ip6, icmp, 32));
    this.tx.send(o, ETH_HEADER_LEN + IPV6_HEADER_LEN + 32);
  }

  /**
   * Announce our address `target` (16 bytes at targetOff) with an unsolicited, override advertisement to
   * all nodes (RFC 4861 §7.2.6): the IPv6 counterpart of gratuitous ARP, sent when a VIP comes up.
   */
  unsolicitedNeighborAdvert(target: Uint8Array, targetOff: number): void {
    const o = this.tx.allocate();
    const out = this.tx.arena;
    multicastMac(ALL_NODES, 0, out, o);
    copyMac(out, o + 6, this.mac, 0);
    write16(out, o + 12, ETHERTYPE_IPV6);
    const ip6 = o + ETH_HEADER_LEN;
    const icmp = ip6 + IPV6_HEADER_LEN;
    this.ip6.at(out, ip6).write(0, 32, IPPROTO_ICMPV6, 255, target, targetOff, ALL_NODES, 0);
    writeNeighborAdvert(out, icmp, NA_FLAG_OVERRIDE, target, targetOff, this.mac);
    write16(out, icmp + 2, icmpv6Checksum(out, ip6, icmp, 32));
    this.tx.send(o, ETH_HEADER_LEN + IPV6_HEADER_LEN + 32);
  }

  /**
   * Solicit the link-layer address of `target` (16 bytes at targetOff) from our address `src` (at
   * srcOff): to target's solicited-node group, with our MAC as source link-layer option (RFC 4861 §7.2.2).
   */
  neighborSolicit(src: Uint8Array, srcOff: number, target: Uint8Array, targetOff: number): void {
    const o = this.tx.allocate();
    const out = this.tx.arena;
    const ip6 = o + ETH_HEADER_LEN;
    const icmp = ip6 + IPV6_HEADER_LEN;
    solicitedNodeAddress(target, targetOff, this.group, 0);
    multicastMac(this.group, 0, out, o);
    copyMac(out, o + 6, this.mac, 0);
    write16(out, o + 12, ETHERTYPE_IPV6);
    this.ip6.at(out, ip6).write(0, 32, IPPROTO_ICMPV6, 255, src, srcOff, this.group, 0);
    out[icmp] = ND_NEIGHBOR_SOLICIT;
    out[icmp + 1] = 0;
    write16(out, icmp + 2, 0);
    out.fill(0, icmp + 4, icmp + 8);
    for (let i = 0; i < 16; i++) out[icmp + 8 + i] = target[targetOff + i];
    out[icmp + 24] = ND_OPT_SOURCE_LL;
    out[icmp + 25] = 1;
    copyMac(out, icmp + 26, this.mac, 0);
    write16(out, icmp + 2, icmpv6Checksum(out, ip6, icmp, 32));
    this.tx.send(o, ETH_HEADER_LEN + IPV6_HEADER_LEN + 32);
  }
  private readonly group = new Uint8Array(16);

  /**
   * Send an ICMPv6 error (RFC 4443) about the IPv6 packet in the frame at `off` back to its sender, from
   * `src` (16 bytes at srcOff): as much of the packet as fits in the minimum MTU (1280), `info` in the
   * word after the checksum (the MTU of a packet-too-big, the pointer of a parameter problem).
   */
  icmp6Error(buf: Uint8Array, off: number, type: number, code: number, src: Uint8Array, srcOff: number, info = 0): void {
    const orig = off + ETH_HEADER_LEN;
    // The peer is the packet's source; told apart by its address's fold (icmp-rate-limit.ts).
    if (!this.icmpLimit.allows6(type, read32(buf, orig + 8) ^ read32(buf, orig + 12) ^ read32(buf, orig + 16) ^ read32(buf, orig + 20))) return;
    const origLen = Math.min(IPV6_HEADER_LEN + read16(buf, orig + 4), 1280 - IPV6_HEADER_LEN - 8);
    const o = this.replyFrame(buf, off, ETHERTYPE_IPV6);
    const out = this.tx.arena;
    const ip6 = o + ETH_HEADER_LEN;
    const icmp = ip6 + IPV6_HEADER_LEN;
    out.set(buf.subarray(orig, orig + origLen), icmp + 8);
    this.ip6.at(out, ip6).write(0, 8 + origLen, IPPROTO_ICMPV6, DEFAULT_TTL, src, srcOff, buf, orig + 8);
    out[icmp] = type;
    out[icmp + 1] = code;
    write16(out, icmp + 2, 0);
    write16(out, icmp + 4, info >>> 16);
    write16(out, icmp + 6, info & 0xffff);
    write16(out, icmp + 2, icmpv6Checksum(out, ip6, icmp, 8 + origLen));
    this.tx.send(o, ETH_HEADER_LEN + IPV6_HEADER_LEN + 8 + origLen);
  }

  /**
   * tcpReset for IPv6: reset the TCP segment of the IPv6 frame at `off` (no extension headers), from the
   * address it was sent to. Never answers a RST.
   */
  tcpReset6(buf: Uint8Array, off: number): void {
    const ip = off + ETH_HEADER_LEN;
    const seg = this.tcp.at(buf, ip + IPV6_HEADER_LEN);
    const flags = seg.flags;
    if (flags & TCP_RST) return;
    let seq = 0, ack = 0, outFlags = TCP_RST;
    if (flags & TCP_ACK) seq = seg.ack;
    else {
      const dataLen = read16(buf, ip + 4) - seg.headerLength;
      ack = (seg.seq + dataLen + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0)) >>> 0;
      outFlags |= TCP_ACK;
    }
    const sport = seg.srcPort, dport = seg.dstPort;
    const o = this.replyFrame(buf, off, ETHERTYPE_IPV6);
    const out = this.tx.arena;
    const ip6 = o + ETH_HEADER_LEN;
    this.ip6.at(out, ip6).write(0, 20, IPPROTO_TCP, DEFAULT_TTL, buf, ip + 24, buf, ip + 8);
    const t = this.tcp.at(out, ip6 + IPV6_HEADER_LEN);
    t.write(dport, sport, seq, ack, outFlags, 0);
    t.checksum = checksum(out, t.off, 20, pseudoHeaderSum6(out, ip6, IPPROTO_TCP, 20));
    this.tx.send(o, ETH_HEADER_LEN + IPV6_HEADER_LEN + 20);
  }

  /** Turn an ICMPv6 echo request (frame at `off`) into the reply, in place, and queue it. */
  echoReply6(buf: Uint8Array, off: number): void {
    copyMac(buf, off, buf, off + 6);
    copyMac(buf, off + 6, this.mac, 0);
    const ip6 = off + ETH_HEADER_LEN;
    for (let i = 0; i < 16; i++) {
      const t = buf[ip6 + 8 + i];
      buf[ip6 + 8 + i] = buf[ip6 + 24 + i];
      buf[ip6 + 24 + i] = t;
    }
    buf[ip6 + 7] = DEFAULT_TTL; // hop limit (not in the checksum)
    const icmp = ip6 + IPV6_HEADER_LEN;
    const typeWord = read16(buf, icmp);
    buf[icmp] = ICMPV6_ECHO_REPLY;
    // Swapping the addresses leaves the pseudo-header sum unchanged; only the type changes.
    write16(buf, icmp + 2, updateChecksum16(read16(buf, icmp + 2), typeWord, read16(buf, icmp)));
    this.tx.send(off, ETH_HEADER_LEN + IPV6_HEADER_LEN + this.ip6.at(buf, ip6).payloadLength);
  }

  /**
   * A transmit slot for an answer to the sender of the frame at `off`: its Ethernet header written (to the
   * frame's source MAC, from ours, `etherType`). Returns the slot's offset in the transmit arena.
   */
  private replyFrame(buf: Uint8Array, off: number, etherType: number): number {
    const o = this.tx.allocate();
    const out = this.tx.arena;
    copyMac(out, o, buf, off + 6);
    copyMac(out, o + 6, this.mac, 0);
    write16(out, o + 12, etherType);
    return o;
  }

  private nextId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }
}
