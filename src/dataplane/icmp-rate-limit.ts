/**
 * The kernel's global limit on the ICMP errors a host sends (icmp_global_allow in net/ipv4/icmp.c, one
 * per network namespace, shared by IPv4 and IPv6): net.ipv4.icmp_msgs_per_sec = 1000 credits a second,
 * at most net.ipv4.icmp_msgs_burst = 50 banked, topped up no more often than every 20 ms (HZ/50). So a
 * flood aimed at a VIP port without a service cannot make the director a reflector of port-unreachables.
 *
 * Which errors it applies to is the kernel's rate masks' choice (`allows4`, `allows6`): destination
 * unreachable, time exceeded and parameter problem, but never "fragmentation needed" (IPv4) or "packet too
 * big" (IPv6), which path MTU discovery needs; echo replies are not errors and are never limited. TCP
 * resets are not limited either (tcp_v4_send_reset has no such limit).
 *
 * One difference: each error here takes one credit, where the kernel takes a random 0..2
 * (icmp_global_consume), the same on average.
 */
const ICMP_DEST_UNREACH = 3;
const ICMP_FRAG_NEEDED = 4;
/** The kernel's default icmp_ratemask 0x1818: destination unreachable, source quench, time exceeded, parameter problem. */
const ICMP_RATEMASK = 0x1818;
const ICMPV6_PKT_TOOBIG = 2;

export class IcmpRateLimit {
  /** Errors not sent because the credit was spent. */
  suppressed = 0;
  private credit: number;
  private stamp: number;

  constructor(
    readonly perSecond = 1000,
    readonly burst = 50,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.credit = burst;
    this.stamp = clock();
  }

  /** May an IPv4 ICMP error of this type and code go out now? (Takes a credit when it may.) */
  allows4(type: number, code: number): boolean {
    const masked = type < 32 && (ICMP_RATEMASK & (1 << type)) !== 0 && !(type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED);
    return !masked || this.allow();
  }

  /** May an ICMPv6 error of this type go out now? Errors are types 0..127; packet too big is exempt. */
  allows6(type: number): boolean {
    return type >= 128 || type === ICMPV6_PKT_TOOBIG || this.allow();
  }

  private allow(): boolean {
    if (this.credit > 0) {
      this.credit--;
      return true;
    }
    const now = this.clock();
    const delta = Math.min(now - this.stamp, 1000);
    const incr = delta < 20 ? 0 : Math.floor((this.perSecond * delta) / 1000);
    if (incr === 0) {
      this.suppressed++;
      return false;
    }
    this.stamp = now;
    this.credit = Math.min(incr, this.burst) - 1;
    return true;
  }
}
