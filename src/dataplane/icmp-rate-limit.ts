/**
 * The limits the kernel puts on the ICMP errors a host sends (net/ipv4/icmp.c, net/ipv6/icmp.c), so that
 * a flood aimed at a VIP port without a service cannot make the director a reflector of port-unreachables:
 *
 * - per destination (icmpv4_xrlim_allow / icmpv6_xrlim_allow, inet_peer_xrlim_allow): a token bucket per
 *   peer, one error per net.ipv4.icmp_ratelimit = 1000 ms, bursts of XRLIM_BURST_FACTOR = 6. IPv6's
 *   icmpv6_time is 1000 ms too, shortened for wider routes (`>> ((128 - plen) >> 5)`): 250 ms for a peer
 *   on a /64, which is what the director's IPv6 prefixes are taken to be here;
 * - for the whole host (icmp_global_allow, shared by IPv4 and IPv6): net.ipv4.icmp_msgs_per_sec = 1000
 *   credits a second, at most net.ipv4.icmp_msgs_burst = 50 banked, topped up no more often than every
 *   20 ms (HZ/50). The global check comes first, and an error the peer's bucket stops takes no credit.
 *
 * Which errors are limited is the kernel's rate masks' choice: destination unreachable, time exceeded and
 * parameter problem, but never "fragmentation needed" (IPv4) or "packet too big" (IPv6), which path MTU
 * discovery needs; echo replies are not errors and are never limited. TCP resets are not limited either
 * (tcp_v4_send_reset has no such limit).
 *
 * Differences: each error takes exactly one global credit where the kernel takes a random 0..2
 * (icmp_global_consume), the same on average; IPv6 peers are told apart by the 32-bit fold of their
 * address (two peers whose folds are equal share a bucket); at most 65536 peers are remembered (least
 * recently limited forgotten first), as the kernel's inet_peer cache is bounded too.
 */
import { LRUCache } from 'lru-cache';

const ICMP_DEST_UNREACH = 3;
const ICMP_FRAG_NEEDED = 4;
/** The kernel's default icmp_ratemask 0x1818: destination unreachable, source quench, time exceeded, parameter problem. */
const ICMP_RATEMASK = 0x1818;
const ICMPV6_PKT_TOOBIG = 2;
/** inet_peer_xrlim_allow's burst: six timeouts' worth of tokens. */
const XRLIM_BURST_FACTOR = 6;

/** A peer's bucket: tokens in ms, and when it was last looked at. */
interface PeerBucket {
  tokens: number;
  last: number;
}

export class IcmpRateLimit {
  /** Errors not sent because a limit was reached. */
  suppressed = 0;
  private credit: number;
  private stamp: number;
  private readonly peers = new LRUCache<number, PeerBucket>({ max: 65536 });
  private readonly peers6 = new LRUCache<number, PeerBucket>({ max: 65536 });

  constructor(
    /** net.ipv4.icmp_msgs_per_sec and icmp_msgs_burst. */
    readonly perSecond = 1000,
    readonly burst = 50,
    private readonly clock: () => number = () => performance.now(),
    /** net.ipv4.icmp_ratelimit, and IPv6's icmpv6_time for a /64 peer, in ms (0: no per-peer limit). */
    readonly peerIntervalMs = 1000,
    readonly peerIntervalMs6 = 250,
  ) {
    this.credit = burst;
    this.stamp = clock();
  }

  /**
   * May an IPv4 ICMP error of this type and code go to `peer` (host order) now? Takes the credit and the
   * peer's token when it may.
   */
  allows4(type: number, code: number, peer: number): boolean {
    const limited = type < 32 && (ICMP_RATEMASK & (1 << type)) !== 0 && !(type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED);
    return !limited || this.allow(this.peers, peer >>> 0, this.peerIntervalMs);
  }

  /** May an ICMPv6 error of this type go to the peer whose address folds to `peerFold`? Errors are types 0..127. */
  allows6(type: number, peerFold: number): boolean {
    return type >= 128 || type === ICMPV6_PKT_TOOBIG || this.allow(this.peers6, peerFold >>> 0, this.peerIntervalMs6);
  }

  private allow(peers: LRUCache<number, PeerBucket>, peer: number, interval: number): boolean {
    const now = this.clock();
    if (!this.globalAllows(now) || !this.peerAllows(peers, peer, interval, now)) {
      this.suppressed++;
      return false;
    }
    this.credit--;
    return true;
  }

  /** icmp_global_allow: credit left, or topped up if 20 ms or more have passed since the last top-up. */
  private globalAllows(now: number): boolean {
    if (this.credit > 0) return true;
    const delta = Math.min(now - this.stamp, 1000);
    if (delta < 20) return false;
    const incr = Math.floor((this.perSecond * delta) / 1000);
    if (incr === 0) return false;
    this.stamp = now;
    this.credit = Math.min(this.credit + incr, this.burst);
    return true;
  }

  /** inet_peer_xrlim_allow: a new peer starts with a full bucket (its rate_last lies 60 s back). */
  private peerAllows(peers: LRUCache<number, PeerBucket>, peer: number, interval: number, now: number): boolean {
    if (interval <= 0) return true;
    let b = peers.get(peer);
    if (b === undefined) {
      b = { tokens: 0, last: now - 60_000 };
      peers.set(peer, b);
    }
    let tokens = Math.min(b.tokens + (now - b.last), XRLIM_BURST_FACTOR * interval);
    b.last = now;
    const ok = tokens >= interval;
    if (ok) tokens -= interval;
    b.tokens = tokens;
    return ok;
  }
}
