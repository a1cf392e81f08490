/**
 * ipvsadm's rule format: what `-S` prints (`print_service_entry` with FMT_RULE) and how `-R` cuts
 * its input into command lines (`config_stream_read`).
 *
 * tapvs's own additions: `--fullnat` servers, `--proxy-protocol` / `--toa` at the end of `-A` lines, and
 * each service's FULLNAT local addresses as `--add-laddr <svc> -z <ip>` lines between its `-A` line and
 * its `-a` lines (so that -R adds them to the new service before its servers).
 */
import { formatAddressPort, type NameDatabase } from '../cli/address-port.js';
import {
  destinationsInListingOrder,
  markRuleText,
  nonDefaultNetmask,
  schedulerFlagsText,
  servicesInListingOrder,
} from './listing.js';
import {
  ForwardMethod,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  SVC_F_SCHED_MASK,
  type DestinationSnapshot,
  type ServiceSnapshot,
  type TableSnapshot,
} from './model.js';

/** The service selector of a rule: `-t addr:port`, `-u …`, `--sctp-service …`, `-f N`, `-f N -6`. */
function serviceSelector(service: ServiceSnapshot, numeric: boolean, names: NameDatabase): string {
  if (service.fwmark !== 0) {
    return service.af === 6 ? `-f ${service.fwmark >>> 0} -6` : `-f ${service.fwmark >>> 0}`;
  }
  const vname = formatAddressPort(service.af, service.addr, service.port, service.protocol, numeric, names);
  return `${selectorOption(service.protocol)} ${vname}`;
}

function selectorOption(protocol: number): string {
  switch (protocol) {
    case IPPROTO_TCP:
      return '-t';
    case IPPROTO_UDP:
      return '-u';
    case IPPROTO_SCTP:
      return '--sctp-service';
    default:
      return '--xxx-service';
  }
}

/** `fwd_switch()`: Local is saved as -g; tapvs's FULLNAT as --fullnat. */
function forwardSwitch(forward: ForwardMethod): string {
  switch (forward & 7) {
    case ForwardMethod.Masq:
      return '-m';
    case ForwardMethod.Tunnel:
      return '-i';
    case ForwardMethod.Local:
    case ForwardMethod.Route:
      return '-g';
    case ForwardMethod.FullNat:
      return '--fullnat';
    default:
      return '(null)';
  }
}

const TUNNEL_FLAG_OPTIONS = ['--tun-nocsum', '--tun-csum', '--tun-remcsum'];

function serviceRule(service: ServiceSnapshot, selector: string): string {
  let line = `-A ${selector} -s ${service.scheduler}`;
  if (service.flags & SVC_F_PERSISTENT) {
    line += ` -p ${service.timeout >>> 0}`;
    const mask = nonDefaultNetmask(service);
    if (mask !== undefined) line += ` -M ${mask}`;
  }
  if (service.pe !== '') line += ` --pe ${service.pe}`;
  if (service.flags & SVC_F_ONEPACKET) line += ' -o';
  if (service.flags & SVC_F_SCHED_MASK) line += ` -b ${schedulerFlagsText(service.scheduler, service.flags)}`;
  if (service.clientAddress === 'proxy-protocol' || service.clientAddress === 'toa') line += ` --${service.clientAddress}`;
  return `${line}\n`;
}

/** FULLNAT local addresses, in the order they are used (always numeric). */
function localAddressRules(service: ServiceSnapshot, selector: string): string {
  return (service.laddrs ?? []).map((laddr) => `--add-laddr ${selector} -z ${laddr}\n`).join('');
}

function destinationRule(selector: string, dname: string, dest: DestinationSnapshot): string {
  const base = `-a ${selector} -r ${dname} ${forwardSwitch(dest.forward)} -w ${dest.weight | 0}`;
  if ((dest.forward & 7) !== ForwardMethod.Tunnel) return `${base}\n`;
  const flagOption = TUNNEL_FLAG_OPTIONS[dest.tunFlags] ?? '(null)';
  switch (dest.tunType) {
    case 0:
      return `${base} --tun-type ipip\n`;
    case 1:
      return `${base} --tun-type gue --tun-port ${dest.tunPort} ${flagOption}\n`;
    case 2:
      return `${base} --tun-type gre ${flagOption}\n`;
    default:
      return `${base}\n`;
  }
}

/**
 * `ipvsadm -S [-n]`: no header, no title; services and destinations sorted; thresholds are not saved.
 * tapvs's mark rules come first, in match order and always numeric (`--add-mark -d … --set-mark N`):
 * they do not depend on services, and -R re-adds them in the same order.
 */
export function formatSave(table: TableSnapshot, numeric: boolean, names: NameDatabase): string {
  let out = '';
  for (const rule of table.marks ?? []) out += `--add-mark ${markRuleText(rule)}\n`;
  for (const service of servicesInListingOrder(table.services, false)) {
    const selector = serviceSelector(service, numeric, names);
    out += serviceRule(service, selector);
    out += localAddressRules(service, selector);
    for (const dest of destinationsInListingOrder(service.dests, false)) {
      const dname = formatAddressPort(dest.af, dest.addr, dest.port, service.protocol, numeric, names);
      out += destinationRule(selector, dname, dest);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// -R input

export interface RestoreLine {
  /** 1-based line number in the input, counting empty lines. */
  lineNumber: number;
  /** The arguments of the command line (without a program name). */
  args: string[];
}

/** Tokens dropped wherever they appear, so saved lines may start with the program name. */
const PROGRAM_NAME_TOKENS = new Set(['ipvsadm', 'tapvs']);

/**
 * `config_stream_read`: lines end at `\n`; tokens are separated by spaces, tabs and CRs; the tokens
 * `ipvsadm` (and tapvs's own `tapvs`) are dropped; lines left without tokens are skipped. There is
 * no comment syntax (ipvsadm's `#` handling never triggers).
 */
export function tokenizeRestoreInput(text: string): RestoreLine[] {
  const lines: RestoreLine[] = [];
  const rawLines = text.split('\n');
  for (let i = 0; i < rawLines.length; i++) {
    const args = rawLines[i]!.split(/[ \t\r]+/).filter((t) => t !== '' && !PROGRAM_NAME_TOKENS.has(t));
    if (args.length > 0) lines.push({ lineNumber: i + 1, args });
  }
  return lines;
}
