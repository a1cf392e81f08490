/**
 * The typed keepalived.conf model (LVS part), with every value resolved the way keepalived resolves it:
 * virtual_server -> real_server -> checker inheritance (check_data.c validate_check_config), and the
 * defaults of keepalived 2.2/2.4's source (check_data.c alloc_vs/alloc_rs, check_api.c queue_checker,
 * the per-checker handlers). Nothing here runs: the health-check engine reads this model.
 *
 * Units: all durations are in SECONDS (fractional; keepalived's resolution is 1 µs). Addresses are
 * canonical text as in control/model.ts (IPv4 dotted quad, IPv6 RFC 5952 lower case, no brackets).
 */
import type { ClientAddressMode } from '../control/model.js';
import type { SourceRef } from './diagnostics.js';

/** keepalived's defaults, with where they come from. */
export const KEEPALIVED_DEFAULTS = {
  /** KEEPALIVED_DEFAULT_DELAY (check_data.h): 60 s. */
  delayLoop: 60,
  /** alloc_vs: connection_to = 5 * TIMER_HZ. */
  connectTimeout: 5,
  /** IPVS_DEF_SCHED (libipvs.h). */
  scheduler: 'wlc',
  /** validate_check_config: "no protocol set - defaulting to UDP" (the kernel's own default). */
  protocol: 'UDP' as const,
  /** validate_check_config: "no forwarding method set, setting default NAT". */
  forward: 'NAT' as const,
  /** IPVS_SVC_PERSISTENT_TIMEOUT: persistence_timeout without a value, or implied. */
  persistenceTimeout: 360,
  /** alloc_vs: quorum 1, hysteresis 0, weight 1 (default real server weight). */
  quorum: 1,
  hysteresis: 0,
  weight: 1,
  /** alloc_ssvr: the sorry server's weight. */
  sorryServerWeight: 1,
  /** check_api.c BOOTSTRAP_DELAY: first check after 1 s + random(0..warmup). */
  bootstrapDelay: 1,
} as const;

/** Per-checker retry / delay_before_retry defaults (queue_checker and the checker handlers). */
export const CHECKER_DEFAULTS: Record<CheckerType, { retry: number; delayBeforeRetry: number | 'delay_loop' }> = {
  TCP_CHECK: { retry: 1, delayBeforeRetry: 1 },
  UDP_CHECK: { retry: 1, delayBeforeRetry: 1 },
  PING_CHECK: { retry: 1, delayBeforeRetry: 1 },
  HTTP_GET: { retry: 1, delayBeforeRetry: 3 },
  SSL_GET: { retry: 1, delayBeforeRetry: 3 },
  DNS_CHECK: { retry: 3, delayBeforeRetry: 'delay_loop' },
  MISC_CHECK: { retry: 0, delayBeforeRetry: 1 },
};

/** lvs_sched names keepalived accepts (check_parser.c lvs_schedulers, plus twos from 2.3). */
export const LVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'sh', 'mh', 'dh', 'fo', 'ovf', 'lblcr', 'sed', 'nq', 'twos'] as const;

export type CheckerType = 'TCP_CHECK' | 'HTTP_GET' | 'SSL_GET' | 'MISC_CHECK' | 'UDP_CHECK' | 'PING_CHECK' | 'DNS_CHECK';

export type ForwardKind = 'NAT' | 'DR' | 'TUN' | 'FULLNAT';

/**
 * lvs_method / lb_kind. FULLNAT is not in keepalived: DPVS's and Alibaba LVS's keepalived spell it `FNAT`
 * (tapvs also accepts `FULLNAT`); its services need a local_address_group (laddr_group_name).
 */
export interface ForwardSpec {
  method: ForwardKind;
  /** TUN only: `type ipip|gue|gre` (default ipip), `port N` (gue), `nocsum|csum|remcsum` (default nocsum). */
  tunType: 'ipip' | 'gue' | 'gre';
  tunPort: number;
  tunCsum: 'nocsum' | 'csum' | 'remcsum';
}

/** A script keyword (notify_up, notify_down, quorum_up, quorum_down, misc_path). */
export interface ScriptSpec {
  /** The command as configured (the first parameter, quotes removed). */
  command: string;
  /** The command split into arguments with keepalived's quoting rules; argv[0] is the program. */
  argv: string[];
  /** `keyword "command" [user [group]]`. */
  user?: string;
  group?: string;
  at: SourceRef;
}

/** Timing shared by all checkers, fully resolved (checker -> real_server -> virtual_server -> default). */
export interface CheckerTiming {
  /** Interval between checks while the result does not change. */
  delayLoop: number;
  /** First check at BOOTSTRAP_DELAY (1 s) + random(0..warmup); warmup defaults to delay_loop. */
  warmup: number;
  /** Retries after a failure before the checker goes down: down after retry + 1 consecutive failures. */
  retry: number;
  /** Interval between the retries. */
  delayBeforeRetry: number;
  /** Start in the failed state: the real server is not added until the checker succeeds once. */
  alpha: boolean;
  /** Log every failed check, not only state changes (checker log_all_failures or global checker_log_all_failures). */
  logAllFailures: boolean;
}

/** Where a network checker connects (connect_ip/connect_port default to the real server). */
export interface ConnectionOptions {
  af: 4 | 6;
  connectIp: string;
  /** 0 if the real server has no port (a fwmark service with DR/TUN): keepalived would fail such checks. */
  connectPort: number;
  bindTo?: string;
  bindPort?: number;
  bindIf?: string;
  connectTimeout: number;
  /** SO_MARK on the checker's packets (0 = none). */
  fwmark: number;
}

interface CheckerBase extends CheckerTiming {
  type: CheckerType;
  at: SourceRef;
}

export interface TcpChecker extends CheckerBase {
  type: 'TCP_CHECK';
  connection: ConnectionOptions;
}

export interface HttpUrl {
  path: string;
  /** MD5 of the body, 32 lower-case hex digits. When both are set, digest and status must match. */
  digest?: string;
  /** Accepted status codes as inclusive ranges (default [[200, 299]]). */
  statusCodes: [number, number][];
  /** url-level virtualhost; the Host header is url.virtualhost ?? checker.virtualhost ?? `ip:port`. */
  virtualhost?: string;
  regex?: string;
  regexNoMatch: boolean;
  regexOptions: string[];
  regexMinOffset?: number;
  regexMaxOffset?: number;
  at: SourceRef;
}

export interface HttpChecker extends CheckerBase {
  type: 'HTTP_GET' | 'SSL_GET';
  connection: ConnectionOptions;
  urls: HttpUrl[];
  /** Resolved: checker virtualhost ?? real_server virtualhost ?? virtual_server virtualhost. */
  virtualhost?: string;
  /** '1.0' (default), '1.0C' and '1.1' add `Connection: close`. */
  httpProtocol: '1.0' | '1.0C' | '1.1';
  fastRecovery: boolean;
  /** SSL_GET only. */
  enableSni: boolean;
  sniName?: string;
  tlsCompliant: boolean;
}

export interface MiscChecker extends CheckerBase {
  type: 'MISC_CHECK';
  script: ScriptSpec;
  /** misc_timeout; default the virtual server's delay_loop. */
  timeout: number;
  /** misc_dynamic: exit 0 up, 1 down, 2..255 up with weight = exit - 2. */
  dynamic: boolean;
}

export interface UdpChecker extends CheckerBase {
  type: 'UDP_CHECK';
  connection: ConnectionOptions;
  payload?: Uint8Array;
  requireReply: boolean;
  /** require_reply HEX: expected leading bytes; replyMask bits set = wildcard (X nibbles). */
  replyData?: Uint8Array;
  replyMask?: Uint8Array;
  minReplyLength: number;
  maxReplyLength: number;
}

export interface PingChecker extends CheckerBase {
  type: 'PING_CHECK';
  connection: ConnectionOptions;
}

export const DNS_TYPES = ['A', 'NS', 'CNAME', 'SOA', 'MX', 'TXT', 'AAAA'] as const;

export interface DnsChecker extends CheckerBase {
  type: 'DNS_CHECK';
  connection: ConnectionOptions;
  /** Query type, default SOA. */
  queryType: (typeof DNS_TYPES)[number];
  /** Query name, default ".". */
  name: string;
}

export type Checker = TcpChecker | HttpChecker | MiscChecker | UdpChecker | PingChecker | DnsChecker;

export interface RealServer {
  at: SourceRef;
  /** Identity within its virtual server: `addr:port` (`[v6]:port`). */
  id: string;
  af: 4 | 6;
  addr: string;
  /** Resolved as keepalived does: NAT without a port takes the virtual server's; DR/TUN are reset to it. */
  port: number;
  /** Configured weight (0..2^31-1), default the virtual server's `weight` (1). */
  weight: number;
  forward: ForwardSpec;
  uThreshold: number;
  lThreshold: number;
  inhibitOnFailure: boolean;
  alpha: boolean;
  notifyUp?: ScriptSpec;
  notifyDown?: ScriptSpec;
  virtualhost?: string;
  /** real_server-level timing, resolved against the virtual server (undefined = not set at either level). */
  delayLoop: number;
  connectTimeout: number;
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  smtpAlert: boolean;
  /** Supported checkers, in configuration order. A real server is alive only if all are up. */
  checkers: Checker[];
}

export interface SorryServer {
  at: SourceRef;
  id: string;
  af: 4 | 6;
  addr: string;
  port: number;
  forward: ForwardSpec;
  /** sorry_server_inhibit: kept in the table with weight 0 while not needed. */
  inhibit: boolean;
}

export interface VirtualServerGroupEntry {
  at: SourceRef;
  kind: 'range' | 'fwmark';
  af: 4 | 6;
  /** range: first and last address (equal for a single address). */
  first: string;
  last: string;
  /** range: port (0 = none). */
  port: number;
  /** fwmark entries. */
  mark: number;
}

export interface VirtualServerGroup {
  at: SourceRef;
  name: string;
  entries: VirtualServerGroupEntry[];
}

/** One entry of a `local_address_group` (DPVS): `ADDR [IFNAME]` or `A.B.C.D-E` (a range in the last octet). */
export interface LocalAddressEntry {
  at: SourceRef;
  af: 4 | 6;
  first: string;
  last: string;
  /** DPVS's interface name after the address (tapvs has one interface: ignored). */
  ifname?: string;
}

/** `local_address_group NAME { ... }`: the FULLNAT local addresses (LIPs) of the services that name it. */
export interface LocalAddressGroup {
  at: SourceRef;
  name: string;
  entries: LocalAddressEntry[];
  /** Every address of the entries, expanded, in configuration order, without duplicates. */
  addresses: string[];
}

export type VirtualServerTarget =
  | { kind: 'address'; addr: string; port: number }
  | { kind: 'fwmark'; mark: number }
  | { kind: 'group'; name: string; group: VirtualServerGroup };

export interface VirtualServer {
  at: SourceRef;
  /** Identity across reloads (keepalived vs_iseq): `TCP 10.0.0.1:80`, `FWM 5`, `group NAME TCP`. */
  id: string;
  target: VirtualServerTarget;
  af: 4 | 6;
  /** IPPROTO_TCP/UDP/SCTP; 0 for a pure fwmark service (keepalived ignores protocol there). */
  protocol: number;
  scheduler: string;
  /** SVC_F_SCHED1..3 (flag-1..3, sh-/mh-fallback, sh-/mh-port) and SVC_F_ONEPACKET (ops). */
  flags: number;
  /** 0 = not persistent. */
  persistenceTimeout: number;
  /** IPv4 netmask text or IPv6 prefix length text; undefined = /32 (/128). */
  persistenceGranularity?: string;
  persistenceEngine?: string;
  /** Default forwarding method of the real servers. */
  forward: ForwardSpec;
  delayLoop: number;
  connectTimeout: number;
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  inhibitOnFailure: boolean;
  alpha: boolean;
  omega: boolean;
  quorum: number;
  hysteresis: number;
  quorumUp?: ScriptSpec;
  quorumDown?: ScriptSpec;
  haSuspend: boolean;
  virtualhost?: string;
  /** Default real server weight. */
  weight: number;
  smtpAlert: boolean;
  sorryServer?: SorryServer;
  realServers: RealServer[];
  /** laddr_group_name (DPVS): the FULLNAT local addresses of every service of this virtual server. */
  localAddressGroup?: LocalAddressGroup;
  /**
   * How FULLNAT real servers learn the client's address: DPVS's `proxy_protocol v2` or tapvs's
   * `client_address proxy-protocol|toa|none`. 'none' unless set (and always 'none' without FULLNAT).
   */
  clientAddress: ClientAddressMode;
}

export interface GlobalDefs {
  routerId?: string;
  /** lvs_timeouts: 0/undefined = leave unchanged. */
  lvsTimeouts?: { tcp?: number; tcpfin?: number; udp?: number; at: SourceRef };
  /** lvs_flush: flush the whole table at start (not on reload). */
  lvsFlush: boolean;
  lvsFlushOnStop?: string;
  enableScriptSecurity: boolean;
  scriptUser?: { user: string; group?: string };
  checkerLogAllFailures: boolean;
  /** rs_init_notifies: run notify_up for real servers that are up at start. */
  rsInitNotifies: boolean;
  noCheckerEmails: boolean;
  notifyFifo?: { path: string; user?: string; group?: string; script?: ScriptSpec };
  lvsNotifyFifo?: { path: string; user?: string; group?: string; script?: ScriptSpec };
  smtpAlert?: boolean;
  smtpAlertChecker?: boolean;
  notificationEmail: string[];
  notificationEmailFrom?: string;
  smtpServer?: string;
  smtpConnectTimeout?: number;
}

/** The SSL block (client context for SSL_GET). */
export interface SslContext {
  at: SourceRef;
  password?: string;
  ca?: string;
  certificate?: string;
  key?: string;
}

/** A block tapvs parses but does not act on yet (VRRP and friends). */
export interface InactiveBlock {
  keyword: string;
  name?: string;
  at: SourceRef;
}

export interface KeepalivedConfig {
  /** The top-level file and every file included, in reading order. */
  files: string[];
  global: GlobalDefs;
  ssl?: SslContext;
  groups: Map<string, VirtualServerGroup>;
  /** local_address_group blocks (DPVS), by name. */
  localAddressGroups: Map<string, LocalAddressGroup>;
  /** Valid virtual servers in configuration order (ones keepalived would drop are dropped, with a warning). */
  virtualServers: VirtualServer[];
  inactive: InactiveBlock[];
}

export function formatHostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export function protocolName(p: number): string {
  return p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 132 ? 'SCTP' : String(p);
}

/** A stable fingerprint of a checker's parameters (without source location): equal fingerprints mean
 * keepalived would migrate the checker's state on reload (checker_funcs->compare). */
export function checkerFingerprint(c: Checker): string {
  return JSON.stringify(c, (key, value: unknown) => {
    if (key === 'at') return undefined;
    if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
    return value;
  });
}
