/**
 * The director: composes the TAP, the data plane pipeline, the connection tracker, the service table and
 * the control socket into one running load balancer. `tapvsd` is a thin command line around it.
 */
import { randomBytes } from 'node:crypto';
import { applyBatch, applyCommand } from './control/commands.js';
import type { Command, Errno, Reply, Request } from './control/protocol.js';
import { ControlServer } from './control/server.js';
import { rulesReloadCommands } from './control/table-diff.js';
import { backendHealthFrom, NO_HEALTH, type BackendHealth } from './control/health.js';
import { ServiceTable, type VirtualService } from './control/service-table.js';
import { connectionSnapshot, tableSnapshot } from './control/snapshot.js';
import { ConnectionTracker } from './conntrack/connection-tracker.js';
import { IpvsSysctls } from './control/sysctls.js';
import { TICK_MS } from './conntrack/connection-table.js';
import { HostStack } from './dataplane/host.js';
import { NeighborTable } from './dataplane/neighbors.js';
import { Pipeline } from './dataplane/pipeline.js';
import { RoutingTable, type InterfaceAddress } from './dataplane/routes.js';
import { Tap } from './dataplane/tap.js';
import { TxBatch } from './dataplane/tx-batch.js';
import { Ipv6Addresses, type InterfaceAddress6 } from './dataplane/addresses6.js';
import { formatIpv4 } from './dataplane/wire/ipv4.js';
import { parseIpv6 } from './dataplane/wire/ipv6.js';
import type { Logger } from './logger.js';
import { ESTIMATOR_PERIOD_MS, RateEstimator } from './stats/rate-estimator.js';
import { createMetricsRegistry, type DataplaneCounters, type MetricsSource } from './stats/metrics.js';
import { MetricsServer, type MetricsListen } from './stats/metrics-server.js';
import { TotalStats } from './stats/totals.js';

export interface DirectorOptions {
  tap: string;
  bridge?: string;
  /** The director's MAC on the LAN (what ARP replies announce); random locally administered if absent. */
  mac?: Uint8Array;
  addresses: InterfaceAddress[];
  /** The director's own IPv6 addresses (Neighbour Discovery, ping, on-link prefixes for IPv6 services). */
  addresses6?: InterfaceAddress6[];
  gateway?: number;
  /** IPv6 default gateway. */
  gateway6?: Uint8Array;
  socketPath: string;
  /** Connection table limit. */
  connMax: number;
  /** IPVS sysctl settings (expire_nodest_conn, ...). */
  sysctls?: IpvsSysctls;
  logger: Logger;
  /**
   * Busy-poll window in µs after each batch (tapvsd --busy-poll-us): lower latency for a busier core.
   * 0 (the default) sleeps on uv_poll right away.
   */
  busyPollUs?: number;
  /** MTU of the director's link (the TAP's), 68..9000; default 1500. */
  mtu?: number;
  /**
   * Offloads on the TAP (default on; tapvsd --no-offload): IFF_VNET_HDR with checksum and TCP segmentation
   * offload, so TCP super-frames of up to 64 KB cross it (src/dataplane/offload.ts). Where the kernel
   * refuses them the daemon runs without, and says so.
   */
  offload?: boolean;
  /** Serve Prometheus metrics at http://HOST:PORT/metrics (tapvsd --metrics). */
  metrics?: MetricsListen;
}

export function randomMac(): Uint8Array {
  const m = randomBytes(6);
  m[0] = (m[0] & 0xfe) | 0x02; // unicast, locally administered
  return new Uint8Array(m);
}

export function formatMac(m: Uint8Array): string {
  return Array.from(m, (b) => b.toString(16).padStart(2, '0')).join(':');
}

export class Director implements MetricsSource {
  readonly services = new ServiceTable();
  /** Director-wide totals (node_ipvs_*_total). */
  readonly totals = new TotalStats(this.services);
  readonly tracker: ConnectionTracker;
  readonly routes: RoutingTable;
  readonly neighbors: NeighborTable;
  readonly rates: RateEstimator;
  readonly mac: Uint8Array;
  private tap: Tap | null = null;
  private pipeline: Pipeline | null = null;
  private host: HostStack | null = null;
  private server: ControlServer | null = null;
  private metricsServer: MetricsServer | null = null;
  private timers: NodeJS.Timeout[] = [];
  private lastTableFullLog = 0;
  private readonly log: Logger;
  /** The `reload-keepalived` control request (set by tapvsd --keepalived). */
  reloadKeepalived: (() => Reply) | null = null;
  /** The `reload` control request: what SIGHUP does (set by tapvsd). */
  reloadConfiguration: (() => Reply) | null = null;
  /** The `get-checkers` control request (set by tapvsd --keepalived: the health-check engine's status). */
  getCheckers: (() => Reply) | null = null;

  /** Health of the real servers as the checkers see them (nothing known without --keepalived). */
  backendHealth(): BackendHealth {
    const r = this.getCheckers?.();
    return r && r.ok && r.checkers ? backendHealthFrom(r.checkers) : NO_HEALTH;
  }

  constructor(private readonly opts: DirectorOptions) {
    this.log = opts.logger;
    this.mac = opts.mac ?? randomMac();
    this.routes = new RoutingTable(opts.addresses, opts.gateway ?? 0);
    // Frames waiting for ARP are copied whole: room for the largest frame of the link.
    this.neighbors = new NeighborTable(1024, 256, Math.max(2048, (opts.mtu ?? 1500) + 18));
    this.tracker = new ConnectionTracker(this.services.dests, opts.connMax, performance.now(), opts.sysctls ?? new IpvsSysctls());
    this.tracker.onDestinationUnreferenced = (d) => this.services.releaseIfUnreferenced(d);
    this.rates = new RateEstimator(this.services.serviceStats, this.services.destStats);
    this.services.onStatsReset = (kind, id) => (kind === 'service' ? this.rates.resetService(id) : this.rates.resetDest(id));
    this.services.onChange = (what, svc) => this.serviceChanged(what, svc);
  }

  /** Apply commands before the data plane starts (the --rules file); all or nothing. */
  applyInitial(req: Request): Reply {
    return this.handle(req);
  }

  async start(): Promise<void> {
    const mtu = this.opts.mtu ?? 1500;
    // A slot holds the largest frame (MTU + Ethernet header + a VLAN tag's worth) after the headroom.
    const slotSize = Math.max(2048, 64 + mtu + 14 + 4);
    let tap: Tap;
    if (this.opts.offload ?? true) {
      try {
        tap = new Tap(this.opts.tap, { slotSize, offload: true });
      } catch (e) {
        this.log.warn('TAP offloads refused by the kernel: running without', { error: (e as Error).message });
        tap = new Tap(this.opts.tap, { slotSize });
      }
    } else tap = new Tap(this.opts.tap, { slotSize });
    this.tap = tap;
    try {
      if (mtu !== 1500) tap.device.setMtu(mtu);
      if (this.opts.bridge) tap.device.addToBridge(this.opts.bridge);
      tap.device.setUp(true);
    } catch (e) {
      tap.close();
      this.tap = null;
      throw e;
    }
    if (this.opts.busyPollUs) tap.device.setBusyPoll(this.opts.busyPollUs, Math.max(2000, this.opts.busyPollUs * 4));
    const tx = new TxBatch(tap);
    this.host = new HostStack(this.mac, tx);
    this.pipeline = new Pipeline(this.mac, this.services, this.tracker, this.routes, this.neighbors, this.host, tx);
    this.pipeline.linkMtu = mtu;
    this.pipeline.offload.rxVnet = tap.rxVnet;
    this.pipeline.setAddresses6(new Ipv6Addresses(this.opts.addresses6 ?? [], this.opts.gateway6 ?? null));
    const pipeline = this.pipeline;
    tap.start((count) => pipeline.processBatch(tap.arena, tap.slotSize, tap.headroom, tap.rxLengths, count, performance.now()));
    this.log.info('TAP up', { tap: tap.name, created: tap.created, bridge: this.opts.bridge ?? null, mac: formatMac(this.mac), offload: tap.rxVnet !== null });

    this.timers.push(
      setInterval(() => this.tracker.expire(performance.now()), TICK_MS),
      setInterval(() => pipeline.tickNeighbors(performance.now()), 1000),
      setInterval(() => this.rates.run(), ESTIMATOR_PERIOD_MS),
      setInterval(() => this.watchTable(), 1000),
    );

    this.server = new ControlServer(this.opts.socketPath, (req) => this.handle(req), (m) => this.log.warn(m));
    await this.server.listen();
    this.log.info('control socket listening', { socket: this.opts.socketPath });
    if (this.opts.metrics) {
      this.metricsServer = new MetricsServer(createMetricsRegistry(this), (m) => this.log.warn(m));
      const at = await this.metricsServer.listen(this.opts.metrics);
      this.log.info('metrics listening', { url: `http://${at}/metrics` });
    }

    // Announce our addresses and VIPs (the kernel sends gratuitous ARP when an address comes up).
    for (const a of this.routes.addresses) this.host.gratuitousArp(a);
    for (const v of this.services.vips) this.host.gratuitousArp(v);
    for (const a of this.opts.addresses6 ?? []) this.host.unsolicitedNeighborAdvert(a.addr, 0);
    for (const v of this.services.vips6) {
      const addr = new Uint8Array(16);
      this.services.addresses6.copyTo(v, addr, 0);
      this.host.unsolicitedNeighborAdvert(addr, 0);
    }
    tx.flush();
  }

  handle(req: Request): Reply {
    switch (req.op) {
      case 'get-table':
        return { ok: true, table: tableSnapshot(this.services, this.tracker, this.rates) };
      case 'get-connections':
        return { ok: true, connections: connectionSnapshot(this.tracker, performance.now()) };
      case 'get-timeouts':
        return { ok: true, timeouts: this.tracker.timeouts.get() };
      case 'get-counters':
        return { ok: true, counters: this.counters() };
      case 'reload':
        return this.reloadConfiguration ? this.reloadConfiguration() : { ok: false, errno: 'EOPNOTSUPP', message: 'this daemon has nothing to reload' };
      case 'reload-keepalived':
        return this.reloadKeepalived ? this.reloadKeepalived() : { ok: false, errno: 'EOPNOTSUPP', message: 'tapvsd was not started with --keepalived' };
      case 'get-checkers':
        return this.getCheckers ? this.getCheckers() : { ok: false, errno: 'EOPNOTSUPP', message: 'tapvsd was not started with --keepalived' };
      case 'batch': {
        if (!Array.isArray(req.commands)) return { ok: false, errno: 'EINVAL', message: 'batch needs commands' };
        const reply = this.applyCommands(req.commands);
        if (reply.ok) this.log.info('rules restored', { commands: req.commands.length });
        return reply;
      }
      default: {
        const commitTotals = this.totals.prepare([req]);
        const err = applyCommand(this.services, this.tracker.timeouts, req);
        if (err) return { ok: false, errno: err.errno, message: err.message };
        commitTotals();
        if (req.op === 'set-timeouts') this.log.info('timeouts set', { ...this.tracker.timeouts.get() });
        if (req.op === 'zero') this.log.info('counters zeroed');
        return { ok: true };
      }
    }
  }

  /**
   * Make the configuration what the --rules file says (SIGHUP): the file is checked on a scratch table,
   * then only the difference is applied in one all-or-nothing batch, so unchanged services and real
   * servers keep their connections, counters and scheduler state (unlike `ipvsadm -C; ipvsadm -R`).
   * A failure's failedIndex counts the file's commands, as for the --rules file at start.
   */
  replaceRules(commands: Command[]): Reply {
    const diff = rulesReloadCommands(tableSnapshot(this.services, this.tracker, this.rates), commands);
    if ('failedIndex' in diff) return { ok: false, errno: diff.errno as Errno, failedIndex: diff.failedIndex, message: diff.message };
    const reply = this.applyCommands(diff.commands);
    if (!reply.ok) return { ok: false, errno: reply.errno, message: `applying the difference failed: ${reply.message ?? reply.errno}` };
    return reply;
  }

  /** One all-or-nothing batch (applyBatch), keeping the totals right across -Z. */
  private applyCommands(commands: Command[]): Reply {
    const commitTotals = this.totals.prepare(commands);
    const fail = applyBatch(this.services, this.tracker, commands);
    if (fail) return { ok: false, errno: fail.errno, failedIndex: fail.failedIndex, message: fail.message };
    commitTotals();
    return { ok: true };
  }

  private serviceChanged(what: string, svc?: VirtualService): void {
    if (what === 'service-removed' && svc) this.totals.retire(svc.id);
    if (svc) {
      const c = svc.config;
      const name = c.fwmark !== 0 ? `FWM ${c.fwmark}` : `${c.protocol === 6 ? 'TCP' : 'UDP'} ${c.addr}:${c.port}`;
      const dests = svc.dests.map((id) => {
        const d = svc.destConfigs.get(id)!;
        return `${d.addr}:${d.port}/w${d.weight}`;
      });
      this.log.info(`service ${what.replace('service-', '')}`, { service: name, scheduler: c.scheduler, dests });
      if (what === 'service-added' && this.host && c.fwmark === 0) {
        if (c.af === 6) {
          const vip = parseIpv6(c.addr)!;
          this.host.unsolicitedNeighborAdvert(vip, 0);
          this.log.info('VIP announced', { vip: c.addr });
        } else if (this.services.vips.includes(svc.vaddr)) {
          this.host.gratuitousArp(svc.vaddr);
          this.log.info('VIP announced', { vip: formatIpv4(svc.vaddr) });
        }
      }
    }
    this.pipeline?.resetDestinationCache();
  }

  private watchTable(): void {
    const refused = this.tracker.refusedFull;
    if (refused > this.lastTableFullLog) {
      this.log.warn('connection table full: new connections refused', { refused, limit: this.tracker.table.maxEntries });
      this.lastTableFullLog = refused;
    }
  }

  /** Data plane counters for status views and tests. */
  counters(): Record<string, unknown> {
    return {
      drops: this.pipeline?.drops.snapshot() ?? {},
      framesIn: this.pipeline?.framesIn ?? 0,
      forwardedIn: this.pipeline?.forwardedIn ?? 0,
      forwardedOut: this.pipeline?.forwardedOut ?? 0,
      connections: this.tracker.table.count,
      tap: this.tap?.device.counters() ?? {},
      neighbors: this.neighbors.size,
      batches: this.pipeline?.batches ?? 0,
      offload: { enabled: this.tap?.rxVnet != null, superFrames: this.pipeline?.offload.superFrames ?? 0, segmented: this.pipeline?.offload.segmented ?? 0 },
      connectionCapacity: { maxEntries: this.tracker.table.maxEntries, memoryBytes: this.tracker.table.memoryBytes() },
    };
  }

  /** The data plane's counters for the metrics collectors (null before start). */
  dataplaneCounters(): DataplaneCounters | null {
    const p = this.pipeline;
    if (!p) return null;
    return {
      drops: p.drops.counts,
      framesIn: p.framesIn,
      forwardedIn: p.forwardedIn,
      forwardedOut: p.forwardedOut,
      batches: p.batches,
      tap: this.tap?.device.counters() ?? {},
    };
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.metricsServer?.close();
    this.metricsServer = null;
    await this.server?.close();
    this.server = null;
    if (this.tap) {
      const created = this.tap.created;
      this.tap.close();
      this.log.info('TAP closed', { tap: this.opts.tap, removed: created });
      this.tap = null;
    }
  }
}
