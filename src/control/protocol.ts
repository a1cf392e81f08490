/**
 * The control protocol between `tapvs` (the ipvsadm-compatible CLI) and `tapvsd`: one JSON object
 * per line over a Unix stream socket, one reply line per request line. It carries the operations of
 * the kernel's IPVS netlink family; errors come back as the errno the kernel would have returned, so
 * the CLI can print libipvs's messages.
 */
import type {
  ConnectionSnapshot,
  DestinationConfig,
  DestinationKey,
  MarkRule,
  ServiceConfig,
  ServiceKey,
  TableSnapshot,
  Timeouts,
} from './model.js';

export type Command =
  | { op: 'add-service'; service: ServiceConfig }
  | { op: 'edit-service'; service: ServiceConfig }
  | { op: 'delete-service'; service: ServiceKey }
  | { op: 'flush' }
  | { op: 'add-server'; service: ServiceKey; dest: DestinationConfig }
  | { op: 'edit-server'; service: ServiceKey; dest: DestinationConfig }
  | { op: 'delete-server'; service: ServiceKey; dest: DestinationKey }
  | { op: 'zero'; service?: ServiceKey }
  | { op: 'set-timeouts'; timeouts: Timeouts }
  /** tapvs's own: mark rules for fwmark services (EEXIST when present / ENOENT when absent). */
  | { op: 'add-mark'; rule: MarkRule }
  | { op: 'delete-mark'; rule: MarkRule }
  /**
   * tapvs's own (DPVS's --add-laddr/--del-laddr): a local address (LIP) for the FULLNAT real servers of a
   * service. ESRCH without the service, EEXIST when present / ENOENT when absent.
   */
  | { op: 'add-laddr'; service: ServiceKey; laddr: string }
  | { op: 'delete-laddr'; service: ServiceKey; laddr: string };

export type Request =
  | Command
  /** All-or-nothing: either every command applies, or none does and `failedIndex` names the first that failed. */
  | { op: 'batch'; commands: Command[] }
  | { op: 'get-table' }
  | { op: 'get-connections' }
  | { op: 'get-timeouts' }
  /** tapvs's own: data plane counters (drops by reason, frames, TAP counters). */
  /** With `tables`, the reply's counters also hold `tables` (TableCounters: a pass over the connection table). */
  | { op: 'get-counters'; tables?: boolean }
  /** tapvs's own: re-read tapvsd's --keepalived file and apply the difference (as SIGHUP does). */
  | { op: 'reload-keepalived' }
  /** tapvs's own (`tapvs reload`): re-read tapvsd's --rules and --keepalived files, as SIGHUP does. */
  | { op: 'reload' }
  /** tapvs's own: the keepalived health checkers of each real server (tapvsd --keepalived). */
  | { op: 'get-checkers' };

/** One real server's health-check state (the `get-checkers` reply). */
export interface RealServerCheckStatus {
  /** keepalived's ids: `TCP 198.18.1.100:80`, `198.18.2.11:80`. */
  virtualServer: string;
  realServer: string;
  alive: boolean;
  /** Effective weight (misc_dynamic applied). */
  weight: number;
  inhibitOnFailure: boolean;
  checkers: {
    type: string;
    /** FILE:LINE of the checker block. */
    at: string;
    target: string;
    up: boolean;
    /** Last result, its time (ISO 8601) and reason; null before the first check. */
    result: 'ok' | 'failed' | null;
    time: string | null;
    reason: string;
    /** Retries done since the last success, of `retry`. */
    retries: number;
    retry: number;
    /** Seconds until the next check (null while one runs). */
    nextCheckIn: number | null;
  }[];
}

/** errno names the kernel's IPVS code returns, plus ERANGE for threshold order. */
export type Errno = 'EEXIST' | 'ENOENT' | 'ESRCH' | 'EINVAL' | 'ERANGE' | 'ENOMEM' | 'EPERM' | 'EOPNOTSUPP' | 'EAFNOSUPPORT' | 'EIO';

export type Reply =
  | { ok: true; table?: TableSnapshot; connections?: ConnectionSnapshot[]; timeouts?: Timeouts; counters?: Record<string, unknown>; checkers?: RealServerCheckStatus[]; message?: string }
  | { ok: false; errno: Errno; failedIndex?: number; message?: string };

export const DEFAULT_SOCKET_PATH = '/run/tapvs.sock';

export function socketPathFromEnv(explicit?: string): string {
  return explicit ?? process.env.TAPVS_SOCKET ?? DEFAULT_SOCKET_PATH;
}
