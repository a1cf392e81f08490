/**
 * The keepalived model -> the IPVS table keepalived would program -> tapvs control commands.
 *
 *  - `planTable` decides, like keepalived's ipwrapper.c (init_service_vs / init_service_rs /
 *    update_quorum_state), which destinations each service has: a real server that is alive is in
 *    with its weight; one that is down is out, or in with weight 0 under inhibit_on_failure; alpha
 *    checkers start down, so at start an alpha real server is not added (weight 0 with inhibit); when
 *    the alive weight is under quorum (+ hysteresis) and there is a sorry server, the real servers
 *    leave and the sorry server serves; a sorry_server_inhibit sorry server stays with weight 0.
 *    What is alive comes from a RuntimeState (the health-check engine); without one, real servers
 *    start as keepalived starts them and keep that state across reloads.
 *  - `diffCommands` turns the difference between a table (a TableSnapshot) and the plan into
 *    add/edit/delete commands, so unchanged services and destinations (and their connections and
 *    counters) are left alone. `initialCommands` and `reloadCommands` build on it.
 *
 * DR and TUN become ForwardMethod.Route / Tunnel destinations, never NAT: the data plane decides what
 * it supports, and what it refuses (e.g. GUE/GRE tunnels) is reported at the virtual server's line.
 * FNAT (DPVS) becomes ForwardMethod.FullNat destinations; every service of a virtual server lists its
 * local_address_group's addresses as `laddrs` (empty without FULLNAT), so a reload adds and deletes
 * local addresses by difference, and the virtual server's client address mode (proxy_protocol v2 /
 * client_address) becomes the service's `clientAddress`.
 */
import { formatIPv4, formatIPv6, inetPton4, inetPton6 } from '../cli/address-port.js';
import {
  ForwardMethod,
  IPPROTO_TCP,
  SVC_F_PERSISTENT,
  type DestinationConfig,
  type ServiceConfig,
  type ServiceKey,
  type Timeouts,
} from '../control/model.js';
import type { Command } from '../control/protocol.js';
import { destKeyString, diffCommands, serviceKeyString, type TableLike } from '../control/table-diff.js';
export { diffCommands, serviceKeyString, destKeyString, type TableLike } from '../control/table-diff.js';
import { KEEPALIVED_DEFAULTS, formatHostPort, type ForwardSpec, type KeepalivedConfig, type RealServer, type SorryServer, type VirtualServer } from './config.js';
import { Diagnostics, formatRef, type Diagnostic, type SourceRef } from './diagnostics.js';

/** Where a service or destination of the plan comes from in the configuration. */
export interface CommandOrigin {
  /** The virtual_server line. */
  vs: SourceRef;
  vsId: string;
  /** The real_server (or sorry_server) line, for destinations. */
  rs?: SourceRef;
  rsId?: string;
  role?: 'real' | 'sorry';
}

export interface PlannedDest extends DestinationConfig {
  origin: CommandOrigin;
}

export interface PlannedService extends ServiceConfig {
  dests: PlannedDest[];
  /** FULLNAT local addresses (the laddr_group_name group's), [] for other services. */
  laddrs: string[];
  origin: CommandOrigin;
}

/** A service table shape: TableSnapshot and Plan both fit. */
/**
 * The live state the plan depends on: which real servers are alive, the quorum state of each virtual
 * server, and the current effective weights. The health-check engine implements it; ids are
 * VirtualServer.id and RealServer.id. `undefined` means "not known" (a new virtual/real server).
 */
export interface RuntimeState {
  realServerAlive(vsId: string, rsId: string): boolean | undefined;
  quorumUp(vsId: string): boolean | undefined;
  /** Effective weight (e.g. from MISC_CHECK misc_dynamic); undefined = the configured weight. */
  realServerWeight?(vsId: string, rsId: string): number | undefined;
}

/** The decisions a plan made, usable as the RuntimeState of the next plan (reload without checkers). */
export class PlanState implements RuntimeState {
  readonly alive = new Map<string, boolean>();
  readonly quorum = new Map<string, boolean>();

  realServerAlive(vsId: string, rsId: string): boolean | undefined {
    return this.alive.get(`${vsId}|${rsId}`);
  }
  quorumUp(vsId: string): boolean | undefined {
    return this.quorum.get(vsId);
  }
}

export interface Plan {
  /** Services in configuration order, each with its destinations in the order keepalived adds them. */
  services: PlannedService[];
  /** Every destination keepalived manages (all real and sorry servers, alive or not), per service. */
  owned: TableLike;
  /** lvs_flush: the table is flushed before the services are added (at start only). */
  flush: boolean;
  /** lvs_timeouts: 0 = leave unchanged (ipvsadm --set semantics). */
  timeouts?: Timeouts;
  state: PlanState;
  /** Problems the plan found (services defined twice). */
  diagnostics: Diagnostic[];
}

// ------------------------------------------------------------------------------------------------

function addressesOf(af: 4 | 6, first: string, last: string): string[] {
  if (af === 4) {
    const a = inetPton4(first)!;
    const b = inetPton4(last)!;
    const out: string[] = [];
    for (let v = a; v <= b; v++) out.push(formatIPv4(v >>> 0));
    return out;
  }
  const toBig = (bytes: Uint8Array): bigint => bytes.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
  const a = toBig(inetPton6(first)!);
  const b = toBig(inetPton6(last)!);
  const out: string[] = [];
  for (let v = a; v <= b; v++) {
    const bytes = new Uint8Array(16);
    let x = v;
    for (let i = 15; i >= 0; i--) {
      bytes[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    out.push(formatIPv6(bytes));
  }
  return out;
}

/** The IPVS services a virtual server stands for (one per address of a group, one per fwmark). */
export function expandServices(vs: VirtualServer): ServiceConfig[] {
  const persistent = vs.persistenceTimeout > 0;
  const base = (af: 4 | 6) => ({
    scheduler: vs.scheduler,
    flags: vs.flags | (persistent ? SVC_F_PERSISTENT : 0),
    timeout: persistent ? vs.persistenceTimeout : 0,
    netmask: persistent && vs.persistenceGranularity !== undefined ? vs.persistenceGranularity : af === 4 ? '255.255.255.255' : '128',
    pe: persistent ? (vs.persistenceEngine ?? '') : '',
    ...(vs.clientAddress !== 'none' ? { clientAddress: vs.clientAddress } : {}),
  });
  const fwmarkService = (af: 4 | 6, mark: number): ServiceConfig => ({
    af,
    protocol: IPPROTO_TCP, // as ipvsadm -f sets it; fwmark services match any protocol
    addr: af === 4 ? '0.0.0.0' : '::',
    port: 0,
    fwmark: mark,
    ...base(af),
  });
  const t = vs.target;
  if (t.kind === 'address') return [{ af: vs.af, protocol: vs.protocol, addr: t.addr, port: t.port, fwmark: 0, ...base(vs.af) }];
  if (t.kind === 'fwmark') return [fwmarkService(vs.af, t.mark)];
  const out: ServiceConfig[] = [];
  for (const e of t.group.entries) {
    if (e.kind === 'fwmark') out.push(fwmarkService(e.af, e.mark));
    else for (const addr of addressesOf(e.af, e.first, e.last)) out.push({ af: e.af, protocol: vs.protocol, addr, port: e.port, fwmark: 0, ...base(e.af) });
  }
  return out;
}

const FORWARD: Record<ForwardSpec['method'], ForwardMethod> = {
  NAT: ForwardMethod.Masq,
  DR: ForwardMethod.Route,
  TUN: ForwardMethod.Tunnel,
  FULLNAT: ForwardMethod.FullNat,
};
const TUN_TYPE = { ipip: 0, gue: 1, gre: 2 } as const;
const TUN_CSUM = { nocsum: 0, csum: 1, remcsum: 2 } as const;

/** The destination of a real/sorry server in one service (ipvswrapper.c ipvs_set_drule / ipvs_cmd). */
function destination(svc: ServiceConfig, server: RealServer | SorryServer, weight: number): DestinationConfig {
  const f: ForwardSpec = server.forward;
  // DR/TUN destinations use the service's port (0 for fwmark services); NAT and FULLNAT keep the server's.
  const port = f.method === 'NAT' || f.method === 'FULLNAT' ? server.port : svc.fwmark !== 0 ? 0 : svc.port;
  const isReal = 'uThreshold' in server;
  return {
    af: server.af,
    addr: server.addr,
    port,
    forward: FORWARD[f.method],
    weight: Math.max(0, Math.min(0x7fffffff, weight)),
    uThreshold: isReal ? server.uThreshold : 0,
    lThreshold: isReal ? server.lThreshold : 0,
    tunType: f.method === 'TUN' ? TUN_TYPE[f.tunType] : 0,
    tunPort: f.method === 'TUN' ? f.tunPort : 0,
    tunFlags: f.method === 'TUN' ? TUN_CSUM[f.tunCsum] : 0,
  };
}

/**
 * The table keepalived would program for `cfg`, given the live state (see RuntimeState). Without a
 * runtime state this is the start-up table: real servers without alpha checkers are alive.
 */
export function planTable(cfg: KeepalivedConfig, runtime?: RuntimeState): Plan {
  const diags = new Diagnostics();
  const state = new PlanState();
  const services: PlannedService[] = [];
  const owned: PlannedService[] = [];
  const seen = new Map<string, CommandOrigin>();
  for (const vs of cfg.virtualServers) {
    const vsOrigin: CommandOrigin = { vs: vs.at, vsId: vs.id };
    const laddrs = vs.localAddressGroup?.addresses ?? [];

    // Alive state and weights of the real servers, then the quorum (update_quorum_state).
    const alive = new Map<RealServer, boolean>();
    const weight = new Map<RealServer, number>();
    let weightSum = 0;
    for (const rs of vs.realServers) {
      const known = runtime?.realServerAlive(vs.id, rs.id);
      const a = known ?? !rs.checkers.some((c) => c.alpha);
      const w = runtime?.realServerWeight?.(vs.id, rs.id) ?? rs.weight;
      alive.set(rs, a);
      weight.set(rs, w);
      state.alive.set(`${vs.id}|${rs.id}`, a);
      if (a) weightSum += Math.max(0, w);
    }
    const prev = runtime?.quorumUp(vs.id);
    const up =
      prev === true ? !(weightSum === 0 || weightSum < vs.quorum - vs.hysteresis) : weightSum >= vs.quorum + vs.hysteresis;
    state.quorum.set(vs.id, up);
    const sorry = vs.sorryServer;
    const sorryActive = !up && sorry !== undefined;

    for (const svc of expandServices(vs)) {
      const key = serviceKeyString(svc);
      const first = seen.get(key);
      if (first) {
        diags.warn(vs.at, `virtual_server ${vs.id}: service ${describeService(svc)} is already defined by virtual_server ${first.vsId} at ${formatRef(first.vs)} - ignored here`);
        continue;
      }
      seen.set(key, vsOrigin);
      const dests = new Map<string, PlannedDest>();
      const all = new Map<string, PlannedDest>();
      const put = (map: Map<string, PlannedDest>, server: RealServer | SorryServer, w: number, role: 'real' | 'sorry'): void => {
        const d = destination(svc, server, w);
        const k = destKeyString(d);
        map.delete(k); // a sorry server that duplicates a real server replaces it (and goes last)
        map.set(k, { ...d, origin: { ...vsOrigin, rs: server.at, rsId: server.id, role } });
      };
      for (const rs of vs.realServers) {
        put(all, rs, weight.get(rs)!, 'real');
        const a = alive.get(rs)!;
        if (a && !sorryActive) put(dests, rs, weight.get(rs)!, 'real');
        else if (rs.inhibitOnFailure) put(dests, rs, 0, 'real');
      }
      if (sorry) {
        put(all, sorry, KEEPALIVED_DEFAULTS.sorryServerWeight, 'sorry');
        if (sorryActive) put(dests, sorry, KEEPALIVED_DEFAULTS.sorryServerWeight, 'sorry');
        else if (sorry.inhibit && !vs.realServers.some((r) => r.id === sorry.id)) put(dests, sorry, 0, 'sorry');
      }
      services.push({ ...svc, dests: [...dests.values()], laddrs: [...laddrs], origin: vsOrigin });
      owned.push({ ...svc, dests: [...all.values()], laddrs: [...laddrs], origin: vsOrigin });
    }
  }
  const t = cfg.global.lvsTimeouts;
  return {
    services,
    owned: { services: owned },
    flush: cfg.global.lvsFlush,
    ...(t ? { timeouts: { tcp: t.tcp ?? 0, tcpfin: t.tcpfin ?? 0, udp: t.udp ?? 0 } } : {}),
    state,
    diagnostics: diags.list,
  };
}

function describeService(s: ServiceKey): string {
  if (s.fwmark !== 0) return `FWM ${s.fwmark >>> 0}`;
  return `${s.protocol === 6 ? 'TCP' : s.protocol === 17 ? 'UDP' : s.protocol === 132 ? 'SCTP' : s.protocol} ${formatHostPort(s.addr, s.port)}`;
}

/** The commands that load a plan at start: [flush], [set-timeouts], then the services. */
export function initialCommands(plan: Plan): Command[] {
  const cmds: Command[] = [];
  if (plan.flush) cmds.push({ op: 'flush' });
  if (plan.timeouts) cmds.push({ op: 'set-timeouts', timeouts: { ...plan.timeouts } });
  // With lvs_flush the table is empty when the services are added; otherwise services already in the
  // table (e.g. from --rules) must not be silently taken over: adding them fails with EEXIST.
  cmds.push(...diffCommands({ services: [] }, plan));
  return cmds;
}

/**
 * The commands of a reload: the difference between the live table and the new plan, deleting only
 * what the previous configuration managed (`previous.owned`), plus lvs_timeouts if they changed.
 * lvs_flush does not apply on reload (as in keepalived).
 */
export function reloadCommands(plan: Plan, current: TableLike & { timeouts?: Timeouts }, previous: Plan | null): Command[] {
  const cmds = diffCommands(current, plan, previous ? previous.owned : plan.owned);
  const t = plan.timeouts;
  const c = current.timeouts;
  if (t && (!c || (t.tcp !== 0 && t.tcp !== c.tcp) || (t.tcpfin !== 0 && t.tcpfin !== c.tcpfin) || (t.udp !== 0 && t.udp !== c.udp)))
    cmds.unshift({ op: 'set-timeouts', timeouts: { ...t } });
  return cmds;
}

/** Which configuration lines a command comes from (for error messages). */
export function commandOrigin(plan: Plan, cmd: Command, previous?: Plan | null): CommandOrigin | undefined {
  if (!('service' in cmd) || cmd.service === undefined) return undefined;
  const k = serviceKeyString(cmd.service);
  for (const p of [plan.owned, previous?.owned]) {
    const svc = p?.services.find((s) => serviceKeyString(s) === k) as PlannedService | undefined;
    if (!svc) continue;
    if ('dest' in cmd) {
      const dk = destKeyString(cmd.dest);
      const d = svc.dests.find((x) => destKeyString(x) === dk) as PlannedDest | undefined;
      if (d) return d.origin;
    }
    return svc.origin;
  }
  return undefined;
}

const FORWARD_NAME: Record<number, string> = {
  [ForwardMethod.Masq]: 'NAT',
  [ForwardMethod.Route]: 'DR',
  [ForwardMethod.Tunnel]: 'TUN',
  [ForwardMethod.Local]: 'local',
  [ForwardMethod.FullNat]: 'FNAT',
};

/** One line for a command, in keepalived's vocabulary (for logs and error messages). */
export function describeCommand(cmd: Command): string {
  switch (cmd.op) {
    case 'add-service':
    case 'edit-service':
      return `${cmd.op} ${describeService(cmd.service)} (${cmd.service.scheduler})`;
    case 'delete-service':
      return `delete-service ${describeService(cmd.service)}`;
    case 'add-server':
    case 'edit-server':
      return `${cmd.op} ${describeService(cmd.service)} -> ${formatHostPort(cmd.dest.addr, cmd.dest.port)} (${FORWARD_NAME[cmd.dest.forward] ?? cmd.dest.forward}, weight ${cmd.dest.weight})`;
    case 'delete-server':
      return `delete-server ${describeService(cmd.service)} -> ${formatHostPort(cmd.dest.addr, cmd.dest.port)}`;
    case 'add-laddr':
    case 'delete-laddr':
      return `${cmd.op} ${describeService(cmd.service)} local address ${cmd.laddr}`;
    case 'set-timeouts':
      return `set-timeouts tcp ${cmd.timeouts.tcp} tcpfin ${cmd.timeouts.tcpfin} udp ${cmd.timeouts.udp}`;
    default:
      return cmd.op;
  }
}
