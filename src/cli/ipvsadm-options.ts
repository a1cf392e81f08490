/**
 * ipvsadm 1.31's command line, reproduced: its popt option table and popt's scanning rules, its
 * `parse_options` / `process_options` validation order, its `commands_v_options` matrix and its
 * messages and exit statuses. The outcome is an Invocation (a control-protocol Command, a listing
 * request, …) or a UsageFailure carrying exactly what to print on stderr and the exit status.
 *
 * Where ipvsadm prints its own name (the `Try …` hint, usage, version) tapvs prints "tapvs".
 * Features that tapvs does not implement yet are accepted by the parser, validated as ipvsadm
 * validates them, and only then refused (NOT_SUPPORTED_YET).
 *
 * tapvs's own additions: the mark-rule commands `--add-mark` / `--del-mark` (iptables MARK rules
 * for fwmark services, with their own small grammar, see parseMarkRule) and `-L --marks`; FULLNAT as
 * Alibaba LVS and DPVS spell it where that does not clash with ipvsadm 1.31 (which has no -P, -Q, -G
 * or -z, but uses -b for --sched-flags): the commands `-P|--add-laddr`, `-Q|--del-laddr` and
 * `-G|--get-laddr` with `-z|--laddr`, the forwarding method `--fullnat` (long only, where DPVS has
 * `-b|--fullnat`), and the service options `--proxy-protocol` / `--toa` (client address passing).
 */
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
  type ClientAddressMode,
  type DestinationConfig,
  type MarkRule,
  type ServiceConfig,
  type ServiceKey,
} from '../control/model.js';
import type { Command } from '../control/protocol.js';
import type { ListingFormat } from '../control/listing.js';
import {
  canonicalAddress,
  formatIPv4,
  formatIPv6,
  inetAton,
  inetPton4,
  inetPton6,
  parseHostPort,
  parseNetmask,
  stringToNumber,
  systemNames,
  type NameDatabase,
} from './address-port.js';

export const PROGRAM_NAME = 'tapvs';

/** ipvsadm's version line with the program name replaced. */
export const VERSION_LINE = `${PROGRAM_NAME} v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)`;

const TRY_HELP = `Try \`${PROGRAM_NAME} -h' or '${PROGRAM_NAME} --help' for more information.`;

const MAX_TIMEOUT = 86400 * 31;
const IPVS_SVC_PERSISTENT_TIMEOUT = 6 * 60;
const INT_MAX = 2147483647;
const UINT_MAX = 4294967295;
const DEF_SCHED = 'wlc';
const IP_VS_SCHEDNAME_MAXLEN = 16;
const IP_VS_PENAME_MAXLEN = 16;

// ------------------------------------------------------------------------------------------------
// Results

export interface UsageFailure {
  /** The text for stderr, without the final newline. */
  message: string;
  exitCode: number;
  /** True for tapvs's own messages, which are printed after `tapvs: `; ipvsadm's are not prefixed. */
  prefixed: boolean;
}

export type Invocation =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'command'; command: Command }
  | { kind: 'list-all'; format: ListingFormat }
  | { kind: 'list-service'; service: ServiceKey; format: ListingFormat }
  | { kind: 'list-connections'; format: ListingFormat }
  | { kind: 'list-timeouts' }
  /** tapvs's own `-L --marks`: the mark rules in match order. */
  | { kind: 'list-marks' }
  /** tapvs's own `-G|--get-laddr [service]` (DPVS): FULLNAT local addresses of one service or of all. */
  | { kind: 'list-laddrs'; service?: ServiceKey }
  | { kind: 'save'; numeric: boolean }
  | { kind: 'restore' };

export type ParseResult = { ok: true; invocation: Invocation } | { ok: false; failure: UsageFailure };

// ------------------------------------------------------------------------------------------------
// Not supported yet

/** ipvsadm features tapvs parses and validates but does not implement yet. */
export type PendingFeature =
  | 'start-daemon'
  | 'stop-daemon'
  | 'daemon-listing'
  | 'tun-info'
  | 'ipv6'
  | 'pe'
  | 'ops'
  | 'gatewaying'
  | 'ipip'
  | 'tunnel-options';

/**
 * What a command may not use yet; checked after ipvsadm's own validation, in this order. Later
 * work shrinks this list as the data plane learns the features.
 */
export const NOT_SUPPORTED_YET: readonly PendingFeature[] = [
  'start-daemon',
  'stop-daemon',
  'daemon-listing',
  'pe',
];

const PENDING_FEATURE_NAMES: Readonly<Record<PendingFeature, string>> = {
  'start-daemon': '--start-daemon (connection synchronisation)',
  'stop-daemon': '--stop-daemon (connection synchronisation)',
  'daemon-listing': '--daemon (sync daemon listing)',
  'tun-info': '--tun-info (tunnel listing)',
  ipv6: '-6 (IPv6 fwmark service)',
  pe: '--pe (persistence engine)',
  ops: '-o (one-packet scheduling)',
  gatewaying: '-g (gatewaying, direct routing)',
  ipip: '-i (ipip, tunneling)',
  'tunnel-options': '--tun-type/--tun-port/--tun-nocsum/--tun-csum/--tun-remcsum (GUE and GRE tunnels)',
};

/** Direct routing chosen by default, not by -g: say why the user meets it. */
const DEFAULT_GATEWAYING_NAME =
  "-g (gatewaying, direct routing: ipvsadm's default forwarding method, used when -m is not given)";

// ------------------------------------------------------------------------------------------------
// The option table (ipvsadm.c options_table) and popt's scanning rules

type Tag =
  | 'A' | 'E' | 'D' | 'C' | 'L' | 'Z' | 'a' | 'e' | 'd' | 'set' | 'h' | 'v' | 'R' | 'S'
  | 'start-daemon' | 'stop-daemon'
  | 't' | 'u' | 'sctp-service' | 'f' | 's' | 'p' | 'M' | 'r' | 'm' | 'i' | 'g' | 'w' | 'x' | 'y'
  | 'n' | 'c' | 'mcast-interface' | 'syncid' | 'timeout' | 'daemon' | 'stats' | 'rate' | 'thresholds'
  | 'persistent-conn' | 'nosort' | 'sort' | 'X' | '6' | 'o' | 'pe' | 'b' | 'mcast-group'
  | 'mcast-port' | 'mcast-ttl' | 'sync-maxlen' | 'tun-info' | 'tun-type' | 'tun-port'
  | 'tun-nocsum' | 'tun-csum' | 'tun-remcsum'
  // tapvs's own
  | 'add-mark' | 'del-mark' | 'marks'
  | 'P' | 'Q' | 'G' | 'z' | 'fullnat' | 'proxy-protocol' | 'toa';

type ArgKind = 'none' | 'required' | 'optional';

interface OptionSpec {
  long: string;
  short: string | undefined;
  arg: ArgKind;
  tag: Tag;
}

function opt(long: string, short: string | undefined, arg: ArgKind, tag: Tag): OptionSpec {
  return { long, short, arg, tag };
}

const OPTION_TABLE: readonly OptionSpec[] = [
  opt('add-service', 'A', 'none', 'A'),
  opt('edit-service', 'E', 'none', 'E'),
  opt('delete-service', 'D', 'none', 'D'),
  opt('clear', 'C', 'none', 'C'),
  opt('list', 'L', 'none', 'L'),
  opt('list', 'l', 'none', 'L'),
  opt('zero', 'Z', 'none', 'Z'),
  opt('add-server', 'a', 'none', 'a'),
  opt('edit-server', 'e', 'none', 'e'),
  opt('delete-server', 'd', 'none', 'd'),
  opt('set', undefined, 'none', 'set'),
  opt('help', 'h', 'none', 'h'),
  opt('version', 'v', 'none', 'v'),
  opt('restore', 'R', 'none', 'R'),
  opt('save', 'S', 'none', 'S'),
  opt('start-daemon', undefined, 'required', 'start-daemon'),
  opt('stop-daemon', undefined, 'required', 'stop-daemon'),
  opt('tcp-service', 't', 'required', 't'),
  opt('udp-service', 'u', 'required', 'u'),
  opt('sctp-service', undefined, 'required', 'sctp-service'),
  opt('fwmark-service', 'f', 'required', 'f'),
  opt('scheduler', 's', 'required', 's'),
  opt('persistent', 'p', 'optional', 'p'),
  opt('netmask', 'M', 'required', 'M'),
  opt('real-server', 'r', 'required', 'r'),
  opt('masquerading', 'm', 'none', 'm'),
  opt('ipip', 'i', 'none', 'i'),
  opt('gatewaying', 'g', 'none', 'g'),
  opt('weight', 'w', 'required', 'w'),
  opt('u-threshold', 'x', 'required', 'x'),
  opt('l-threshold', 'y', 'required', 'y'),
  opt('numeric', 'n', 'none', 'n'),
  opt('connection', 'c', 'none', 'c'),
  opt('mcast-interface', undefined, 'required', 'mcast-interface'),
  opt('syncid', undefined, 'required', 'syncid'),
  opt('timeout', undefined, 'none', 'timeout'),
  opt('daemon', undefined, 'none', 'daemon'),
  opt('stats', undefined, 'none', 'stats'),
  opt('rate', undefined, 'none', 'rate'),
  opt('thresholds', undefined, 'none', 'thresholds'),
  opt('persistent-conn', undefined, 'none', 'persistent-conn'),
  opt('nosort', undefined, 'none', 'nosort'),
  opt('sort', undefined, 'none', 'sort'),
  opt('exact', 'X', 'none', 'X'),
  opt('ipv6', '6', 'none', '6'),
  opt('ops', 'o', 'none', 'o'),
  opt('pe', undefined, 'required', 'pe'),
  opt('sched-flags', 'b', 'required', 'b'),
  opt('mcast-group', undefined, 'required', 'mcast-group'),
  opt('mcast-port', undefined, 'required', 'mcast-port'),
  opt('mcast-ttl', undefined, 'required', 'mcast-ttl'),
  opt('sync-maxlen', undefined, 'required', 'sync-maxlen'),
  opt('tun-info', undefined, 'none', 'tun-info'),
  opt('tun-type', undefined, 'required', 'tun-type'),
  opt('tun-port', undefined, 'required', 'tun-port'),
  opt('tun-nocsum', undefined, 'none', 'tun-nocsum'),
  opt('tun-csum', undefined, 'none', 'tun-csum'),
  opt('tun-remcsum', undefined, 'none', 'tun-remcsum'),
  // tapvs's own: the mark-rule commands (first option only) and -L --marks
  opt('add-mark', undefined, 'none', 'add-mark'),
  opt('del-mark', undefined, 'none', 'del-mark'),
  opt('marks', undefined, 'none', 'marks'),
  // tapvs's own FULLNAT options: DPVS's local-address commands (first option only) and -z, the
  // forwarding method (DPVS's -b is ipvsadm's --sched-flags, so long only), client address passing
  opt('add-laddr', 'P', 'none', 'P'),
  opt('del-laddr', 'Q', 'none', 'Q'),
  opt('get-laddr', 'G', 'none', 'G'),
  opt('laddr', 'z', 'required', 'z'),
  opt('fullnat', undefined, 'none', 'fullnat'),
  opt('proxy-protocol', undefined, 'none', 'proxy-protocol'),
  opt('toa', undefined, 'none', 'toa'),
];

type PoptError = 'missing argument' | 'unknown option' | 'option does not take an argument';

type ScanResult =
  | { kind: 'option'; spec: OptionSpec; arg: string | undefined }
  | { kind: 'done' }
  | { kind: 'error'; error: PoptError };

/**
 * popt's `poptGetNextOpt` for ipvsadm's table (no aliases): short clusters (`-Ln`), attached
 * arguments (`-t1.2.3.4:80`, `-t=…`, `--tcp-service=…`), arguments from the next word even when
 * it starts with `-` (but not for the optional one of -p), `--` ends the options, and words that
 * are not options are collected as leftover arguments wherever they appear.
 */
class PoptScanner {
  private next = 0;
  private nextCharArg: string | undefined;
  private restLeftover = false;
  private readonly leftovers: string[] = [];

  constructor(private readonly argv: readonly string[]) {}

  /** `poptBadOption(…, POPT_BADOPTION_NOALIAS)`: the word consumed last. */
  badOption(): string {
    return this.argv[this.next - 1] ?? '';
  }

  /** `poptGetArg`: the next leftover argument. */
  getArg(): string | undefined {
    return this.leftovers.shift();
  }

  /** The words not scanned yet (for the mark-rule grammar, which takes over after its command). */
  unscanned(): string[] {
    return this.argv.slice(this.next);
  }

  getNextOpt(): ScanResult {
    for (;;) {
      let spec: OptionSpec | undefined;
      let longArg: string | undefined;
      if (this.nextCharArg === undefined) {
        if (this.next >= this.argv.length) return { kind: 'done' };
        const word = this.argv[this.next++]!;
        if (this.restLeftover || !word.startsWith('-') || word === '-') {
          this.leftovers.push(word);
          continue;
        }
        if (word === '--') {
          this.restLeftover = true;
          continue;
        }
        if (word[1] === '-') {
          const body = word.slice(2);
          const eq = body.indexOf('=');
          const name = eq >= 0 ? body.slice(0, eq) : body;
          if (eq >= 0) longArg = body.slice(eq + 1);
          spec = OPTION_TABLE.find((o) => o.long === name);
          if (spec === undefined) return { kind: 'error', error: 'unknown option' };
        } else {
          this.nextCharArg = word.slice(1);
        }
      }
      if (spec === undefined) {
        const cluster = this.nextCharArg!;
        this.nextCharArg = undefined;
        spec = cluster === '' ? undefined : OPTION_TABLE.find((o) => o.short === cluster[0]);
        if (spec === undefined) return { kind: 'error', error: 'unknown option' };
        if (cluster.length > 1) this.nextCharArg = cluster.slice(1);
      }
      if (spec.arg === 'none') {
        if (longArg !== undefined || (this.nextCharArg !== undefined && this.nextCharArg.startsWith('='))) {
          return { kind: 'error', error: 'option does not take an argument' };
        }
        return { kind: 'option', spec, arg: undefined };
      }
      let arg: string | undefined;
      if (longArg !== undefined) {
        arg = longArg;
      } else if (this.nextCharArg !== undefined) {
        arg = this.nextCharArg.startsWith('=') ? this.nextCharArg.slice(1) : this.nextCharArg;
        this.nextCharArg = undefined;
      } else if (this.next >= this.argv.length) {
        if (spec.arg === 'required') return { kind: 'error', error: 'missing argument' };
      } else if (spec.arg === 'optional' && this.argv[this.next]!.startsWith('-')) {
        arg = undefined;
      } else {
        arg = this.argv[this.next++];
      }
      return { kind: 'option', spec, arg };
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Commands, options and their matrix (ipvsadm.c cmdnames, optnames, commands_v_options)

const enum Cmd {
  Add,
  Edit,
  Del,
  Flush,
  List,
  AddDest,
  DelDest,
  EditDest,
  Timeout,
  StartDaemon,
  StopDaemon,
  Restore,
  Save,
  Zero,
  // tapvs's own (DPVS's commands and names)
  AddLaddr,
  DelLaddr,
  GetLaddr,
}

const COMMAND_NAMES = [
  'add-service',
  'edit-service',
  'delete-service',
  'flush',
  'list',
  'add-server',
  'delete-server',
  'edit-server',
  'set',
  'start-daemon',
  'stop-daemon',
  'restore',
  'save',
  'zero',
  'add-laddr',
  'del-laddr',
  'get-laddr',
];

const enum Opt {
  Numeric,
  Connection,
  Service,
  Scheduler,
  Persistent,
  Netmask,
  Server,
  Forward,
  Weight,
  UThreshold,
  LThreshold,
  Mcast,
  Timeout,
  Daemon,
  Stats,
  Rate,
  Thresholds,
  PersistentConn,
  NoSort,
  SyncId,
  Exact,
  OnePacket,
  PersistenceEngine,
  SchedFlags,
  McastGroup,
  McastPort,
  McastTtl,
  SyncMaxlen,
  TunInfo,
  TunType,
  TunPort,
  TunNocsum,
  TunCsum,
  TunRemcsum,
  // tapvs's own
  ClientAddress,
  LocalAddress,
}

const NUMBER_OF_OPT = 36;

const OPTION_NAMES = [
  'numeric',
  'connection',
  'service-address',
  'scheduler',
  'persistent',
  'netmask',
  'real-server',
  'forwarding-method',
  'weight',
  'u-threshold',
  'l-threshold',
  'mcast-interface',
  'timeout',
  'daemon',
  'stats',
  'rate',
  'thresholds',
  'persistent-conn',
  'nosort',
  'syncid',
  'exact',
  'ops',
  'pe',
  'sched-flags',
  'mcast-group',
  'mcast-port',
  'mcast-ttl',
  'sync-maxlen',
  'tun-info',
  'tun-type',
  'tun-port',
  'tun-nocsum',
  'tun-csum',
  'tun-remcsum',
  // tapvs's own: --proxy-protocol / --toa (one choice, as -g/-i/-m), and -z (DPVS's name)
  'client-address',
  'local-address',
];

/**
 * `commands_v_options`, one row per command in Cmd order, one column per option in Opt order:
 * '+' compulsory, 'x' illegal, '1' exclusive (at most one), '.' optional. The last two columns
 * (client-address, local-address) and the last three rows are tapvs's own.
 */
const COMMANDS_V_OPTIONS: readonly string[] = [
  /*           -n-csv-s-p-M-rfw-w-x-ymctotdmstrtthpcsrsidexopspe-bgrpptttlszetitytptnocsrccala */
  /* ADD     */ 'xx+...xxxxxxxxxxxxxxx...xxxxxxxxxx.x',
  /* EDIT    */ 'xx+...xxxxxxxxxxxxxxx...xxxxxxxxxx.x',
  /* DEL     */ 'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* FLUSH   */ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* LIST    */ '.11xxxxxxxxx11.......xxxxxxx.xxxxxxx',
  /* ADDSRV  */ 'xx+xxx+....xxxxxxxxxxxxxxxxxx.....xx',
  /* DELSRV  */ 'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* EDITSRV */ 'xx+xxx+....xxxxxxxxxxxxxxxxxx.....xx',
  /* TIMEOUT */ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* STARTD  */ 'xxxxxxxxxxx.xxxxxxx.xxxx....xxxxxxxx',
  /* STOPD   */ 'xxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxx',
  /* RESTORE */ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* SAVE    */ '.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* ZERO    */ 'xx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* ADDLADDR*/ 'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+',
  /* DELLADDR*/ 'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+',
  /* GETLADDR*/ '.x.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
];

const TUNNEL_TYPE_NAMES = ['ipip', 'gue', 'gre'];
const TUNNEL_OPTIONS = [Opt.TunPort, Opt.TunNocsum, Opt.TunCsum, Opt.TunRemcsum];
/** `tunnel_types_v_options`: columns tun-port, tun-nocsum, tun-csum, tun-remcsum. */
const TUNNEL_TYPES_V_OPTIONS = ['xxxx', '+111', 'x11x'];

const TUN_FLAG_CSUM = 1;
const TUN_FLAG_REMCSUM = 2;

// ------------------------------------------------------------------------------------------------
// Parsing state (ipvsadm's struct ipvs_command_entry)

interface ServiceState {
  af: AddressFamily | 0;
  protocol: number;
  addr: string;
  port: number;
  fwmark: number;
  scheduler: string;
  flags: number;
  timeout: number;
  /** IPv4: mask as a host-order u32; IPv6: prefix length. */
  netmask: number;
  pe: string;
  clientAddress: ClientAddressMode;
}

interface DestinationState {
  af: AddressFamily | 0;
  addr: string;
  port: number;
  forward: ForwardMethod;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
}

class UsageError extends Error {
  constructor(readonly failure: UsageFailure) {
    super(failure.message);
  }
}

/** ipvsadm's `fail(2, …)`. */
function fail(message: string): never {
  throw new UsageError({ message, exitCode: 2, prefixed: false });
}

/** ipvsadm's `tryhelp_exit(argv[0], -1)`. */
function tryHelp(): never {
  throw new UsageError({ message: TRY_HELP, exitCode: 255, prefixed: false });
}

export interface ParseOptions {
  /** Name look-ups for hosts, netmasks and ports (default: /etc/hosts and /etc/services). */
  names?: NameDatabase;
  /** Features to refuse after validation (default NOT_SUPPORTED_YET). */
  notSupportedYet?: readonly PendingFeature[];
}

/**
 * Parses one ipvsadm command line (the words after the program name). An empty argument list is
 * ipvsadm's "list everything" and is handled by the caller, as ipvsadm's main() does.
 */
export function parseIpvsadmArgs(args: readonly string[], options: ParseOptions = {}): ParseResult {
  try {
    const parser = new CommandLineParser(args, options.names ?? systemNames);
    return { ok: true, invocation: parser.run(options.notSupportedYet ?? NOT_SUPPORTED_YET) };
  } catch (e) {
    if (e instanceof UsageError) return { ok: false, failure: e.failure };
    throw e;
  }
}

class CommandLineParser {
  private readonly scanner: PoptScanner;
  private cmd: Cmd | undefined;
  private options = 0n;
  private readonly svc: ServiceState = {
    af: 0,
    protocol: 0,
    addr: '0.0.0.0',
    port: 0,
    fwmark: 0,
    scheduler: '',
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    pe: '',
    clientAddress: 'none',
  };
  private readonly dest: DestinationState = {
    af: 0,
    addr: '0.0.0.0',
    port: 0,
    forward: ForwardMethod.Route,
    weight: 1,
    uThreshold: 0,
    lThreshold: 0,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
  };
  private timeouts = { tcp: 0, tcpfin: 0, udp: 0 };
  private readonly format: ListingFormat = {
    numeric: false,
    stats: false,
    rate: false,
    thresholds: false,
    persistentConn: false,
    tunInfo: false,
    nosort: false,
    exact: false,
  };
  private schedFlagsArg = '';
  /** -z: the FULLNAT local address (canonical IPv4). */
  private laddr = '';
  /** tapvs's `-L --marks` (outside ipvsadm's option bits and matrix). */
  private marks = false;
  private readonly used = new Set<PendingFeature>();

  constructor(
    args: readonly string[],
    private readonly names: NameDatabase,
  ) {
    this.scanner = new PoptScanner(args);
  }

  run(notSupportedYet: readonly PendingFeature[]): Invocation {
    const early = this.parseOptions();
    if (early !== undefined) return early;
    this.processOptions();
    const pending = notSupportedYet.find((f) => this.used.has(f));
    if (pending !== undefined) {
      const name =
        pending === 'gatewaying' && !this.isSet(Opt.Forward) ? DEFAULT_GATEWAYING_NAME : PENDING_FEATURE_NAMES[pending];
      throw new UsageError({ message: `${name} is not supported yet`, exitCode: 2, prefixed: true });
    }
    return this.invocation();
  }

  private isSet(o: Opt): boolean {
    return (this.options & (1n << BigInt(o))) !== 0n;
  }

  /** ipvsadm's `set_option`. */
  private setOption(o: Opt): void {
    if (this.isSet(o)) fail(`multiple '${OPTION_NAMES[o]}' options specified`);
    this.options |= 1n << BigInt(o);
  }

  /** ipvsadm's `parse_options`; returns help/version when the first option asks for them. */
  private parseOptions(): Invocation | undefined {
    const first = this.scanner.getNextOpt();
    if (first.kind !== 'option') tryHelp();
    switch (first.spec.tag) {
      case 'A':
        this.cmd = Cmd.Add;
        break;
      case 'E':
        this.cmd = Cmd.Edit;
        break;
      case 'D':
        this.cmd = Cmd.Del;
        break;
      case 'a':
        this.cmd = Cmd.AddDest;
        break;
      case 'e':
        this.cmd = Cmd.EditDest;
        break;
      case 'd':
        this.cmd = Cmd.DelDest;
        break;
      case 'C':
        this.cmd = Cmd.Flush;
        break;
      case 'L':
        this.cmd = Cmd.List;
        break;
      case 'Z':
        this.cmd = Cmd.Zero;
        break;
      case 'set':
        this.cmd = Cmd.Timeout;
        break;
      case 'R':
        this.cmd = Cmd.Restore;
        break;
      case 'S':
        this.cmd = Cmd.Save;
        break;
      case 'P':
        this.cmd = Cmd.AddLaddr;
        break;
      case 'Q':
        this.cmd = Cmd.DelLaddr;
        break;
      case 'G':
        this.cmd = Cmd.GetLaddr;
        break;
      case 'start-daemon':
        this.cmd = Cmd.StartDaemon;
        this.used.add('start-daemon');
        if (first.arg !== 'master' && first.arg !== 'backup') fail('illegal start-daemon parameter specified');
        break;
      case 'stop-daemon':
        this.cmd = Cmd.StopDaemon;
        this.used.add('stop-daemon');
        // sic: ipvsadm's message for --stop-daemon
        if (first.arg !== 'master' && first.arg !== 'backup') fail('illegal start_daemon specified');
        break;
      case 'h':
        return { kind: 'help' };
      case 'v':
        return { kind: 'version' };
      case 'add-mark':
      case 'del-mark': {
        // words popt skipped before the command are leftovers, as `unexpected argument` in ipvsadm
        const leftover = this.scanner.getArg();
        if (leftover !== undefined) markFail(`unexpected argument ${leftover}`);
        const command = first.spec.tag;
        const rule = parseMarkRule(command, this.scanner.unscanned(), this.names);
        return { kind: 'command', command: { op: command === 'add-mark' ? 'add-mark' : 'delete-mark', rule } };
      }
      default:
        tryHelp();
    }

    let result: ScanResult;
    while ((result = this.scanner.getNextOpt()).kind === 'option') {
      this.applyOption(result.spec.tag, result.arg);
    }
    if (result.kind === 'error') {
      throw new UsageError({ message: `${this.scanner.badOption()}: ${result.error}`, exitCode: 255, prefixed: false });
    }

    if (this.cmd === Cmd.Timeout) {
      const tcp = this.scanner.getArg();
      const tcpfin = this.scanner.getArg();
      const udp = this.scanner.getArg();
      if (tcp === undefined || tcpfin === undefined || udp === undefined) {
        fail('--set option requires 3 timeout values');
      }
      this.timeouts = {
        tcp: parseTimeout(tcp, 0, MAX_TIMEOUT),
        tcpfin: parseTimeout(tcpfin, 0, MAX_TIMEOUT),
        udp: parseTimeout(udp, 0, MAX_TIMEOUT),
      };
    }
    const extra = this.scanner.getArg();
    if (extra !== undefined) fail(`unexpected argument ${extra}`);

    if (this.schedFlagsArg !== '') {
      this.svc.flags &= ~SVC_F_SCHED_MASK;
      this.svc.flags |= parseSchedFlags(this.svc.scheduler, this.schedFlagsArg);
    }
    return undefined;
  }

  /** One option after the command (the second switch of ipvsadm's `parse_options`). */
  private applyOption(tag: Tag, optarg: string | undefined): void {
    const arg = optarg ?? '';
    switch (tag) {
      case 't':
      case 'u':
      case 'sctp-service': {
        this.setOption(Opt.Service);
        this.svc.protocol = tag === 't' ? IPPROTO_TCP : tag === 'u' ? IPPROTO_UDP : IPPROTO_SCTP;
        const parsed = parseHostPort(arg, this.svc.protocol, this.names);
        if (parsed === undefined) fail('illegal virtual server address[:port] specified');
        this.svc.af = parsed.af;
        this.svc.addr = parsed.addr;
        if (parsed.af === 6) this.svc.netmask = 128;
        if (parsed.port !== undefined) this.svc.port = parsed.port;
        break;
      }
      case 'f':
        this.setOption(Opt.Service);
        this.svc.af = 4;
        this.svc.protocol = IPPROTO_TCP;
        this.svc.fwmark = parseFwmark(arg);
        break;
      case 's':
        this.setOption(Opt.Scheduler);
        this.svc.scheduler = arg.slice(0, IP_VS_SCHEDNAME_MAXLEN - 1);
        break;
      case 'p':
        this.setOption(Opt.Persistent);
        this.svc.flags |= SVC_F_PERSISTENT;
        this.svc.timeout = optarg === undefined ? IPVS_SVC_PERSISTENT_TIMEOUT : parseTimeout(optarg, 1, MAX_TIMEOUT);
        break;
      case 'M':
        this.setOption(Opt.Netmask);
        if (this.svc.af !== 6) {
          const mask = parseNetmask(arg, this.names);
          if (mask === undefined) fail('illegal virtual server persistent mask specified');
          this.svc.netmask = inetAton(mask)!;
        } else {
          this.svc.netmask = atoi(arg);
          if (this.svc.netmask < 1 || this.svc.netmask > 128) fail('illegal ipv6 netmask specified');
        }
        break;
      case 'r': {
        this.setOption(Opt.Server);
        const parsed = parseHostPort(arg, this.svc.protocol, this.names);
        if (parsed === undefined) fail('illegal real server address[:port] specified');
        this.dest.af = parsed.af;
        this.dest.addr = parsed.addr;
        // without a port, the service's port (as far as it is known at this point)
        this.dest.port = parsed.port ?? this.svc.port;
        break;
      }
      case 'i':
        this.setOption(Opt.Forward);
        this.dest.forward = ForwardMethod.Tunnel;
        break;
      case 'g':
        this.setOption(Opt.Forward);
        this.dest.forward = ForwardMethod.Route;
        break;
      case 'm':
        this.setOption(Opt.Forward);
        this.dest.forward = ForwardMethod.Masq;
        break;
      case 'fullnat':
        this.setOption(Opt.Forward);
        this.dest.forward = ForwardMethod.FullNat;
        break;
      case 'proxy-protocol':
      case 'toa':
        this.setOption(Opt.ClientAddress);
        this.svc.clientAddress = tag;
        break;
      case 'z':
        this.setOption(Opt.LocalAddress);
        this.laddr = parseLocalAddress(arg, this.names);
        break;
      case 'w':
        this.setOption(Opt.Weight);
        this.dest.weight = stringToNumber(arg, 0, 65535) ?? fail('illegal weight specified');
        break;
      case 'x':
        this.setOption(Opt.UThreshold);
        this.dest.uThreshold = stringToNumber(arg, 0, INT_MAX) ?? fail('illegal u_threshold specified');
        break;
      case 'y':
        this.setOption(Opt.LThreshold);
        this.dest.lThreshold = stringToNumber(arg, 0, INT_MAX) ?? fail('illegal l_threshold specified');
        break;
      case 'c':
        this.setOption(Opt.Connection);
        break;
      case 'n':
        this.setOption(Opt.Numeric);
        this.format.numeric = true;
        break;
      case 'mcast-interface':
        this.setOption(Opt.Mcast);
        break;
      case 'syncid':
        this.setOption(Opt.SyncId);
        if (stringToNumber(arg, 0, 255) === undefined) fail('illegal syncid specified');
        break;
      case 'timeout':
        this.setOption(Opt.Timeout);
        break;
      case 'daemon':
        this.setOption(Opt.Daemon);
        this.used.add('daemon-listing');
        break;
      case 'stats':
        this.setOption(Opt.Stats);
        this.format.stats = true;
        break;
      case 'rate':
        this.setOption(Opt.Rate);
        this.format.rate = true;
        break;
      case 'thresholds':
        this.setOption(Opt.Thresholds);
        this.format.thresholds = true;
        break;
      case 'persistent-conn':
        this.setOption(Opt.PersistentConn);
        this.format.persistentConn = true;
        break;
      case 'nosort':
        this.setOption(Opt.NoSort);
        this.format.nosort = true;
        break;
      case 'sort':
        // sorting is the default; a no-op kept for compatibility (and not counted as an option)
        break;
      case 'X':
        this.setOption(Opt.Exact);
        this.format.exact = true;
        break;
      case '6':
        // not an option bit in ipvsadm: may be repeated, and is legal with every command
        if (this.svc.fwmark === 0) fail('-6 used before -f\n');
        this.used.add('ipv6');
        this.svc.af = 6;
        this.svc.netmask = 128;
        break;
      case 'o':
        this.setOption(Opt.OnePacket);
        this.used.add('ops');
        this.svc.flags |= SVC_F_ONEPACKET;
        break;
      case 'pe':
        this.setOption(Opt.PersistenceEngine);
        this.used.add('pe');
        this.svc.pe = arg.slice(0, IP_VS_PENAME_MAXLEN);
        break;
      case 'b':
        this.setOption(Opt.SchedFlags);
        this.schedFlagsArg = arg.slice(0, 127);
        break;
      case 'mcast-group':
        this.setOption(Opt.McastGroup);
        if (arg.includes(':')) {
          const group = inetPton6(arg);
          if (group === undefined || group[0] !== 0xff) fail(`invalid IPv6 mcast-group \`${arg}'`);
        } else {
          const group = inetPton4(arg);
          if (group === undefined || group >>> 28 !== 0xe) fail(`invalid IPv4 mcast-group \`${arg}'`);
        }
        break;
      case 'mcast-port':
        this.setOption(Opt.McastPort);
        if (stringToNumber(arg, 1, 65535) === undefined) fail('illegal mcast-port specified');
        break;
      case 'mcast-ttl':
        this.setOption(Opt.McastTtl);
        if (stringToNumber(arg, 1, 255) === undefined) fail('illegal mcast-ttl specified');
        break;
      case 'sync-maxlen':
        this.setOption(Opt.SyncMaxlen);
        if (stringToNumber(arg, 1, 65535 - 20 - 8) === undefined) fail('illegal sync-maxlen specified');
        break;
      case 'tun-info':
        this.setOption(Opt.TunInfo);
        this.format.tunInfo = true;
        this.used.add('tun-info');
        break;
      case 'tun-type': {
        this.setOption(Opt.TunType);
        this.used.add('tunnel-options');
        const type = TUNNEL_TYPE_NAMES.indexOf(arg);
        if (type < 0) fail('illegal tunnel type specified');
        this.dest.tunType = type;
        break;
      }
      case 'tun-port':
        this.setOption(Opt.TunPort);
        this.used.add('tunnel-options');
        this.dest.tunPort = stringToNumber(arg, 1, 65535) ?? fail('illegal tunnel port specified');
        break;
      case 'tun-nocsum':
        this.setOption(Opt.TunNocsum);
        this.used.add('tunnel-options');
        break;
      case 'tun-csum':
        this.setOption(Opt.TunCsum);
        this.used.add('tunnel-options');
        this.dest.tunFlags |= TUN_FLAG_CSUM;
        break;
      case 'tun-remcsum':
        this.setOption(Opt.TunRemcsum);
        this.used.add('tunnel-options');
        this.dest.tunFlags |= TUN_FLAG_REMCSUM;
        break;
      case 'marks':
        if (this.marks) fail("multiple 'marks' options specified");
        this.marks = true;
        break;
      default:
        // a command (or -h/-v) after the first option
        fail(`invalid option \`${this.scanner.badOption()}'`);
    }
  }

  /** ipvsadm's `process_options` checks after parsing. */
  private processOptions(): void {
    const cmd = this.cmd!;
    this.genericOptCheck(cmd);
    if (this.marks) this.marksOptCheck(cmd);

    if (cmd === Cmd.Add || cmd === Cmd.Edit) {
      if (this.svc.fwmark === 0 && this.svc.port === 0 && !(this.svc.flags & SVC_F_PERSISTENT)) {
        fail('Zero port specified for non-persistent service');
      }
      if (this.svc.flags & SVC_F_ONEPACKET && this.svc.fwmark === 0 && this.svc.protocol !== IPPROTO_UDP) {
        fail('One-Packet Scheduling is only for UDP virtual services');
      }
      if (this.svc.clientAddress !== 'none' && this.svc.fwmark === 0 && this.svc.protocol !== IPPROTO_TCP) {
        fail('PROXY protocol and TOA are only for TCP virtual services');
      }
      if (this.svc.scheduler === '') this.svc.scheduler = DEF_SCHED;
    }

    if (cmd === Cmd.AddDest || cmd === Cmd.EditDest) {
      const fwd = this.dest.forward;
      // only DR and tunnels force the service port; NAT and FULLNAT map ports
      if (this.svc.fwmark === 0 && (fwd === ForwardMethod.Tunnel || fwd === ForwardMethod.Route)) {
        this.dest.port = this.svc.port;
      }
      if (this.dest.af !== this.svc.af && fwd !== ForwardMethod.Tunnel) {
        fail('Different address family is allowed only for tunneling servers');
      }
      const tunnelOptions = [Opt.TunType, ...TUNNEL_OPTIONS].some((o) => this.isSet(o));
      if (tunnelOptions && fwd !== ForwardMethod.Tunnel) fail('Tunnel options conflict with forward method');
      this.tunnelOptCheck();
      if (fwd === ForwardMethod.Route) this.used.add('gatewaying');
      if (fwd === ForwardMethod.Tunnel) this.used.add('ipip');
    }

    if (cmd === Cmd.List) {
      const listSource = this.isSet(Opt.Connection) || this.isSet(Opt.Timeout) || this.isSet(Opt.Daemon);
      const statsLike = this.isSet(Opt.Stats) || this.isSet(Opt.Rate) || this.isSet(Opt.Thresholds);
      const timeoutOrDaemon = this.isSet(Opt.Timeout) || this.isSet(Opt.Daemon);
      if ((listSource && statsLike) || (timeoutOrDaemon && this.isSet(Opt.PersistentConn))) {
        fail('options conflicts in the list command');
      }
    }
  }

  /** `--marks`: only with -L, and then with nothing but -n (worded as generic_opt_check words it). */
  private marksOptCheck(cmd: Cmd): void {
    if (cmd !== Cmd.List) fail(`Illegal 'marks' option with the '${COMMAND_NAMES[cmd]}' command`);
    for (let j = 0; j < NUMBER_OF_OPT; j++) {
      if (j !== Opt.Numeric && this.isSet(j)) {
        fail(`The option '${OPTION_NAMES[j]}' conflicts with the 'marks' option in the 'list' command`);
      }
    }
  }

  /** ipvsadm's `generic_opt_check`: the first violation in option order wins. */
  private genericOptCheck(cmd: Cmd): void {
    const row = COMMANDS_V_OPTIONS[cmd]!;
    let last = 0;
    let count = 0;
    for (let j = 0; j < NUMBER_OF_OPT; j++) {
      const rule = row[j];
      if (!this.isSet(j)) {
        if (rule === '+') {
          fail(`You need to supply the '${OPTION_NAMES[j]}' option for the '${COMMAND_NAMES[cmd]}' command`);
        }
      } else {
        if (rule === 'x') fail(`Illegal '${OPTION_NAMES[j]}' option with the '${COMMAND_NAMES[cmd]}' command`);
        if (rule === '1') {
          count += 1;
          if (count === 1) {
            last = j;
            continue;
          }
          fail(
            `The option '${OPTION_NAMES[j]}' conflicts with the '${OPTION_NAMES[last]}' option in the '${COMMAND_NAMES[cmd]}' command`,
          );
        }
      }
    }
  }

  /** ipvsadm's `tunnel_opt_check`. */
  private tunnelOptCheck(): void {
    const type = this.dest.tunType;
    const row = TUNNEL_TYPES_V_OPTIONS[type]!;
    const typeName = TUNNEL_TYPE_NAMES[type]!;
    let last = 0;
    let count = 0;
    for (let j = 0; j < TUNNEL_OPTIONS.length; j++) {
      const k = TUNNEL_OPTIONS[j]!;
      const rule = row[j];
      if (!this.isSet(k)) {
        if (rule === '+') {
          fail(`You need to supply the '${OPTION_NAMES[k]}' option for the '${typeName}' tunnel type`);
        }
      } else {
        if (rule === 'x') fail(`Illegal '${OPTION_NAMES[k]}' option with the '${typeName}' tunnel type`);
        if (rule === '1') {
          count += 1;
          if (count === 1) {
            last = k;
            continue;
          }
          fail(
            `The option '${OPTION_NAMES[k]}' conflicts with the '${OPTION_NAMES[last]}' option in the '${typeName}' tunnel type`,
          );
        }
      }
    }
  }

  private serviceKey(): ServiceKey {
    const af: AddressFamily = this.svc.af === 0 ? 4 : this.svc.af;
    const addr = this.svc.fwmark !== 0 ? (af === 6 ? '::' : '0.0.0.0') : this.svc.addr;
    return { af, protocol: this.svc.protocol, addr, port: this.svc.port, fwmark: this.svc.fwmark };
  }

  private serviceConfig(): ServiceConfig {
    const key = this.serviceKey();
    return {
      ...key,
      scheduler: this.svc.scheduler,
      flags: this.svc.flags,
      timeout: this.svc.timeout,
      netmask: key.af === 6 ? String(this.svc.netmask) : formatIPv4(this.svc.netmask),
      pe: this.svc.pe,
      // edit resets it too: -E without --proxy-protocol/--toa turns client address passing off
      clientAddress: this.svc.clientAddress,
    };
  }

  private destinationConfig(): DestinationConfig {
    const d = this.dest;
    return {
      af: d.af === 0 ? 4 : d.af,
      addr: d.addr,
      port: d.port,
      forward: d.forward,
      weight: d.weight,
      uThreshold: d.uThreshold,
      lThreshold: d.lThreshold,
      tunType: d.tunType,
      tunPort: d.tunPort,
      tunFlags: d.tunFlags,
    };
  }

  private invocation(): Invocation {
    const format = { ...this.format };
    switch (this.cmd!) {
      case Cmd.Add:
        return { kind: 'command', command: { op: 'add-service', service: this.serviceConfig() } };
      case Cmd.Edit:
        return { kind: 'command', command: { op: 'edit-service', service: this.serviceConfig() } };
      case Cmd.Del:
        return { kind: 'command', command: { op: 'delete-service', service: this.serviceKey() } };
      case Cmd.Flush:
        return { kind: 'command', command: { op: 'flush' } };
      case Cmd.AddDest:
        return {
          kind: 'command',
          command: { op: 'add-server', service: this.serviceKey(), dest: this.destinationConfig() },
        };
      case Cmd.EditDest:
        return {
          kind: 'command',
          command: { op: 'edit-server', service: this.serviceKey(), dest: this.destinationConfig() },
        };
      case Cmd.DelDest: {
        const { af, addr, port } = this.destinationConfig();
        return { kind: 'command', command: { op: 'delete-server', service: this.serviceKey(), dest: { af, addr, port } } };
      }
      case Cmd.Zero:
        return this.isSet(Opt.Service)
          ? { kind: 'command', command: { op: 'zero', service: this.serviceKey() } }
          : { kind: 'command', command: { op: 'zero' } };
      case Cmd.Timeout:
        return { kind: 'command', command: { op: 'set-timeouts', timeouts: { ...this.timeouts } } };
      case Cmd.List:
        if (this.marks) return { kind: 'list-marks' };
        if (this.isSet(Opt.Connection)) return { kind: 'list-connections', format };
        if (this.isSet(Opt.Service)) return { kind: 'list-service', service: this.serviceKey(), format };
        if (this.isSet(Opt.Timeout)) return { kind: 'list-timeouts' };
        return { kind: 'list-all', format };
      case Cmd.Save:
        return { kind: 'save', numeric: this.format.numeric };
      case Cmd.AddLaddr:
      case Cmd.DelLaddr:
        if (this.laddr.includes(':') !== (this.svc.af === 6)) fail('a local address must have the address family of its service');
        if (this.cmd === Cmd.DelLaddr) return { kind: 'command', command: { op: 'delete-laddr', service: this.serviceKey(), laddr: this.laddr } };
        return { kind: 'command', command: { op: 'add-laddr', service: this.serviceKey(), laddr: this.laddr } };
      case Cmd.GetLaddr:
        return this.isSet(Opt.Service) ? { kind: 'list-laddrs', service: this.serviceKey() } : { kind: 'list-laddrs' };
      case Cmd.Restore:
        return { kind: 'restore' };
      case Cmd.StartDaemon:
      case Cmd.StopDaemon:
        // refused as not supported before reaching here
        throw new UsageError({ message: 'the sync daemon is not supported yet', exitCode: 2, prefixed: true });
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Mark rules (tapvs's own): `--add-mark|--del-mark -d ADDR [-p tcp|udp|all] [--dport P|--dports L] --set-mark N`

/** tapvs's own usage errors: `tapvs: <message>`, exit 2. */
function markFail(message: string): never {
  throw new UsageError({ message, exitCode: 2, prefixed: true });
}

type MarkOptionName = 'destination' | 'protocol' | 'dport' | 'dports' | 'set-mark';

interface MarkOptionSpec {
  name: MarkOptionName;
  long: string;
  short: string | undefined;
}

/**
 * The options of a mark rule, named as in iptables (`-d`, `-p`, tcp/udp `--dport`, multiport
 * `--dports`, MARK `--set-mark`). `-p` here is iptables' protocol, not ipvsadm's --persistent: the
 * grammar is only used after --add-mark / --del-mark.
 */
const MARK_OPTIONS: readonly MarkOptionSpec[] = [
  { name: 'destination', long: 'destination', short: 'd' },
  { name: 'protocol', long: 'protocol', short: 'p' },
  { name: 'dport', long: 'dport', short: undefined },
  { name: 'dports', long: 'dports', short: undefined },
  { name: 'set-mark', long: 'set-mark', short: undefined },
];

const MARK_OPTIONS_HINT = 'a mark rule takes -d, -p, --dport or --dports, and --set-mark';

/** iptables multiport's XT_MULTI_PORTS: 15 slots, a range takes two. */
const MULTIPORT_SLOTS = 15;

/**
 * The words after `--add-mark` / `--del-mark`, popt-like: every option takes an argument (the next
 * word, or attached: `--dport=80`, `-d10.0.0.1`), may appear at most once, and may come in any
 * order; `--` ends the options; unknown options and stray words are errors, never ignored.
 */
function parseMarkRule(command: 'add-mark' | 'del-mark', words: readonly string[], names: NameDatabase): MarkRule {
  const values = new Map<MarkOptionName, string>();
  let optionsEnded = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (optionsEnded || !word.startsWith('-') || word === '-') markFail(`unexpected argument ${word}`);
    if (word === '--') {
      optionsEnded = true;
      continue;
    }
    let spec: MarkOptionSpec | undefined;
    let arg: string | undefined;
    if (word.startsWith('--')) {
      const body = word.slice(2);
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      spec = MARK_OPTIONS.find((o) => o.long === name);
      if (eq >= 0) arg = body.slice(eq + 1);
    } else {
      spec = MARK_OPTIONS.find((o) => o.short === word[1]);
      const attached = word.slice(2);
      if (attached !== '') arg = attached.startsWith('=') ? attached.slice(1) : attached;
    }
    if (spec === undefined) markFail(`${word}: unknown option (${MARK_OPTIONS_HINT})`);
    if (arg === undefined) {
      if (i + 1 >= words.length) markFail(`${word}: missing argument`);
      arg = words[++i]!;
    }
    if (values.has(spec.name)) markFail(`multiple '${spec.name}' options specified`);
    values.set(spec.name, arg);
  }

  if (values.has('dport') && values.has('dports')) {
    markFail(`The option 'dports' conflicts with the 'dport' option in the '${command}' command`);
  }
  const destination = values.get('destination');
  const addr = destination === undefined ? undefined : parseMarkDestination(destination, names);
  const protocolText = values.get('protocol');
  const protocol = protocolText === undefined ? 0 : parseMarkProtocol(protocolText);
  const portOption: MarkOptionName | undefined = values.has('dport') ? 'dport' : values.has('dports') ? 'dports' : undefined;
  let ports: [number, number][] = [];
  if (portOption !== undefined) {
    if (protocol !== IPPROTO_TCP && protocol !== IPPROTO_UDP) {
      markFail(`the '${portOption}' option needs -p tcp or -p udp`);
    }
    ports = parseMarkPorts(values.get(portOption)!, portOption === 'dports', protocol, names);
  }
  const markText = values.get('set-mark');
  const mark = markText === undefined ? undefined : parseMarkValue(markText);
  if (addr === undefined) markFail(`You need to supply the 'destination' option for the '${command}' command`);
  if (mark === undefined) markFail(`You need to supply the 'set-mark' option for the '${command}' command`);
  return { af: addr.includes(':') ? 6 : 4, addr, protocol, ports, mark };
}

/**
 * `-d`: one host, as an inet_aton form or an /etc/hosts name (like ipvsadm's service addresses), or an
 * IPv6 address (written bare or in brackets; the rule then marks IPv6 packets, for `-f N -6` services);
 * a `/32` (`/128`) suffix, as iptables-save prints it, is accepted. Not 0.0.0.0, multicast, reserved or
 * broadcast addresses.
 */
function parseMarkDestination(text: string, names: NameDatabase): string {
  const slash = text.indexOf('/');
  let host = slash >= 0 ? text.slice(0, slash) : text;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const v6 = inetPton6(host);
  if (v6 !== undefined) {
    if (slash >= 0 && text.slice(slash + 1) !== '128') markFail(`illegal mark-rule destination \`${text}' specified (one host: no prefix other than /128)`);
    if (v6[0] === 0xff || v6.every((b) => b === 0)) markFail(`illegal mark-rule destination \`${text}' specified (not a unicast host address)`);
    return canonicalAddress(6, host);
  }
  if (slash >= 0 && text.slice(slash + 1) !== '32') {
    markFail(`illegal mark-rule destination \`${text}' specified (one host: no prefix other than /32)`);
  }
  const value = host === '' ? undefined : (inetAton(host) ?? names.hostToIPv4(host));
  if (value === undefined) markFail(`illegal mark-rule destination \`${text}' specified (an IPv4 or IPv6 host address)`);
  if (value === 0 || value >= 0xe0000000) {
    markFail(`illegal mark-rule destination \`${text}' specified (not a unicast host address)`);
  }
  return formatIPv4(value);
}

/** `-p|--protocol`: tcp, udp or all (any case, as iptables). */
function parseMarkProtocol(text: string): number {
  switch (text.toLowerCase()) {
    case 'tcp':
      return IPPROTO_TCP;
    case 'udp':
      return IPPROTO_UDP;
    case 'all':
      return 0;
    default:
      return markFail(`illegal protocol \`${text}' specified (tcp, udp or all)`);
  }
}

/** `--set-mark`: as `-f` reads a fwmark, 1..4294967295 in decimal. */
function parseMarkValue(text: string): number {
  return stringToNumber(text, 1, UINT_MAX) ?? markFail(`invalid mark value \`${text}' specified`);
}

/**
 * `--dport PORT|LO:HI` or `--dports ITEM,ITEM,…` (multiport): a port is a number 0..65535 or an
 * /etc/services name for the protocol; `LO:` means LO:65535 and `:HI` 0:HI, as in iptables. At most
 * 15 multiport slots, a range taking two. The order is kept.
 */
function parseMarkPorts(text: string, multi: boolean, protocol: number, names: NameDatabase): [number, number][] {
  const items = multi ? text.split(',') : [text];
  const ports: [number, number][] = [];
  let slots = 0;
  for (const item of items) {
    const colon = item.indexOf(':');
    if (colon < 0) {
      const port = parseMarkPort(item, protocol, names);
      ports.push([port, port]);
      slots += 1;
    } else {
      const loText = item.slice(0, colon);
      const hiText = item.slice(colon + 1);
      const lo = loText === '' ? 0 : parseMarkPort(loText, protocol, names);
      const hi = hiText === '' ? 65535 : parseMarkPort(hiText, protocol, names);
      if (lo > hi) markFail(`invalid port range \`${item}' specified (min > max)`);
      ports.push([lo, hi]);
      slots += 2;
    }
  }
  if (slots > MULTIPORT_SLOTS) markFail(`too many ports specified in \`${text}' (at most 15; a range counts as two)`);
  return ports;
}

function parseMarkPort(text: string, protocol: number, names: NameDatabase): number {
  const port = /^[0-9]+$/.test(text) ? Number(text) : names.serviceToPort(text, protocol);
  if (port === undefined || port > 65535) markFail(`illegal port \`${text}' specified`);
  return port;
}

// ------------------------------------------------------------------------------------------------
// FULLNAT local addresses (tapvs's own, DPVS's -z|--laddr)

/**
 * `-z`: one IPv4 address, as an inet_aton form or an /etc/hosts name (like the service addresses), or an
 * IPv6 address (of an IPv6 service), no port; not in 0.0.0.0/8 or 127.0.0.0/8, not multicast, reserved
 * or broadcast, not ::, ::1 or IPv6 multicast (the daemon's own check).
 */
function parseLocalAddress(text: string, names: NameDatabase): string {
  const value = text === '' ? undefined : (inetAton(text) ?? names.hostToIPv4(text));
  if (value === undefined) {
    const v6 = inetPton6(text);
    if (v6 === undefined) fail(`illegal local address \`${text}' specified`);
    const loopbackOrAny = v6.subarray(0, 15).every((b) => b === 0) && v6[15] <= 1;
    if (v6[0] === 0xff || loopbackOrAny) fail(`illegal local address \`${text}' specified (not a unicast address)`);
    return formatIPv6(v6);
  }
  const first = value >>> 24;
  if (first === 0 || first === 127 || first >= 224) {
    fail(`illegal local address \`${text}' specified (not a unicast address outside 0.0.0.0/8 and 127.0.0.0/8)`);
  }
  return formatIPv4(value);
}

// ------------------------------------------------------------------------------------------------
// Value parsers with ipvsadm's messages

/** `parse_timeout` (for -p and --set). */
function parseTimeout(text: string, min: number, max: number): number {
  return stringToNumber(text, min, max) ?? fail(`invalid timeout value \`${text}' specified`);
}

/** `parse_fwmark`: strtol, 1..UINT_MAX. */
function parseFwmark(text: string): number {
  return stringToNumber(text, 1, UINT_MAX) ?? fail(`invalid fwmark value \`${text}' specified`);
}

/** C `atoi`: leading blanks, a sign, the digits up to the first non-digit; 0 when there are none. */
function atoi(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** `parse_sched_flags`: comma-separated; sh-/mh- flags only with their scheduler (default wlc). */
function parseSchedFlags(scheduler: string, text: string): number {
  const sched = scheduler !== '' ? scheduler : DEF_SCHED;
  const tokens = text.split(',').filter((t) => t !== '');
  if (tokens.length === 0) fail("invalid scheduler flag `'");
  let flags = 0;
  for (const flag of tokens) {
    switch (flag) {
      case 'flag-1':
        flags |= SVC_F_SCHED1;
        break;
      case 'flag-2':
        flags |= SVC_F_SCHED2;
        break;
      case 'flag-3':
        flags |= SVC_F_SCHED3;
        break;
      case 'sh-fallback':
      case 'sh-port':
      case 'mh-fallback':
      case 'mh-port':
        flags |= flag.endsWith('fallback') ? SVC_F_SCHED1 : SVC_F_SCHED2;
        if (sched !== flag.slice(0, 2)) fail(`incompatible scheduler flag \`${flag}'`);
        break;
      default:
        fail(`invalid scheduler flag \`${flag}'`);
    }
  }
  return flags;
}

// ------------------------------------------------------------------------------------------------
// -h and -v

/** ipvsadm's `usage_exit` text (stdout, exit 0), with the program name tapvs. */
export function usageText(): string {
  const p = PROGRAM_NAME;
  return (
    `${VERSION_LINE}\n` +
    'Usage:\n' +
    `  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n` +
    `  ${p} -D virtual-service\n` +
    `  ${p} -C\n` +
    `  ${p} -R\n` +
    `  ${p} -S [-n]\n` +
    `  ${p} -a|e virtual-service -r server-address [options]\n` +
    `  ${p} -d virtual-service -r server-address\n` +
    `  ${p} -L|l [virtual-service] [options]\n` +
    `  ${p} -Z [virtual-service]\n` +
    `  ${p} --set tcp tcpfin udp\n` +
    `  ${p} --start-daemon {master|backup} [daemon-options]\n` +
    `  ${p} --stop-daemon {master|backup}\n` +
    `  ${p} -h\n\n` +
    'Commands:\n' +
    'Either long or short options are allowed.\n' +
    '  --add-service     -A        add virtual service with options\n' +
    '  --edit-service    -E        edit virtual service with options\n' +
    '  --delete-service  -D        delete virtual service\n' +
    '  --clear           -C        clear the whole table\n' +
    '  --restore         -R        restore rules from stdin\n' +
    '  --save            -S        save rules to stdout\n' +
    '  --add-server      -a        add real server with options\n' +
    '  --edit-server     -e        edit real server with options\n' +
    '  --delete-server   -d        delete real server\n' +
    '  --list            -L|-l     list the table\n' +
    '  --zero            -Z        zero counters in a service or all services\n' +
    '  --set tcp tcpfin udp        set connection timeout values\n' +
    '  --start-daemon              start connection sync daemon\n' +
    '  --stop-daemon               stop connection sync daemon\n' +
    '  --help            -h        display this help message\n\n' +
    'virtual-service:\n' +
    '  --tcp-service|-t  service-address   service-address is host[:port]\n' +
    '  --udp-service|-u  service-address   service-address is host[:port]\n' +
    '  --sctp-service    service-address   service-address is host[:port]\n' +
    '  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n' +
    '\n' +
    'Options:\n' +
    '  --ipv6         -6                   fwmark entry uses IPv6\n' +
    '  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,\n' +
    `                                      the default scheduler is ${DEF_SCHED}.\n` +
    '  --pe            engine              alternate persistence engine may be sip,\n' +
    '                                      not set by default.\n' +
    '  --persistent   -p [timeout]         persistent service\n' +
    '  --netmask      -M netmask           persistent granularity mask\n' +
    '  --real-server  -r server-address    server-address is host (and port)\n' +
    '  --gatewaying   -g                   gatewaying (direct routing) (default)\n' +
    '  --ipip         -i                   ipip encapsulation (tunneling)\n' +
    '  --masquerading -m                   masquerading (NAT)\n' +
    '  --tun-type      type                one of ipip|gue|gre,\n' +
    '                                      the default tunnel type is ipip.\n' +
    '  --tun-port      port                tunnel destination port\n' +
    '  --tun-nocsum                        tunnel encapsulation without checksum\n' +
    '  --tun-csum                          tunnel encapsulation with checksum\n' +
    '  --tun-remcsum                       tunnel encapsulation with remote checksum\n' +
    '  --weight       -w weight            capacity of real server\n' +
    '  --u-threshold  -x uthreshold        upper threshold of connections\n' +
    '  --l-threshold  -y lthreshold        lower threshold of connections\n' +
    '  --connection   -c                   output of current IPVS connections\n' +
    '  --timeout                           output of timeout (tcp tcpfin udp)\n' +
    '  --daemon                            output of daemon information\n' +
    '  --stats                             output of statistics information\n' +
    '  --rate                              output of rate information\n' +
    '  --exact                             expand numbers (display exact values)\n' +
    '  --thresholds                        output of thresholds information\n' +
    '  --persistent-conn                   output of persistent connection info\n' +
    '  --tun-info                          output of tunnel information\n' +
    '  --nosort                            disable sorting output of service/server entries\n' +
    '  --sort                              does nothing, for backwards compatibility\n' +
    '  --ops          -o                   one-packet scheduling\n' +
    '  --numeric      -n                   numeric output of addresses and ports\n' +
    '  --sched-flags  -b flags             scheduler flags (comma-separated)\n' +
    'Daemon Options:\n' +
    '  --syncid sid                        syncid for connection sync (default=255)\n' +
    '  --sync-maxlen length                Max sync message length (default=1472)\n' +
    '  --mcast-interface interface         multicast interface for connection sync\n' +
    '  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n' +
    '  --mcast-port port                   UDP port (default=8848)\n' +
    '  --mcast-ttl ttl                     Multicast TTL (default=1)\n'
  );
}
