/**
 * The service/destination model with ipvsadm's vocabulary. Plain data: the control plane keeps these
 * objects, the CLI prints them, the data plane compiles them into typed arrays.
 *
 * Addresses are canonical text (IPv4 dotted quad, IPv6 RFC 5952 lower case without brackets).
 */

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

export type AddressFamily = 4 | 6;

/** Forwarding methods, numbered as the kernel's IP_VS_CONN_F_* (conn_flags & 7). */
export const enum ForwardMethod {
  Masq = 0,
  Local = 1,
  Tunnel = 2,
  Route = 3,
  /** FULLNAT (not in mainline IPVS): the value of IP_VS_CONN_F_FULLNAT in Alibaba LVS and DPVS. */
  FullNat = 5,
}

/**
 * How a FULLNAT service tells real servers the client's address (tapvs option, per service):
 * `proxy-protocol` inserts a PROXY protocol v2 header at the start of each TCP stream; `toa` inserts the
 * TCP option address (kind 254) used by Alibaba LVS and DPVS into the SYN and the handshake's last ACK.
 */
export type ClientAddressMode = 'none' | 'proxy-protocol' | 'toa';

/** Service flag bits (uapi IP_VS_SVC_F_*). */
export const SVC_F_PERSISTENT = 0x0001;
export const SVC_F_ONEPACKET = 0x0004;
export const SVC_F_SCHED1 = 0x0008;
export const SVC_F_SCHED2 = 0x0010;
export const SVC_F_SCHED3 = 0x0020;
export const SVC_F_SCHED_MASK = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3;

/** Identity of a virtual service: (af, protocol, addr, port) or (af, fwmark) when fwmark > 0. */
export interface ServiceKey {
  af: AddressFamily;
  protocol: number; // IPPROTO_TCP / UDP / SCTP (TCP for fwmark services, as ipvsadm sets it)
  addr: string; // '0.0.0.0' / '::' for fwmark services
  port: number; // 0 for fwmark services
  fwmark: number; // 0 = address service
}

export interface ServiceConfig extends ServiceKey {
  scheduler: string; // 'wlc' by default
  flags: number; // SVC_F_* bits (PERSISTENT, ONEPACKET, SCHED1..3)
  timeout: number; // persistence timeout in seconds (meaningful with SVC_F_PERSISTENT)
  netmask: string; // IPv4: dotted mask ('255.255.255.255' default); IPv6: prefix length as text ('128')
  pe: string; // persistence engine name, '' for none
  /** FULLNAT services: how real servers learn the client address (absent = 'none'). */
  clientAddress?: ClientAddressMode;
}

export interface DestinationKey {
  af: AddressFamily;
  addr: string;
  port: number;
}

export interface DestinationConfig extends DestinationKey {
  forward: ForwardMethod;
  weight: number;
  uThreshold: number; // 0 = unset
  lThreshold: number; // 0 = unset
  tunType: number; // 0 ipip, 1 gue, 2 gre
  tunPort: number;
  tunFlags: number; // 0 nocsum, 1 csum, 2 remcsum
}

/** Counters as ipvsadm --stats shows them (64-bit in the kernel; exact in a double up to 2^53). */
export interface StatsSnapshot {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

/** Rates as ipvsadm --rate shows them (per second, already rounded as the kernel reports them). */
export interface RateSnapshot {
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

export interface DestinationSnapshot extends DestinationConfig {
  activeConns: number;
  inactConns: number;
  persistConns: number;
  stats: StatsSnapshot;
  rate: RateSnapshot;
}

export interface ServiceSnapshot extends ServiceConfig {
  /** Destinations in kernel list order: the most recently added first. */
  dests: DestinationSnapshot[];
  /** FULLNAT local addresses (LIPs) of the service, in the order they are used. */
  laddrs?: string[];
  stats: StatsSnapshot;
  rate: RateSnapshot;
}

/** One line of `ipvsadm -L -c`. */
export interface ConnectionSnapshot {
  protocol: string; // 'TCP' | 'UDP' | 'SCTP' | 'IP' (fwmark templates)
  expires: number; // remaining whole seconds
  state: string; // state name as /proc/net/ip_vs_conn prints it
  af: AddressFamily;
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  template: boolean;
  peName: string;
  peData: string;
}

export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

/**
 * A tapvs mark rule: packets to `addr` (a host address), of `protocol` (6, 17; 0 = any), to a
 * destination port in one of `ports` (inclusive ranges; empty = any port) get firewall mark `mark`, which
 * selects fwmark services (`-f N`). It stands in for the iptables MARK rules LVS users put in front of
 * IPVS (`iptables -t mangle -A PREROUTING -d VIP -p tcp --dport 80 -j MARK --set-mark 3`), since there
 * is no iptables in front of a TAP. Rules are tried in the order they were added; the first match wins.
 */
export interface MarkRule {
  af: AddressFamily;
  addr: string;
  protocol: number;
  ports: [number, number][];
  mark: number;
}

export interface TableSnapshot {
  /** Connection hash table size reported in the version header (IPVS default 4096). */
  connTabSize: number;
  /** Services in the director's internal (hash) order; the CLI sorts unless --nosort. */
  services: ServiceSnapshot[];
  timeouts: Timeouts;
  /** Mark rules in match order (absent from daemons that predate them). */
  marks?: MarkRule[];
}

export function serviceKeyOf(s: ServiceKey): ServiceKey {
  return { af: s.af, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark };
}

export function sameServiceKey(a: ServiceKey, b: ServiceKey): boolean {
  if (a.fwmark !== 0 || b.fwmark !== 0) return a.fwmark === b.fwmark && a.af === b.af;
  return a.af === b.af && a.protocol === b.protocol && a.addr === b.addr && a.port === b.port;
}

export function sameMarkRule(a: MarkRule, b: MarkRule): boolean {
  return (
    a.af === b.af &&
    a.addr === b.addr &&
    a.protocol === b.protocol &&
    a.mark === b.mark &&
    a.ports.length === b.ports.length &&
    a.ports.every((r, i) => r[0] === b.ports[i][0] && r[1] === b.ports[i][1])
  );
}

export function sameDestinationKey(a: DestinationKey, b: DestinationKey): boolean {
  return a.af === b.af && a.addr === b.addr && a.port === b.port;
}
