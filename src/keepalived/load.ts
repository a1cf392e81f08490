/**
 * keepalived.conf keyword tree (parser.ts) -> the typed model (config.ts), with keepalived's keyword
 * tables (check_parser.c, check_api.c, check_*.c, global_parser.c), value checks and fix-ups
 * (check_data.c validate_check_config), each reported at its file:line.
 *
 * Severity follows keepalived: a value keepalived ignores, clamps or defaults (with report_config_error)
 * is a `warning` and the configuration still loads; a keyword missing its parameter is an `error`
 * (keepalived exits on it). Unknown keywords are warnings; their blocks are skipped whole.
 */
import { formatIPv4, formatIPv6, inetPton4, inetPton6 } from '../cli/address-port.js';
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, SVC_F_ONEPACKET, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, type ClientAddressMode } from '../control/model.js';
import {
  CHECKER_DEFAULTS,
  DNS_TYPES,
  KEEPALIVED_DEFAULTS,
  LVS_SCHEDULERS,
  formatHostPort,
  protocolName,
  type Checker,
  type CheckerType,
  type ConnectionOptions,
  type ForwardSpec,
  type GlobalDefs,
  type HttpUrl,
  type InactiveBlock,
  type KeepalivedConfig,
  type LocalAddressEntry,
  type LocalAddressGroup,
  type RealServer,
  type ScriptSpec,
  type SorryServer,
  type SslContext,
  type VirtualServer,
  type VirtualServerGroup,
  type VirtualServerGroupEntry,
  type VirtualServerTarget,
} from './config.js';
import { Diagnostics, formatRef, type Diagnostic, type SourceRef } from './diagnostics.js';
import { lexConfigFile, splitQuotedEscaped, type LexOptions } from './lexer.js';
import { parseLines, type ConfigNode } from './parser.js';

export interface LoadResult {
  config: KeepalivedConfig;
  diagnostics: Diagnostic[];
}

/** Read, parse and resolve a keepalived.conf (and its includes). Never throws for configuration errors. */
export function loadKeepalivedConfig(file: string, opts: LexOptions = {}): LoadResult {
  const lexed = lexConfigFile(file, opts);
  const nodes = parseLines(lexed.lines, lexed.diagnostics);
  const config = buildConfig(nodes, lexed.files, lexed.diagnostics);
  return { config, diagnostics: lexed.diagnostics.list };
}

// ------------------------------------------------------------------------------------------------
// Keyword tables

/** Every global_defs keyword of keepalived 2.2-2.4 (global_parser.c init_global_keywords). */
const GLOBAL_KEYWORDS = new Set([
  'process_names', 'process_name', 'vrrp_process_name', 'checker_process_name', 'lvs_process_name', 'bfd_process_name',
  'router_id', 'notification_email_from', 'smtp_server', 'smtp_helo_name', 'smtp_connect_timeout', 'notification_email',
  'smtp_alert', 'startup_script', 'startup_script_timeout', 'shutdown_script', 'shutdown_script_timeout',
  'max_auto_priority', 'min_auto_priority_delay', 'smtp_alert_vrrp', 'smtp_alert_checker', 'checker_log_all_failures',
  'dynamic_interfaces', 'no_email_faults', 'default_interface', 'disable_local_igmp', 'lvs_timeouts', 'lvs_flush',
  'lvs_flush_on_stop', 'lvs_flush_onstop', 'lvs_sync_daemon', 'lvs_sync_daemon_interface', 'vrrp_mcast_group4', 'vrrp_mcast_group6',
  'vrrp_garp_master_delay', 'vrrp_garp_master_repeat', 'vrrp_garp_master_refresh', 'vrrp_garp_master_refresh_repeat',
  'vrrp_garp_lower_prio_delay', 'vrrp_garp_lower_prio_repeat', 'vrrp_garp_interval', 'vrrp_gna_interval', 'vrrp_min_garp',
  'vrrp_garp_extra_if', 'vrrp_vmac_garp_intvl', 'vrrp_lower_prio_no_advert', 'vrrp_higher_prio_send_advert', 'vrrp_version',
  'vrrp_iptables', 'vrrp_ipsets', 'nftables', 'nftables_priority', 'nftables_ifindex', 'nftables_ipvs', 'nftables_ipvs_priority',
  'nftables_ipvs_start_fwmark', 'nftables_counters', 'vrrp_check_unicast_src', 'vrrp_skip_check_adv_addr', 'vrrp_strict',
  'vrrp_priority', 'vrrp_no_swap', 'vrrp_rt_priority', 'vrrp_cpu_affinity', 'vrrp_rlimit_rttime', 'vrrp_rlimit_rtime',
  'notify_fifo', 'notify_fifo_script', 'vrrp_notify_fifo', 'vrrp_notify_fifo_script', 'vrrp_notify_priority_changes',
  'lvs_notify_fifo', 'lvs_notify_fifo_script', 'checker_priority', 'checker_no_swap', 'checker_rt_priority',
  'checker_cpu_affinity', 'checker_rlimit_rttime', 'checker_rlimit_rtime', 'bfd_priority', 'bfd_no_swap', 'bfd_rt_priority',
  'bfd_cpu_affinity', 'bfd_rlimit_rttime', 'bfd_rlimit_rtime', 'snmp_socket', 'enable_traps', 'enable_snmp_vrrp',
  'enable_snmp_keepalived', 'enable_snmp_rfc', 'enable_snmp_rfcv2', 'enable_snmp_rfcv3', 'enable_snmp_checker', 'enable_dbus',
  'dbus_service_name', 'script_user', 'enable_script_security', 'vrrp_netlink_cmd_rcv_bufs', 'vrrp_netlink_cmd_rcv_bufs_force',
  'vrrp_netlink_monitor_rcv_bufs', 'vrrp_netlink_monitor_rcv_bufs_force', 'process_monitor_rcv_bufs',
  'process_monitor_rcv_bufs_force', 'lvs_netlink_cmd_rcv_bufs', 'lvs_netlink_cmd_rcv_bufs_force', 'lvs_netlink_monitor_rcv_bufs',
  'lvs_netlink_monitor_rcv_bufs_force', 'rs_init_notifies', 'no_checker_emails', 'vrrp_rx_bufs_policy', 'vrrp_rx_bufs_multiplier',
  'vrrp_startup_delay', 'vrrp_delay_after_boot', 'log_unknown_vrids', 'vmac_prefix', 'vmac_addr_prefix', 'umask', 'random_seed',
  'reload_check_config', 'reload_time_file', 'reload_repeat', 'reload_file', 'include_check', 'tmp_config_directory',
  'config_save_dir', 'data_use_instance', 'vrrp_down_timer_adverts', 'v3_checksum_as_v2', 'linkbeat_use_polling',
  'net_namespace', 'instance', 'use_pid_dir', 'vrrp_netlink_cmd_rcv_bufs', 'global_tracking', 'native_ipv6',
]);

/** Top-level blocks tapvs parses but does not act on yet, and what is missing for them. */
const INACTIVE_ROOT: Record<string, string> = {
  vrrp_instance: 'VRRP',
  vrrp_sync_group: 'VRRP',
  vrrp_script: 'VRRP',
  static_ipaddress: 'VRRP',
  static_routes: 'VRRP',
  static_rules: 'VRRP',
  track_group: 'VRRP',
  vrrp_track_process: 'VRRP',
  track_process: 'VRRP',
  garp_group: 'VRRP',
  linkbeat_interfaces: 'VRRP',
  interface_up_down_delays: 'VRRP',
  vrrp_track_file: 'VRRP',
  track_file: 'track_file (FILE_CHECK)',
  bfd_instance: 'BFD',
};

/** Top-level keywords without a block that do not apply to tapvs. */
const IGNORED_ROOT = new Set(['net_namespace', 'net_namespace_ipvs', 'namespace_with_ipsets', 'instance', 'use_pid_dir', 'child_wait_time', 'linkbeat_use_polling']);

const CHECKER_TYPES = new Set<string>(['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'UDP_CHECK', 'PING_CHECK', 'DNS_CHECK']);
const UNSUPPORTED_CHECKERS = new Set(['SMTP_CHECK', 'FILE_CHECK', 'BFD_CHECK']);

const IPVS_WEIGHT_LIMIT = 0x7fffffff;
const LVS_MAX_TIMEOUT = 86400 * 31;
const IPVS_FWMARK_MAX = 0xffffffff;
/** Largest virtual_server_group range tapvs expands (one service per address). */
export const MAX_GROUP_RANGE = 65536;

// ------------------------------------------------------------------------------------------------
// Values

interface Address {
  af: 4 | 6;
  addr: string;
  /** IPv4 as a host-order u32; IPv6 as 16 bytes. */
  v4: number;
  v6?: Uint8Array;
}

export function parseAddress(text: string): Address | undefined {
  const t = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const v4 = inetPton4(t);
  if (v4 !== undefined) return { af: 4, addr: formatIPv4(v4), v4 };
  const v6 = inetPton6(t);
  if (v6 !== undefined) return { af: 6, addr: formatIPv6(v6), v4: 0, v6 };
  return undefined;
}

/**
 * `ADDR` or `ADDR-END` (keepalived's virtual_server_group and DPVS's local_address_group): END is the
 * last IPv4 octet (the last IPv6 group in hex) or a whole address. Returns why it is invalid otherwise.
 */
function addressRange(text: string, what: string): { first: Address; last: Address } | string {
  const dash = text.indexOf('-');
  if (dash < 0) {
    const a = parseAddress(text);
    return a ? { first: a, last: a } : `Invalid ${what} IP address`;
  }
  const first = parseAddress(text.slice(0, dash));
  if (!first) return `Invalid ${what} IP address`;
  const end = text.slice(dash + 1);
  let last: Address | undefined;
  if ((first.af === 4 && end.includes('.')) || (first.af === 6 && end.includes(':'))) {
    last = parseAddress(end);
    if (!last) return 'Invalid range end';
    if (last.af !== first.af) return 'Range address families do not match';
  } else {
    const v = first.af === 4 ? (/^\d+$/.test(end) ? Number(end) : NaN) : /^[0-9a-fA-F]{1,4}$/.test(end) ? parseInt(end, 16) : NaN;
    if (!(v >= 0 && v <= (first.af === 4 ? 255 : 0xffff))) return 'Invalid range end';
    if (first.af === 4) last = parseAddress(formatIPv4(((first.v4 & 0xffffff00) | v) >>> 0))!;
    else {
      const bytes = Uint8Array.from(first.v6!);
      bytes[14] = v >> 8;
      bytes[15] = v & 0xff;
      last = parseAddress(formatIPv6(bytes))!;
    }
    if (compareAddress(first, last) >= 0) return 'Address range end is not greater than address range start';
  }
  if (compareAddress(first, last) > 0) return 'Address range end is less than address range start';
  return { first, last };
}

function isUnsigned(text: string): boolean {
  return /^[ \t]*\d+$/.test(text);
}

function emptyForward(): ForwardSpec {
  return { method: 'NAT', tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum' };
}

interface RawConnection {
  ip?: Address;
  port?: number;
  bindTo?: Address;
  bindPort?: number;
  bindIf?: string;
  timeout?: number;
  fwmark?: number;
}

interface RawChecker {
  type: CheckerType;
  at: SourceRef;
  alpha?: boolean;
  delayLoop?: number;
  warmup?: number;
  retry?: number;
  delayBeforeRetry?: number;
  logAllFailures?: boolean;
  conn?: RawConnection;
  // HTTP/SSL
  urls: HttpUrl[];
  virtualhost?: string;
  httpProtocol: '1.0' | '1.0C' | '1.1';
  fastRecovery: boolean;
  enableSni: boolean;
  sniName?: string;
  tlsCompliant: boolean;
  // MISC
  script?: ScriptSpec;
  miscTimeout?: number;
  dynamic: boolean;
  // UDP
  payload?: Uint8Array;
  requireReply: boolean;
  replyData?: Uint8Array;
  replyMask?: Uint8Array;
  minReplyLength: number;
  maxReplyLength: number;
  // DNS
  queryType: (typeof DNS_TYPES)[number];
  name: string;
}

interface RawRealServer {
  at: SourceRef;
  address: Address;
  port: number;
  weight?: number;
  forward?: ForwardSpec;
  uThreshold: number;
  lThreshold: number;
  inhibit?: boolean;
  alpha?: boolean;
  notifyUp?: ScriptSpec;
  notifyDown?: ScriptSpec;
  virtualhost?: string;
  delayLoop?: number;
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  smtpAlert?: boolean;
  checkers: RawChecker[];
}

interface RawSorry {
  at: SourceRef;
  address: Address;
  port: number;
  forward?: ForwardSpec;
  inhibit: boolean;
}

interface RawVirtualServer {
  at: SourceRef;
  target: { kind: 'address'; address: Address; port: number } | { kind: 'fwmark'; mark: number } | { kind: 'group'; name: string };
  af?: 4 | 6;
  protocol: number;
  scheduler?: string;
  flags: number;
  persistenceTimeout: number;
  persistenceGranularity?: string;
  persistenceEngine?: string;
  forward?: ForwardSpec;
  delayLoop: number;
  connectTimeout: number;
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  inhibit: boolean;
  alpha: boolean;
  omega: boolean;
  quorum: number;
  hysteresis: number;
  quorumUp?: ScriptSpec;
  quorumDown?: ScriptSpec;
  haSuspend: boolean;
  virtualhost?: string;
  weight: number;
  smtpAlert?: boolean;
  sorry?: RawSorry;
  realServers: RawRealServer[];
  /** laddr_group_name NAME (DPVS). */
  laddrGroup?: { name: string; at: SourceRef };
  /** proxy_protocol (DPVS) / client_address (tapvs), the last one given. */
  clientAddress?: { mode: ClientAddressMode; at: SourceRef; keyword: string };
}

// ------------------------------------------------------------------------------------------------

class Loader {
  readonly global: GlobalDefs = {
    lvsFlush: false,
    enableScriptSecurity: false,
    checkerLogAllFailures: false,
    rsInitNotifies: false,
    noCheckerEmails: false,
    notificationEmail: [],
  };
  ssl: SslContext | undefined;
  readonly groups = new Map<string, VirtualServerGroup>();
  readonly localAddressGroups = new Map<string, LocalAddressGroup>();
  readonly rawServers: RawVirtualServer[] = [];
  readonly inactive: InactiveBlock[] = [];

  constructor(private readonly d: Diagnostics) {}

  // ---- generic helpers ---------------------------------------------------------------------------

  /** The parameter at word position `i` (1-based after the keyword), or an error like keepalived's. */
  private arg(node: ConfigNode, i: number): string | undefined {
    const v = node.args[i - 1];
    if (v === undefined) {
      this.d.error(node.at, `Configuration line starting \`${node.keyword}\` is missing a parameter after keyword \`${i === 1 ? node.keyword : node.args[i - 2]}\` at word position ${i + 1}`);
    }
    return v;
  }

  private unsigned(node: ConfigNode, i: number, min: number, max: number, what: string): number | undefined {
    const text = this.arg(node, i);
    if (text === undefined) return undefined;
    const n = isUnsigned(text) ? Number(text.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      this.d.warn(node.at, `${what} '${text}' invalid (must be in [${min}, ${max}]) - ignoring`);
      return undefined;
    }
    return n;
  }

  /** read_timer(): seconds with up to 6 decimals; returns seconds. */
  private timer(node: ConfigNode, i: number, minSeconds: number, what: string): number | undefined {
    const text = this.arg(node, i);
    if (text === undefined) return undefined;
    const m = /^(\d*)(?:\.(\d*))?$/.exec(text);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) {
      this.d.warn(node.at, `${what} '${text}' invalid - ignoring`);
      return undefined;
    }
    let frac = m[2] ?? '';
    if (frac.length > 6) {
      this.d.warn(node.at, `number '${text}' has too many decimal places`);
      const roundUp = frac[6] >= '5';
      frac = frac.slice(0, 6);
      const us = Number(m[1] || '0') * 1e6 + Number(frac.padEnd(6, '0')) + (roundUp ? 1 : 0);
      return this.checkTimer(node, us, minSeconds, text, what);
    }
    const us = Number(m[1] || '0') * 1e6 + Number(frac.padEnd(6, '0'));
    return this.checkTimer(node, us, minSeconds, text, what);
  }

  private checkTimer(node: ConfigNode, us: number, minSeconds: number, text: string, what: string): number | undefined {
    if (!Number.isSafeInteger(us) || us < Math.round(minSeconds * 1e6)) {
      this.d.warn(node.at, `${what} '${text}' invalid - ignoring`);
      return undefined;
    }
    return us / 1e6;
  }

  /** `keyword [BOOL]`: no parameter means true. */
  private bool(node: ConfigNode, what: string): boolean | undefined {
    const v = node.args[0];
    if (v === undefined) return true;
    if (v === 'true' || v === 'on' || v === 'yes') return true;
    if (v === 'false' || v === 'off' || v === 'no') return false;
    this.d.warn(node.at, `Invalid ${what} parameter ${v}`);
    return undefined;
  }

  private script(node: ConfigNode): ScriptSpec | undefined {
    const words = splitQuotedEscaped(node.raw);
    if (words === null) {
      this.d.warn(node.at, `String '${node.raw}': missing terminating quote - ${node.keyword} ignored`);
      return undefined;
    }
    const command = words[1];
    if (command === undefined || command === '') {
      this.arg(node, 1);
      return undefined;
    }
    const argv = splitQuotedEscaped(command) ?? [command];
    const spec: ScriptSpec = { command, argv, at: node.at };
    if (words[2] !== undefined) spec.user = words[2];
    if (words[3] !== undefined) spec.group = words[3];
    return spec;
  }

  private address(node: ConfigNode, i: number, what: string): Address | undefined {
    const text = this.arg(node, i);
    if (text === undefined) return undefined;
    const a = parseAddress(text);
    if (!a) this.d.warn(node.at, `Invalid ${what} address ${text} - ignoring`);
    return a;
  }

  /** A port parameter that may be absent (0). */
  private optionalPort(node: ConfigNode, text: string | undefined, what: string): number | undefined {
    if (text === undefined || /^0+$/.test(text)) return 0;
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(n >= 1 && n <= 65535)) {
      this.d.warn(node.at, `Invalid ${what} port ${text} - skipping`);
      return undefined;
    }
    return n;
  }

  private unknown(node: ConfigNode, context: string, hint = ''): void {
    if (node.keyword === '{') {
      this.d.warn(node.at, `Unexpected '{' - ignoring it and its block`);
      return;
    }
    const skipped = node.block
      ? ` - its block (to line ${lastLine(node)}) is skipped (keepalived itself would not skip it: it would read the block's lines at this level)`
      : '';
    this.d.warn(node.at, `Unknown keyword '${node.keyword}'${context ? ` in ${context}` : ''}${hint}${skipped}`);
  }

  private needBlock(node: ConfigNode): ConfigNode[] {
    if (!node.block) {
      this.d.warn(node.at, `Missing '{' at beginning of configuration block '${node.keyword}'`);
      return [];
    }
    return node.block;
  }

  // ---- top level ---------------------------------------------------------------------------------

  root(nodes: ConfigNode[]): void {
    for (const node of nodes) {
      const kw = node.keyword;
      if (kw === 'global_defs') this.globalDefs(this.needBlock(node));
      else if (kw === 'virtual_server_group') this.virtualServerGroup(node);
      else if (kw === 'local_address_group') this.localAddressGroup(node);
      else if (kw === 'virtual_server') this.virtualServer(node);
      else if (kw === 'SSL') this.sslBlock(node);
      else if (kw in INACTIVE_ROOT) this.inactive.push({ keyword: kw, name: node.args[0], at: node.at });
      else if (IGNORED_ROOT.has(kw)) this.d.note(node.at, `${kw} does not apply to tapvs - ignored`);
      else this.unknown(node, '');
    }
    this.reportInactive();
  }

  private reportInactive(): void {
    const byWhat = new Map<string, InactiveBlock[]>();
    for (const b of this.inactive) {
      const what = INACTIVE_ROOT[b.keyword];
      if (!byWhat.has(what)) byWhat.set(what, []);
      byWhat.get(what)!.push(b);
    }
    for (const [what, blocks] of byWhat) {
      const list = blocks.map((b) => (b.name ? `${b.keyword} ${b.name}` : b.keyword));
      const shown = list.length > 6 ? [...list.slice(0, 6), `and ${list.length - 6} more`] : list;
      this.d.note(blocks[0].at, `not active (${what} not implemented yet): ${shown.join(', ')}`);
    }
  }

  private globalDefs(nodes: ConfigNode[]): void {
    const g = this.global;
    for (const node of nodes) {
      switch (node.keyword) {
        case 'router_id':
          g.routerId = this.arg(node, 1) ?? g.routerId;
          break;
        case 'lvs_timeouts':
          this.lvsTimeouts(node);
          break;
        case 'lvs_flush':
          g.lvsFlush = true;
          break;
        case 'lvs_flush_on_stop':
        case 'lvs_flush_onstop':
          g.lvsFlushOnStop = node.args[0] ?? 'full';
          break;
        case 'lvs_sync_daemon':
        case 'lvs_sync_daemon_interface':
          this.d.note(node.at, `${node.keyword}: IPVS connection synchronisation is not implemented yet - not active`);
          break;
        case 'enable_script_security':
          g.enableScriptSecurity = true;
          break;
        case 'script_user': {
          const user = this.arg(node, 1);
          if (user !== undefined) g.scriptUser = node.args[1] !== undefined ? { user, group: node.args[1] } : { user };
          break;
        }
        case 'checker_log_all_failures':
          g.checkerLogAllFailures = this.bool(node, 'checker_log_all_failures') ?? g.checkerLogAllFailures;
          break;
        case 'rs_init_notifies':
          g.rsInitNotifies = true;
          break;
        case 'no_checker_emails':
          g.noCheckerEmails = true;
          break;
        case 'notify_fifo':
        case 'lvs_notify_fifo': {
          const path = this.arg(node, 1);
          if (path === undefined) break;
          const fifo = { path, ...(node.args[1] !== undefined ? { user: node.args[1] } : {}), ...(node.args[2] !== undefined ? { group: node.args[2] } : {}) };
          const key = node.keyword === 'notify_fifo' ? 'notifyFifo' : 'lvsNotifyFifo';
          g[key] = { ...fifo, ...(g[key]?.script ? { script: g[key]!.script } : {}) };
          break;
        }
        case 'notify_fifo_script':
        case 'lvs_notify_fifo_script': {
          const key = node.keyword === 'notify_fifo_script' ? 'notifyFifo' : 'lvsNotifyFifo';
          const script = this.script(node);
          if (script) g[key] = { ...(g[key] ?? { path: '' }), script };
          break;
        }
        case 'smtp_alert':
          g.smtpAlert = this.bool(node, 'smtp_alert') ?? g.smtpAlert;
          break;
        case 'smtp_alert_checker':
          g.smtpAlertChecker = this.bool(node, 'smtp_alert_checker') ?? g.smtpAlertChecker;
          break;
        case 'notification_email':
          for (const e of node.block ?? []) g.notificationEmail.push([e.keyword, ...e.args].join(' '));
          for (const e of node.args) if (e !== '{' && e !== '}') g.notificationEmail.push(e);
          break;
        case 'notification_email_from':
          g.notificationEmailFrom = this.arg(node, 1);
          break;
        case 'smtp_server':
          g.smtpServer = [this.arg(node, 1), ...node.args.slice(1)].filter((x) => x !== undefined).join(' ');
          break;
        case 'smtp_connect_timeout':
          g.smtpConnectTimeout = this.unsigned(node, 1, 0, 0xffffffff, 'smtp_connect_timeout') ?? g.smtpConnectTimeout;
          break;
        default:
          if (!GLOBAL_KEYWORDS.has(node.keyword)) this.unknown(node, 'global_defs');
      }
    }
  }

  private lvsTimeouts(node: ConfigNode): void {
    const t: NonNullable<GlobalDefs['lvsTimeouts']> = { ...(this.global.lvsTimeouts ?? {}), at: node.at };
    if (node.args.length === 0) this.arg(node, 1);
    for (let i = 0; i < node.args.length; i++) {
      const name = node.args[i];
      if (name !== 'tcp' && name !== 'tcpfin' && name !== 'udp') {
        this.d.warn(node.at, `Unknown option ${name} specified for lvs_timeouts`);
        continue;
      }
      const v = node.args[i + 1];
      i++;
      const n = v !== undefined && isUnsigned(v) ? Number(v) : NaN;
      if (!(n >= 1 && n <= LVS_MAX_TIMEOUT)) {
        this.d.warn(node.at, `Invalid lvs_timeouts ${name} value ${v ?? '(missing)'} - ignoring`);
        continue;
      }
      t[name] = n;
    }
    this.global.lvsTimeouts = t;
  }

  private sslBlock(node: ConfigNode): void {
    if (this.ssl) this.d.warn(node.at, 'SSL context already specified - replacing');
    const ssl: SslContext = { at: node.at };
    for (const n of this.needBlock(node)) {
      if (n.keyword === 'password' || n.keyword === 'ca' || n.keyword === 'certificate' || n.keyword === 'key') {
        const v = this.arg(n, 1);
        if (v !== undefined) ssl[n.keyword] = v;
      } else this.unknown(n, 'SSL');
    }
    this.ssl = ssl;
  }

  // ---- virtual_server_group ----------------------------------------------------------------------

  private virtualServerGroup(node: ConfigNode): void {
    const name = this.arg(node, 1);
    if (name === undefined) return;
    const group: VirtualServerGroup = { at: node.at, name, entries: [] };
    for (const e of this.needBlock(node)) {
      const entry = this.groupEntry(e, name);
      if (entry) group.entries.push(entry);
    }
    if (group.entries.length === 0) {
      this.d.warn(node.at, `virtual server group ${name} has no entries - removing`);
      return;
    }
    if (this.groups.has(name)) {
      this.d.warn(node.at, `virtual server group ${name} already defined at ${formatRef(this.groups.get(name)!.at)} - ignoring this one`);
      return;
    }
    this.groups.set(name, group);
  }

  private groupEntry(node: ConfigNode, group: string): VirtualServerGroupEntry | undefined {
    if (node.keyword === 'fwmark') {
      const mark = this.unsigned(node, 1, 0, IPVS_FWMARK_MAX, `(${group}): fwmark`);
      if (mark === undefined) return undefined;
      const fam = node.args[1];
      let af: 4 | 6 = 4;
      if (fam === 'inet6') af = 6;
      else if (fam !== undefined && fam !== 'inet') {
        this.d.warn(node.at, `(${group}): fwmark '${mark}' family ${fam} unknown - ignoring`);
        return undefined;
      }
      return { at: node.at, kind: 'fwmark', af, first: '', last: '', port: 0, mark };
    }
    const text = node.keyword;
    const port = this.optionalPort(node, node.args[0], 'virtual server group');
    if (port === undefined) return undefined;
    const bad = (why: string): undefined => {
      this.d.warn(node.at, `${why} - ${text} - skipping`);
      return undefined;
    };
    let first: Address | undefined;
    let last: Address | undefined;
    const slash = text.indexOf('/');
    if (slash >= 0) {
      first = parseAddress(text.slice(0, slash));
      const bits = Number(text.slice(slash + 1));
      if (!first) return bad('Invalid virtual server group IP address');
      const max = first.af === 4 ? 32 : 128;
      if (!/^\d+$/.test(text.slice(slash + 1)) || bits < 1 || bits > max) return bad('Invalid netmask');
      if (first.af === 4) {
        const host = bits === 32 ? 0 : (0xffffffff >>> bits) >>> 0;
        if ((first.v4 & host) !== 0) return bad('Address mask bits not empty');
        last = parseAddress(formatIPv4((first.v4 | host) >>> 0));
      } else {
        const bytes = Uint8Array.from(first.v6!);
        for (let b = bits; b < 128; b++) {
          const mask = 0x80 >> (b % 8);
          if (bytes[b >> 3] & mask) return bad('Address mask bits not empty');
          bytes[b >> 3] |= mask;
        }
        last = parseAddress(formatIPv6(bytes));
      }
    } else {
      const r = addressRange(text, 'virtual server group');
      if (typeof r === 'string') return bad(r);
      ({ first, last } = r);
    }
    const count = rangeSize(first, last!);
    if (count > MAX_GROUP_RANGE) return bad(`range of ${count} addresses exceeds tapvs's limit of ${MAX_GROUP_RANGE} services per entry`);
    return { at: node.at, kind: 'range', af: first.af, first: first.addr, last: last!.addr, port, mark: 0 };
  }

  // ---- local_address_group (DPVS) ----------------------------------------------------------------

  /** `local_address_group NAME { ADDR [IFNAME] | A.B.C.D-E ... }`: FULLNAT local addresses (LIPs). */
  private localAddressGroup(node: ConfigNode): void {
    const name = this.arg(node, 1);
    if (name === undefined) return;
    const group: LocalAddressGroup = { at: node.at, name, entries: [], addresses: [] };
    const seen = new Map<string, SourceRef>();
    for (const e of this.needBlock(node)) {
      const entry = this.localAddressEntry(e, name);
      if (!entry) continue;
      const added: string[] = [];
      for (const a of addressesOfRange(entry)) {
        const first = seen.get(a);
        if (first) this.d.warn(e.at, `local_address_group ${name}: local address ${a} already listed at ${formatRef(first)} - skipping it`);
        else {
          seen.set(a, e.at);
          added.push(a);
        }
      }
      if (added.length === 0) continue;
      group.entries.push(entry);
      group.addresses.push(...added);
    }
    if (group.entries.length === 0) {
      this.d.warn(node.at, `local address group ${name} has no entries - removing`);
      return;
    }
    if (this.localAddressGroups.has(name)) {
      this.d.warn(node.at, `local address group ${name} already defined at ${formatRef(this.localAddressGroups.get(name)!.at)} - ignoring this one`);
      return;
    }
    this.localAddressGroups.set(name, group);
  }

  private localAddressEntry(node: ConfigNode, group: string): LocalAddressEntry | undefined {
    const text = node.keyword;
    const bad = (why: string): undefined => {
      this.d.warn(node.at, `local_address_group ${group}: ${why} - ${text} - skipping`);
      return undefined;
    };
    if (node.block) return bad(`unexpected block after local address`);
    if (text.includes('/')) return bad('a prefix is not a local address (use a range A.B.C.D-E)');
    const r = addressRange(text, 'local address');
    if (typeof r === 'string') return bad(r);
    const count = rangeSize(r.first, r.last);
    if (count > MAX_GROUP_RANGE) return bad(`range of ${count} addresses exceeds tapvs's limit of ${MAX_GROUP_RANGE} per entry`);
    for (const a of [r.first, r.last]) {
      const top = a.v4 >>> 24;
      if (a.af === 4 && (top === 0 || top === 127 || top >= 224)) return bad(`${a.addr} is not a unicast address`);
    }
    if (node.args.length > 1) this.d.warn(node.at, `local_address_group ${group}: extra words after ${text} ${node.args[0]} - ignored`);
    const entry: LocalAddressEntry = { at: node.at, af: r.first.af, first: r.first.addr, last: r.last.addr };
    if (node.args[0] !== undefined) {
      entry.ifname = node.args[0];
      this.d.note(node.at, `local_address_group ${group}: interface ${node.args[0]} ignored (tapvs answers ARP for local addresses on its TAP)`);
    }
    return entry;
  }

  // ---- virtual_server ----------------------------------------------------------------------------

  private virtualServer(node: ConfigNode): void {
    const p1 = this.arg(node, 1);
    if (p1 === undefined) return;
    let target: RawVirtualServer['target'];
    if (p1 === 'group') {
      const name = this.arg(node, 2);
      if (name === undefined) return;
      target = { kind: 'group', name };
    } else if (p1 === 'fwmark') {
      const mark = this.unsigned(node, 2, 0, IPVS_FWMARK_MAX, 'virtual server fwmark');
      if (mark === undefined) return;
      target = { kind: 'fwmark', mark };
    } else {
      const address = parseAddress(p1);
      const port = this.optionalPort(node, node.args[1], 'virtual server');
      if (!address || port === undefined) {
        if (!address) this.d.warn(node.at, `Invalid virtual server IP address ${p1} - skipping`);
        return;
      }
      target = { kind: 'address', address, port };
    }
    const vs: RawVirtualServer = {
      at: node.at,
      target,
      af: target.kind === 'address' ? target.address.af : undefined,
      protocol: 0,
      flags: 0,
      persistenceTimeout: 0,
      delayLoop: KEEPALIVED_DEFAULTS.delayLoop,
      connectTimeout: KEEPALIVED_DEFAULTS.connectTimeout,
      inhibit: false,
      alpha: false,
      omega: false,
      quorum: KEEPALIVED_DEFAULTS.quorum,
      hysteresis: KEEPALIVED_DEFAULTS.hysteresis,
      haSuspend: false,
      weight: KEEPALIVED_DEFAULTS.weight,
      realServers: [],
    };
    for (const n of this.needBlock(node)) this.virtualServerKeyword(vs, n);
    this.rawServers.push(vs);
  }

  private virtualServerKeyword(vs: RawVirtualServer, node: ConfigNode): void {
    switch (node.keyword) {
      case 'ip_family': {
        const f = this.arg(node, 1);
        const af = f === 'inet' ? 4 : f === 'inet6' ? 6 : undefined;
        if (af === undefined) {
          if (f !== undefined) this.d.warn(node.at, `unknown address family ${f}`);
        } else if (vs.af !== undefined && vs.af !== af) this.d.warn(node.at, `Virtual server specified family ${f} conflicts with server family`);
        else vs.af = af;
        return;
      }
      case 'retry':
        vs.retry = this.unsigned(node, 1, 1, 0xffffffff, 'retry value') ?? vs.retry;
        return;
      case 'delay_before_retry':
        vs.delayBeforeRetry = this.timer(node, 1, 0, 'virtual server delay before retry') ?? vs.delayBeforeRetry;
        return;
      case 'warmup':
        vs.warmup = this.timer(node, 1, 0, 'virtual server warmup') ?? vs.warmup;
        return;
      case 'connect_timeout':
        vs.connectTimeout = this.timer(node, 1, 1e-6, 'virtual server connect_timeout') ?? vs.connectTimeout;
        return;
      case 'delay_loop':
        vs.delayLoop = this.timer(node, 1, 1e-6, 'virtual server delay loop') ?? vs.delayLoop;
        return;
      case 'inhibit_on_failure':
        // keepalived's virtual_server inhibit_on_failure takes no parameter: any parameter is ignored.
        if (node.args[0] !== undefined && this.bool(node, 'inhibit_on_failure') === false)
          this.d.warn(node.at, `keepalived ignores the parameter of virtual_server inhibit_on_failure: '${node.args[0]}' still turns it on`);
        vs.inhibit = true;
        return;
      case 'lb_algo':
      case 'lvs_sched': {
        const s = this.arg(node, 1);
        if (s === undefined) return;
        if (!(LVS_SCHEDULERS as readonly string[]).includes(s)) this.d.warn(node.at, `Invalid lvs_scheduler '${s}' - ignoring`);
        else vs.scheduler = s;
        return;
      }
      case 'hashed':
      case 'ops':
      case 'flag-1':
      case 'flag-2':
      case 'flag-3':
      case 'sh-port':
      case 'sh-fallback':
      case 'mh-port':
      case 'mh-fallback':
        this.schedulerFlag(vs, node);
        return;
      case 'lb_kind':
      case 'lvs_method': {
        const f = this.forwarding(node, vs.forward, 'virtual');
        if (f) vs.forward = f;
        return;
      }
      case 'persistence_engine':
        vs.persistenceEngine = this.arg(node, 1) ?? vs.persistenceEngine;
        return;
      case 'persistence_timeout':
        if (node.args.length === 0) vs.persistenceTimeout = KEEPALIVED_DEFAULTS.persistenceTimeout;
        else {
          const t = this.unsigned(node, 1, 1, LVS_MAX_TIMEOUT, 'persistence_timeout');
          if (t !== undefined) vs.persistenceTimeout = t;
        }
        return;
      case 'persistence_granularity':
        this.granularity(vs, node);
        return;
      case 'protocol': {
        const p = this.arg(node, 1);
        if (p === undefined) return;
        const u = p.toUpperCase();
        if (u === 'TCP') vs.protocol = IPPROTO_TCP;
        else if (u === 'UDP') vs.protocol = IPPROTO_UDP;
        else if (u === 'SCTP') vs.protocol = IPPROTO_SCTP;
        else this.d.warn(node.at, `Unknown protocol ${p} - ignoring`);
        return;
      }
      case 'ha_suspend':
        vs.haSuspend = true;
        return;
      case 'smtp_alert':
        vs.smtpAlert = this.bool(node, 'virtual_server smtp_alert') ?? vs.smtpAlert;
        return;
      case 'virtualhost':
        vs.virtualhost = this.arg(node, 1) ?? vs.virtualhost;
        return;
      case 'snmp_name':
        return;
      case 'alpha':
        vs.alpha = true;
        return;
      case 'omega':
        vs.omega = true;
        return;
      case 'quorum_up':
      case 'quorum_down': {
        const key = node.keyword === 'quorum_up' ? 'quorumUp' : 'quorumDown';
        if (vs[key]) {
          this.d.warn(node.at, `${node.keyword} script already specified - ignoring ${node.args[0] ?? ''}`);
          return;
        }
        vs[key] = this.script(node);
        return;
      }
      case 'quorum': {
        const q = this.unsigned(node, 1, 1, 0xffffffff, 'Quorum');
        vs.quorum = q ?? 1;
        return;
      }
      case 'hysteresis':
        vs.hysteresis = this.unsigned(node, 1, 0, 0xffffffff, 'Hysteresis') ?? vs.hysteresis;
        return;
      case 'weight':
        vs.weight = this.unsigned(node, 1, 1, IPVS_WEIGHT_LIMIT, 'Virtual server weight') ?? vs.weight;
        return;
      case 'sorry_server': {
        const address = this.address(node, 1, 'sorry server');
        const port = this.optionalPort(node, node.args[1], 'sorry server');
        if (address && port !== undefined) vs.sorry = { at: node.at, address, port, inhibit: false };
        return;
      }
      case 'sorry_server_inhibit':
        if (vs.sorry) vs.sorry.inhibit = true;
        else this.d.warn(node.at, 'Ignoring sorry_server inhibit used before or without sorry_server');
        return;
      case 'sorry_server_lvs_method':
        if (!vs.sorry) this.d.warn(node.at, 'sorry_server forwarding used without sorry_server');
        else {
          const f = this.forwarding(node, vs.sorry.forward, 'sorry');
          if (f) vs.sorry.forward = f;
        }
        return;
      case 'real_server':
        this.realServer(vs, node);
        return;
      case 'laddr_group_name': {
        const name = this.arg(node, 1);
        if (name === undefined) return;
        if (vs.laddrGroup) this.d.warn(node.at, `laddr_group_name already specified at ${formatRef(vs.laddrGroup.at)} - replacing`);
        vs.laddrGroup = { name, at: node.at };
        return;
      }
      case 'proxy_protocol': {
        // DPVS: v1 | v2 | v1-insecure | v2-insecure | disable (anything else disables it).
        const v = this.arg(node, 1);
        if (v === undefined) return;
        const l = v.toLowerCase();
        let mode: ClientAddressMode;
        if (l === 'v2') mode = 'proxy-protocol';
        else if (l === 'disable') mode = 'none';
        else if (l === 'v2-insecure') {
          this.d.warn(node.at, `proxy_protocol ${v}: tapvs always inserts its own PROXY v2 header (a client's own header is not passed through) - using v2`);
          mode = 'proxy-protocol';
        } else if (l === 'v1' || l === 'v1-insecure') {
          this.d.error(node.at, `proxy_protocol ${v}: tapvs sends PROXY protocol v2 only (use proxy_protocol v2)`);
          return;
        } else {
          this.d.warn(node.at, `unknown proxy_protocol '${v}' (v2, v2-insecure, v1, v1-insecure, disable) - disabling it, as DPVS does`);
          mode = 'none';
        }
        this.setClientAddress(vs, node, mode);
        return;
      }
      case 'client_address': {
        // tapvs extension: what `tapvs -A ... --proxy-protocol | --toa` sets.
        const v = this.arg(node, 1);
        if (v === undefined) return;
        if (v !== 'proxy-protocol' && v !== 'toa' && v !== 'none') {
          this.d.warn(node.at, `Invalid client_address '${v}' (proxy-protocol, toa, none) - ignoring`);
          return;
        }
        this.setClientAddress(vs, node, v);
        return;
      }
      default:
        this.unknown(node, 'virtual_server');
    }
  }

  private setClientAddress(vs: RawVirtualServer, node: ConfigNode, mode: ClientAddressMode): void {
    const prev = vs.clientAddress;
    if (prev && prev.mode !== mode) this.d.warn(node.at, `${node.keyword} overrides ${prev.keyword} at ${formatRef(prev.at)}`);
    vs.clientAddress = { mode, at: node.at, keyword: node.keyword };
  }

  private schedulerFlag(vs: RawVirtualServer, node: ConfigNode): void {
    const kw = node.keyword;
    if (kw === 'ops') vs.flags |= SVC_F_ONEPACKET;
    else if (kw === 'flag-1') vs.flags |= SVC_F_SCHED1;
    else if (kw === 'flag-2') vs.flags |= SVC_F_SCHED2;
    else if (kw === 'flag-3') vs.flags |= SVC_F_SCHED3;
    else if (vs.scheduler === 'sh' && (kw === 'sh-port' || kw === 'sh-fallback')) vs.flags |= kw === 'sh-port' ? SVC_F_SCHED2 : SVC_F_SCHED1;
    else if (vs.scheduler === 'mh' && (kw === 'mh-port' || kw === 'mh-fallback')) vs.flags |= kw === 'mh-port' ? SVC_F_SCHED2 : SVC_F_SCHED1;
    else this.d.warn(node.at, `${kw} only applies to ${kw.startsWith('mh') ? 'mh' : 'sh'} scheduler (set lvs_sched before it) - ignoring`);
  }

  private granularity(vs: RawVirtualServer, node: ConfigNode): void {
    const text = this.arg(node, 1);
    if (text === undefined) return;
    const af = vs.af ?? (text.includes('.') ? 4 : 6);
    if (af === 6) {
      const n = /^\d+$/.test(text) ? Number(text) : NaN;
      if (!(n >= 1 && n <= 128)) {
        this.d.warn(node.at, `Invalid IPv6 persistence_granularity specified - ${text}`);
        return;
      }
      vs.persistenceGranularity = String(n);
    } else {
      const m = inetPton4(text);
      if (m === undefined) {
        this.d.warn(node.at, `Invalid IPv4 persistence_granularity specified - ${text}`);
        return;
      }
      vs.persistenceGranularity = formatIPv4(m);
    }
    if (vs.af === undefined) vs.af = af;
    if (!vs.persistenceTimeout) vs.persistenceTimeout = KEEPALIVED_DEFAULTS.persistenceTimeout;
  }

  /** `lvs_method NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`, and DPVS's FNAT (alias FULLNAT). */
  private forwarding(node: ConfigNode, prev: ForwardSpec | undefined, who: string): ForwardSpec | undefined {
    const m = this.arg(node, 1);
    if (m === undefined) return undefined;
    if (m !== 'NAT' && m !== 'DR' && m !== 'TUN' && m !== 'FNAT' && m !== 'FULLNAT') {
      this.d.warn(node.at, `PARSER : unknown [${m}] routing method for ${who} server.`);
      return undefined;
    }
    const f: ForwardSpec = { ...(prev ?? emptyForward()), method: m === 'FNAT' ? 'FULLNAT' : m };
    if (m !== 'TUN') return { ...f, tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum' };
    let tunType: ForwardSpec['tunType'] = 'ipip';
    let port = 0;
    let csum: ForwardSpec['tunCsum'] = 'nocsum';
    for (let i = 1; i < node.args.length; i++) {
      const w = node.args[i];
      if (w === 'type') {
        const t = node.args[++i];
        if (t !== 'ipip' && t !== 'gue' && t !== 'gre') {
          this.d.warn(node.at, t === undefined ? `Missing tunnel type for ${who} server.` : `Unknown tunnel type ${t} for ${who} server.`);
          return undefined;
        }
        tunType = t;
      } else if (w === 'port') {
        const p = node.args[++i];
        const n = p !== undefined && /^\d+$/.test(p) ? Number(p) : NaN;
        if (!(n >= 1 && n <= 65535)) {
          this.d.warn(node.at, p === undefined ? `Missing port for ${who} server gue tunnel.` : `Invalid gue tunnel port ${p} for ${who} server.`);
          return undefined;
        }
        port = n;
      } else if (w === 'nocsum' || w === 'csum' || w === 'remcsum') csum = w;
      else {
        this.d.warn(node.at, `Invalid tunnel option ${w} for ${who} server.`);
        return undefined;
      }
    }
    if ((tunType === 'gue') !== (port !== 0)) {
      this.d.warn(node.at, 'gue tunnels require port, otherwise cannot have port.');
      return undefined;
    }
    if (tunType === 'ipip' && csum !== 'nocsum') {
      this.d.warn(node.at, 'ipip tunnels do not support checksum option.');
      return undefined;
    }
    if (tunType === 'gre' && csum === 'remcsum') {
      this.d.warn(node.at, 'gre tunnels do not support remote checksum option.');
      return undefined;
    }
    return { method: 'TUN', tunType, tunPort: port, tunCsum: csum };
  }

  // ---- real_server -------------------------------------------------------------------------------

  private realServer(vs: RawVirtualServer, node: ConfigNode): void {
    const p1 = this.arg(node, 1);
    if (p1 === undefined) return;
    const address = parseAddress(p1);
    const port = this.optionalPort(node, node.args[1], 'real server');
    if (!address || port === undefined) {
      if (!address) this.d.warn(node.at, `Invalid real server ip address/port ${p1}/${node.args[1] ?? ''} - skipping`);
      return;
    }
    const rs: RawRealServer = { at: node.at, address, port, uThreshold: 0, lThreshold: 0, checkers: [] };
    for (const n of this.needBlock(node)) this.realServerKeyword(rs, n);
    // rs_end_handler: the address family must match the virtual server's unless tunnelled
    const method = rs.forward?.method ?? vs.forward?.method;
    if (method !== 'TUN') {
      if (vs.af === undefined) vs.af = address.af;
      else if (vs.af !== address.af) {
        this.d.warn(node.at, `Address family of virtual server and real server ${address.addr} don't match - skipping real server.`);
        return;
      }
    }
    vs.realServers.push(rs);
  }

  private realServerKeyword(rs: RawRealServer, node: ConfigNode): void {
    switch (node.keyword) {
      case 'weight':
        rs.weight = this.unsigned(node, 1, 0, IPVS_WEIGHT_LIMIT, 'Real server weight') ?? rs.weight;
        return;
      case 'lvs_method': {
        const f = this.forwarding(node, rs.forward, 'real');
        if (f) rs.forward = f;
        return;
      }
      case 'uthreshold':
        rs.uThreshold = this.unsigned(node, 1, 0, 0xffffffff, 'real_server uthreshold') ?? rs.uThreshold;
        return;
      case 'lthreshold':
        rs.lThreshold = this.unsigned(node, 1, 0, 0xffffffff, 'real_server lthreshold') ?? rs.lThreshold;
        return;
      case 'inhibit_on_failure':
        rs.inhibit = this.bool(node, 'inhibit_on_failure') ?? rs.inhibit;
        return;
      case 'notify_up':
      case 'notify_down': {
        const key = node.keyword === 'notify_up' ? 'notifyUp' : 'notifyDown';
        if (rs[key]) {
          this.d.warn(node.at, `${node.keyword} script already specified - ignoring ${node.args[0] ?? ''}`);
          return;
        }
        rs[key] = this.script(node);
        return;
      }
      case 'alpha':
        rs.alpha = this.bool(node, 'alpha') ?? rs.alpha;
        return;
      case 'retry':
        rs.retry = this.unsigned(node, 1, 1, 0xffffffff, 'retry value') ?? rs.retry;
        return;
      case 'delay_before_retry':
        rs.delayBeforeRetry = this.timer(node, 1, 0, 'real server delay_before_retry') ?? rs.delayBeforeRetry;
        return;
      case 'warmup':
        rs.warmup = this.timer(node, 1, 0, 'real server warmup') ?? rs.warmup;
        return;
      case 'connect_timeout':
        rs.connectTimeout = this.timer(node, 1, 1e-6, 'real server connect_timeout') ?? rs.connectTimeout;
        return;
      case 'delay_loop':
        rs.delayLoop = this.timer(node, 1, 1e-6, 'real server delay_loop') ?? rs.delayLoop;
        return;
      case 'smtp_alert':
        rs.smtpAlert = this.bool(node, 'real_server smtp_alert') ?? rs.smtpAlert;
        return;
      case 'virtualhost':
        rs.virtualhost = this.arg(node, 1) ?? rs.virtualhost;
        return;
      case 'snmp_name':
        return;
      case 'track_file':
      case 'track_bfd':
        this.d.warn(node.at, `${node.keyword} is not implemented by tapvs yet - ignored`);
        return;
      default:
        if (CHECKER_TYPES.has(node.keyword)) {
          const c = this.checker(node.keyword as CheckerType, node);
          if (c) rs.checkers.push(c);
        } else if (UNSUPPORTED_CHECKERS.has(node.keyword)) {
          this.d.warn(node.at, `${node.keyword} is not implemented by tapvs yet - ignored (the real server is checked as if it were not there)`);
        } else this.unknown(node, 'real_server');
    }
  }

  // ---- checkers ----------------------------------------------------------------------------------

  private checker(type: CheckerType, node: ConfigNode): RawChecker | undefined {
    const c: RawChecker = {
      type,
      at: node.at,
      conn: type === 'MISC_CHECK' ? undefined : {},
      urls: [],
      httpProtocol: '1.0',
      fastRecovery: false,
      enableSni: false,
      tlsCompliant: false,
      dynamic: false,
      requireReply: false,
      minReplyLength: 0,
      maxReplyLength: 255,
      queryType: 'SOA',
      name: '.',
    };
    for (const n of this.needBlock(node)) {
      if (this.checkerCommon(c, n)) continue;
      if (this.checkerSpecific(c, n)) continue;
      const hint =
        n.keyword === 'nb_get_retry'
          ? ` (keepalived accepts nb_get_retry only in HTTP_GET and SSL_GET; it is ignored here, use 'retry')`
          : '';
      this.unknown(n, type, hint);
    }
    if ((type === 'HTTP_GET' || type === 'SSL_GET') && c.urls.length === 0) {
      this.d.warn(node.at, `HTTP/SSL_GET checker has no urls specified - ignoring`);
      return undefined;
    }
    if (type === 'MISC_CHECK' && !c.script) {
      this.d.warn(node.at, 'No script path has been specified for MISC_CHECKER - skipping');
      return undefined;
    }
    if (type === 'UDP_CHECK' && c.minReplyLength > c.maxReplyLength)
      this.d.warn(node.at, `UDP_CHECK min_reply length ${c.minReplyLength} > max_reply_length ${c.maxReplyLength} - will always fail`);
    return c;
  }

  /** Keywords every checker has (check_api.c install_checker_common_keywords). */
  private checkerCommon(c: RawChecker, node: ConfigNode): boolean {
    const conn = c.conn;
    switch (node.keyword) {
      case 'retry':
        c.retry = this.unsigned(node, 1, 0, 0xffffffff, 'retry connection value') ?? c.retry;
        return true;
      case 'delay_before_retry':
        c.delayBeforeRetry = this.timer(node, 1, 0, 'delay_before_retry connection value') ?? c.delayBeforeRetry;
        return true;
      case 'warmup':
        c.warmup = this.timer(node, 1, 0, 'warmup connection value') ?? c.warmup;
        return true;
      case 'delay_loop':
        c.delayLoop = this.timer(node, 1, 1e-6, 'delay_loop') ?? c.delayLoop;
        return true;
      case 'alpha':
        c.alpha = this.bool(node, 'alpha') ?? c.alpha;
        return true;
      case 'log_all_failures':
        c.logAllFailures = this.bool(node, 'log_all_failures') ?? c.logAllFailures;
        return true;
    }
    if (!conn) return false;
    switch (node.keyword) {
      case 'connect_ip': {
        const a = this.address(node, 1, 'connect_ip');
        if (!a) return true;
        if (conn.bindTo && conn.bindTo.af !== a.af) this.d.warn(node.at, `connect_ip address ${a.addr} does not match address family of bindto - skipping`);
        else conn.ip = a;
        return true;
      }
      case 'connect_port':
        conn.port = this.unsigned(node, 1, 1, 65535, 'checker connect_port') ?? conn.port;
        return true;
      case 'bindto': {
        const a = this.address(node, 1, 'bindto');
        if (!a) return true;
        if (conn.ip && conn.ip.af !== a.af) this.d.warn(node.at, `bindto address ${a.addr} does not match address family of connect_ip - skipping`);
        else conn.bindTo = a;
        return true;
      }
      case 'bind_port':
        conn.bindPort = this.unsigned(node, 1, 1, 65535, 'checker bind_port') ?? conn.bindPort;
        return true;
      case 'bind_if': {
        const v = this.arg(node, 1);
        if (v !== undefined && v.length > 15) this.d.warn(node.at, `Interface name ${v} is too long - ignoring`);
        else if (v !== undefined) conn.bindIf = v;
        return true;
      }
      case 'connect_timeout':
        conn.timeout = this.timer(node, 1, 1e-6, 'connect_timeout') ?? conn.timeout;
        return true;
      case 'fwmark':
        conn.fwmark = this.unsigned(node, 1, 0, 0xffffffff, 'fwmark connection value') ?? conn.fwmark;
        return true;
    }
    return false;
  }

  private checkerSpecific(c: RawChecker, node: ConfigNode): boolean {
    const kw = node.keyword;
    switch (c.type) {
      case 'HTTP_GET':
      case 'SSL_GET':
        switch (kw) {
          case 'nb_get_retry':
            this.d.warn(node.at, "nb_get_retry is deprecated - please use 'retry'");
            c.retry = this.unsigned(node, 1, 0, 0xffffffff, 'nb_get_retry value') ?? c.retry;
            return true;
          case 'virtualhost':
            c.virtualhost = this.arg(node, 1) ?? c.virtualhost;
            return true;
          case 'http_protocol': {
            const v = this.arg(node, 1);
            if (v === '1.0' || v === '1.1') c.httpProtocol = v;
            else if (v === '1.0C' || v === '1.0c') c.httpProtocol = '1.0C';
            else if (v !== undefined) this.d.warn(node.at, `Invalid http_protocol version ${v}`);
            return true;
          }
          case 'enable_sni':
            c.enableSni = this.bool(node, 'enable_sni') ?? c.enableSni;
            return true;
          case 'sni_name':
            c.sniName = this.arg(node, 1) ?? c.sniName;
            return true;
          case 'tls_compliant':
            c.tlsCompliant = this.bool(node, 'tls_compliant') ?? c.tlsCompliant;
            return true;
          case 'fast_recovery':
            c.fastRecovery = this.bool(node, 'fast_recovery') ?? c.fastRecovery;
            return true;
          case 'url': {
            const url = this.url(node);
            if (url) c.urls.push(url);
            return true;
          }
        }
        return false;
      case 'MISC_CHECK':
        switch (kw) {
          case 'misc_path':
            c.script = this.script(node) ?? c.script;
            return true;
          case 'misc_timeout':
            c.miscTimeout = this.timer(node, 1, 0, 'misc_timeout') ?? c.miscTimeout;
            return true;
          case 'misc_dynamic':
            c.dynamic = true;
            return true;
          case 'user': {
            const user = this.arg(node, 1);
            if (user !== undefined && c.script) {
              c.script.user = user;
              if (node.args[1] !== undefined) c.script.group = node.args[1];
            } else if (user !== undefined) this.d.warn(node.at, 'user specified before misc_path - ignoring');
            return true;
          }
        }
        return false;
      case 'UDP_CHECK':
        switch (kw) {
          case 'payload': {
            if (node.args.length === 0) {
              this.d.warn(node.at, 'UDP_CHECK payload requires a payload');
              return true;
            }
            const hex = readHex(node.args.join(' '), false);
            if (!hex) this.d.warn(node.at, 'Invalid hex string for UDP_CHECK payload');
            else c.payload = hex.data;
            return true;
          }
          case 'require_reply': {
            c.requireReply = true;
            if (node.args.length === 0) return true;
            const hex = readHex(node.args.join(' '), true);
            if (!hex) this.d.warn(node.at, 'Invalid hex string for UDP_CHECK reply');
            else {
              c.replyData = hex.data;
              if (hex.mask) c.replyMask = hex.mask;
            }
            return true;
          }
          case 'min_reply_length':
            c.minReplyLength = this.unsigned(node, 1, 0, 65535, 'UDP_CHECK min length') ?? c.minReplyLength;
            return true;
          case 'max_reply_length':
            c.maxReplyLength = this.unsigned(node, 1, 0, 65535, 'UDP_CHECK max length') ?? c.maxReplyLength;
            return true;
        }
        return false;
      case 'DNS_CHECK':
        switch (kw) {
          case 'type': {
            const t = this.arg(node, 1);
            const u = t?.toUpperCase();
            if (u !== undefined && (DNS_TYPES as readonly string[]).includes(u)) c.queryType = u as (typeof DNS_TYPES)[number];
            else if (t !== undefined) this.d.warn(node.at, `Unknown DNS check type ${t} - ignoring`);
            return true;
          }
          case 'name': {
            const v = this.arg(node, 1);
            if (v === undefined) return true;
            if (v !== '.' && v.replace(/\.$/, '').split('.').some((l) => l === '' || l.length > 63)) {
              this.d.warn(node.at, `DNS_CHECK name '${v}' has empty label - ignoring`);
              return true;
            }
            c.name = v;
            return true;
          }
        }
        return false;
      default:
        return false;
    }
  }

  private url(node: ConfigNode): HttpUrl | undefined {
    const url: Partial<HttpUrl> & { statusCodes: [number, number][]; regexOptions: string[]; regexNoMatch: boolean } = {
      statusCodes: [],
      regexOptions: [],
      regexNoMatch: false,
      at: node.at,
    };
    for (const n of this.needBlock(node)) {
      switch (n.keyword) {
        case 'path':
          url.path = this.arg(n, 1) ?? url.path;
          break;
        case 'digest': {
          const v = this.arg(n, 1);
          if (v === undefined) break;
          if (url.digest) this.d.warn(n.at, `Digest '${v}' is a duplicate`);
          else if (v.length !== 32) this.d.warn(n.at, `digest '${v}' character length should be 32 rather than ${v.length}`);
          else if (!/^[0-9a-fA-F]{32}$/.test(v)) this.d.warn(n.at, `Unable to interpret hex digits in '${v}'`);
          else url.digest = v.toLowerCase();
          break;
        }
        case 'status_code':
          if (n.args.length === 0) this.arg(n, 1);
          for (const s of n.args) {
            const m = /^(\d+)(?:-(\d+))?$/.exec(s);
            const lo = m ? Number(m[1]) : NaN;
            const hi = m ? Number(m[2] ?? m[1]) : NaN;
            if (!(lo >= 100 && hi <= 599 && lo <= hi)) this.d.warn(n.at, `Invalid HTTP_GET status code '${s}'`);
            else url.statusCodes.push([lo, hi]);
          }
          break;
        case 'virtualhost':
          url.virtualhost = this.arg(n, 1) ?? url.virtualhost;
          break;
        case 'regex': {
          const words = splitQuotedEscaped(n.raw);
          if (!words || words.length !== 2) this.d.warn(n.at, 'regex missing or too many fields');
          else url.regex = words[1];
          break;
        }
        case 'regex_no_match':
          url.regexNoMatch = true;
          break;
        case 'regex_options':
          url.regexOptions.push(...n.args);
          break;
        case 'regex_min_offset':
          url.regexMinOffset = this.unsigned(n, 1, 0, Number.MAX_SAFE_INTEGER, 'regex_min_offset') ?? url.regexMinOffset;
          break;
        case 'regex_max_offset':
          url.regexMaxOffset = this.unsigned(n, 1, 0, Number.MAX_SAFE_INTEGER, 'regex_max_offset') ?? url.regexMaxOffset;
          break;
        case 'regex_stack':
          break;
        default:
          this.unknown(n, 'url');
      }
    }
    if (url.path === undefined) {
      this.d.warn(node.at, 'HTTP/SSL_GET checker url has no path - ignoring');
      return undefined;
    }
    if (url.statusCodes.length === 0) url.statusCodes.push([200, 299]);
    return url as HttpUrl;
  }

  // ---- validation (validate_check_config) --------------------------------------------------------

  finish(): VirtualServer[] {
    const out: VirtualServer[] = [];
    const seen = new Map<string, SourceRef>();
    for (const raw of this.rawServers) {
      const vs = this.finishVirtualServer(raw);
      if (!vs) continue;
      const first = seen.get(vs.id);
      if (first) {
        this.d.warn(vs.at, `virtual_server ${vs.id} duplicates the one at ${formatRef(first)} - ignoring this one`);
        continue;
      }
      seen.set(vs.id, vs.at);
      out.push(vs);
    }
    return out;
  }

  private finishVirtualServer(raw: RawVirtualServer): VirtualServer | undefined {
    const d = this.d;
    let target: VirtualServerTarget;
    if (raw.target.kind === 'group') {
      const group = this.groups.get(raw.target.name);
      if (!group) {
        d.warn(raw.at, `Virtual server group ${raw.target.name} specified but not configured - ignoring virtual server`);
        return undefined;
      }
      target = { kind: 'group', name: raw.target.name, group };
    } else if (raw.target.kind === 'fwmark') target = { kind: 'fwmark', mark: raw.target.mark };
    else target = { kind: 'address', addr: raw.target.address.addr, port: raw.target.port };
    let label = describeTarget(raw, target);

    if (raw.realServers.length === 0) {
      d.warn(raw.at, `Virtual server ${label} has no real servers - ignoring`);
      return undefined;
    }
    const fwmarkOnly = target.kind === 'fwmark' || (target.kind === 'group' && target.group.entries.every((e) => e.kind === 'fwmark'));
    const hasAddresses = target.kind === 'address' || (target.kind === 'group' && target.group.entries.some((e) => e.kind === 'range'));
    if (raw.haSuspend && (target.kind === 'fwmark' || (target.kind === 'group' && target.group.entries.some((e) => e.kind === 'fwmark')))) {
      d.warn(raw.at, `Virtual server ${label}: cannot use ha_suspend with fwmarks - clearing ha_suspend`);
      raw.haSuspend = false;
    }
    if (hasAddresses) {
      if (!raw.protocol) {
        d.warn(raw.at, `Virtual server ${label}: no protocol set - defaulting to UDP`);
        raw.protocol = IPPROTO_UDP;
        label = describeTarget(raw, target);
      }
      if (raw.flags & SVC_F_ONEPACKET && raw.protocol !== IPPROTO_UDP) {
        d.warn(raw.at, `Virtual server ${label}: one packet scheduling requires UDP - resetting`);
        raw.flags &= ~SVC_F_ONEPACKET;
      }
      if (!raw.persistenceTimeout && target.kind === 'address' && target.port === 0) {
        d.warn(raw.at, `Virtual server ${label}: zero port only valid for persistent services - setting`);
        raw.persistenceTimeout = KEEPALIVED_DEFAULTS.persistenceTimeout;
      }
    }
    if (!raw.persistenceTimeout && target.kind === 'group' && target.group.entries.some((e) => e.kind === 'range' && e.port === 0)) {
      d.warn(raw.at, `Virtual server ${label}: zero port only valid for persistent services - setting`);
      raw.persistenceTimeout = KEEPALIVED_DEFAULTS.persistenceTimeout;
    }
    if (raw.protocol && fwmarkOnly) {
      d.warn(raw.at, `Warning: Virtual server ${label}: protocol specified for fwmark - protocol will be ignored`);
      raw.protocol = 0;
    }
    if (!raw.scheduler) {
      d.warn(raw.at, `Virtual server ${label}: no scheduler set, setting default '${KEEPALIVED_DEFAULTS.scheduler}'`);
      raw.scheduler = KEEPALIVED_DEFAULTS.scheduler;
    }
    const smtpAlert = raw.smtpAlert ?? this.global.smtpAlertChecker ?? this.global.smtpAlert ?? false;
    const af: 4 | 6 = raw.af ?? (target.kind === 'group' ? target.group.entries.find((e) => e.kind === 'range')?.af ?? 4 : 4);

    let vsForward = raw.forward;
    const defaultForward = (): ForwardSpec => {
      if (!vsForward) {
        d.warn(raw.at, `Virtual server ${label}: no forwarding method set, setting default NAT`);
        vsForward = emptyForward();
      }
      return vsForward;
    };

    // Real servers: duplicates removed, forwarding method and timings inherited.
    const realServers: RealServer[] = [];
    const rawOf = new Map<RealServer, RawRealServer>();
    const ids = new Set<string>();
    let weightSum = 0;
    for (const r of raw.realServers) {
      const id = formatHostPort(r.address.addr, r.port);
      if (ids.has(id)) {
        d.warn(r.at, `VS ${label}: real server ${id} is duplicated - removing second rs`);
        continue;
      }
      ids.add(id);
      const forward = r.forward ?? defaultForward();
      const weight = r.weight ?? raw.weight;
      weightSum += weight;
      const real: RealServer = {
        at: r.at,
        id,
        af: r.address.af,
        addr: r.address.addr,
        port: r.port,
        weight,
        forward,
        uThreshold: r.uThreshold,
        lThreshold: r.lThreshold,
        inhibitOnFailure: r.inhibit ?? raw.inhibit,
        alpha: r.alpha ?? raw.alpha,
        ...(r.notifyUp ? { notifyUp: r.notifyUp } : {}),
        ...(r.notifyDown ? { notifyDown: r.notifyDown } : {}),
        ...(r.virtualhost !== undefined ? { virtualhost: r.virtualhost } : {}),
        delayLoop: r.delayLoop ?? raw.delayLoop,
        connectTimeout: r.connectTimeout ?? raw.connectTimeout,
        ...defined('retry', r.retry ?? raw.retry),
        ...defined('delayBeforeRetry', r.delayBeforeRetry ?? raw.delayBeforeRetry),
        ...defined('warmup', r.warmup ?? raw.warmup),
        smtpAlert: r.smtpAlert ?? this.global.smtpAlertChecker ?? this.global.smtpAlert ?? true,
        checkers: [],
      };
      realServers.push(real);
      rawOf.set(real, r);
    }

    let sorry: SorryServer | undefined;
    if (raw.sorry) {
      const s = raw.sorry;
      const method = s.forward?.method ?? raw.forward?.method;
      if (method !== 'TUN' && s.address.af !== af) {
        d.warn(s.at, `Address family of virtual server and sorry server ${s.address.addr} don't match - skipping sorry server.`);
      } else {
        sorry = { at: s.at, id: formatHostPort(s.address.addr, s.port), af: s.address.af, addr: s.address.addr, port: s.port, forward: s.forward ?? defaultForward(), inhibit: s.inhibit };
        const dup = realServers.find((r) => r.id === sorry!.id);
        if (dup && dup.inhibitOnFailure !== sorry.inhibit) {
          d.warn(s.at, `Virtual server ${label}: real server ${dup.id} matches sorry server, but inhibit setting differs, ${dup.inhibitOnFailure ? 'setting' : 'clearing'} on sorry server`);
          sorry.inhibit = dup.inhibitOnFailure;
        }
      }
    }

    let quorum = raw.quorum;
    if (quorum > weightSum) {
      d.warn(raw.at, `Warning - quorum ${quorum} for ${label} exceeds total weight of real servers ${weightSum}, reducing quorum to ${weightSum}`);
      quorum = weightSum;
    }
    let hysteresis = raw.hysteresis;
    if (hysteresis >= quorum && hysteresis > 0) {
      const h = Math.max(0, quorum - 1);
      d.warn(raw.at, `Virtual server ${label}: hysteresis ${hysteresis} >= quorum ${quorum}; setting hysteresis to ${h}`);
      hysteresis = h;
    }

    // Ports: NAT real servers without a port take the service's; DR/TUN use the service's port.
    if (target.kind !== 'group') {
      const vport = target.kind === 'address' ? target.port : 0;
      for (const r of realServers) {
        if (r.forward.method === 'NAT' || r.forward.method === 'FULLNAT') {
          if (target.kind === 'address' && r.port === 0) r.port = vport;
        } else if (target.kind === 'fwmark') {
          if (r.port !== 0) {
            d.warn(r.at, `WARNING - fwmark virtual server ${label}, real server ${r.id} has port specified - clearing`);
            r.port = 0;
          }
        } else if (r.port === 0) r.port = vport;
        else if (r.port !== vport) {
          d.warn(r.at, `WARNING - virtual server ${label} and real server ${r.id} ports don't match - resetting`);
          r.port = vport;
        }
        r.id = formatHostPort(r.addr, r.port);
      }
      if (sorry && sorry.forward.method !== 'NAT' && sorry.forward.method !== 'FULLNAT') {
        if (target.kind === 'fwmark') {
          if (sorry.port !== 0) d.warn(sorry.at, `WARNING - virtual server ${label}, sorry server has port specified - clearing`);
          sorry.port = 0;
        } else if (sorry.port === 0) sorry.port = vport;
        else if (sorry.port !== vport) {
          d.warn(sorry.at, `WARNING - virtual server ${label} and sorry server ports don't match - resetting`);
          sorry.port = vport;
        }
        sorry.id = formatHostPort(sorry.addr, sorry.port);
      } else if (sorry && target.kind === 'address' && sorry.port === 0) {
        sorry.port = vport;
        sorry.id = formatHostPort(sorry.addr, sorry.port);
      }
    } else {
      for (const r of realServers) {
        if (r.forward.method === 'NAT' || r.forward.method === 'FULLNAT') continue;
        for (const e of target.group.entries) {
          if (e.kind === 'fwmark' && r.port !== 0) d.warn(r.at, `WARNING - fwmark virtual server ${label}, real server ${r.id} has port specified - port will be ignored`);
          if (e.kind === 'range' && r.port !== 0 && r.port !== e.port)
            d.warn(r.at, `virtual server ${label}:[${e.first}${e.first !== e.last ? '-' + e.last : ''},${e.port}] and real server ${r.id} ports don't match`);
        }
      }
    }

    // FULLNAT (DPVS): the local addresses and how real servers learn the client's address.
    const fullnat = realServers.some((r) => r.forward.method === 'FULLNAT') || sorry?.forward.method === 'FULLNAT';
    let localAddressGroup: LocalAddressGroup | undefined;
    if (raw.laddrGroup) {
      const g = this.localAddressGroups.get(raw.laddrGroup.name);
      if (!g) d.error(raw.laddrGroup.at, `Virtual server ${label}: laddr_group_name ${raw.laddrGroup.name}: no local_address_group ${raw.laddrGroup.name} is configured`);
      else if (!fullnat) d.warn(raw.laddrGroup.at, `Virtual server ${label}: laddr_group_name only applies to FULLNAT (lb_kind FNAT) real servers - ignoring`);
      else localAddressGroup = g;
    } else if (fullnat) {
      d.error(raw.at, `Virtual server ${label}: lb_kind FNAT needs local addresses: add laddr_group_name NAME and a local_address_group NAME { ... }`);
    }
    let clientAddress: ClientAddressMode = 'none';
    const ca = raw.clientAddress;
    if (ca && ca.mode !== 'none') {
      if (!fullnat) d.warn(ca.at, `Virtual server ${label}: ${ca.keyword} only applies to FULLNAT (lb_kind FNAT) - ignoring`);
      else if (raw.protocol !== 0 && raw.protocol !== IPPROTO_TCP) d.error(ca.at, `Virtual server ${label}: ${ca.keyword} (${ca.mode}) needs protocol TCP`);
      else clientAddress = ca.mode;
    }

    // Checkers: defaults from the real server (validate_check_config, checkers_queue loop).
    for (const rs of realServers) for (const rc of rawOf.get(rs)!.checkers) rs.checkers.push(this.finishChecker(rc, rs, raw));

    const id = virtualServerId(target, raw.protocol, af);
    return {
      at: raw.at,
      id,
      target,
      af,
      protocol: raw.protocol,
      scheduler: raw.scheduler,
      flags: raw.flags,
      persistenceTimeout: raw.persistenceTimeout,
      ...defined('persistenceGranularity', raw.persistenceGranularity),
      ...defined('persistenceEngine', raw.persistenceEngine),
      forward: vsForward ?? emptyForward(),
      delayLoop: raw.delayLoop,
      connectTimeout: raw.connectTimeout,
      ...defined('retry', raw.retry),
      ...defined('delayBeforeRetry', raw.delayBeforeRetry),
      ...defined('warmup', raw.warmup),
      inhibitOnFailure: raw.inhibit,
      alpha: raw.alpha,
      omega: raw.omega,
      quorum,
      hysteresis,
      ...defined('quorumUp', raw.quorumUp),
      ...defined('quorumDown', raw.quorumDown),
      haSuspend: raw.haSuspend,
      ...defined('virtualhost', raw.virtualhost),
      weight: raw.weight,
      smtpAlert,
      ...defined('sorryServer', sorry),
      realServers,
      ...defined('localAddressGroup', localAddressGroup),
      clientAddress,
    };
  }

  private finishChecker(c: RawChecker, rs: RealServer, vs: RawVirtualServer): Checker {
    const defaults = CHECKER_DEFAULTS[c.type];
    const delayLoop = c.delayLoop ?? rs.delayLoop;
    const timing = {
      type: c.type,
      at: c.at,
      alpha: c.alpha ?? rs.alpha,
      delayLoop,
      warmup: c.warmup ?? rs.warmup ?? delayLoop,
      retry: c.retry ?? rs.retry ?? defaults.retry,
      delayBeforeRetry: c.delayBeforeRetry ?? rs.delayBeforeRetry ?? (defaults.delayBeforeRetry === 'delay_loop' ? delayLoop : defaults.delayBeforeRetry),
      logAllFailures: c.logAllFailures ?? this.global.checkerLogAllFailures,
    };
    const connection = (): ConnectionOptions => {
      const k = c.conn ?? {};
      const ip = k.ip ?? { af: rs.af, addr: rs.addr, v4: 0 };
      return {
        af: ip.af,
        connectIp: ip.addr,
        connectPort: k.port ?? rs.port,
        ...(k.bindTo ? { bindTo: k.bindTo.addr } : {}),
        ...defined('bindPort', k.bindPort),
        ...defined('bindIf', k.bindIf),
        connectTimeout: k.timeout ?? rs.connectTimeout,
        fwmark: k.fwmark ?? 0,
      };
    };
    switch (c.type) {
      case 'TCP_CHECK':
        return { ...timing, type: c.type, connection: connection() };
      case 'PING_CHECK':
        return { ...timing, type: c.type, connection: connection() };
      case 'HTTP_GET':
      case 'SSL_GET': {
        const virtualhost = c.virtualhost ?? rs.virtualhost ?? vs.virtualhost;
        return {
          ...timing,
          type: c.type,
          connection: connection(),
          urls: c.urls,
          ...defined('virtualhost', virtualhost),
          httpProtocol: c.httpProtocol,
          fastRecovery: c.fastRecovery,
          enableSni: c.enableSni,
          ...defined('sniName', c.sniName),
          tlsCompliant: c.tlsCompliant,
        };
      }
      case 'MISC_CHECK':
        return { ...timing, type: c.type, script: c.script!, timeout: c.miscTimeout ?? vs.delayLoop, dynamic: c.dynamic };
      case 'UDP_CHECK':
        return {
          ...timing,
          type: c.type,
          connection: connection(),
          ...defined('payload', c.payload),
          requireReply: c.requireReply,
          ...defined('replyData', c.replyData),
          ...defined('replyMask', c.replyMask),
          minReplyLength: c.minReplyLength,
          maxReplyLength: c.maxReplyLength,
        };
      case 'DNS_CHECK':
        return { ...timing, type: c.type, connection: connection(), queryType: c.queryType, name: c.name };
    }
  }
}

function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function lastLine(node: ConfigNode): number {
  let n = node;
  while (n.block && n.block.length > 0) n = n.block[n.block.length - 1];
  return n.at.line + (node.block && node.block.length > 0 ? 1 : 0);
}

/** Every address of a local_address_group entry (at most MAX_GROUP_RANGE). */
function addressesOfRange(e: { first: string; last: string }): string[] {
  const a = parseAddress(e.first)!;
  const b = parseAddress(e.last)!;
  const out: string[] = [];
  if (a.af === 4) {
    for (let v = a.v4; v <= b.v4; v++) out.push(formatIPv4(v >>> 0));
    return out;
  }
  const bytes = Uint8Array.from(a.v6!);
  for (;;) {
    const cur = parseAddress(formatIPv6(bytes))!;
    out.push(cur.addr);
    if (compareAddress(cur, b) >= 0) return out;
    for (let i = 15; i >= 0; i--) {
      bytes[i] = (bytes[i] + 1) & 0xff;
      if (bytes[i] !== 0) break; // no carry
    }
  }
}

function compareAddress(a: Address, b: Address): number {
  if (a.af === 4) return a.v4 - b.v4;
  for (let i = 0; i < 16; i++) if (a.v6![i] !== b.v6![i]) return a.v6![i] - b.v6![i];
  return 0;
}

function rangeSize(a: Address, b: Address): number {
  if (a.af === 4) return b.v4 - a.v4 + 1;
  // Only the last 16 bits may differ in a dash range; a CIDR range can be huge.
  let size = 0;
  for (let i = 0; i < 16; i++) {
    size = size * 256 + (b.v6![i] - a.v6![i]);
    if (size > MAX_GROUP_RANGE * 256) return Infinity;
  }
  return size + 1;
}

/** read_hex_str(): hex digits with optional blanks between octets; X nibbles are wildcards if allowed. */
export function readHex(text: string, allowWildcard: boolean): { data: Uint8Array; mask?: Uint8Array } | undefined {
  const data: number[] = [];
  const mask: number[] = [];
  let usingMask = false;
  let i = 0;
  const nib = (ch: string): number => {
    if (/[0-9a-fA-F]/.test(ch)) return parseInt(ch, 16);
    if (allowWildcard && (ch === 'x' || ch === 'X')) return -2;
    return -1;
  };
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= text.length) break;
    let v = nib(text[i++]);
    if (v === -1) return undefined;
    let m = 0;
    if (v === -2) {
      m = 0x0f;
      v = 0;
      usingMask = true;
    }
    if (i < text.length && text[i] !== ' ' && text[i] !== '\t') {
      let v2 = nib(text[i++]);
      if (v2 === -1) return undefined;
      let m2 = 0;
      if (v2 === -2) {
        m2 = 0x0f;
        v2 = 0;
        usingMask = true;
      }
      v = (v << 4) | v2;
      m = (m << 4) | m2;
    }
    data.push(v);
    mask.push(m);
  }
  if (data.length === 0) return undefined;
  return usingMask ? { data: Uint8Array.from(data), mask: Uint8Array.from(mask) } : { data: Uint8Array.from(data) };
}

function describeTarget(raw: RawVirtualServer, target: VirtualServerTarget): string {
  if (target.kind === 'group') return `[${target.name}]`;
  if (target.kind === 'fwmark') return `FWM ${target.mark}`;
  const proto = raw.protocol ? protocolName(raw.protocol) : '';
  return `${formatHostPort(target.addr, target.port)}${proto ? '/' + proto : ''}`;
}

/** keepalived vs_iseq(): protocol + address + port, fwmark (+ family), or group name (+ protocol). */
export function virtualServerId(target: VirtualServerTarget, protocol: number, af: 4 | 6): string {
  if (target.kind === 'group') return `group ${target.name}${protocol ? ' ' + protocolName(protocol) : ''}`;
  if (target.kind === 'fwmark') return `FWM ${target.mark}${af === 6 ? ' inet6' : ''}`;
  return `${protocolName(protocol)} ${formatHostPort(target.addr, target.port)}`;
}

/** AST -> model. Diagnostics go to `diags`. */
export function buildConfig(nodes: ConfigNode[], files: string[], diags: Diagnostics): KeepalivedConfig {
  const loader = new Loader(diags);
  loader.root(nodes);
  const virtualServers = loader.finish();
  return {
    files,
    global: loader.global,
    ...(loader.ssl ? { ssl: loader.ssl } : {}),
    groups: loader.groups,
    localAddressGroups: loader.localAddressGroups,
    virtualServers,
    inactive: loader.inactive,
  };
}
