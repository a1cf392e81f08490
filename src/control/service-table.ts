/**
 * The virtual services and their destinations: the one source of truth that the CLI, `-R` and the
 * rules file change (through commands.ts) and the data plane reads. Each operation mirrors the
 * kernel's (ip_vs_ctl.c) checks and returns the errno the kernel would, or null on success.
 *
 * Destinations of a service are kept in kernel list order: a new destination goes to the head.
 */
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD, DestinationTable } from '../dataplane/destination-table.js';
import { parseIpv4 } from '../dataplane/wire/ipv4.js';
import { parseIpv6 } from '../dataplane/wire/ipv6.js';
import type { Ipv6AddressIds } from '../dataplane/ipv6-address-ids.js';
import { PROTO_INET6 } from '../conntrack/connection-flags.js';
import { DestinationChange, type Scheduler } from '../schedulers/scheduler.js';
import { createScheduler } from '../schedulers/registry.js';
import { CounterTable } from '../stats/counters.js';
import {
  ForwardMethod,
  sameMarkRule,
  type ClientAddressMode,
  type MarkRule,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  SVC_F_SCHED_MASK,
  sameDestinationKey,
  sameServiceKey,
  serviceKeyOf,
  type DestinationConfig,
  type DestinationKey,
  type ServiceConfig,
  type ServiceKey,
} from './model.js';
import type { Errno } from './protocol.js';

export class VirtualService {
  /** Persistent service (-p): connections are scheduled through templates. */
  persistent = false;
  /** Persistence granularity (-M) as a host-order u32 mask (IPv4 services). */
  netmask = 0xffffffff;
  /** Persistence granularity of an IPv6 service: the client prefix length (-M 64), 128 = per address. */
  prefix6 = 128;
  /** The family tag of the service's lookups: PROTO_INET6 for an IPv6 service, 0 for IPv4. */
  familyTag = 0;
  /** Persistence timeout in ms. */
  timeoutMs = 0;

  constructor(
    readonly id: number,
    public config: ServiceConfig,
    /** The VIP as a host-order u32 (IPv6: its Ipv6AddressIds id; 0 for fwmark services). */
    readonly vaddr: number,
    public scheduler: Scheduler,
  ) {
    this.applyConfig(config);
  }

  applyConfig(cfg: ServiceConfig): void {
    this.config = { ...cfg };
    this.persistent = (cfg.flags & SVC_F_PERSISTENT) !== 0;
    this.familyTag = cfg.af === 6 ? PROTO_INET6 : 0;
    if (cfg.af === 6) this.prefix6 = Number(cfg.netmask);
    else this.netmask = parseIpv4(cfg.netmask) >>> 0;
    this.timeoutMs = cfg.timeout * 1000;
    this.clientAddress = cfg.clientAddress ?? 'none';
  }

  /** The next local address round robin (its index in `laddrs`), -1 when the pool is empty. */
  nextLocalAddress(): number {
    const n = this.laddrs.length;
    if (n === 0) return -1;
    const i = this.laddrCursor % n;
    this.laddrCursor = (i + 1) % n;
    return i;
  }
  /** Destination ids in kernel list order (newest first). */
  dests: number[] = [];
  /** Configuration of each destination id in `dests`. */
  destConfigs = new Map<number, DestinationConfig>();
  /** FULLNAT local addresses (host-order u32, IPv6: ids), used round robin; with a local-port counter each. */
  laddrs: number[] = [];
  laddrPortCounters = new Uint32Array(0);
  laddrCursor = 0;
  /** FULLNAT client-address passing (PROXY protocol v2 / TOA). */
  clientAddress: ClientAddressMode = 'none';
}

export interface ControlError {
  errno: Errno;
  message?: string;
}

const INDEX_EMPTY = -1;

export class ServiceTable {
  readonly dests: DestinationTable;
  readonly serviceStats = new CounterTable();
  readonly destStats = new CounterTable();
  /** Services in creation order (the listing's unsorted order). */
  readonly services: VirtualService[] = [];
  /** Called after any change, so the data plane can react (gratuitous ARP for new VIPs, etc.). */
  onChange: ((what: 'service-added' | 'service-removed' | 'changed', svc?: VirtualService) => void) | null = null;
  /** Called when counters of a service or destination id restart from zero (-Z, or a new id). */
  onStatsReset: ((kind: 'service' | 'dest', id: number) => void) | null = null;

  private readonly byId: (VirtualService | undefined)[] = [];
  /** Destinations deleted while connections still use them (the kernel's trash), and where they came from. */
  private readonly trash = new Map<number, { service: VirtualService; key: ServiceKey }>();
  private freeIds: number[] = [];
  // Open-addressing index (protocol, vaddr, vport) -> service id, read per packet by the data plane.
  private idxAddr = new Uint32Array(16);
  private idxPort = new Uint16Array(16);
  /** Protocol with the family tag (PROTO_INET6) of each slot. */
  private idxProto = new Uint32Array(16);
  private idxService = new Int32Array(16).fill(INDEX_EMPTY);
  private idxMask = 15;
  /** Every VIP (of address services and of mark rules), for ARP, ICMP echo and classification. */
  vips = new Uint32Array(0);
  /** Every FULLNAT local address of every service. */
  lips = new Uint32Array(0);
  /** The same two for IPv6 services, as Ipv6AddressIds ids. */
  vips6 = new Uint32Array(0);
  lips6 = new Uint32Array(0);
  /** fwmark services: mark, family tag and service id, scanned when a marked packet is scheduled. */
  private fwmarks = new Uint32Array(0);
  private fwmarkFamily = new Uint32Array(0);
  private fwmarkService = new Int32Array(0);
  private portZeroServices = 0;
  /** Mark rules in match order, and their compiled form. */
  readonly markRules: MarkRule[] = [];
  private ruleAddr = new Uint32Array(0);
  /** PROTO_INET6 for an IPv6 rule (its address an Ipv6AddressIds id), 0 for IPv4. */
  private ruleFamily = new Uint32Array(0);
  private ruleProto = new Uint8Array(0);
  private ruleMark = new Uint32Array(0);
  private rulePortFirst = new Int32Array(0);
  private rulePortCount = new Int32Array(0);
  private rulePortLo = new Uint16Array(0);
  private rulePortHi = new Uint16Array(0);

  constructor(dests = new DestinationTable()) {
    this.dests = dests;
  }

  /** Ids of the IPv6 addresses of services, real servers and local addresses (the destination table's registry). */
  get addresses6(): Ipv6AddressIds {
    return this.dests.addresses6;
  }

  service(id: number): VirtualService | undefined {
    return this.byId[id];
  }

  find(key: ServiceKey): VirtualService | undefined {
    return this.services.find((s) => sameServiceKey(s.config, key));
  }

  /**
   * Per-packet service lookup (kernel ip_vs_service_find, address services): service id or -1. IPv6:
   * `protocol | PROTO_INET6` and the VIP's address id.
   */
  lookup(protocol: number, vaddr: number, vport: number): number {
    let h = (Math.imul(vaddr ^ (vport << 16) ^ protocol, 0x9e3779b1) >>> 16) & this.idxMask;
    for (;;) {
      const s = this.idxService[h];
      if (s === INDEX_EMPTY) return -1;
      if (this.idxAddr[h] === vaddr && this.idxPort[h] === vport && this.idxProto[h] === protocol) return s;
      h = (h + 1) & this.idxMask;
    }
  }

  /**
   * The service for a packet that opens a connection, in the kernel's order (ip_vs_service_find):
   * the fwmark service of the packet's mark, the exact (protocol, VIP, port), then a port-0 service of the
   * VIP (persistent, all ports). Service id or -1.
   */
  lookupForScheduling(protocol: number, vaddr: number, vport: number, mark: number): number {
    if (mark !== 0) {
      // IPVS keys fwmark services by (family, mark).
      const m = this.fwmarks, family = protocol & PROTO_INET6;
      for (let i = 0; i < m.length; i++) if (m[i] === mark && this.fwmarkFamily[i] === family) return this.fwmarkService[i];
    }
    const s = this.lookup(protocol, vaddr, vport);
    if (s >= 0 || this.portZeroServices === 0) return s;
    return this.lookup(protocol, vaddr, 0);
  }

  /**
   * The firewall mark tapvs's mark rules give a packet (first match), 0 when none matches. `protocol`
   * carries the family tag (PROTO_INET6), `daddr` is an IPv6 address id for IPv6.
   */
  classify(protocol: number, daddr: number, dport: number): number {
    const a = this.ruleAddr;
    const family = protocol & PROTO_INET6, proto = protocol & 0xff;
    for (let r = 0; r < a.length; r++) {
      if (a[r] !== daddr || this.ruleFamily[r] !== family) continue;
      const p = this.ruleProto[r];
      if (p !== 0 && p !== proto) continue;
      const n = this.rulePortCount[r];
      if (n === 0) return this.ruleMark[r];
      const first = this.rulePortFirst[r];
      for (let i = first; i < first + n; i++) if (dport >= this.rulePortLo[i] && dport <= this.rulePortHi[i]) return this.ruleMark[r];
    }
    return 0;
  }

  addMarkRule(rule: MarkRule): ControlError | null {
    const invalid = checkMarkRule(rule);
    if (invalid) return invalid;
    if (this.markRules.some((r) => sameMarkRule(r, rule))) return { errno: 'EEXIST' };
    // An IPv6 rule's address is held as an address id (released with the rule).
    if (rule.af === 6 && this.addresses6.acquireText(rule.addr) < 0) return { errno: 'ENOMEM' };
    this.markRules.push({ ...rule, ports: rule.ports.map(([lo, hi]) => [lo, hi] as [number, number]) });
    this.rebuildIndex();
    this.onChange?.('changed');
    return null;
  }

  deleteMarkRule(rule: MarkRule): ControlError | null {
    const i = this.markRules.findIndex((r) => sameMarkRule(r, rule));
    if (i < 0) return { errno: 'ENOENT' };
    const [removed] = this.markRules.splice(i, 1);
    if (removed.af === 6) this.addresses6.release(this.addresses6.findText(removed.addr));
    this.rebuildIndex();
    this.onChange?.('changed');
    return null;
  }

  /** FULLNAT: add a local address to a service's pool (DPVS --add-laddr). */
  addLocalAddress(key: ServiceKey, laddr: string): ControlError | null {
    const svc = this.find(key);
    if (!svc) return { errno: 'ESRCH' };
    let a: number;
    if (svc.config.af === 6) {
      if (!isUnicast6(laddr)) return { errno: 'EINVAL', message: `invalid local address ${laddr}` };
      const known = this.addresses6.findText(laddr);
      if (known > 0 && svc.laddrs.includes(known)) return { errno: 'EEXIST' };
      a = this.addresses6.acquireText(laddr);
      if (a < 0) return { errno: 'ENOMEM' };
    } else {
      a = parseIpv4(laddr) >>> 0;
      const first = a >>> 24;
      if (!(parseIpv4(laddr) >= 0) || first === 0 || first === 127 || first >= 224) return { errno: 'EINVAL', message: `invalid local address ${laddr}` };
      if (svc.laddrs.includes(a)) return { errno: 'EEXIST' };
    }
    svc.laddrs.push(a);
    const counters = new Uint32Array(svc.laddrs.length);
    counters.set(svc.laddrPortCounters);
    svc.laddrPortCounters = counters;
    this.rebuildIndex();
    this.onChange?.('changed', svc);
    return null;
  }

  /** FULLNAT: remove a local address; connections using it keep it until they end. */
  deleteLocalAddress(key: ServiceKey, laddr: string): ControlError | null {
    const svc = this.find(key);
    if (!svc) return { errno: 'ESRCH' };
    const a = svc.config.af === 6 ? this.addresses6.findText(laddr) : parseIpv4(laddr) >>> 0;
    const i = a < 0 ? -1 : svc.laddrs.indexOf(a);
    if (i < 0) return { errno: 'ENOENT' };
    svc.laddrs.splice(i, 1);
    if (svc.config.af === 6) this.addresses6.release(a);
    const counters = Array.from(svc.laddrPortCounters);
    counters.splice(i, 1);
    svc.laddrPortCounters = Uint32Array.from(counters);
    this.rebuildIndex();
    this.onChange?.('changed', svc);
    return null;
  }

  /** A FULLNAT local address of any service: answered for ARP, and replies to it are looked up. */
  isLocalAddress(addr: number): boolean {
    const l = this.lips;
    for (let i = 0; i < l.length; i++) if (l[i] === addr) return true;
    return false;
  }

  isVip(addr: number): boolean {
    const v = this.vips;
    for (let i = 0; i < v.length; i++) if (v[i] === addr) return true;
    return false;
  }

  /** IPv6: is address id `id` a VIP of an IPv6 service? */
  isVip6(id: number): boolean {
    const v = this.vips6;
    for (let i = 0; i < v.length; i++) if (v[i] === id) return true;
    return false;
  }

  /** IPv6: is address id `id` a FULLNAT local address of an IPv6 service? */
  isLocalAddress6(id: number): boolean {
    const l = this.lips6;
    for (let i = 0; i < l.length; i++) if (l[i] === id) return true;
    return false;
  }

  // ---- kernel operations -------------------------------------------------------------------------

  addService(cfg: ServiceConfig): ControlError | null {
    const invalid = this.checkServiceConfig(cfg);
    if (invalid) return invalid;
    if (this.find(cfg)) return { errno: 'EEXIST' };
    const scheduler = createScheduler(cfg.scheduler, cfg.flags & SVC_F_SCHED_MASK);
    if (!scheduler) return { errno: 'ENOENT' };
    let vaddr = 0;
    if (cfg.fwmark === 0) vaddr = cfg.af === 6 ? this.addresses6.acquireText(cfg.addr) : parseIpv4(cfg.addr) >>> 0;
    if (cfg.af === 6 && vaddr < 0) return { errno: 'ENOMEM' };
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.byId.length;
    const svc = new VirtualService(id, { ...cfg }, vaddr, scheduler);
    scheduler.update(svc.dests, this.dests, DestinationChange.Added, -1);
    this.byId[id] = svc;
    this.services.push(svc);
    this.serviceStats.ensure(id);
    this.serviceStats.zero(id);
    this.onStatsReset?.('service', id);
    this.rebuildIndex();
    this.onChange?.('service-added', svc);
    return null;
  }

  editService(cfg: ServiceConfig): ControlError | null {
    const svc = this.find(cfg);
    if (!svc) return { errno: 'ESRCH' };
    const invalid = this.checkServiceConfig(cfg);
    if (invalid) return invalid;
    const schedFlags = cfg.flags & SVC_F_SCHED_MASK;
    if (cfg.scheduler !== svc.config.scheduler || schedFlags !== (svc.config.flags & SVC_F_SCHED_MASK)) {
      const scheduler = createScheduler(cfg.scheduler, schedFlags);
      if (!scheduler) return { errno: 'ENOENT' };
      // Existing connections keep their destinations; only new ones use the new scheduler.
      svc.scheduler = scheduler;
      scheduler.update(svc.dests, this.dests, DestinationChange.Added, -1);
    }
    svc.applyConfig(cfg);
    this.onChange?.('changed', svc);
    return null;
  }

  deleteService(key: ServiceKey): ControlError | null {
    const svc = this.find(key);
    if (!svc) return { errno: 'ESRCH' };
    for (const d of [...svc.dests]) this.unlinkDest(svc, d);
    if (svc.config.af === 6) {
      if (svc.config.fwmark === 0) this.addresses6.release(svc.vaddr);
      for (const a of svc.laddrs) this.addresses6.release(a);
    }
    this.services.splice(this.services.indexOf(svc), 1);
    this.byId[svc.id] = undefined;
    this.freeIds.push(svc.id);
    this.rebuildIndex();
    this.onChange?.('service-removed', svc);
    return null;
  }

  flush(): ControlError | null {
    for (const svc of [...this.services]) this.deleteService(svc.config);
    return null;
  }

  addDest(key: ServiceKey, cfg: DestinationConfig): ControlError | null {
    const svc = this.find(key);
    if (!svc) return { errno: 'ESRCH' };
    const invalid = this.checkDestConfig(cfg) ?? checkDestFamily(svc, cfg);
    if (invalid) return invalid;
    for (const [, c] of svc.destConfigs) if (sameDestinationKey(c, cfg)) return { errno: 'EEXIST' };
    const trashed = this.findInTrash(svc, cfg);
    if (trashed >= 0) return this.reviveDest(svc, trashed, cfg);
    const rip = cfg.af === 6 ? this.addresses6.acquireText(cfg.addr) : parseIpv4(cfg.addr) >>> 0;
    if (rip < 0) return { errno: 'ENOMEM' };
    const t = this.dests;
    const id = t.allocate();
    t.addr[id] = rip;
    t.inet6[id] = cfg.af === 6 ? 1 : 0;
    t.port[id] = cfg.port;
    t.service[id] = svc.id;
    this.applyDestConfig(id, cfg);
    t.flags[id] = DEST_F_AVAILABLE;
    svc.dests.unshift(id); // kernel: list_add_rcu at the head
    svc.destConfigs.set(id, { ...cfg });
    this.destStats.ensure(id);
    this.destStats.zero(id);
    this.onStatsReset?.('dest', id);
    svc.scheduler.update(svc.dests, t, DestinationChange.Added, id);
    this.onChange?.('changed', svc);
    return null;
  }

  editDest(key: ServiceKey, cfg: DestinationConfig): ControlError | null {
    const svc = this.find(key);
    if (!svc) return { errno: 'ESRCH' };
    const invalid = this.checkDestConfig(cfg) ?? checkDestFamily(svc, cfg);
    if (invalid) return invalid;
    const id = this.findDest(svc, cfg);
    if (id < 0) return { errno: 'ENOENT' };
    this.applyDestConfig(id, cfg);
    svc.destConfigs.set(id, { ...cfg });
    svc.scheduler.update(svc.dests, this.dests, DestinationChange.Edited, id);
    this.onChange?.('changed', svc);
    return null;
  }

  deleteDest(key: ServiceKey, dest: DestinationKey): ControlError | null {
    const svc = this.find(key);
    if (!svc) return { errno: 'ESRCH' };
    const id = this.findDest(svc, dest);
    if (id < 0) return { errno: 'ENOENT' };
    this.unlinkDest(svc, id);
    this.onChange?.('changed', svc);
    return null;
  }

  zero(key?: ServiceKey): ControlError | null {
    if (key) {
      const svc = this.find(key);
      if (!svc) return { errno: 'ESRCH' };
      this.zeroService(svc);
    } else for (const svc of this.services) this.zeroService(svc);
    return null;
  }

  /** Called by the connection tracker when the last connection of a deleted destination went away. */
  releaseIfUnreferenced(id: number): void {
    const t = this.dests;
    if (t.used[id] === 1 && (t.flags[id] & DEST_F_AVAILABLE) === 0 && t.references(id) === 0) {
      this.trash.delete(id);
      if (t.inet6[id] === 1) this.addresses6.release(t.addr[id]);
      t.release(id);
    }
  }

  destConfigOf(svc: VirtualService, id: number): DestinationConfig | undefined {
    return svc.destConfigs.get(id);
  }

  // ---- internals ---------------------------------------------------------------------------------

  private zeroService(svc: VirtualService): void {
    this.serviceStats.zero(svc.id);
    this.onStatsReset?.('service', svc.id);
    for (const d of svc.dests) {
      this.destStats.zero(d);
      this.onStatsReset?.('dest', d);
    }
  }

  private findDest(svc: VirtualService, key: DestinationKey): number {
    for (const [id, c] of svc.destConfigs) if (sameDestinationKey(c, key)) return id;
    return -1;
  }

  private applyDestConfig(id: number, cfg: DestinationConfig): void {
    const t = this.dests;
    t.weight[id] = cfg.weight;
    if (cfg.weight > 0) t.lastWeight[id] = cfg.weight;
    t.forward[id] = cfg.forward;
    t.tunType[id] = cfg.tunType;
    t.tunPort[id] = cfg.tunPort;
    t.tunFlags[id] = cfg.tunFlags;
    // Kernel __ip_vs_update_dest: a zero or raised upper threshold clears OVERLOAD at once.
    if (cfg.uThreshold === 0 || cfg.uThreshold > t.uThreshold[id]) t.flags[id] &= ~DEST_F_OVERLOAD;
    t.uThreshold[id] = cfg.uThreshold;
    t.lThreshold[id] = cfg.lThreshold;
  }

  private unlinkDest(svc: VirtualService, id: number): void {
    svc.scheduler.update(svc.dests, this.dests, DestinationChange.Deleted, id);
    svc.dests.splice(svc.dests.indexOf(id), 1);
    svc.destConfigs.delete(id);
    // Kernel: the destination goes to the trash; connections bound to it keep it alive.
    this.dests.flags[id] &= ~DEST_F_AVAILABLE;
    this.trash.set(id, { service: svc, key: serviceKeyOf(svc.config) });
    this.releaseIfUnreferenced(id);
  }

  /**
   * A destination in the trash that adding `cfg` to `svc` brings back (kernel ip_vs_trash_get_dest): same
   * address family, address and port, deleted from a service with svc's key. -1 when none.
   */
  private findInTrash(svc: VirtualService, cfg: DestinationConfig): number {
    if (this.trash.size === 0) return -1;
    const t = this.dests;
    const addr = cfg.af === 6 ? this.addresses6.findText(cfg.addr) : parseIpv4(cfg.addr) >>> 0;
    for (const [id, from] of this.trash) {
      if (sameServiceKey(from.key, svc.config) && t.inet6[id] === (cfg.af === 6 ? 1 : 0) && t.addr[id] === addr && t.port[id] === cfg.port) return id;
    }
    return -1;
  }

  /**
   * Kernel ip_vs_add_dest with a trashed destination: it comes back with its connections and, when it
   * returns to the same service, its counters (a service deleted and added again is another service: the
   * counters restart, as __ip_vs_update_dest zeroes them on a new binding).
   */
  private reviveDest(svc: VirtualService, id: number, cfg: DestinationConfig): ControlError | null {
    const t = this.dests;
    const from = this.trash.get(id)!;
    this.trash.delete(id);
    if (from.service !== svc) {
      t.service[id] = svc.id;
      this.destStats.zero(id);
      this.onStatsReset?.('dest', id);
    }
    this.applyDestConfig(id, cfg);
    t.flags[id] |= DEST_F_AVAILABLE;
    svc.dests.unshift(id);
    svc.destConfigs.set(id, { ...cfg });
    svc.scheduler.update(svc.dests, t, DestinationChange.Added, id);
    this.onChange?.('changed', svc);
    return null;
  }

  private checkServiceConfig(cfg: ServiceConfig): ControlError | null {
    if (cfg.af !== 4 && cfg.af !== 6) return { errno: 'EAFNOSUPPORT' };
    if (cfg.protocol !== IPPROTO_TCP && cfg.protocol !== IPPROTO_UDP)
      return { errno: 'EINVAL', message: 'only TCP and UDP services are supported' };
    if (cfg.pe !== '') return { errno: 'EINVAL', message: 'persistence engines (--pe) are not supported yet' };
    // ipvsadm: one-packet scheduling only for UDP and fwmark services.
    if (cfg.flags & SVC_F_ONEPACKET && cfg.protocol !== IPPROTO_UDP && cfg.fwmark === 0) return { errno: 'EINVAL' };
    // Kernel: port zero only makes sense for persistent services (and fwmark services have no port).
    if (cfg.fwmark === 0 && cfg.port === 0 && (cfg.flags & SVC_F_PERSISTENT) === 0)
      return { errno: 'EINVAL', message: 'port zero is only supported in persistent services' };
    if (cfg.af === 6) {
      if (cfg.fwmark === 0 && !isUnicast6(cfg.addr)) return { errno: 'EINVAL' };
      // ipvsadm -6 -M takes a prefix length (1..128).
      const prefix = Number(cfg.netmask);
      if (!(Number.isInteger(prefix) && prefix >= 1 && prefix <= 128)) return { errno: 'EINVAL' };
    } else {
      if (cfg.fwmark === 0 && !(parseIpv4(cfg.addr) >= 0)) return { errno: 'EINVAL' };
      if (!(parseIpv4(cfg.netmask) >= 0)) return { errno: 'EINVAL' };
    }
    const ca = cfg.clientAddress ?? 'none';
    if (ca !== 'none' && ca !== 'proxy-protocol' && ca !== 'toa') return { errno: 'EINVAL', message: `unknown client address mode ${String(ca)}` };
    if (ca !== 'none' && cfg.protocol !== IPPROTO_TCP) return { errno: 'EINVAL', message: 'PROXY protocol and TOA need a TCP service' };
    if ((cfg.flags & SVC_F_PERSISTENT) !== 0 && !(cfg.timeout >= 1)) return { errno: 'EINVAL' };
    return null;
  }

  private checkDestConfig(cfg: DestinationConfig): ControlError | null {
    if (cfg.weight < 0) return { errno: 'ERANGE' };
    if (cfg.lThreshold > cfg.uThreshold) return { errno: 'ERANGE' };
    if (cfg.af === 6) {
      if (!isUnicast6(cfg.addr)) return { errno: 'EINVAL' };
      if (cfg.forward === ForwardMethod.Tunnel && cfg.tunType !== 0)
        return { errno: 'EAFNOSUPPORT', message: 'IPv6 real servers tunnel with ipip (ip6ip6) only' };
    } else {
      if (cfg.af !== 4) return { errno: 'EAFNOSUPPORT' };
      const a = parseIpv4(cfg.addr);
      if (!(a >= 0)) return { errno: 'EINVAL' };
      const first = a >>> 24;
      // Kernel: the address must be unicast (not 0/8, multicast, broadcast).
      if (first === 0 || first >= 224 || first === 127) return { errno: 'EINVAL' };
    }
    if (cfg.forward !== ForwardMethod.Masq && cfg.forward !== ForwardMethod.Route && cfg.forward !== ForwardMethod.Tunnel && cfg.forward !== ForwardMethod.FullNat)
      return { errno: 'EINVAL', message: 'forwarding method not supported' };
    if (cfg.forward === ForwardMethod.Tunnel) {
      // Kernel ip_vs_check_dest: GUE needs a port; flags per type as ipvsadm validates them.
      if (cfg.tunType > 2 || cfg.tunFlags > 2) return { errno: 'EINVAL' };
      if (cfg.tunType === 1 && cfg.tunPort === 0) return { errno: 'EINVAL', message: 'GUE tunnels need --tun-port' };
      if (cfg.tunType === 2 && cfg.tunFlags === 2) return { errno: 'EINVAL', message: 'GRE tunnels take --tun-nocsum or --tun-csum' };
    }
    return null;
  }

  private rebuildIndex(): void {
    let size = 16;
    while (size < this.services.length * 4) size *= 2;
    this.idxAddr = new Uint32Array(size);
    this.idxPort = new Uint16Array(size);
    this.idxProto = new Uint32Array(size);
    this.idxService = new Int32Array(size).fill(INDEX_EMPTY);
    this.idxMask = size - 1;
    const vips = new Set<number>(), vips6 = new Set<number>();
    const fwmarks: number[] = [], fwmarkFamily: number[] = [], fwmarkService: number[] = [];
    this.portZeroServices = 0;
    for (const s of this.services) {
      if (s.config.fwmark !== 0) {
        fwmarks.push(s.config.fwmark >>> 0);
        fwmarkFamily.push(s.familyTag);
        fwmarkService.push(s.id);
        continue;
      }
      if (s.config.port === 0) this.portZeroServices++;
      const proto = s.config.protocol | s.familyTag;
      let h = (Math.imul(s.vaddr ^ (s.config.port << 16) ^ proto, 0x9e3779b1) >>> 16) & this.idxMask;
      while (this.idxService[h] !== INDEX_EMPTY) h = (h + 1) & this.idxMask;
      this.idxAddr[h] = s.vaddr;
      this.idxPort[h] = s.config.port;
      this.idxProto[h] = proto;
      this.idxService[h] = s.id;
      (s.config.af === 6 ? vips6 : vips).add(s.vaddr);
    }
    this.fwmarks = Uint32Array.from(fwmarks);
    this.fwmarkFamily = Uint32Array.from(fwmarkFamily);
    this.fwmarkService = Int32Array.from(fwmarkService);
    const rules = this.markRules;
    this.ruleAddr = Uint32Array.from(rules.map((r) => (r.af === 6 ? this.addresses6.findText(r.addr) : parseIpv4(r.addr)) >>> 0));
    this.ruleFamily = Uint32Array.from(rules.map((r) => (r.af === 6 ? PROTO_INET6 : 0)));
    this.ruleProto = Uint8Array.from(rules.map((r) => r.protocol));
    this.ruleMark = Uint32Array.from(rules.map((r) => r.mark >>> 0));
    this.rulePortCount = Int32Array.from(rules.map((r) => r.ports.length));
    const first: number[] = [];
    let n = 0;
    for (const r of rules) {
      first.push(n);
      n += r.ports.length;
    }
    this.rulePortFirst = Int32Array.from(first);
    this.rulePortLo = Uint16Array.from(rules.flatMap((r) => r.ports.map((p) => p[0])));
    this.rulePortHi = Uint16Array.from(rules.flatMap((r) => r.ports.map((p) => p[1])));
    this.ruleAddr.forEach((a, r) => (this.ruleFamily[r] !== 0 ? vips6 : vips).add(a));
    this.vips = Uint32Array.from(vips);
    this.vips6 = Uint32Array.from(vips6);
    this.lips = Uint32Array.from(new Set(this.services.filter((s) => s.config.af !== 6).flatMap((s) => s.laddrs)));
    this.lips6 = Uint32Array.from(new Set(this.services.filter((s) => s.config.af === 6).flatMap((s) => s.laddrs)));
  }
}

/** A unicast IPv6 address in text (not ::, ::1 or multicast), as the kernel accepts for VIPs and real servers. */
function isUnicast6(text: string): boolean {
  const a = parseIpv6(text);
  if (!a || a[0] === 0xff) return false;
  let zero = true;
  for (let i = 0; i < 15; i++) if (a[i] !== 0) zero = false;
  return !(zero && (a[15] === 0 || a[15] === 1));
}

/** IPVS: a real server has its service's address family (mixed families only for tunnels, not here). */
function checkDestFamily(svc: VirtualService, cfg: DestinationConfig): ControlError | null {
  return cfg.af === svc.config.af ? null : { errno: 'EINVAL', message: 'a real server must have the address family of its service' };
}

function checkMarkRule(rule: MarkRule): ControlError | null {
  if (rule.af !== 4 && rule.af !== 6) return { errno: 'EAFNOSUPPORT' };
  if (rule.af === 6 ? !isUnicast6(rule.addr) : !(parseIpv4(rule.addr) >= 0)) return { errno: 'EINVAL', message: `invalid address ${rule.addr}` };
  if (!(rule.mark >= 1 && rule.mark <= 0xffffffff && Number.isInteger(rule.mark))) return { errno: 'EINVAL', message: 'mark must be 1..4294967295' };
  if (rule.protocol !== 0 && rule.protocol !== IPPROTO_TCP && rule.protocol !== IPPROTO_UDP) return { errno: 'EINVAL', message: 'protocol must be tcp, udp or any' };
  if (!Array.isArray(rule.ports) || rule.ports.length > 15) return { errno: 'EINVAL', message: 'at most 15 ports or ranges' };
  if (rule.ports.length > 0 && rule.protocol === 0) return { errno: 'EINVAL', message: 'ports need a protocol (tcp or udp)' };
  for (const r of rule.ports) {
    if (!Array.isArray(r) || r.length !== 2 || !Number.isInteger(r[0]) || !Number.isInteger(r[1]) || r[0] < 0 || r[1] > 65535 || r[0] > r[1])
      return { errno: 'EINVAL', message: 'invalid port range' };
  }
  return null;
}
