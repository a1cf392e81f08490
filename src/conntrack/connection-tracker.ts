/**
 * IPVS connection semantics over the ConnectionTable: creating a connection bound to a destination,
 * the per-packet state transition with active/inactive accounting, upper/lower thresholds, and what
 * happens when a timer fires (kernel ip_vs_conn.c: ip_vs_conn_new, ip_vs_bind_dest, ip_vs_unbind_dest,
 * ip_vs_conn_expire; ip_vs_proto_tcp.c: set_tcp_state).
 */
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD, type DestinationTable } from '../dataplane/destination-table.js';
import { ForwardMethod, IPPROTO_TCP } from '../control/model.js';
import { CONN_F_INACTIVE, CONN_F_NOOUTPUT, CONN_F_ONE_PACKET, CONN_F_TEMPLATE } from './connection-flags.js';
import { IpvsSysctls } from '../control/sysctls.js';
import { ConnectionTable } from './connection-table.js';
import { DIR_INPUT, DIR_INPUT_ONLY, DIR_OUTPUT, isActiveTcpState, nextTcpState, TCP_S_CLOSE, TCP_S_ESTABLISHED, TCP_S_TIME_WAIT } from './tcp-state.js';
import { ProtocolTimeouts } from './timeouts.js';

/** Template states (kernel IP_VS_CTPL_S_*). */
export const TEMPLATE_NONE = 0;
export const TEMPLATE_ASSURED = 1;

/** existingForInbound: the packet is dropped (its connection's real server was deleted). */
export const CONN_DEST_UNAVAILABLE = -2;

/** Timeout of a connection entry before its first state transition (kernel: 3 s). */
const INITIAL_TIMEOUT_MS = 3000;
/** An expiring entry that still controls connections is re-armed for this long (kernel: 60 s). */
const CONTROLLING_REARM_MS = 60_000;

export class ConnectionTracker {
  readonly table: ConnectionTable;
  readonly timeouts = new ProtocolTimeouts();
  /** New connections refused because the table was full. */
  refusedFull = 0;
  /** Called after a destination lost its last reference (deleted destinations are freed then). */
  onDestinationUnreferenced: ((dest: number) => void) | null = null;

  constructor(
    readonly dests: DestinationTable,
    maxEntries = 1 << 20,
    now = 0,
    readonly sysctls = new IpvsSysctls(),
  ) {
    // IPv6 entries hold ids of the destinations' address registry (shared with the service table).
    this.table = new ConnectionTable(maxEntries, 4096, now, dests.addresses6);
  }

  /**
   * Create a connection for a scheduled packet, bound to `dest` (kernel ip_vs_conn_new + bind_dest).
   * Returns the id or -1 when the table is full (counted in refusedFull).
   */
  create(
    protocol: number,
    caddr: number,
    cport: number,
    vaddr: number,
    vport: number,
    dest: number,
    now: number,
    dport = this.dests.port[dest] || vport,
    onePacket = false,
  ): number {
    const d = this.dests;
    const forward = d.forward[dest];
    // A new connection gets the destination's conn_flags: always INACTIVE, NOOUTPUT unless masquerading.
    let flags = forward | CONN_F_INACTIVE;
    if (forward !== ForwardMethod.Masq) flags |= CONN_F_NOOUTPUT;
    if (onePacket) flags |= CONN_F_ONE_PACKET;
    const t = this.table;
    const id = t.insert(protocol, caddr, cport, vaddr, vport, d.addr[dest], dport, flags, INITIAL_TIMEOUT_MS, now);
    if (id < 0) {
      this.refusedFull++;
      return -1;
    }
    t.setDest(id, dest);
    if (onePacket) {
      // Kernel: bound, used for one packet and expired at once, so the counts end where they started.
      d.onePacketConns[dest]++;
      return id;
    }
    d.inactConns[dest]++;
    // Kernel ip_vs_bind_dest: trip the upper threshold.
    const u = d.uThreshold[dest];
    if (u !== 0 && d.activeConns[dest] + d.inactConns[dest] >= u) d.flags[dest] |= DEST_F_OVERLOAD;
    return id;
  }

  /**
   * Create a persistence template (kernel ip_vs_sched_persist → ip_vs_conn_new with TEMPLATE): keyed by
   * the client network `snet` with client port 0, counted in the destination's persistConns.
   */
  createTemplate(protocol: number, snet: number, vaddr: number, vport: number, dest: number, dport: number, timeoutMs: number, now: number): number {
    const d = this.dests;
    const forward = d.forward[dest];
    let flags = CONN_F_TEMPLATE | forward | CONN_F_INACTIVE;
    if (forward !== ForwardMethod.Masq) flags |= CONN_F_NOOUTPUT;
    const t = this.table;
    const id = t.insert(protocol, snet, 0, vaddr, vport, d.addr[dest], dport, flags, timeoutMs, now);
    if (id < 0) {
      this.refusedFull++;
      return -1;
    }
    t.setDest(id, dest);
    t.setState(id, TEMPLATE_NONE);
    d.persistConns[dest]++;
    const u = d.uThreshold[dest];
    if (u !== 0 && d.activeConns[dest] + d.inactConns[dest] >= u) d.flags[dest] |= DEST_F_OVERLOAD;
    return id;
  }

  /**
   * Kernel ip_vs_check_template: a template whose destination was deleted (or, with
   * expire_quiescent_template, quiesced) no longer holds its clients; it is made unmatchable (vport and
   * dport 0xFFFF) and left to expire.
   */
  templateUsable(id: number): boolean {
    const t = this.table, d = this.dests, dest = t.destOf(id);
    if (dest >= 0 && (d.flags[dest] & DEST_F_AVAILABLE) !== 0 && !(this.sysctls.expireQuiescentTemplate === 1 && d.weight[dest] === 0)) return true;
    t.invalidateTemplate(id);
    return false;
  }

  /** Put connection `id` under template `ct` (kernel ip_vs_control_add). */
  controlBy(id: number, ct: number): void {
    this.table.control[id] = ct;
    this.table.nControl[ct]++;
  }

  /**
   * The state transition for one packet (kernel ip_vs_set_state): `dir` is DIR_INPUT for client
   * packets, DIR_OUTPUT for replies seen by the director; re-arms the timer from `now`.
   */
  transition(id: number, dir: number, tcpFlags: number, now: number): void {
    const t = this.table;
    if (t.protocolOf(id) === IPPROTO_TCP) {
      const flags = t.flagsOf(id);
      if (dir === DIR_INPUT && (flags & CONN_F_NOOUTPUT) !== 0) dir = DIR_INPUT_ONLY;
      else if (dir !== DIR_INPUT && (flags & CONN_F_NOOUTPUT) !== 0) t.setFlags(id, flags & ~CONN_F_NOOUTPUT); // a reply was seen
      const cur = t.stateOf(id);
      const next = nextTcpState(dir, tcpFlags, cur);
      if (next !== cur) {
        this.setState(id, next);
        // Entering ESTABLISHED assures the controlling template (kernel ip_vs_control_assure_ct).
        if (next === TCP_S_ESTABLISHED && t.control[id] >= 0) t.setState(t.control[id], TEMPLATE_ASSURED);
      }
      t.refresh(id, this.timeouts.tcp[next] * 1000, now);
    } else {
      // UDP: a reply assures the template.
      if (dir === DIR_OUTPUT && t.control[id] >= 0) t.setState(t.control[id], TEMPLATE_ASSURED);
      t.refresh(id, this.timeouts.udp * 1000, now);
    }
  }

  /**
   * Kernel conn_reuse_mode=1: a SYN for an existing, uncontrolled TIME_WAIT/CLOSE connection expires
   * it so the SYN is scheduled anew.
   */
  reusableForNewSyn(id: number): boolean {
    const t = this.table;
    if (this.sysctls.connReuseMode === 0 || t.control[id] >= 0) return false;
    const s = t.stateOf(id);
    return t.protocolOf(id) === IPPROTO_TCP && (s === TCP_S_TIME_WAIT || s === TCP_S_CLOSE);
  }

  /**
   * A client packet found connection `id` (kernel ip_vs_in_hook): returns `id` to use it, -1 when it was
   * expired and the packet is to be scheduled anew (conn_reuse_mode for a SYN; a deleted real server with
   * expire_nodest_conn=1; a new SYN to a quiesced server), CONN_DEST_UNAVAILABLE when the packet is
   * dropped (deleted real server, expire_nodest_conn=0: until the connection times out).
   */
  existingForInbound(id: number, syn: boolean): number {
    const t = this.table, d = this.dests, dest = t.destOf(id);
    if (syn && this.reusableForNewSyn(id)) {
      this.expireNow(id);
      return -1;
    }
    if (dest < 0 || (d.flags[dest] & DEST_F_AVAILABLE) === 0) {
      if (this.sysctls.expireNodestConn === 0) return CONN_DEST_UNAVAILABLE;
      this.expireNow(id);
      return -1;
    }
    if (syn && this.sysctls.expireNodestConn === 1 && d.weight[dest] === 0 && t.control[id] < 0) {
      this.expireNow(id);
      return -1;
    }
    return id;
  }

  /** Remove a connection now, with the accounting of an expiry. */
  expireNow(id: number): void {
    this.unbind(id);
    this.table.remove(id);
  }

  /** Run timers up to `now`. */
  expire(now: number): void {
    this.table.expire(now, this.onTimer);
  }

  private readonly onTimer = (id: number): void => {
    const t = this.table;
    if (t.nControl[id] > 0) {
      // Still controls connections (a template): come back in 60 s (kernel ip_vs_conn_expire).
      t.refresh(id, CONTROLLING_REARM_MS, t.expires[id]);
      return;
    }
    this.unbind(id);
    t.remove(id);
  };

  private setState(id: number, next: number): void {
    const t = this.table, d = this.dests, dest = t.destOf(id);
    const flags = t.flagsOf(id);
    if (dest >= 0) {
      const wasInactive = (flags & CONN_F_INACTIVE) !== 0;
      const nowActive = isActiveTcpState(next);
      if (wasInactive && nowActive) {
        d.activeConns[dest]++;
        d.inactConns[dest]--;
        t.setFlags(id, flags & ~CONN_F_INACTIVE);
      } else if (!wasInactive && !nowActive) {
        d.activeConns[dest]--;
        d.inactConns[dest]++;
        t.setFlags(id, flags | CONN_F_INACTIVE);
      }
    }
    t.setState(id, next);
  }

  /** Kernel ip_vs_unbind_dest: drop the counts, maybe clear OVERLOAD, release the controlling template. */
  private unbind(id: number): void {
    const t = this.table, d = this.dests, dest = t.destOf(id);
    const flags = t.flagsOf(id);
    if (dest >= 0 && (flags & CONN_F_ONE_PACKET) !== 0) {
      d.onePacketConns[dest]--;
      t.setDest(id, -1);
      if (d.references(dest) === 0) this.onDestinationUnreferenced?.(dest);
    } else if (dest >= 0) {
      if (flags & CONN_F_TEMPLATE) d.persistConns[dest]--;
      else if (flags & CONN_F_INACTIVE) d.inactConns[dest]--;
      else d.activeConns[dest]--;
      const total = d.activeConns[dest] + d.inactConns[dest];
      const l = d.lThreshold[dest], u = d.uThreshold[dest];
      if (l !== 0) {
        if (total < l) d.flags[dest] &= ~DEST_F_OVERLOAD;
      } else if (u !== 0) {
        if (total * 4 < u * 3) d.flags[dest] &= ~DEST_F_OVERLOAD;
      } else d.flags[dest] &= ~DEST_F_OVERLOAD;
      t.setDest(id, -1);
      if (d.references(dest) === 0) this.onDestinationUnreferenced?.(dest);
    }
    const ctl = t.control[id];
    if (ctl >= 0) {
      t.nControl[ctl]--;
      t.control[id] = -1;
    }
  }
}
