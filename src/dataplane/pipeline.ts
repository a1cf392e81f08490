/**
 * The per-frame path: classify a received frame, then either answer it as the director's host stack
 * (ARP, ICMP echo, resets), or run it through IPVS (connection lookup, scheduling, state transition,
 * statistics) and the connection's forwarding method, then resolve the next hop and queue it for sending.
 * One call per batch; frames are rewritten in place in their receive slot; nothing is allocated per frame.
 */
import type { ServiceTable, VirtualService } from '../control/service-table.js';
import { ForwardMethod, SVC_F_ONEPACKET } from '../control/model.js';
import { PERSIST_NO_DESTINATION, PERSIST_TABLE_FULL, schedulePersistent } from '../conntrack/persistence.js';
import { CONN_F_FWD_MASK, CONN_F_IN_SEQ } from '../conntrack/connection-flags.js';
import { CONN_DEST_UNAVAILABLE, type ConnectionTracker } from '../conntrack/connection-tracker.js';
import { DIR_INPUT, DIR_OUTPUT } from '../conntrack/tcp-state.js';
import { rewriteNatInbound, rewriteNatOutbound } from '../modes/nat.js';
import { countConnection, countInbound, countOutbound } from '../stats/counters.js';
import { DEST_F_AVAILABLE } from './destination-table.js';
import * as D from './drops.js';
import type { HostStack } from './host.js';
import type { RoutingTable } from './routes.js';
import type { TxBatch } from './tx-batch.js';
import { ARP_LEN, ARP_OP_REPLY, ARP_OP_REQUEST, ArpView } from './wire/arp.js';
/** Multiqueue: neighbour frames relayed to the other queues per second at most (an ARP flood stays local). */
export const NEIGHBOR_RELAYS_PER_SECOND = 200;
import { ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, EthernetView } from './wire/ethernet.js';
import type { Ipv6Addresses } from './addresses6.js';
import { Ipv6Pipeline } from './pipeline6.js';
import { NextHopSender } from './next-hop-sender.js';
import { DestinationNeighbors } from './destination-neighbors.js';
import { FrameOffload, needsOrdinaryFrame, tcpSegmentCount, writeTcpSegment } from './offload.js';
import { NeighborTable } from './neighbors.js';
import { ICMP_DEST_UNREACH, ICMP_ECHO_REQUEST, ICMP_FRAG_NEEDED, ICMP_HEADER_LEN, ICMP_PORT_UNREACH, ICMP_TIME_EXCEEDED, IcmpView } from './wire/icmp.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HEADER_LEN, Ipv4View } from './wire/ipv4.js';
import { encapsulateTunnel, IPIP_OVERHEAD, outerFragmentPayload, tunnelOverhead } from '../modes/tun.js';
import { bindFullnatLocal, rewriteFullnatInbound, rewriteFullnatOutbound } from '../modes/fullnat.js';
import { adjustRealServerSegment, insertProxyV2Header, PROXY_V2_IPV4_LEN, shiftClientSequence } from '../modes/proxy-protocol.js';
import { clampMss, insertToaOption, TOA_LEN } from '../modes/toa.js';
import { ICMP_ERROR_MIN, isRelatedIcmpType, translateIcmpFullnat, translateIcmpToClient, translateIcmpToRealServer } from '../modes/nat-icmp.js';
import { checksum } from './wire/checksum.js';
import { write16 } from './wire/bytes.js';
import { TCP_ACK, TCP_FIN, TCP_MIN_HEADER_LEN, TCP_RST, TCP_SYN, TcpView } from './wire/tcp.js';
import { UDP_HEADER_LEN, UdpView } from './wire/udp.js';

export class Pipeline {
  readonly drops = new D.DropCounters();
  /** Frames received / forwarded in or out (totals). */
  framesIn = 0;
  forwardedIn = 0;
  forwardedOut = 0;
  /** Batch-size histogram input: sum and count of batches. */
  batches = 0;

  private readonly eth = new EthernetView();
  private readonly arp = new ArpView();
  private readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();
  private readonly icmp = new IcmpView();
  private readonly embedded = new Ipv4View();
  private embeddedSport = 0;
  private embeddedDport = 0;
  private readonly tuple = { saddr: 0, daddr: 0, sport: 0, dport: 0 };
  /** Neighbour slot cached per destination id (-1 = look up). */
  private readonly destHops = new DestinationNeighbors();
  private now = 0;
  private ipId = 0;
  private readonly outer = new Ipv4View();
  private readonly fragment = new Ipv4View();
  /** Free bytes before the frame being processed (0 for frames that have none, e.g. in unit tests). */
  private headroom = 0;
  /** The service being scheduled, for pickForScheduling (a bound method: no closure per packet). */
  private scheduling: VirtualService | null = null;
  private readonly pickForScheduling = (): number => {
    const svc = this.scheduling!;
    return svc.scheduler.schedule(svc.dests, this.services.dests, this.tuple);
  };

  /** IPv6: the director's presence and IPv6 services. */
  readonly v6: Ipv6Pipeline;
  /**
   * Multiqueue, queue 0 (the steering program gives it every frame that is not TCP/UDP): a copy of each
   * ARP or Neighbour Discovery frame that teaches a neighbour, for the other queues' pipelines
   * (learnFromRelayedFrame). At most NEIGHBOR_RELAYS_PER_SECOND; the rest are counted, not relayed.
   */
  onNeighborFrame: ((frame: Uint8Array) => void) | null = null;
  /** Neighbour frames not relayed because the second's budget was spent. */
  neighborRelaysSuppressed = 0;
  private relayWindowStart = 0;
  private relayedInWindow = 0;
  /** Offload state (virtio_net_hdr) of the frame being processed; rxVnet is set by the director with --offload. */
  readonly offload = new FrameOffload();
  /** Sending to IPv4 next hops (ARP). */
  private readonly hops: NextHopSender;
  /** MTU of the director's link (the TAP's); the tunnel MTU is 20 bytes less. */
  get linkMtu(): number {
    return this.mtu;
  }
  set linkMtu(v: number) {
    this.mtu = v;
    this.v6.linkMtu = v;
  }
  private mtu = 1500;

  constructor(
    private readonly mac: Uint8Array,
    private readonly services: ServiceTable,
    private readonly tracker: ConnectionTracker,
    private readonly routes: RoutingTable,
    private readonly neighbors: NeighborTable,
    private readonly host: HostStack,
    private readonly tx: TxBatch,
    /** The IPv6 neighbour cache (pipelines of one device's queues share one). */
    neighbors6 = new NeighborTable(neighbors.slots, neighbors.pendingSlots, neighbors.pendingSize),
  ) {
    this.hops = new NextHopSender(mac, neighbors, tx, this.offload, this.drops, (hop) => host.arpRequest(routes.sourceFor(hop), hop));
    this.v6 = new Ipv6Pipeline(mac, services, tracker, host, tx, this.drops, this, this.offload, neighbors6);
    this.v6.relayNeighborFrame = (buf, off, len) => this.relayNeighborFrame(buf, off, len);
  }

  /** The director's own IPv6 addresses (tapvsd --address with an IPv6 address) and IPv6 gateway. */
  setAddresses6(a: Ipv6Addresses): void {
    this.v6.setAddresses(a);
  }

  /**
   * Process `count` frames at arena offsets slot*slotSize + headroom with lengths `lengths[slot]`. The
   * headroom before each frame lets a forwarding method prepend headers in place (IPIP).
   */
  processBatch(arena: Uint8Array, slotSize: number, headroom: number, lengths: Int32Array, count: number, now: number): void {
    this.now = now;
    this.batches++;
    this.headroom = headroom;
    this.v6.headroom = headroom;
    if (count > 1) this.touchConnections(arena, slotSize, headroom, lengths, count);
    const offload = this.offload;
    for (let i = 0; i < count; i++) {
      offload.begin(i);
      this.processFrame(arena, i * slotSize + headroom, lengths[i]);
    }
    offload.clear();
    this.tx.flush();
  }

  /**
   * The batch's connection lookups, started early (ConnectionTable.bucketHead / touchEntry): for each
   * IPv4 TCP/UDP frame, both of its ends are looked up as a client side (which one is the client is not
   * known before the service lookup; the other end is a VIP or a real server, few and hot in cache).
   * First every bucket, then every first entry, so that the misses of one pass overlap. Reads only;
   * anything short or odd is skipped.
   */
  private touchConnections(arena: Uint8Array, slotSize: number, headroom: number, lengths: Int32Array, count: number): void {
    const conns = this.tracker.table;
    if (this.heads.length < 2 * count) this.heads = new Int32Array(2 * count); // once, for a larger batch
    const heads = this.heads;
    let n = 0;
    for (let i = 0; i < count; i++) {
      const off = i * slotSize + headroom;
      if (lengths[i] < ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN + 4 || arena[off + 12] !== 8 || arena[off + 13] !== 0) continue;
      const ip = off + ETH_HEADER_LEN;
      const l4 = ip + (arena[ip] & 0x0f) * 4;
      const proto = arena[ip + 9];
      if ((proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || l4 + 4 > off + lengths[i]) continue;
      const src = ((arena[ip + 12] << 24) | (arena[ip + 13] << 16) | (arena[ip + 14] << 8) | arena[ip + 15]) >>> 0;
      const dst = ((arena[ip + 16] << 24) | (arena[ip + 17] << 16) | (arena[ip + 18] << 8) | arena[ip + 19]) >>> 0;
      heads[n++] = conns.bucketHead(proto, src, (arena[l4] << 8) | arena[l4 + 1]);
      heads[n++] = conns.bucketHead(proto, dst, (arena[l4 + 2] << 8) | arena[l4 + 3]);
    }
    let sum = 0;
    for (let j = 0; j < n; j++) sum += conns.touchEntry(heads[j]);
    this.touched = sum;
  }

  /** The bucket heads of touchConnections' first pass. */
  private heads = new Int32Array(128);
  /** What touchConnections read (kept so that its reads stay). */
  private touched = 0;

  processFrame(buf: Uint8Array, off: number, len: number): void {
    this.framesIn++;
    if (len < ETH_HEADER_LEN) return this.drop(D.DROP_MALFORMED);
    const eth = this.eth.at(buf, off);
    const type = eth.etherType;
    if (!eth.dstEquals(this.mac) && !eth.isBroadcastDst()) {
      // IPv6 Neighbour Discovery comes to multicast MACs (33:33:...).
      if (!(eth.isMulticastDst() && type === ETHERTYPE_IPV6 && this.v6.enabled))
        return this.drop(eth.isMulticastDst() ? D.DROP_UNSUPPORTED : D.DROP_NOT_FOR_US);
    }
    if (type === ETHERTYPE_IPV4) return this.processIpv4(buf, off, len);
    if (type === ETHERTYPE_ARP) return this.processArp(buf, off, len);
    if (type === ETHERTYPE_IPV6) return this.v6.process(buf, off, len, this.now);
    this.drop(D.DROP_UNSUPPORTED);
  }

  private drop(reason: number): void {
    this.drops.counts[reason]++;
  }

  // ---- ARP ----------------------------------------------------------------------------------------

  private processArp(buf: Uint8Array, off: number, len: number): void {
    if (len < ETH_HEADER_LEN + ARP_LEN) return this.drop(D.DROP_MALFORMED);
    const a = this.arp.at(buf, off + ETH_HEADER_LEN);
    if (!a.isEthernetIpv4()) return this.drop(D.DROP_UNSUPPORTED);
    const op = a.op, target = a.targetIp, sender = a.senderIp;
    const forUs = this.routes.isLocal(target) || this.services.isVip(target) || this.services.isLocalAddress(target);
    if (sender !== 0) {
      // Learn from requests addressed to us and from replies; refresh known entries from anything else.
      if (forUs || op === ARP_OP_REPLY) {
        const slot = this.neighbors.learn(sender, buf, a.senderMacOff, this.now);
        this.flushPending(slot);
        if (this.onNeighborFrame !== null) this.relayNeighborFrame(buf, off, ETH_HEADER_LEN + ARP_LEN);
      } else this.neighbors.refreshIfKnown(sender, buf, a.senderMacOff, this.now);
    }
    if (op === ARP_OP_REQUEST && forUs && sender !== target) this.host.arpReply(buf, a.off, target);
    else this.drop(D.DROP_HOST);
  }

  /** Hand a copy of a neighbour-teaching frame to onNeighborFrame, within the budget (multiqueue). */
  relayNeighborFrame(buf: Uint8Array, off: number, len: number): void {
    if (this.onNeighborFrame === null) return;
    if (this.now - this.relayWindowStart >= 1000) {
      this.relayWindowStart = this.now;
      this.relayedInWindow = 0;
    }
    if (this.relayedInWindow >= NEIGHBOR_RELAYS_PER_SECOND) {
      this.neighborRelaysSuppressed++;
      return;
    }
    this.relayedInWindow++;
    this.onNeighborFrame(buf.slice(off, off + len)); // a copy: rare frames, not the forwarding path
  }

  /**
   * Learn from an ARP or Neighbour Discovery frame another queue received (multiqueue): the neighbour
   * cache takes what it says and frames waiting for it leave; nothing is answered and nothing counted.
   */
  learnFromRelayedFrame(buf: Uint8Array, off: number, len: number, now: number): void {
    this.now = now;
    if (len < ETH_HEADER_LEN) return;
    const type = (buf[off + 12] << 8) | buf[off + 13];
    if (type === ETHERTYPE_ARP && len >= ETH_HEADER_LEN + ARP_LEN) {
      const a = this.arp.at(buf, off + ETH_HEADER_LEN);
      if (a.isEthernetIpv4() && a.senderIp !== 0) this.flushPending(this.neighbors.learn(a.senderIp, buf, a.senderMacOff, now));
    } else if (type === ETHERTYPE_IPV6) this.v6.learnFromRelayedFrame(buf, off, len, now);
    this.tx.flush();
  }

  // ---- IPv4 ---------------------------------------------------------------------------------------

  private processIpv4(buf: Uint8Array, off: number, len: number): void {
    const ipOff = off + ETH_HEADER_LEN;
    if (len < ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN) return this.drop(D.DROP_MALFORMED);
    const ip = this.ip.at(buf, ipOff);
    const hl = ip.headerLength;
    const total = ip.totalLength;
    if (ip.version !== 4 || hl < IPV4_MIN_HEADER_LEN || total < hl || total > len - ETH_HEADER_LEN) return this.drop(D.DROP_MALFORMED);
    if (!ip.checksumValid()) return this.drop(D.DROP_IP_CHECKSUM);
    const proto = ip.protocol;
    const dst = ip.dst;
    const l4Off = ipOff + hl;
    const l4Len = total - hl;

    if (ip.isFragment) return this.drop(D.DROP_FRAGMENT);
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      let sport: number, dport: number, tcpFlags = 0;
      if (proto === IPPROTO_TCP) {
        if (l4Len < TCP_MIN_HEADER_LEN) return this.drop(D.DROP_MALFORMED);
        const t = this.tcp.at(buf, l4Off);
        if (t.headerLength < TCP_MIN_HEADER_LEN || t.headerLength > l4Len) return this.drop(D.DROP_MALFORMED);
        sport = t.srcPort;
        dport = t.dstPort;
        tcpFlags = t.flags;
      } else {
        if (l4Len < UDP_HEADER_LEN) return this.drop(D.DROP_MALFORMED);
        const u = this.udp.at(buf, l4Off);
        if (u.length < UDP_HEADER_LEN || u.length > l4Len) return this.drop(D.DROP_MALFORMED);
        sport = u.srcPort;
        dport = u.dstPort;
      }
      if (this.services.isVip(dst)) return this.inbound(buf, off, ip, l4Off, proto, sport, dport, tcpFlags);
      const lip = this.services.isLocalAddress(dst);
      if (lip) {
        const cid = this.tracker.table.lookupOutFullnat(proto, ip.src, sport, dst, dport);
        if (cid >= 0) return this.outboundFullnat(buf, off, ip, l4Off, cid, tcpFlags);
      }
      if (lip || this.routes.isLocal(dst)) return this.refuseLocal(buf, off, proto, dst);
      return this.outbound(buf, off, ip, l4Off, proto, sport, dport, tcpFlags);
    }
    if (proto === IPPROTO_ICMP) {
      if (l4Len < 8) return this.drop(D.DROP_MALFORMED);
      const type = this.icmp.at(buf, l4Off).type;
      const vip = this.services.isVip(dst);
      const local = vip || this.routes.isLocal(dst) || this.services.isLocalAddress(dst);
      if (local && type === ICMP_ECHO_REQUEST) return this.host.echoReply(buf, off);
      if (isRelatedIcmpType(type) && l4Len >= ICMP_ERROR_MIN) {
        if (vip) return this.icmpFromClient(buf, off, ip, l4Off, l4Len);
        if (this.services.isLocalAddress(dst)) return this.icmpFromRealServer(buf, off, ip, l4Off, l4Len, true);
        if (!local) return this.icmpFromRealServer(buf, off, ip, l4Off, l4Len, false);
      }
      return this.drop(local ? D.DROP_HOST : D.DROP_NOT_ROUTED);
    }
    if (this.routes.isLocal(dst) || this.services.isVip(dst)) return this.drop(D.DROP_HOST);
    this.drop(D.DROP_NOT_ROUTED);
  }

  /** A TCP/UDP packet to one of our addresses that no service takes: what the director's stack answers. */
  private refuseLocal(buf: Uint8Array, off: number, proto: number, dst: number): void {
    if (proto === IPPROTO_TCP) this.host.tcpReset(buf, off);
    else this.host.icmpError(buf, off, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, dst);
    this.drop(D.DROP_HOST);
  }

  /** Client -> VIP (kernel ip_vs_in). */
  private inbound(
    buf: Uint8Array,
    off: number,
    ip: Ipv4View,
    l4Off: number,
    proto: number,
    sport: number,
    dport: number,
    tcpFlags: number,
  ): void {
    const tracker = this.tracker, conns = tracker.table, dests = this.services.dests;
    const src = ip.src, dst = ip.dst;
    let cid = conns.lookupIn(proto, src, sport, dst, dport);
    if (cid >= 0) {
      cid = tracker.existingForInbound(cid, (tcpFlags & TCP_SYN) !== 0);
      if (cid === CONN_DEST_UNAVAILABLE) return this.drop(D.DROP_DEST_UNAVAILABLE);
    }
    if (cid < 0) {
      const mark = this.services.classify(proto, dst, dport);
      const svcId = this.services.lookupForScheduling(proto, dst, dport, mark);
      // No service on this port, or a TCP segment that cannot open a connection: the VIP is a local
      // address of the director, so its stack answers (RST / port unreachable) as it would for IPVS.
      if (svcId < 0 || (proto === IPPROTO_TCP && (tcpFlags & (TCP_SYN | TCP_RST)) !== TCP_SYN)) {
        if (proto === IPPROTO_TCP) {
          if ((tcpFlags & TCP_RST) === 0) this.host.tcpReset(buf, off);
          return this.drop(D.DROP_HOST);
        }
        return this.refuseLocal(buf, off, proto, dst);
      }
      const svc = this.services.service(svcId)!;
      const t = this.tuple;
      t.saddr = src;
      t.daddr = dst;
      t.sport = sport;
      t.dport = dport;
      this.scheduling = svc;
      if (svc.persistent) {
        cid = schedulePersistent(tracker, svc, proto, src, sport, dst, dport, this.now, this.pickForScheduling);
      } else {
        const dest = svc.scheduler.schedule(svc.dests, dests, t);
        // One-packet scheduling (--ops): UDP datagrams of the service are scheduled one by one.
        const onePacket = (svc.config.flags & SVC_F_ONEPACKET) !== 0 && proto === IPPROTO_UDP;
        cid = dest < 0 ? PERSIST_NO_DESTINATION : tracker.create(proto, src, sport, dst, dport, dest, this.now, undefined, onePacket);
        if (dest >= 0 && cid < 0) cid = PERSIST_TABLE_FULL;
      }
      if (cid === PERSIST_NO_DESTINATION) {
        // Kernel ip_vs_leave: ICMP port unreachable to the client.
        this.host.icmpError(buf, off, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, dst);
        return this.drop(D.DROP_NO_DESTINATION);
      }
      if (cid < 0) return this.drop(D.DROP_TABLE_FULL);
      const dest = conns.destOf(cid);
      if (dests.forward[dest] === ForwardMethod.FullNat && !bindFullnatLocal(conns, svc, cid, proto)) {
        tracker.expireNow(cid);
        return this.drop(D.DROP_NO_LOCAL_PORT);
      }
      countConnection(this.services, dest, svcId);
    }
    const dest = conns.destOf(cid);
    const total = ip.totalLength;
    // Tunnels and FULLNAT's client-address passing need ordinary frames (offload.ts).
    if (this.offload.active && needsOrdinaryFrame(this.services, conns.flagsOf(cid) & CONN_F_FWD_MASK, proto, dest) && !this.makeOrdinary(buf, off, ETH_HEADER_LEN + total)) return;
    this.countIn(dest, total);
    tracker.transition(cid, DIR_INPUT, tcpFlags, this.now);
    conns.inPkts[cid]++;

    if (ip.ttl <= 1) {
      this.host.icmpError(buf, off, ICMP_TIME_EXCEEDED, 0, this.routes.sourceFor(src));
      return this.drop(D.DROP_TTL_EXCEEDED);
    }
    // The connection's forwarding method (kernel cp->packet_xmit).
    const method = conns.flagsOf(cid) & CONN_F_FWD_MASK;
    if (method === ForwardMethod.Tunnel) return this.forwardTunnel(buf, off, ip, cid, dest);
    if (method === ForwardMethod.Masq) rewriteNatInbound(ip, l4Off, conns.daddrOf(cid), conns.dportOf(cid), this.offload.needsCsum);
    else if (method === ForwardMethod.FullNat) {
      const mode = proto === IPPROTO_TCP ? this.services.service(dests.service[dest])?.clientAddress : undefined;
      if (mode === 'proxy-protocol' || mode === 'toa') {
        const moved = mode === 'toa' ? this.toaInbound(buf, off, ip, l4Off, cid, tcpFlags) : this.proxyProtocolInbound(buf, off, ip, l4Off, cid, tcpFlags);
        if (moved < 0) return;
        l4Off += moved - off;
        off = moved;
      }
      rewriteFullnatInbound(ip, l4Off, conns.laddr[cid], conns.lport[cid], conns.daddrOf(cid), conns.dportOf(cid), this.offload.needsCsum);
    }
    else if (method !== ForwardMethod.Route) return this.drop(D.DROP_UNSUPPORTED);
    // Route (DR): the packet keeps CIP -> VIP; only the next hop (the real server's MAC) changes.
    ip.decrementTtl();
    this.forwardedIn++;
    const hop = this.routes.nextHop(conns.daddrOf(cid));
    // ip.totalLength, not `total`: FULLNAT's PROXY header may have grown the packet.
    this.destHops.remember(dest, this.hops.send(buf, off, ETH_HEADER_LEN + ip.totalLength, hop, this.destHops.slotOf(dest), this.now));
  }

  /**
   * TUN: encapsulate towards the real server (kernel ip_vs_tunnel_xmit): IPIP, GUE or GRE as the
   * destination says. A packet that no longer fits the link MTU with the encapsulation gets an ICMP
   * fragmentation-needed (with the tunnel MTU) to the client when DF is set; otherwise the outer packet
   * is fragmented.
   */
  private forwardTunnel(buf: Uint8Array, off: number, ip: Ipv4View, cid: number, dest: number): void {
    const conns = this.tracker.table, d = this.services.dests;
    const total = ip.totalLength;
    const type = d.tunType[dest], flags = d.tunFlags[dest];
    const overhead = tunnelOverhead(type, flags);
    if (total + overhead > this.linkMtu && ip.dontFragment) {
      this.host.icmpError(buf, off, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ip.dst, this.linkMtu - overhead);
      return this.drop(D.DROP_TOO_BIG);
    }
    if (this.headroom < overhead) return this.drop(D.DROP_UNSUPPORTED);
    const rip = conns.daddrOf(cid);
    const hop = this.routes.nextHop(rip);
    ip.decrementTtl();
    this.forwardedIn++;
    const flow = Math.imul(conns.caddrOf(cid) ^ (conns.cportOf(cid) << 16) ^ conns.vportOf(cid), 0x9e3779b1) >>> 16;
    const frame = encapsulateTunnel(buf, off, ip, this.outer, this.routes.sourceFor(rip), rip, this.nextIpId(), type, flags, d.tunPort[dest], flow);
    if (total + overhead <= this.linkMtu) {
      this.destHops.remember(dest, this.hops.send(buf, frame, ETH_HEADER_LEN + overhead + total, hop, this.destHops.slotOf(dest), this.now));
      return;
    }
    this.sendOuterFragments(buf, frame, hop, dest);
  }

  /** Fragment the encapsulated packet of the frame at `frame` (DF clear) to the link MTU, as IP output does. */
  private sendOuterFragments(buf: Uint8Array, frame: number, hop: number, dest: number): void {
    const outer = this.outer.at(buf, frame + ETH_HEADER_LEN);
    const payloadOff = outer.payloadOff, payloadLen = outer.totalLength - outer.headerLength;
    const tos = outer.tos, ttl = outer.ttl, id = outer.id, proto = outer.protocol, src = outer.src, dst = outer.dst;
    const maxPayload = outerFragmentPayload(this.linkMtu);
    const arena = this.tx.arena;
    for (let at = 0; at < payloadLen; at += maxPayload) {
      const len = Math.min(maxPayload, payloadLen - at);
      const o = this.tx.allocate();
      write16(arena, o + 12, ETHERTYPE_IPV4);
      const f = this.fragment.at(arena, o + ETH_HEADER_LEN);
      f.write(tos, IPIP_OVERHEAD + len, id, false, ttl, proto, src, dst);
      f.setFragment(at, at + len < payloadLen);
      arena.set(buf.subarray(payloadOff + at, payloadOff + at + len), o + ETH_HEADER_LEN + IPIP_OVERHEAD);
      this.destHops.remember(dest, this.hops.send(arena, o, ETH_HEADER_LEN + IPIP_OVERHEAD + len, hop, this.destHops.slotOf(dest), this.now));
    }
  }

  private nextIpId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }

  /**
   * The embedded header of an ICMP error: a TCP/UDP IPv4 header fully inside the message, or null.
   * Sets this.embeddedSport/Dport.
   */
  private embeddedOf(buf: Uint8Array, l4Off: number, l4Len: number): Ipv4View | null {
    const e = this.embedded.at(buf, l4Off + ICMP_HEADER_LEN);
    const hl = e.headerLength;
    if (e.version !== 4 || hl < IPV4_MIN_HEADER_LEN || ICMP_HEADER_LEN + hl + 8 > l4Len) return null;
    const p = e.protocol;
    if (p !== IPPROTO_TCP && p !== IPPROTO_UDP) return null;
    this.embeddedSport = (buf[e.off + hl] << 8) | buf[e.off + hl + 1];
    this.embeddedDport = (buf[e.off + hl + 2] << 8) | buf[e.off + hl + 3];
    return e;
  }

  /**
   * An ICMP error from the real-server side (kernel ip_vs_out_icmp), translated so the client sees an
   * error about its own packet to the VIP, from the VIP's side.
   *   NAT: the embedded packet is CIP:cport -> RIP:rport (found as a reply would be).
   *   FULLNAT (sent to a local address): the embedded packet is LIP:lport -> RIP:rport; the client gets
   *   it from the VIP about CIP:cport -> VIP:vport.
   */
  private icmpFromRealServer(buf: Uint8Array, off: number, ip: Ipv4View, l4Off: number, l4Len: number, fullnat: boolean): void {
    const e = this.embeddedOf(buf, l4Off, l4Len);
    if (!e) return this.drop(D.DROP_MALFORMED);
    const conns = this.tracker.table;
    // Inverted embedded header: RIP:rport -> CIP:cport (or LIP:lport), as a reply of the connection would be.
    const cid = fullnat
      ? conns.lookupOutFullnat(e.protocol, e.dst, this.embeddedDport, e.src, this.embeddedSport)
      : conns.lookupOutMasq(e.protocol, e.dst, this.embeddedDport, e.src, this.embeddedSport);
    if (cid < 0) return this.drop(fullnat ? D.DROP_HOST : D.DROP_NOT_ROUTED);
    const dest = conns.destOf(cid);
    const total = ip.totalLength;
    if (dest >= 0 && (this.services.dests.flags[dest] & DEST_F_AVAILABLE) !== 0) this.countOut(dest, total);
    if (ip.ttl <= 1) return this.drop(D.DROP_TTL_EXCEEDED);
    const client = conns.caddrOf(cid), vip = conns.vaddrOf(cid);
    if (fullnat) translateIcmpFullnat(ip, e, l4Off, l4Len, vip, client, client, conns.cportOf(cid), vip, conns.vportOf(cid));
    else translateIcmpToClient(ip, e, l4Off, l4Len, vip, conns.vportOf(cid));
    ip.decrementTtl();
    this.forwardedOut++;
    conns.replyNeighbor[cid] = this.hops.send(buf, off, ETH_HEADER_LEN + total, this.routes.nextHop(client), conns.replyNeighbor[cid], this.now);
  }

  /**
   * An ICMP error from the client about a reply it got from the VIP (kernel ip_vs_in_icmp): NAT
   * connections get it translated for the real server; DR and TUN connections carry it unchanged with
   * their forwarding method.
   */
  private icmpFromClient(buf: Uint8Array, off: number, ip: Ipv4View, l4Off: number, l4Len: number): void {
    if (checksum(buf, l4Off, l4Len) !== 0) return this.drop(D.DROP_MALFORMED);
    const e = this.embeddedOf(buf, l4Off, l4Len);
    if (!e) return this.drop(D.DROP_MALFORMED);
    const conns = this.tracker.table;
    // Inverted embedded header: CIP:cport -> VIP:vport, as the connection's client packets are.
    const cid = conns.lookupIn(e.protocol, e.dst, this.embeddedDport, e.src, this.embeddedSport);
    if (cid < 0) return this.drop(D.DROP_HOST);
    const dest = conns.destOf(cid);
    if (dest < 0 || (this.services.dests.flags[dest] & DEST_F_AVAILABLE) === 0) return this.drop(D.DROP_DEST_UNAVAILABLE);
    const total = ip.totalLength;
    this.countIn(dest, total);
    if (ip.ttl <= 1) return this.drop(D.DROP_TTL_EXCEEDED);
    const method = conns.flagsOf(cid) & CONN_F_FWD_MASK;
    if (method === ForwardMethod.Tunnel) return this.forwardTunnel(buf, off, ip, cid, dest);
    if (method === ForwardMethod.Masq) translateIcmpToRealServer(ip, e, l4Off, l4Len, conns.daddrOf(cid), conns.dportOf(cid));
    else if (method === ForwardMethod.FullNat) {
      // The error is about the reply RIP:rport -> LIP:lport as the real server sent it.
      const rip = conns.daddrOf(cid), rport = conns.dportOf(cid), lip = conns.laddr[cid], lport = conns.lport[cid];
      translateIcmpFullnat(ip, e, l4Off, l4Len, lip, rip, rip, rport, lip, lport);
    } else if (method !== ForwardMethod.Route) return this.drop(D.DROP_UNSUPPORTED);
    ip.decrementTtl();
    this.forwardedIn++;
    this.destHops.remember(dest, this.hops.send(buf, off, ETH_HEADER_LEN + total, this.routes.nextHop(conns.daddrOf(cid)), this.destHops.slotOf(dest), this.now));
  }

  private countIn(dest: number, bytes: number): void {
    countInbound(this.services, dest, bytes);
  }

  private countOut(dest: number, bytes: number): void {
    countOutbound(this.services, dest, bytes);
  }

  /**
   * FULLNAT + PROXY protocol, client side: remember where the stream starts (SYN), put the header in front
   * of the first data segment, shift later segments. Returns the (possibly moved) frame offset, -1 when the
   * frame was dropped.
   */
  private proxyProtocolInbound(buf: Uint8Array, off: number, ip: Ipv4View, l4Off: number, cid: number, tcpFlags: number): number {
    const conns = this.tracker.table;
    const t = this.tcp.at(buf, l4Off);
    const seq = t.seq;
    if ((tcpFlags & TCP_SYN) !== 0) {
      conns.aux[cid] = (seq + 1) >>> 0; // the first data byte
      return off;
    }
    const first = conns.aux[cid];
    const payload = ip.totalLength - ip.headerLength - t.headerLength;
    if (seq === first && payload > 0) {
      if (this.headroom < PROXY_V2_IPV4_LEN || ip.totalLength + PROXY_V2_IPV4_LEN > this.linkMtu) {
        this.drop(D.DROP_TOO_BIG);
        return -1;
      }
      conns.setFlags(cid, conns.flagsOf(cid) | CONN_F_IN_SEQ);
      return insertProxyV2Header(buf, off, ip, l4Off, t.headerLength, conns.caddrOf(cid), conns.cportOf(cid), conns.vaddrOf(cid), conns.vportOf(cid));
    }
    if ((conns.flagsOf(cid) & CONN_F_IN_SEQ) !== 0 && ((seq - first) | 0) > 0) shiftClientSequence(buf, l4Off);
    return off;
  }

  /**
   * FULLNAT + TOA, client side: the option goes into the SYN and into segments acknowledging the real
   * server's ISN + 1 (kept in aux from its SYN-ACK), when it fits. Returns the (possibly moved) frame offset.
   */
  private toaInbound(buf: Uint8Array, off: number, ip: Ipv4View, l4Off: number, cid: number, tcpFlags: number): number {
    const conns = this.tracker.table;
    const t = this.tcp.at(buf, l4Off);
    const wanted =
      (tcpFlags & (TCP_SYN | TCP_RST | TCP_FIN)) === TCP_SYN ||
      ((tcpFlags & (TCP_SYN | TCP_RST | TCP_FIN)) === 0 && (tcpFlags & TCP_ACK) !== 0 && conns.aux[cid] !== 0 && t.ack === conns.aux[cid]);
    if (!wanted || this.headroom < TOA_LEN || ip.totalLength + TOA_LEN > this.linkMtu) return off;
    const moved = insertToaOption(buf, off, ip, l4Off, t.headerLength, conns.caddrOf(cid), conns.cportOf(cid));
    return moved < 0 ? off : moved;
  }

  /** FULLNAT reply: RIP:rport -> LIP:lport becomes VIP:vport -> CIP:cport. */
  private outboundFullnat(buf: Uint8Array, off: number, ip: Ipv4View, l4Off: number, cid: number, tcpFlags: number): void {
    const conns = this.tracker.table;
    const dest = conns.destOf(cid);
    const total = ip.totalLength;
    if (this.offload.active && needsOrdinaryFrame(this.services, ForwardMethod.FullNat, ip.protocol, dest) && !this.makeOrdinary(buf, off, ETH_HEADER_LEN + total)) return;
    if (dest >= 0 && (this.services.dests.flags[dest] & DEST_F_AVAILABLE) !== 0) this.countOut(dest, total);
    this.tracker.transition(cid, DIR_OUTPUT, tcpFlags, this.now);
    if (ip.ttl <= 1) {
      this.host.icmpError(buf, off, ICMP_TIME_EXCEEDED, 0, ip.dst);
      return this.drop(D.DROP_TTL_EXCEEDED);
    }
    const client = conns.caddrOf(cid);
    const mode = ip.protocol === IPPROTO_TCP && dest >= 0 ? this.services.service(this.services.dests.service[dest])?.clientAddress : undefined;
    if (mode === 'proxy-protocol') {
      const t = this.tcp.at(buf, l4Off);
      adjustRealServerSegment(buf, l4Off, t.headerLength, tcpFlags, conns.aux[cid], (conns.flagsOf(cid) & CONN_F_IN_SEQ) !== 0);
    } else if (mode === 'toa' && (tcpFlags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) {
      const t = this.tcp.at(buf, l4Off);
      conns.aux[cid] = (t.seq + 1) >>> 0; // the real server's ISN + 1: client ACKs of it carry the option
      clampMss(buf, l4Off, t.headerLength, TOA_LEN);
    }
    rewriteFullnatOutbound(ip, l4Off, conns.vaddrOf(cid), conns.vportOf(cid), client, conns.cportOf(cid), this.offload.needsCsum);
    ip.decrementTtl();
    this.forwardedOut++;
    conns.replyNeighbor[cid] = this.hops.send(buf, off, ETH_HEADER_LEN + total, this.routes.nextHop(client), conns.replyNeighbor[cid], this.now);
  }

  /** Real server -> client reply of a NAT connection (kernel ip_vs_out), or nothing of ours. */
  private outbound(
    buf: Uint8Array,
    off: number,
    ip: Ipv4View,
    l4Off: number,
    proto: number,
    sport: number,
    dport: number,
    tcpFlags: number,
  ): void {
    const tracker = this.tracker, conns = tracker.table;
    const cid = conns.lookupOutMasq(proto, ip.src, sport, ip.dst, dport);
    if (cid < 0) return this.drop(D.DROP_NOT_ROUTED);
    const dest = conns.destOf(cid);
    const total = ip.totalLength;
    if (dest >= 0 && (this.services.dests.flags[dest] & DEST_F_AVAILABLE) !== 0) this.countOut(dest, total);
    tracker.transition(cid, DIR_OUTPUT, tcpFlags, this.now);
    if (ip.ttl <= 1) {
      this.host.icmpError(buf, off, ICMP_TIME_EXCEEDED, 0, this.routes.sourceFor(ip.src));
      return this.drop(D.DROP_TTL_EXCEEDED);
    }
    rewriteNatOutbound(ip, l4Off, conns.vaddrOf(cid), conns.vportOf(cid), this.offload.needsCsum);
    ip.decrementTtl();
    this.forwardedOut++;
    const client = conns.caddrOf(cid);
    conns.replyNeighbor[cid] = this.hops.send(buf, off, ETH_HEADER_LEN + total, this.routes.nextHop(client), conns.replyNeighbor[cid], this.now);
  }

  /**
   * Make the offloaded frame at `off` an ordinary one: complete its checksum; a TCP super-frame is cut into
   * segments (in the segment slots), each processed as a frame of its own. Returns true when the caller
   * goes on with the (now ordinary) frame, false when the segments took its place.
   */
  makeOrdinary(buf: Uint8Array, off: number, len: number): boolean {
    const o = this.offload;
    const gsoSize = o.gso ? o.gsoSize : 0;
    const n = gsoSize > 0 ? tcpSegmentCount(buf, off, len, gsoSize) : 1;
    if (n <= 1) {
      o.completeChecksum(buf, off, len);
      o.clear();
      return true;
    }
    const tx = this.tx, slots = tx.segmentSlots;
    o.segmented++;
    tx.flush(); // the segment slots are free again
    for (let i = 0; i < n; i++) {
      if (i > 0 && i % slots === 0) tx.flush();
      const so = tx.segmentSlot(i % slots);
      const l = writeTcpSegment(buf, off, len, gsoSize, i, tx.arena, so);
      o.clear();
      this.processFrame(tx.arena, so, l);
    }
    return false;
  }

  /** Send the frames that were waiting for neighbour `slot`. */
  private flushPending(slot: number): void {
    this.neighbors.sendPending(slot, this.tx, this.mac);
  }

  /** Timer work for the neighbour cache: retransmit ARP requests, give up after three. */
  tickNeighbors(now: number): void {
    this.now = now;
    this.neighbors.tick(
      now,
      (slot) => this.host.arpRequest(this.routes.sourceFor(this.neighbors.ip[slot]), this.neighbors.ip[slot]),
      (dropped) => {
        this.drops.counts[D.DROP_NEIGHBOR_UNRESOLVED] += dropped;
      },
    );
    this.v6.tick(now);
    this.tx.flush();
  }

  /** Forget cached next hops (the destination set changed). */
  resetDestinationCache(): void {
    this.destHops.reset();
    this.v6.resetDestinationCache();
  }
}

