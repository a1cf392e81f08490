/**
 * The text of `ipvsadm -L` in all its variants, byte for byte as ipvsadm 1.31 prints it
 * (`list_all`, `list_service`, `print_title`, `print_service_entry`, `print_largenum`, `list_conn`,
 * `list_timeout`). Pure functions: snapshot + format in, text out. Names are resolved through a
 * NameDatabase (see address-port.ts: /etc/hosts and /etc/services only, never DNS).
 *
 * tapvs's own additions: FULLNAT servers are listed as `FullNat` (DPVS's name), services with client
 * address passing end in ` proxy-protocol` / ` toa`, and `-G` lists local addresses (formatLocalAddresses).
 */
import { addressWords, canonicalAddress, formatAddressPort, formatIPv4, inetAton, inetPton6, type NameDatabase } from '../cli/address-port.js';
import {
  ForwardMethod,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  SVC_F_SCHED1,
  SVC_F_SCHED2,
  SVC_F_SCHED3,
  SVC_F_SCHED_MASK,
  type AddressFamily,
  type ConnectionSnapshot,
  type DestinationSnapshot,
  type MarkRule,
  type ServiceSnapshot,
  type TableSnapshot,
  type Timeouts,
} from './model.js';

/** ipvsadm's FMT_* listing flags. */
export interface ListingFormat {
  numeric: boolean; // -n
  stats: boolean; // --stats
  rate: boolean; // --rate
  thresholds: boolean; // --thresholds
  persistentConn: boolean; // --persistent-conn
  tunInfo: boolean; // --tun-info
  nosort: boolean; // --nosort
  exact: boolean; // --exact / -X
}

export const DEFAULT_LISTING_FORMAT: Readonly<ListingFormat> = {
  numeric: false,
  stats: false,
  rate: false,
  thresholds: false,
  persistentConn: false,
  tunInfo: false,
  nosort: false,
  exact: false,
};

/** IP_VS_VERSION_CODE 0x010201. */
export const IPVS_VERSION_TEXT = '1.2.1';

// ------------------------------------------------------------------------------------------------
// printf pieces

/** `%-Ns` */
function left(text: string | number, width: number): string {
  return String(text).padEnd(width);
}

/** `%Ns` / `%Nllu` */
function right(text: string | number, width: number): string {
  return String(text).padStart(width);
}

/** A C `unsigned int` as `%u` prints it. */
function u32(value: number): string {
  return String(value >>> 0);
}

/** A counter as `%llu` prints it (integral, never in exponent notation). */
function u64(value: number): string {
  return BigInt(Math.max(0, Math.trunc(value))).toString();
}

/**
 * `print_largenum`: counters in 9 columns, scaled by 1000s with a K/M/G/T suffix; with --exact the
 * full number right-aligned in 9 columns, or in digits+1 columns when it has more than 8 digits.
 */
export function formatLargeNumber(value: number, exact: boolean): string {
  const n = BigInt(Math.max(0, Math.trunc(value)));
  if (exact) {
    const digits = n.toString();
    return right(digits, digits.length <= 8 ? 9 : digits.length + 1);
  }
  if (n < 100_000_000n) return right(n.toString(), 9);
  if (n < 1_000_000_000n) return `${right((n / 1000n).toString(), 8)}K`;
  if (n < 100_000_000_000n) return `${right((n / 1_000_000n).toString(), 8)}M`;
  if (n < 100_000_000_000_000n) return `${right((n / 1_000_000_000n).toString(), 8)}G`;
  return `${right((n / 1_000_000_000_000n).toString(), 8)}T`;
}

// ------------------------------------------------------------------------------------------------
// Sorting (libipvs ipvs_cmp_services / ipvs_cmp_dests through glibc qsort)

/** `(int)(a - b)` of two u32 values: differences of 2^31 or more wrap around. */
function wrappedDifference(a: number, b: number): number {
  return ((a >>> 0) - (b >>> 0)) | 0;
}

const AF_INET = 2;
const AF_INET6 = 10;

function socketFamily(af: AddressFamily): number {
  return af === 6 ? AF_INET6 : AF_INET;
}

function compareAddresses(af: AddressFamily, a: string, b: string): number {
  const wa = addressWords(af, a);
  const wb = addressWords(af, b);
  let r = 0;
  for (let i = 0; r === 0 && i < wa.length; i++) r = wrappedDifference(wa[i]!, wb[i] ?? 0);
  return r;
}

/** libipvs `ipvs_cmp_services`: fwmark, family, protocol, address, port (u32 differences as int). */
export function compareServices(a: ServiceSnapshot, b: ServiceSnapshot): number {
  let r = wrappedDifference(a.fwmark, b.fwmark);
  if (r !== 0) return r;
  r = socketFamily(a.af) - socketFamily(b.af);
  if (r !== 0) return r;
  r = a.protocol - b.protocol;
  if (r !== 0) return r;
  r = compareAddresses(a.af, a.addr, b.addr);
  if (r !== 0) return r;
  return a.port - b.port;
}

/** libipvs `ipvs_cmp_dests`: address (u32 differences as int), then port. */
export function compareDestinations(a: DestinationSnapshot, b: DestinationSnapshot): number {
  const r = compareAddresses(a.af, a.addr, b.addr);
  if (r !== 0) return r;
  return a.port - b.port;
}

/**
 * glibc `qsort` (its merge sort, `msort_with_tmp`). Reproduced rather than Array.prototype.sort
 * because the wrapped comparison is not a total order, so the result depends on the algorithm.
 */
export function ipvsSort<T>(items: readonly T[], compare: (a: T, b: T) => number): T[] {
  const out = items.slice();
  mergeSort(out, 0, out.length, compare);
  return out;
}

function mergeSort<T>(b: T[], start: number, n: number, compare: (a: T, b: T) => number): void {
  if (n <= 1) return;
  let n1 = Math.floor(n / 2);
  let n2 = n - n1;
  mergeSort(b, start, n1, compare);
  mergeSort(b, start + n1, n2, compare);
  const merged: T[] = [];
  let i1 = start;
  let i2 = start + n1;
  while (n1 > 0 && n2 > 0) {
    if (compare(b[i1]!, b[i2]!) <= 0) {
      merged.push(b[i1++]!);
      n1 -= 1;
    } else {
      merged.push(b[i2++]!);
      n2 -= 1;
    }
  }
  while (n1 > 0) {
    merged.push(b[i1++]!);
    n1 -= 1;
  }
  for (let k = 0; k < merged.length; k++) b[start + k] = merged[k]!;
}

/** Services in listing order: sorted, or as the daemon reported them with --nosort. */
export function servicesInListingOrder(services: readonly ServiceSnapshot[], nosort: boolean): ServiceSnapshot[] {
  return nosort ? services.slice() : ipvsSort(services, compareServices);
}

/** A service's destinations in listing order: sorted, or kernel list order with --nosort. */
export function destinationsInListingOrder(dests: readonly DestinationSnapshot[], nosort: boolean): DestinationSnapshot[] {
  return nosort ? dests.slice() : ipvsSort(dests, compareDestinations);
}

// ------------------------------------------------------------------------------------------------
// Names of things

export function protocolLabel(protocol: number): string {
  switch (protocol) {
    case IPPROTO_TCP:
      return 'TCP';
    case IPPROTO_UDP:
      return 'UDP';
    case IPPROTO_SCTP:
      return 'SCTP';
    default:
      return '?';
  }
}

/** `fwd_name()`. */
export function forwardName(forward: ForwardMethod): string {
  switch (forward & 7) {
    case ForwardMethod.Masq:
      return 'Masq';
    case ForwardMethod.Local:
      return 'Local';
    case ForwardMethod.Tunnel:
      return 'Tunnel';
    case ForwardMethod.Route:
      return 'Route';
    case ForwardMethod.FullNat:
      return 'FullNat';
    default:
      return '(null)';
  }
}

/** `print_sched_flags()`: the SCHED1..3 bits named for the scheduler, comma-separated. */
export function schedulerFlagsText(scheduler: string, flags: number): string {
  const names: string[] = [];
  if (scheduler === 'sh' || scheduler === 'mh') {
    if (flags & SVC_F_SCHED1) names.push(`${scheduler}-fallback`);
    if (flags & SVC_F_SCHED2) names.push(`${scheduler}-port`);
  } else {
    if (flags & SVC_F_SCHED1) names.push('flag-1');
    if (flags & SVC_F_SCHED2) names.push('flag-2');
    if (flags & SVC_F_SCHED3) names.push('flag-3');
  }
  return names.join(',');
}

/**
 * The persistence mask as ipvsadm prints it, or undefined when it is the default
 * (IPv4 255.255.255.255, IPv6 128).
 */
export function nonDefaultNetmask(service: ServiceSnapshot): string | undefined {
  if (service.af === 6) {
    const plen = Number(service.netmask);
    return plen === 128 ? undefined : String(plen);
  }
  const mask = inetAton(service.netmask) ?? 0xffffffff;
  return mask === 0xffffffff ? undefined : formatIPv4(mask);
}

/** The `Prot LocalAddress:Port` label: `TCP  10.0.0.1:80` (IPv4 cut at 33), `FWM  5`, `FWM  5 IPv6`. */
function serviceLabel(service: ServiceSnapshot, numeric: boolean, names: NameDatabase): string {
  if (service.fwmark !== 0) {
    return service.af === 6 ? `FWM  ${u32(service.fwmark)} IPv6` : `FWM  ${u32(service.fwmark)}`;
  }
  const vname = formatAddressPort(service.af, service.addr, service.port, service.protocol, numeric, names);
  const label = `${left(protocolLabel(service.protocol), 4)} ${vname}`;
  return service.af === 6 ? label : label.slice(0, 33);
}

/** `fwd_tun_info()`: `ipip`, `gue:<port>:<-c|+c|r+c>`, `gre:<-c|+c>`; undefined for non-tunnels. */
function tunnelInfo(dest: DestinationSnapshot): string | undefined {
  if ((dest.forward & 7) !== ForwardMethod.Tunnel) return undefined;
  const csum = ['-c', '+c', 'r+c'][dest.tunFlags] ?? '';
  switch (dest.tunType) {
    case 0:
      return 'ipip';
    case 1:
      return `gue:${dest.tunPort}:${csum}`.slice(0, 15);
    case 2:
      return `gre:${csum}`;
    default:
      return undefined;
  }
}

// ------------------------------------------------------------------------------------------------
// The service table

export function formatVersionHeader(connTabSize: number): string {
  return `IP Virtual Server version ${IPVS_VERSION_TEXT} (size=${connTabSize})\n`;
}

/** `print_title()` (not used for -S). */
export function formatTitle(format: ListingFormat): string {
  const two = (a: string): string => `${left('Prot LocalAddress:Port', 33)}${a}\n  -> RemoteAddress:Port\n`;
  if (format.stats) {
    return two(['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((t) => ` ${right(t, 8)}`).join(''));
  }
  if (format.rate) {
    return two(['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((t) => ` ${right(t, 8)}`).join(''));
  }
  if (format.thresholds) {
    return two(['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((t) => ` ${left(t, 10)}`).join(''));
  }
  if (format.persistentConn) {
    return two(` ${left('Weight', 9)} ${left('PersistConn', 11)} ${left('ActiveConn', 10)} ${left('InActConn', 10)}`);
  }
  if (format.tunInfo) {
    return (
      'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n'
    );
  }
  return (
    'Prot LocalAddress:Port Scheduler Flags\n' + '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n'
  );
}

function serviceLine(service: ServiceSnapshot, format: ListingFormat, names: NameDatabase): string {
  const label = serviceLabel(service, format.numeric, names);
  const big = (n: number): string => formatLargeNumber(n, format.exact);
  if (format.stats) {
    const s = service.stats;
    return `${left(label, 33)}${big(s.conns)}${big(s.inpkts)}${big(s.outpkts)}${big(s.inbytes)}${big(s.outbytes)}\n`;
  }
  if (format.rate) {
    const r = service.rate;
    return `${left(label, 33)}${big(r.cps)}${big(r.inpps)}${big(r.outpps)}${big(r.inbps)}${big(r.outbps)}\n`;
  }
  let line = `${label} ${service.scheduler}`;
  if (service.flags & SVC_F_SCHED_MASK) line += ` (${schedulerFlagsText(service.scheduler, service.flags)})`;
  if (service.flags & SVC_F_PERSISTENT) {
    line += ` persistent ${u32(service.timeout)}`;
    const mask = nonDefaultNetmask(service);
    if (mask !== undefined) line += ` mask ${mask}`;
    if (service.pe !== '') line += ` pe ${service.pe}`;
  }
  if (service.flags & SVC_F_ONEPACKET) line += ' ops';
  // tapvs's own: client address passing (absent or 'none' prints nothing, as ipvsadm's lines)
  if (service.clientAddress === 'proxy-protocol' || service.clientAddress === 'toa') line += ` ${service.clientAddress}`;
  return `${line}\n`;
}

function destinationLine(
  service: ServiceSnapshot,
  dest: DestinationSnapshot,
  format: ListingFormat,
  names: NameDatabase,
): string {
  const full = formatAddressPort(dest.af, dest.addr, dest.port, service.protocol, format.numeric, names);
  const dname = dest.af === 6 ? full : full.slice(0, 28);
  const big = (n: number): string => formatLargeNumber(n, format.exact);
  if (format.stats) {
    const s = dest.stats;
    return `  -> ${left(dname, 28)}${big(s.conns)}${big(s.inpkts)}${big(s.outpkts)}${big(s.inbytes)}${big(s.outbytes)}\n`;
  }
  if (format.rate) {
    const r = dest.rate;
    return `  -> ${left(dname, 28)} ${right(u64(r.cps), 8)} ${right(u64(r.inpps), 8)} ${right(u64(r.outpps), 8)}${big(r.inbps)}${big(r.outbps)}\n`;
  }
  if (format.thresholds) {
    return `  -> ${left(dname, 28)} ${left(u32(dest.uThreshold), 10)} ${left(u32(dest.lThreshold), 10)} ${left(u32(dest.activeConns), 10)} ${left(u32(dest.inactConns), 10)}\n`;
  }
  if (format.persistentConn) {
    return `  -> ${left(dname, 28)} ${left(u32(dest.weight), 9)} ${left(u32(dest.persistConns), 11)} ${left(u32(dest.activeConns), 10)} ${left(u32(dest.inactConns), 10)}\n`;
  }
  if (format.tunInfo) {
    return `  -> ${left(dname, 28)} ${left(forwardName(dest.forward), 7)} ${left(tunnelInfo(dest) ?? 'n/a', 13)} ${left(dest.weight | 0, 6)} ${left(u32(dest.activeConns), 10)} ${left(u32(dest.inactConns), 10)}\n`;
  }
  return `  -> ${left(dname, 28)} ${left(forwardName(dest.forward), 7)} ${left(dest.weight | 0, 6)} ${left(u32(dest.activeConns), 10)} ${left(u32(dest.inactConns), 10)}\n`;
}

/** `print_service_entry()` for the -L formats: the service line and its destinations. */
export function formatServiceEntry(service: ServiceSnapshot, format: ListingFormat, names: NameDatabase): string {
  let out = serviceLine(service, format, names);
  for (const dest of destinationsInListingOrder(service.dests, format.nosort)) {
    out += destinationLine(service, dest, format, names);
  }
  return out;
}

/** `ipvsadm -L` (no service): version header, title, every service. */
export function formatTable(table: TableSnapshot, format: ListingFormat, names: NameDatabase): string {
  let out = formatVersionHeader(table.connTabSize) + formatTitle(format);
  for (const service of servicesInListingOrder(table.services, format.nosort)) {
    out += formatServiceEntry(service, format, names);
  }
  return out;
}

/** `ipvsadm -L -t|-u|--sctp-service|-f …`: title and that service, no version header. */
export function formatSingleService(service: ServiceSnapshot, format: ListingFormat, names: NameDatabase): string {
  return formatTitle(format) + formatServiceEntry(service, format, names);
}

// ------------------------------------------------------------------------------------------------
// Connections and timeouts

function protocolNumber(name: string): number {
  switch (name) {
    case 'TCP':
      return IPPROTO_TCP;
    case 'UDP':
      return IPPROTO_UDP;
    case 'SCTP':
      return IPPROTO_SCTP;
    default:
      return 0;
  }
}

/** ipvsadm tells the family of each /proc address by trying inet_pton(AF_INET6) first. */
function familyOf(addr: string): AddressFamily {
  return inetPton6(addr) !== undefined ? 6 : 4;
}

function connectionEndpoint(addr: string, port: number, protocol: number, numeric: boolean, names: NameDatabase): string {
  const af = familyOf(addr);
  return formatAddressPort(af, canonicalAddress(af, addr), port, protocol, numeric, names);
}

/** `%02d:%02d` of whole minutes and seconds. */
function expireText(expires: number): string {
  const total = Math.max(0, Math.trunc(expires)) >>> 0;
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
}

/** `ipvsadm -L -c` (`list_conn`), with or without --persistent-conn. */
export function formatConnections(
  connections: readonly ConnectionSnapshot[],
  format: ListingFormat,
  names: NameDatabase,
): string {
  let out = 'IPVS connection entries\n';
  out += format.persistentConn
    ? `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} ${left('destination', 18)} ${left('pe name', 16)} pe_data\n`
    : `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} destination\n`;
  for (const c of connections) {
    const proto = protocolNumber(c.protocol);
    const cname = connectionEndpoint(c.caddr, c.cport, proto, format.numeric, names);
    const vname = connectionEndpoint(c.vaddr, c.vport, proto, format.numeric, names);
    const dname = connectionEndpoint(c.daddr, c.dport, proto, format.numeric, names);
    const head = `${left(c.protocol, 3)} ${left(expireText(c.expires), 6)} ${left(c.state, 11)} ${left(cname, 18)} ${left(vname, 18)}`;
    // /proc/net/ip_vs_conn carries the two PE columns only when the entry has PE data.
    if (format.persistentConn && c.peName !== '' && c.peData !== '') {
      out += `${head} ${left(dname, 16)} ${left(c.peName, 18)} ${c.peData}\n`;
    } else {
      out += `${head} ${dname}\n`;
    }
  }
  return out;
}

/** `ipvsadm -L --timeout`. */
export function formatTimeouts(timeouts: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${timeouts.tcp | 0} ${timeouts.tcpfin | 0} ${timeouts.udp | 0}\n`;
}

// ------------------------------------------------------------------------------------------------
// Mark rules (tapvs's own)

function markPortText([lo, hi]: [number, number]): string {
  return lo === hi ? String(lo) : `${lo}:${hi}`;
}

function markProtocolName(protocol: number): string {
  switch (protocol) {
    case IPPROTO_TCP:
      return 'tcp';
    case IPPROTO_UDP:
      return 'udp';
    default:
      return String(protocol);
  }
}

/**
 * A mark rule in the syntax `--add-mark` reads, always numeric: `-d 198.18.1.100 -p tcp --dports
 * 80,443 --set-mark 3`. No `-p` for "any protocol"; one port item is written `--dport`, several
 * `--dports`; a one-port range is written as the port.
 */
export function markRuleText(rule: MarkRule): string {
  let text = `-d ${canonicalAddress(rule.af, rule.addr)}`;
  if (rule.protocol !== 0) text += ` -p ${markProtocolName(rule.protocol)}`;
  if (rule.ports.length === 1) text += ` --dport ${markPortText(rule.ports[0]!)}`;
  if (rule.ports.length > 1) text += ` --dports ${rule.ports.map(markPortText).join(',')}`;
  return `${text} --set-mark ${rule.mark >>> 0}`;
}

/** `tapvs -L --marks`: `Mark rules` and one indented line per rule, in match order; nothing without rules. */
export function formatMarkRules(marks: readonly MarkRule[]): string {
  if (marks.length === 0) return '';
  return `Mark rules\n${marks.map((rule) => `  ${markRuleText(rule)}\n`).join('')}`;
}

// ------------------------------------------------------------------------------------------------
// FULLNAT local addresses (tapvs's own `-G|--get-laddr`, after DPVS's list_laddrs)

const LADDR_LABEL_WIDTH = 33;
const LADDR_TOTAL_WIDTH = 8;

/**
 * `tapvs -G [service]`: DPVS's table (`VIP:VPORT TOTAL SNAT_IP`, without its per-address CONFLICTS and
 * CONNS columns), with the -L service label (`TCP  198.18.1.100:80`, always numeric) in 33 columns as
 * ipvsadm gives it, the first local address on the service line and the others below it in the SNAT_IP
 * column, in the order they are used; no trailing blanks. `services` are printed in the order given.
 */
export function formatLocalAddresses(services: readonly ServiceSnapshot[], names: NameDatabase): string {
  const lipColumn = ' '.repeat(LADDR_LABEL_WIDTH + 1 + LADDR_TOTAL_WIDTH + 1);
  let out = `${left('VIP:VPORT', LADDR_LABEL_WIDTH)} ${left('TOTAL', LADDR_TOTAL_WIDTH)} SNAT_IP\n`;
  for (const service of services) {
    const laddrs = service.laddrs ?? [];
    const head = `${left(serviceLabel(service, true, names), LADDR_LABEL_WIDTH)} ${left(laddrs.length, LADDR_TOTAL_WIDTH)} ${laddrs[0] ?? ''}`;
    out += `${head.trimEnd()}\n`;
    for (const laddr of laddrs.slice(1)) out += `${lipColumn}${laddr}\n`;
  }
  return out;
}
