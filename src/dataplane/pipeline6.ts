/**
 * The IPv6 half of the per-frame path (Pipeline hands it every IPv6 frame): the director's IPv6 presence
 * (Neighbour Discovery for its addresses, VIPs and local addresses; ICMPv6 echo) and IPv6 services in
 * the four forwarding methods - NAT, DR, TUN (IPv6 in IPv6) and FULLNAT - with ICMPv6 errors related to
 * their connections translated both ways.
 *
 * Addresses are handled as Ipv6AddressIds ids (see there), so that the connection table, the service
 * index, the schedulers and the neighbour cache work as for IPv4: a frame's addresses are looked up once
 * (find: no id means no VIP, no connection), a new client gets an id when its first connection is made.
 * Lookups carry PROTO_INET6 with the protocol. Schedulers see an address as IPVS's 32-bit fold of it.
 *
 * FULLNAT services may pass the client address as PROXY protocol v2 (AF_INET6, 52 bytes) or TOA (kind
 * 253, 20 bytes), as for IPv4.
 *
 * Not handled (counted drops): extension headers before TCP/UDP, fragments; IPv6 fwmark services and
 * mark rules are refused by the control plane.
 */
import type { ServiceTable, VirtualService } from '../control/service-table.js';
import { ForwardMethod, SVC_F_ONEPACKET } from '../control/model.js';
import { PROTO_INET6, CONN_F_FWD_MASK, CONN_F_IN_SEQ } from '../conntrack/connection-flags.js';
import { CONN_DEST_UNAVAILABLE, type ConnectionTracker } from '../conntrack/connection-tracker.js';
import { PERSIST_NO_DESTINATION, PERSIST_TABLE_FULL, schedulePersistent } from '../conntrack/persistence.js';
import { DIR_INPUT, DIR_OUTPUT } from '../conntrack/tcp-state.js';
import { bindFullnatLocal, rewriteFullnatInbound6, rewriteFullnatOutbound6 } from '../modes/fullnat.js';
import { rewriteNatInbound6, rewriteNatOutbound6 } from '../modes/nat.js';
import { ICMPV6_ERROR_MIN, ICMPV6_HEADER_LEN, translateIcmp6 } from '../modes/nat-icmp6.js';
import { encapsulateIp6ip6, IP6IP6_OVERHEAD } from '../modes/tun.js';
import { countConnection, countInbound, countOutbound } from '../stats/counters.js';
import type { Ipv6Addresses } from './addresses6.js';
import { DEST_F_AVAILABLE } from './destination-table.js';
import { DestinationNeighbors } from './destination-neighbors.js';
import * as D from './drops.js';
import type { HostStack } from './host.js';
import type { Ipv6AddressIds } from './ipv6-address-ids.js';
import { NextHopSender } from './next-hop-sender.js';
import { needsOrdinaryFrame, type FrameOffload } from './offload.js';
import { NeighborTable } from './neighbors.js';
import type { TxBatch } from './tx-batch.js';
import { read16, read32 } from './wire/bytes.js';
import { ETH_HEADER_LEN } from './wire/ethernet.js';
import {
  ICMPV6_DEST_UNREACH,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_TIME_EXCEEDED,
  icmpv6Checksum,
  isIcmpv6Error,
  ND_NEIGHBOR_ADVERT,
  ND_NEIGHBOR_SOLICIT,
  ND_OPT_TARGET_LL,
} from './wire/icmpv6.js';
import { IPPROTO_TCP, IPPROTO_UDP } from './wire/ipv4.js';
import { IPPROTO_ICMPV6, IPV6_HEADER_LEN, Ipv6View } from './wire/ipv6.js';
import { TCP_ACK, TCP_FIN, TCP_MIN_HEADER_LEN, TCP_RST, TCP_SYN } from './wire/tcp.js';
import { adjustRealServerSegment, insertProxyV2Header6, PROXY_V2_IPV6_LEN, shiftClientSequence } from '../modes/proxy-protocol.js';
import { clampMss, insertToaOption6, TOA_LEN_IPV6 } from '../modes/toa.js';
import { UDP_HEADER_LEN } from './wire/udp.js';

/** ICMPv6 destination unreachable code 4: port unreachable. */
const ICMPV6_PORT_UNREACH = 4;
/** The minimum IPv6 link MTU (RFC 8200 §5). */
const IPV6_MIN_MTU = 1280;

/** What the IPv6 path shares with the pipeline: its totals, and making offloaded frames ordinary. */
export interface ForwardingTotals {
  forwardedIn: number;
  forwardedOut: number;
  makeOrdinary(buf: Uint8Array, off: number, len: number): boolean;
}

export class Ipv6Pipeline {
  /** IPv6 neighbour cache, keyed by address id (holding a reference on each). */
  readonly neighbors: NeighborTable;
  /** Sending to IPv6 next hops (Neighbour Discovery). */
  private readonly hops: NextHopSender;
  private own: Ipv6Addresses | null = null;
  private gatewayId = 0;
  private readonly ids: Ipv6AddressIds;
  private readonly tuple = { saddr: 0, daddr: 0, sport: 0, dport: 0 };
  private scheduling: VirtualService | null = null;
  private readonly pickForScheduling = (): number => {
    const svc = this.scheduling!;
    return svc.scheduler.schedule(svc.dests, this.services.dests, this.tuple);
  };
  /** Neighbour slot cached per destination id (-1 = look up). */
  private readonly destHops = new DestinationNeighbors();
  private readonly scratch = new Uint8Array(16);
  private readonly outer = new Ipv6View();
  private now = 0;
  linkMtu = 1500;
  /** Free bytes before the frame being processed. */
  headroom = 0;

  /** Multiqueue: hands a Neighbour Discovery frame to the other queues (set by the IPv4 pipeline). */
  relayNeighborFrame: (buf: Uint8Array, off: number, len: number) => void = () => {};

  constructor(
    private readonly mac: Uint8Array,
    private readonly services: ServiceTable,
    private readonly tracker: ConnectionTracker,
    private readonly host: HostStack,
    private readonly tx: TxBatch,
    private readonly drops: D.DropCounters,
    private readonly totals: ForwardingTotals,
    private readonly offload: FrameOffload,
    neighbors = new NeighborTable(1024, 256, 2048),
  ) {
    this.ids = services.addresses6;
    this.neighbors = neighbors;
    this.hops = new NextHopSender(mac, neighbors, tx, offload, drops, (hop) => this.solicit(hop));
    neighbors.onAdd = (id) => this.ids.retain(id);
    neighbors.onForget = (id) => this.ids.release(id);
  }

  /** The director's own IPv6 addresses and gateway. */
  setAddresses(own: Ipv6Addresses): void {
    if (this.gatewayId !== 0) this.ids.release(this.gatewayId);
    this.own = own;
    this.gatewayId = own.gateway ? Math.max(0, this.ids.acquire(own.gateway, 0)) : 0;
  }

  get ownAddresses(): Ipv6Addresses | null {
    return this.own;
  }

  /** Does the director speak IPv6 at all (own addresses or IPv6 services)? */
  get enabled(): boolean {
    return (this.own !== null && this.own.count > 0) || this.services.vips6.length > 0;
  }

  private drop(reason: number): void {
    this.drops.counts[reason]++;
  }

  process(buf: Uint8Array, off: number, len: number, now: number): void {
    this.now = now;
    if (!this.enabled) return this.drop(D.DROP_UNSUPPORTED);
    const ip = off + ETH_HEADER_LEN;
    if (len < ETH_HEADER_LEN + IPV6_HEADER_LEN + 8 || buf[ip] >>> 4 !== 6) return this.drop(D.DROP_MALFORMED);
    const plen = read16(buf, ip + 4);
    if (plen > len - ETH_HEADER_LEN - IPV6_HEADER_LEN || plen < 8) return this.drop(D.DROP_MALFORMED);
    const next = buf[ip + 6];
    if (next === IPPROTO_ICMPV6) return this.processIcmp6(buf, off, ip, plen);
    const dstOff = ip + 24;
    if (next !== IPPROTO_TCP && next !== IPPROTO_UDP) {
      return this.drop(this.isOwn(buf, dstOff) ? D.DROP_HOST : D.DROP_UNSUPPORTED);
    }
    const l4 = ip + IPV6_HEADER_LEN;
    let tcpFlags = 0;
    if (next === IPPROTO_TCP) {
      if (plen < TCP_MIN_HEADER_LEN) return this.drop(D.DROP_MALFORMED);
      const hl = (buf[l4 + 12] >>> 4) * 4;
      if (hl < TCP_MIN_HEADER_LEN || hl > plen) return this.drop(D.DROP_MALFORMED);
      tcpFlags = buf[l4 + 13];
    } else {
      const ulen = read16(buf, l4 + 4);
      if (ulen < UDP_HEADER_LEN || ulen > plen) return this.drop(D.DROP_MALFORMED);
    }
    const sport = read16(buf, l4), dport = read16(buf, l4 + 2);
    const proto = next | PROTO_INET6;
    const ids = this.ids, services = this.services;
    const dstId = ids.find(buf, dstOff);
    if (dstId > 0 && services.isVip6(dstId)) return this.inbound(buf, off, ip, l4, plen, proto, dstId, sport, dport, tcpFlags);
    const srcId = ids.find(buf, ip + 8);
    if (dstId > 0 && services.isLocalAddress6(dstId)) {
      const cid = srcId > 0 ? this.tracker.table.lookupOutFullnat(proto, srcId, sport, dstId, dport) : -1;
      if (cid >= 0) return this.outbound(buf, off, ip, l4, plen, cid, tcpFlags, true);
      return this.drop(D.DROP_HOST);
    }
    if (this.own !== null && this.own.isLocal(buf, dstOff)) {
      // Our own address: nothing listens here, so the stack refuses (RST / port unreachable).
      if (next === IPPROTO_TCP) this.host.tcpReset6(buf, off);
      else this.host.icmp6Error(buf, off, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH, buf, dstOff);
      return this.drop(D.DROP_HOST);
    }
    // A reply of a NAT connection: RIP:rport -> CIP:cport.
    const cid = srcId > 0 && dstId > 0 ? this.tracker.table.lookupOutMasq(proto, srcId, sport, dstId, dport) : -1;
    if (cid < 0) return this.drop(D.DROP_NOT_ROUTED);
    this.outbound(buf, off, ip, l4, plen, cid, tcpFlags, false);
  }

  /** Client -> VIP (kernel ip_vs_in for AF_INET6). */
  private inbound(buf: Uint8Array, off: number, ip: number, l4: number, plen: number, proto: number, vip: number, sport: number, dport: number, tcpFlags: number): void {
    const tracker = this.tracker, conns = tracker.table, ids = this.ids;
    const srcOff = ip + 8;
    const known = ids.find(buf, srcOff);
    let cid = known > 0 ? conns.lookupIn(proto, known, sport, vip, dport) : -1;
    if (cid >= 0) {
      cid = tracker.existingForInbound(cid, (tcpFlags & TCP_SYN) !== 0);
      if (cid === CONN_DEST_UNAVAILABLE) return this.drop(D.DROP_DEST_UNAVAILABLE);
    }
    if (cid < 0) {
      const mark = this.services.classify(proto, vip, dport);
      const svcId = this.services.lookupForScheduling(proto, vip, dport, mark);
      if (svcId < 0 || ((proto & 0xff) === IPPROTO_TCP && (tcpFlags & (TCP_SYN | TCP_RST)) !== TCP_SYN)) {
        // No service on this port (or a segment that opens nothing): what the director's stack answers.
        if ((proto & 0xff) === IPPROTO_UDP) this.host.icmp6Error(buf, off, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH, buf, ip + 24);
        else this.host.tcpReset6(buf, off);
        return this.drop(D.DROP_HOST);
      }
      cid = this.schedule(buf, off, ip, proto, vip, sport, dport, svcId);
      if (cid < 0) return;
    }
    const dest = conns.destOf(cid);
    const total = IPV6_HEADER_LEN + plen;
    // Tunnels and FULLNAT's client-address passing need ordinary frames (offload.ts).
    if (this.offload.active && needsOrdinaryFrame(this.services, conns.flagsOf(cid) & CONN_F_FWD_MASK, proto & 0xff, dest) && !this.totals.makeOrdinary(buf, off, ETH_HEADER_LEN + total)) return;
    countInbound(this.services, dest, total);
    tracker.transition(cid, DIR_INPUT, tcpFlags, this.now);
    conns.inPkts[cid]++;
    if (buf[ip + 7] <= 1) {
      this.sendError(buf, off, ip, ICMPV6_TIME_EXCEEDED, 0, 0);
      return this.drop(D.DROP_TTL_EXCEEDED);
    }
    this.forwardToRealServer(buf, off, ip, l4, total, cid, dest, tcpFlags);
  }


  /** Schedule a new connection for a client packet to service `svcId`; its id, or -1 (dropped, counted). */
  private schedule(buf: Uint8Array, off: number, ip: number, proto: number, vip: number, sport: number, dport: number, svcId: number): number {
    const tracker = this.tracker, conns = tracker.table, dests = this.services.dests, ids = this.ids;
    const svc = this.services.service(svcId)!;
    const client = ids.acquire(buf, ip + 8); // held until the connection holds its own reference
    if (client < 0) {
      this.drop(D.DROP_TABLE_FULL);
      return -1;
    }
    const t = this.tuple;
    t.saddr = ids.fold(client);
    t.daddr = ids.fold(vip);
    t.sport = sport;
    t.dport = dport;
    this.scheduling = svc;
    let cid: number;
    if (svc.persistent) {
      const snet = svc.prefix6 >= 128 ? client : this.acquireNetwork(buf, ip + 8, svc.prefix6);
      cid = snet < 0 ? PERSIST_TABLE_FULL : schedulePersistent(tracker, svc, proto, client, sport, vip, dport, this.now, this.pickForScheduling, snet);
      if (snet > 0 && snet !== client) ids.release(snet);
    } else {
      const dest = svc.scheduler.schedule(svc.dests, dests, t);
      const onePacket = (svc.config.flags & SVC_F_ONEPACKET) !== 0 && (proto & 0xff) === IPPROTO_UDP;
      cid = dest < 0 ? PERSIST_NO_DESTINATION : tracker.create(proto, client, sport, vip, dport, dest, this.now, undefined, onePacket);
      if (dest >= 0 && cid < 0) cid = PERSIST_TABLE_FULL;
    }
    ids.release(client);
    if (cid === PERSIST_NO_DESTINATION) {
      this.host.icmp6Error(buf, off, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH, buf, ip + 24);
      this.drop(D.DROP_NO_DESTINATION);
      return -1;
    }
    if (cid < 0) {
      this.drop(D.DROP_TABLE_FULL);
      return -1;
    }
    const dest = conns.destOf(cid);
    if (dests.forward[dest] === ForwardMethod.FullNat && !bindFullnatLocal(conns, svc, cid, proto)) {
      tracker.expireNow(cid);
      this.drop(D.DROP_NO_LOCAL_PORT);
      return -1;
    }
    countConnection(this.services, dest, svcId);
    return cid;
  }

  /** The id (one reference) of the client address at buf[off..] masked to `prefix` bits (persistence -M). */
  private acquireNetwork(buf: Uint8Array, off: number, prefix: number): number {
    const s = this.scratch;
    for (let i = 0; i < 16; i++) {
      const bits = Math.max(0, Math.min(8, prefix - 8 * i));
      s[i] = buf[off + i] & ((0xff00 >>> bits) & 0xff);
    }
    return this.ids.acquire(s, 0);
  }

  /** The connection's forwarding method towards its real server (kernel cp->packet_xmit), hop limit included. */
  private forwardToRealServer(buf: Uint8Array, off: number, ip: number, l4: number, total: number, cid: number, dest: number, tcpFlags: number): void {
    const conns = this.tracker.table, ids = this.ids;
    const rip = conns.daddrOf(cid);
    const method = conns.flagsOf(cid) & CONN_F_FWD_MASK;
    const partial = this.offload.needsCsum;
    if (method === ForwardMethod.Masq) rewriteNatInbound6(buf, ip, l4, ids, rip, conns.dportOf(cid), partial);
    else if (method === ForwardMethod.FullNat) {
      const mode = buf[ip + 6] === IPPROTO_TCP ? this.services.service(this.services.dests.service[dest])?.clientAddress : undefined;
      if (mode === 'proxy-protocol' || mode === 'toa') {
        const moved = mode === 'toa' ? this.toaInbound(buf, off, l4, total, cid, tcpFlags) : this.proxyProtocolInbound(buf, off, l4, total, cid, tcpFlags);
        if (moved < 0) return;
        ip += moved - off;
        l4 += moved - off;
        total = IPV6_HEADER_LEN + read16(buf, ip + 4);
        off = moved;
      }
      rewriteFullnatInbound6(buf, ip, l4, ids, conns.laddr[cid], conns.lport[cid], rip, conns.dportOf(cid), partial);
    } else if (method !== ForwardMethod.Route && method !== ForwardMethod.Tunnel) return this.drop(D.DROP_UNSUPPORTED);
    buf[ip + 7]--;
    let frame = off, len = ETH_HEADER_LEN + total;
    if (method === ForwardMethod.Tunnel) {
      // IPv6 never fragments on the way: too big for the tunnel means a packet-too-big to the client.
      if (total + IP6IP6_OVERHEAD > this.linkMtu) {
        buf[ip + 7]++;
        this.sendError(buf, off, ip, ICMPV6_PACKET_TOO_BIG, 0, Math.max(IPV6_MIN_MTU, this.linkMtu - IP6IP6_OVERHEAD));
        return this.drop(D.DROP_TOO_BIG);
      }
      if (this.headroom < IP6IP6_OVERHEAD) return this.drop(D.DROP_UNSUPPORTED);
      const src = this.sourceFor(rip);
      if (src < 0) return this.drop(D.DROP_NOT_ROUTED);
      ids.copyTo(rip, this.scratch, 0);
      frame = encapsulateIp6ip6(buf, off, total, this.outer, this.own!.addressBytes, 16 * src, this.scratch, 0);
      len += IP6IP6_OVERHEAD;
    }
    this.totals.forwardedIn++;
    this.destHops.remember(dest, this.hops.send(buf, frame, len, this.nextHop(rip), this.destHops.slotOf(dest), this.now));
  }

  /** Real server -> client: a NAT reply (RIP -> CIP) or a FULLNAT one (RIP -> LIP). */
  private outbound(buf: Uint8Array, off: number, ip: number, l4: number, plen: number, cid: number, tcpFlags: number, fullnat: boolean): void {
    const conns = this.tracker.table;
    const dest = conns.destOf(cid);
    const total = IPV6_HEADER_LEN + plen;
    if (fullnat && this.offload.active && needsOrdinaryFrame(this.services, ForwardMethod.FullNat, buf[ip + 6], dest) && !this.totals.makeOrdinary(buf, off, ETH_HEADER_LEN + total)) return;
    if (dest >= 0 && (this.services.dests.flags[dest] & DEST_F_AVAILABLE) !== 0) countOutbound(this.services, dest, total);
    this.tracker.transition(cid, DIR_OUTPUT, tcpFlags, this.now);
    if (buf[ip + 7] <= 1) {
      this.sendError(buf, off, ip, ICMPV6_TIME_EXCEEDED, 0, 0);
      return this.drop(D.DROP_TTL_EXCEEDED);
    }
    const client = conns.caddrOf(cid);
    if (fullnat && buf[ip + 6] === IPPROTO_TCP && dest >= 0) {
      const mode = this.services.service(this.services.dests.service[dest])?.clientAddress;
      const thl = (buf[l4 + 12] >>> 4) * 4;
      if (mode === 'proxy-protocol') {
        adjustRealServerSegment(buf, l4, thl, tcpFlags, conns.aux[cid], (conns.flagsOf(cid) & CONN_F_IN_SEQ) !== 0, PROXY_V2_IPV6_LEN);
      } else if (mode === 'toa' && (tcpFlags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) {
        conns.aux[cid] = (read32(buf, l4 + 4) + 1) >>> 0; // the real server's ISN + 1: client ACKs of it carry the option
        clampMss(buf, l4, thl, TOA_LEN_IPV6);
      }
    }
    const partial = this.offload.needsCsum;
    if (fullnat) rewriteFullnatOutbound6(buf, ip, l4, this.ids, conns.vaddrOf(cid), conns.vportOf(cid), client, conns.cportOf(cid), partial);
    else rewriteNatOutbound6(buf, ip, l4, this.ids, conns.vaddrOf(cid), conns.vportOf(cid), partial);
    buf[ip + 7]--;
    this.totals.forwardedOut++;
    conns.replyNeighbor[cid] = this.hops.send(buf, off, ETH_HEADER_LEN + total, this.nextHop(client), conns.replyNeighbor[cid], this.now);
  }

  /**
   * FULLNAT + PROXY protocol, client side (as Pipeline.proxyProtocolInbound for IPv4): the stream start on
   * the SYN, the header in front of the first data segment, later segments shifted. Returns the (possibly
   * moved) frame offset, -1 when the frame was dropped.
   */
  private proxyProtocolInbound(buf: Uint8Array, off: number, l4: number, total: number, cid: number, tcpFlags: number): number {
    const conns = this.tracker.table;
    const seq = read32(buf, l4 + 4);
    if ((tcpFlags & TCP_SYN) !== 0) {
      conns.aux[cid] = (seq + 1) >>> 0; // the first data byte
      return off;
    }
    const first = conns.aux[cid];
    const thl = (buf[l4 + 12] >>> 4) * 4;
    const payload = total - IPV6_HEADER_LEN - thl;
    if (seq === first && payload > 0) {
      if (this.headroom < PROXY_V2_IPV6_LEN || total + PROXY_V2_IPV6_LEN > this.linkMtu) {
        this.drop(D.DROP_TOO_BIG);
        return -1;
      }
      conns.setFlags(cid, conns.flagsOf(cid) | CONN_F_IN_SEQ);
      return insertProxyV2Header6(buf, off, l4, thl, this.ids, conns.caddrOf(cid), conns.cportOf(cid), conns.vaddrOf(cid), conns.vportOf(cid));
    }
    if ((conns.flagsOf(cid) & CONN_F_IN_SEQ) !== 0 && ((seq - first) | 0) > 0) shiftClientSequence(buf, l4, PROXY_V2_IPV6_LEN);
    return off;
  }

  /** FULLNAT + TOA, client side (as Pipeline.toaInbound): the option in the SYN and in ACKs of the server's ISN + 1. */
  private toaInbound(buf: Uint8Array, off: number, l4: number, total: number, cid: number, tcpFlags: number): number {
    const conns = this.tracker.table;
    const ack = read32(buf, l4 + 8);
    const wanted =
      (tcpFlags & (TCP_SYN | TCP_RST | TCP_FIN)) === TCP_SYN ||
      ((tcpFlags & (TCP_SYN | TCP_RST | TCP_FIN)) === 0 && (tcpFlags & TCP_ACK) !== 0 && conns.aux[cid] !== 0 && ack === conns.aux[cid]);
    if (!wanted || this.headroom < TOA_LEN_IPV6 || total + TOA_LEN_IPV6 > this.linkMtu) return off;
    const moved = insertToaOption6(buf, off, l4, (buf[l4 + 12] >>> 4) * 4, this.ids, conns.caddrOf(cid), conns.cportOf(cid));
    return moved < 0 ? off : moved;
  }

  // ---- ICMPv6 -------------------------------------------------------------------------------------

  private processIcmp6(buf: Uint8Array, off: number, ip: number, plen: number): void {
    const icmp = ip + IPV6_HEADER_LEN;
    if (icmpv6Checksum(buf, ip, icmp, plen) !== read16(buf, icmp + 2)) return this.drop(D.DROP_MALFORMED);
    const type = buf[icmp];
    const dstOff = ip + 24;
    if (type === ND_NEIGHBOR_SOLICIT) {
      // RFC 4861 §7.1.1: hop limit 255, code 0; answered for our addresses, VIPs and local addresses.
      if (buf[ip + 7] === 255 && buf[icmp + 1] === 0 && plen >= 24 && this.isOwn(buf, icmp + 8)) {
        this.learnFromSolicit(buf, ip, icmp, plen);
        this.relayNeighborFrame(buf, off, ETH_HEADER_LEN + IPV6_HEADER_LEN + plen);
        this.host.neighborAdvert(buf, off, ip, icmp + 8);
      }
      return this.drop(D.DROP_HOST);
    }
    if (type === ND_NEIGHBOR_ADVERT) {
      if (buf[ip + 7] === 255 && plen >= 24) {
        this.learnFromAdvert(buf, off, icmp, plen);
        this.relayNeighborFrame(buf, off, ETH_HEADER_LEN + IPV6_HEADER_LEN + plen);
      }
      return this.drop(D.DROP_HOST);
    }
    const own = this.isOwn(buf, dstOff);
    if (type === ICMPV6_ECHO_REQUEST && own) return this.host.echoReply6(buf, off);
    if (isIcmpv6Error(type) && plen >= ICMPV6_ERROR_MIN) {
      const dstId = this.ids.find(buf, dstOff);
      if (dstId > 0 && this.services.isVip6(dstId)) return this.icmpFromClient(buf, off, ip, icmp, plen);
      if (dstId > 0 && this.services.isLocalAddress6(dstId)) return this.icmpFromRealServer(buf, off, ip, icmp, plen, true);
      if (!own) return this.icmpFromRealServer(buf, off, ip, icmp, plen, false);
    }
    this.drop(own ? D.DROP_HOST : D.DROP_NOT_ROUTED);
  }

  /**
   * The packet an ICMPv6 error at `icmp` quotes: a TCP/UDP IPv6 header (eProto with PROTO_INET6), its
   * addresses' ids (eSrc/eDst, -1 when unknown: then no connection has them) and ports. False when the
   * quote is not TCP/UDP over IPv6.
   */
  private readEmbedded(buf: Uint8Array, icmp: number): boolean {
    const e = icmp + ICMPV6_HEADER_LEN;
    const p = buf[e + 6];
    if (buf[e] >>> 4 !== 6 || (p !== IPPROTO_TCP && p !== IPPROTO_UDP)) return false;
    this.eProto = p | PROTO_INET6;
    this.eSrc = this.ids.find(buf, e + 8);
    this.eDst = this.ids.find(buf, e + 24);
    this.eSport = read16(buf, e + 40);
    this.eDport = read16(buf, e + 42);
    return true;
  }
  private eProto = 0;
  private eSrc = -1;
  private eDst = -1;
  private eSport = 0;
  private eDport = 0;

  /**
   * An ICMPv6 error from the real-server side about a packet of a NAT or FULLNAT connection (kernel
   * ip_vs_out_icmp_v6), translated so the client sees an error about its own packet to the VIP.
   */
  private icmpFromRealServer(buf: Uint8Array, off: number, ip: number, icmp: number, plen: number, fullnat: boolean): void {
    if (!this.readEmbedded(buf, icmp)) return this.drop(D.DROP_MALFORMED);
    const ids = this.ids, conns = this.tracker.table;
    const proto = this.eProto, esrc = this.eSrc, edst = this.eDst, esport = this.eSport, edport = this.eDport;
    // Inverted embedded packet (RIP:rport -> CIP:cport, or -> LIP:lport), as a reply would be.
    let cid = -1;
    if (esrc > 0 && edst > 0)
      cid = fullnat ? conns.lookupOutFullnat(proto, edst, edport, esrc, esport) : conns.lookupOutMasq(proto, edst, edport, esrc, esport);
    if (cid < 0) return this.drop(fullnat ? D.DROP_HOST : D.DROP_NOT_ROUTED);
    const dest = conns.destOf(cid);
    const total = IPV6_HEADER_LEN + plen;
    if (dest >= 0 && (this.services.dests.flags[dest] & DEST_F_AVAILABLE) !== 0) countOutbound(this.services, dest, total);
    if (buf[ip + 7] <= 1) return this.drop(D.DROP_TTL_EXCEEDED);
    const client = conns.caddrOf(cid), vip = conns.vaddrOf(cid);
    if (fullnat) translateIcmp6(buf, ip, icmp, plen, ids, vip, client, client, conns.cportOf(cid), vip, conns.vportOf(cid));
    else translateIcmp6(buf, ip, icmp, plen, ids, vip, 0, client, conns.cportOf(cid), vip, conns.vportOf(cid));
    buf[ip + 7]--;
    this.totals.forwardedOut++;
    conns.replyNeighbor[cid] = this.hops.send(buf, off, ETH_HEADER_LEN + total, this.nextHop(client), conns.replyNeighbor[cid], this.now);
  }

  /**
   * An ICMPv6 error from the client about a reply it got from the VIP (kernel ip_vs_in_icmp_v6): NAT and
   * FULLNAT connections get it translated for the real server; DR and TUN carry it with their method.
   */
  private icmpFromClient(buf: Uint8Array, off: number, ip: number, icmp: number, plen: number): void {
    if (!this.readEmbedded(buf, icmp)) return this.drop(D.DROP_MALFORMED);
    const ids = this.ids, conns = this.tracker.table;
    const proto = this.eProto, esrc = this.eSrc, edst = this.eDst, esport = this.eSport, edport = this.eDport;
    // Inverted embedded packet (VIP:vport -> CIP:cport): CIP:cport -> VIP:vport, as the client's packets.
    const cid = esrc > 0 && edst > 0 ? conns.lookupIn(proto, edst, edport, esrc, esport) : -1;
    if (cid < 0) return this.drop(D.DROP_HOST);
    const dest = conns.destOf(cid);
    if (dest < 0 || (this.services.dests.flags[dest] & DEST_F_AVAILABLE) === 0) return this.drop(D.DROP_DEST_UNAVAILABLE);
    const total = IPV6_HEADER_LEN + plen;
    countInbound(this.services, dest, total);
    if (buf[ip + 7] <= 1) return this.drop(D.DROP_TTL_EXCEEDED);
    const method = conns.flagsOf(cid) & CONN_F_FWD_MASK;
    const rip = conns.daddrOf(cid), rport = conns.dportOf(cid);
    if (method === ForwardMethod.Masq) {
      // About VIP:vport -> CIP:cport, which the real server sent as RIP:rport -> CIP:cport.
      translateIcmp6(buf, ip, icmp, plen, ids, 0, rip, rip, rport, conns.caddrOf(cid), conns.cportOf(cid));
    } else if (method === ForwardMethod.FullNat) {
      const lip = conns.laddr[cid], lport = conns.lport[cid];
      translateIcmp6(buf, ip, icmp, plen, ids, lip, rip, rip, rport, lip, lport);
    } else if (method !== ForwardMethod.Route && method !== ForwardMethod.Tunnel) return this.drop(D.DROP_UNSUPPORTED);
    if (method === ForwardMethod.Tunnel) return this.forwardToRealServer(buf, off, ip, icmp, total, cid, dest, 0);
    buf[ip + 7]--;
    this.totals.forwardedIn++;
    this.destHops.remember(dest, this.hops.send(buf, off, ETH_HEADER_LEN + total, this.nextHop(rip), this.destHops.slotOf(dest), this.now));
  }

  /** An ICMPv6 error about the packet in the frame at `off` to its sender, from our address on its link. */
  private sendError(buf: Uint8Array, off: number, ip: number, type: number, code: number, info: number): void {
    // From the address the packet was sent to when it is ours (a VIP), else from our address towards the sender.
    const dstId = this.ids.find(buf, ip + 24);
    if (dstId > 0 && (this.services.isVip6(dstId) || this.services.isLocalAddress6(dstId))) {
      this.host.icmp6Error(buf, off, type, code, buf, ip + 24, info);
      return;
    }
    const own = this.own;
    if (own === null || own.count === 0) return;
    const i = Math.max(0, own.onLink(read32(buf, ip + 8), read32(buf, ip + 12), read32(buf, ip + 16), read32(buf, ip + 20)));
    this.host.icmp6Error(buf, off, type, code, own.addressBytes, 16 * i, info);
  }

  // ---- neighbours ---------------------------------------------------------------------------------

  /** Our address, a VIP or a local address of an IPv6 service? */
  private isOwn(buf: Uint8Array, off: number): boolean {
    if (this.own !== null && this.own.isLocal(buf, off)) return true;
    const id = this.ids.find(buf, off);
    return id > 0 && (this.services.isVip6(id) || this.services.isLocalAddress6(id));
  }

  /** A Neighbour Discovery frame another queue received (multiqueue): learn from it, answer nothing. */
  learnFromRelayedFrame(buf: Uint8Array, off: number, len: number, now: number): void {
    this.now = now;
    const ip = off + ETH_HEADER_LEN;
    if (!this.enabled || len < ETH_HEADER_LEN + IPV6_HEADER_LEN + 24 || buf[ip + 6] !== IPPROTO_ICMPV6 || buf[ip + 7] !== 255) return;
    const plen = read16(buf, ip + 4);
    if (plen < 24 || plen > len - ETH_HEADER_LEN - IPV6_HEADER_LEN) return;
    const icmp = ip + IPV6_HEADER_LEN;
    if (buf[icmp] === ND_NEIGHBOR_SOLICIT) this.learnFromSolicit(buf, ip, icmp, plen);
    else if (buf[icmp] === ND_NEIGHBOR_ADVERT) this.learnFromAdvert(buf, off, icmp, plen);
  }

  /** A solicitation's source link-layer option refreshes what we know of the solicitor. */
  private learnFromSolicit(buf: Uint8Array, ip: number, icmp: number, plen: number): void {
    const id = this.ids.find(buf, ip + 8);
    if (id <= 0 || plen < 32 || buf[icmp + 24] !== 1 || buf[icmp + 25] !== 1) return;
    const slot = this.neighbors.refreshIfKnown(id, buf, icmp + 26, this.now);
    if (slot >= 0) this.neighbors.sendPending(slot, this.tx, this.mac);
  }

  /** An advertisement resolves a neighbour we asked for (or refreshes a known one). */
  private learnFromAdvert(buf: Uint8Array, off: number, icmp: number, plen: number): void {
    const id = this.ids.find(buf, icmp + 8);
    if (id <= 0 || this.neighbors.lookup(id) < 0) return;
    // The target link-layer option if present, else the frame's source MAC.
    const macOff = plen >= 32 && buf[icmp + 24] === ND_OPT_TARGET_LL && buf[icmp + 25] === 1 ? icmp + 26 : off + 6;
    const slot = this.neighbors.learn(id, buf, macOff, this.now);
    this.neighbors.sendPending(slot, this.tx, this.mac);
  }

  /** The next hop towards address id `id`: itself when on-link, else the gateway; 0 when unreachable. */
  private nextHop(id: number): number {
    const own = this.own, ids = this.ids;
    if (own !== null && own.onLink(ids.word(id, 0), ids.word(id, 1), ids.word(id, 2), ids.word(id, 3)) >= 0) return id;
    return this.gatewayId;
  }

  /** The index of our address to talk to `id` from (its link's, else the gateway's, else the first); -1 when we have none. */
  private sourceFor(id: number): number {
    const own = this.own, ids = this.ids;
    if (own === null || own.count === 0) return -1;
    const i = own.onLink(ids.word(id, 0), ids.word(id, 1), ids.word(id, 2), ids.word(id, 3));
    if (i >= 0 || this.gatewayId === 0) return Math.max(0, i);
    const g = this.gatewayId;
    return Math.max(0, own.onLink(ids.word(g, 0), ids.word(g, 1), ids.word(g, 2), ids.word(g, 3)));
  }

  private solicit(id: number): void {
    const src = this.sourceFor(id);
    if (src < 0) return;
    this.ids.copyTo(id, this.scratch, 0);
    this.host.neighborSolicit(this.own!.addressBytes, 16 * src, this.scratch, 0);
  }

  /** Timer work for the IPv6 neighbour cache: re-solicit, give up after three tries. */
  tick(now: number): void {
    this.now = now;
    this.neighbors.tick(
      now,
      (slot) => this.solicit(this.neighbors.ip[slot]),
      (dropped) => {
        this.drops.counts[D.DROP_NEIGHBOR_UNRESOLVED] += dropped;
      },
    );
  }

  /** Forget cached next hops (the destination set changed). */
  resetDestinationCache(): void {
    this.destHops.reset();
  }
}
