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
import { createMetricsRegistry, tableCountersOf, type DataplaneCounters, type MetricsSource, type TableCounters } from './stats/metrics.js';
import { MetricsServer, type MetricsListen } from './stats/metrics-server.js';
import { TotalStats } from './stats/totals.js';
import { FlowSteering } from './dataplane/flow-steering.js';
import { QueueWorkers } from './queue-workers.js';
import { DROP_REASON_NAMES } from './dataplane/drops.js';
import { addQueueTables, sumQueueCounters, sumTableCounters } from './control/queue-stats.js';
import { SVC_F_PERSISTENT, type ConnectionSnapshot, type TableSnapshot } from './control/model.js';

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
  /**
   * TAP queues (tapvsd --queues N). N > 1: the data plane runs in N worker threads, one per queue of a
   * multiqueue TAP (src/queue-workers.ts); this director keeps the control plane and a replica of the
   * configuration whose counters are the queues' sums.
   */
  queues?: number;
  /** Set inside a queue worker: the queue this director serves. It has no control socket then. */
  queue?: { index: number; count: number };
  /**
   * Multiqueue steering by the client's address alone (tapvsd --steer-by address): all of a client's
   * connections reach one queue, so persistent services work; the default also hashes the client's port.
   */
  steerByAddress?: boolean;
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
  /** Multiqueue: the workers (main thread), and the steering program (queue 0's worker). */
  private workers: QueueWorkers | null = null;
  private steering: FlowSteering | null = null;
  /** Multiqueue, before the workers run: the commands applied so far, applied by each before its queue is up. */
  private beforeWorkers: Command[] = [];
  /**
   * Multiqueue: a queue's worker died after it started. Its queue's frames go nowhere from then on, so
   * tapvsd exits (as a single-queue daemon would on the same fault) for its supervisor to restart it.
   */
  onQueueLost: ((queue: number, why: string) => void) | null = null;
  /** Set in queue 0's worker: ARP and Neighbour Discovery frames, for the other queues to learn from. */
  onNeighborFrame: ((frame: Uint8Array) => void) | null = null;
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

  /** True on the main thread of a multiqueue director (the data plane is in worker threads). */
  get multiqueue(): boolean {
    return (this.opts.queues ?? 1) > 1;
  }

  async start(): Promise<void> {
    if (this.multiqueue) return this.startQueueWorkers();
    const mtu = this.opts.mtu ?? 1500;
    // A slot holds the largest frame (MTU + Ethernet header + a VLAN tag's worth) after the headroom.
    const slotSize = Math.max(2048, 64 + mtu + 14 + 4);
    const queue = this.opts.queue;
    const multiQueue = queue !== undefined;
    // Queue 0 of a multiqueue device sets the link up; the other queues only attach to it.
    const firstQueue = !multiQueue || queue.index === 0;
    let tap: Tap;
    if (this.opts.offload ?? true) {
      try {
        tap = new Tap(this.opts.tap, { slotSize, offload: true, multiQueue });
      } catch (e) {
        this.log.warn('TAP offloads refused by the kernel: running without', { error: (e as Error).message });
        tap = new Tap(this.opts.tap, { slotSize, multiQueue });
      }
    } else tap = new Tap(this.opts.tap, { slotSize, multiQueue });
    this.tap = tap;
    try {
      if (firstQueue) {
        if (mtu !== 1500) tap.device.setMtu(mtu);
        if (this.opts.bridge) tap.device.addToBridge(this.opts.bridge);
        if (multiQueue) {
          this.steering = new FlowSteering(4096, this.opts.steerByAddress ?? false);
          this.steering.attach(tap);
          this.updateSteering();
        }
        tap.device.setUp(true);
      }
    } catch (e) {
      this.steering?.close();
      this.steering = null;
      tap.close();
      this.tap = null;
      throw e;
    }
    if (multiQueue) this.tracker.table.queue = { index: queue.index, count: queue.count };
    if (this.opts.busyPollUs) tap.device.setBusyPoll(this.opts.busyPollUs, Math.max(2000, this.opts.busyPollUs * 4));
    const tx = new TxBatch(tap);
    this.host = new HostStack(this.mac, tx);
    this.pipeline = new Pipeline(this.mac, this.services, this.tracker, this.routes, this.neighbors, this.host, tx);
    this.pipeline.linkMtu = mtu;
    this.pipeline.offload.rxVnet = tap.rxVnet;
    this.pipeline.setAddresses6(new Ipv6Addresses(this.opts.addresses6 ?? [], this.opts.gateway6 ?? null));
    const pipeline = this.pipeline;
    if (multiQueue && queue.index === 0 && queue.count > 1) pipeline.onNeighborFrame = (frame) => this.onNeighborFrame?.(frame);
    tap.start((count) => pipeline.processBatch(tap.arena, tap.slotSize, tap.headroom, tap.rxLengths, count, performance.now()));
    this.log.info('TAP up', { tap: tap.name, created: tap.created, bridge: this.opts.bridge ?? null, mac: formatMac(this.mac), offload: tap.rxVnet !== null });

    this.timers.push(
      setInterval(() => this.tracker.expire(performance.now()), TICK_MS),
      setInterval(() => pipeline.tickNeighbors(performance.now()), 1000),
      setInterval(() => this.rates.run(), ESTIMATOR_PERIOD_MS),
      setInterval(() => this.watchTable(), 1000),
    );

    if (!multiQueue) await this.listen();
    if (!firstQueue) return;

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

  /** The control socket and the metrics server. */
  private async listen(): Promise<void> {
    this.server = new ControlServer(this.opts.socketPath, (req) => this.handle(req), (m) => this.log.warn(m));
    await this.server.listen();
    this.log.info('control socket listening', { socket: this.opts.socketPath });
    if (this.opts.metrics) {
      this.metricsServer = new MetricsServer(createMetricsRegistry(this), (m) => this.log.warn(m), () => this.prepareScrape());
      const at = await this.metricsServer.listen(this.opts.metrics);
      this.log.info('metrics listening', { url: `http://${at}/metrics` });
    }
  }

  /**
   * Multiqueue (main thread): start one worker per queue, hand them the configuration applied so far,
   * then serve the control socket. The rate estimator runs here, on the queues' summed counters.
   */
  private async startQueueWorkers(): Promise<void> {
    const n = this.opts.queues!;
    const workers = new QueueWorkers(
      {
        queues: n,
        tap: this.opts.tap,
        bridge: this.opts.bridge,
        mac: this.mac,
        addresses: this.opts.addresses,
        addresses6: this.opts.addresses6 ?? [],
        gateway: this.opts.gateway,
        gateway6: this.opts.gateway6,
        connMax: Math.ceil(this.opts.connMax / n),
        sysctls: (this.opts.sysctls ?? new IpvsSysctls()).assignments(),
        busyPollUs: this.opts.busyPollUs,
        mtu: this.opts.mtu,
        offload: this.opts.offload,
        steerByAddress: this.opts.steerByAddress ?? false,
        logFormat: this.log.format,
        initialCommands: this.beforeWorkers,
      },
      this.log,
    );
    this.workers = workers;
    workers.onLost = (queue, why) => {
      this.log.error('a queue stopped working', { queue, error: why });
      this.onQueueLost?.(queue, why);
    };
    try {
      await workers.start();
    } catch (e) {
      await workers.stop();
      this.workers = null;
      throw e;
    }
    this.beforeWorkers = [];
    this.log.info('TAP queues up', { tap: this.opts.tap, queues: n });
    this.timers.push(
      setInterval(() => {
        this.gatherQueueStats();
        this.rates.run();
      }, ESTIMATOR_PERIOD_MS),
    );
    await this.listen();
  }

  /** Multiqueue: the queues' table counters, taken once per scrape (prepareScrape), and when. */
  private queueTables: TableCounters | null = null;
  private queueTablesAt = 0;

  /** Before a metrics scrape (multiqueue): the queues' counters gathered once for all the collectors. */
  private prepareScrape(): void {
    if (!this.workers) return;
    this.gatherQueueStats();
    this.queueTables = this.sumQueueTables();
    this.queueTablesAt = performance.now();
  }

  private sumQueueTables(): TableCounters {
    const tables: TableCounters[] = [];
    for (const r of this.workers!.broadcast({ op: 'get-counters', tables: true })) {
      const t = r.ok ? (r.counters?.tables as TableCounters | undefined) : undefined;
      if (t) tables.push(t);
    }
    return sumTableCounters(tables);
  }

  /** The connection table's and neighbour cache's counts, for the metrics (multiqueue: the queues' sums). */
  tableCounters(): TableCounters {
    if (this.workers) {
      // The collectors of one scrape share what prepareScrape gathered; otherwise ask the queues.
      if (this.queueTables && performance.now() - this.queueTablesAt < 1000) return this.queueTables;
      return this.sumQueueTables();
    }
    return tableCountersOf(this.tracker, this.neighbors);
  }

  /** Multiqueue (main thread): make this replica's counters the sums of the queues' (no-op otherwise). */
  private gatherQueueStats(): void {
    const w = this.workers;
    if (!w) return;
    const tables: TableSnapshot[] = [];
    for (const r of w.broadcast({ op: 'get-table' })) if (r.ok && r.table) tables.push(r.table);
    addQueueTables(this.services, tables);
  }

  /** Keep the steering program's service-side addresses (VIPs, real servers, local addresses) current. */
  private updateSteering(): void {
    if (!this.steering) return;
    const v4 = new Set<number>(this.services.vips);
    const v6: Uint8Array[] = [];
    const locals4: number[] = [];
    const locals6: Uint8Array[] = [];
    const a6 = this.services.addresses6;
    const bytes6 = (id: number): Uint8Array => {
      const b = new Uint8Array(16);
      a6.copyTo(id, b, 0);
      return b;
    };
    for (const v of this.services.vips6) v6.push(bytes6(v));
    const d = this.services.dests;
    for (const svc of this.services.services) {
      for (const id of svc.dests) {
        if (d.inet6[id] === 1) v6.push(bytes6(d.addr[id]));
        else v4.add(d.addr[id]);
      }
      for (const l of svc.laddrs) {
        if (svc.config.af === 6) locals6.push(bytes6(l));
        else locals4.push(l);
      }
    }
    try {
      this.steering.setServiceAddresses(v4, v6, locals4, locals6);
    } catch (e) {
      // The configuration stands; frames of the changed addresses may then reach another queue than their
      // connection's, which drops them as belonging to no connection it knows.
      this.log.error('steering program not updated', { error: (e as Error).message });
    }
  }

  /** A multiqueue director's refusal of what it cannot do across queues (null: fine). */
  private refusedAcrossQueues(commands: readonly Command[]): Reply | null {
    if (!this.multiqueue) return null;
    for (const c of commands) {
      if ((c.op !== 'add-service' && c.op !== 'edit-service') || (c.service.flags & SVC_F_PERSISTENT) === 0) continue;
      let message = '';
      if (!this.opts.steerByAddress)
        message = 'persistent services need tapvsd --steer-by address with --queues: steering by port splits a client\'s connections between the queues';
      else if (c.service.netmask !== (c.service.af === 6 ? '128' : '255.255.255.255'))
        message = 'with --queues, persistence works per client address only (-M 255.255.255.255 or 128): the clients of one network may be on different queues';
      if (message) {
        this.log.warn('command refused', { op: c.op, error: message });
        return { ok: false, errno: 'EINVAL', message };
      }
    }
    return null;
  }

  /** Apply on every queue what the replica accepted; a queue that refuses is an internal error, reported. */
  private toQueues(req: Request): Reply {
    if (!this.multiqueue) return { ok: true };
    if (!this.workers) {
      if (req.op === 'batch') this.beforeWorkers.push(...req.commands);
      else this.beforeWorkers.push(req as Command);
      return { ok: true };
    }
    const replies = this.workers.broadcast(req);
    const q = replies.findIndex((r) => !r.ok);
    if (q < 0) return { ok: true };
    const failed = replies[q];
    const why = failed.ok ? '' : (failed.message ?? failed.errno);
    this.log.error('a queue refused a command the configuration accepted', { queue: q, op: req.op, error: why });
    return { ok: false, errno: 'EIO', message: `queue ${q}: ${why} (the queues may now differ)` };
  }

  handle(req: Request): Reply {
    if (this.workers) {
      // Counters and connections live in the queues' workers.
      this.gatherQueueStats();
      if (req.op === 'get-connections') {
        const connections: ConnectionSnapshot[] = [];
        for (const r of this.workers.broadcast(req)) if (r.ok && r.connections) connections.push(...r.connections);
        return { ok: true, connections };
      }
    }
    switch (req.op) {
      case 'get-table':
        return { ok: true, table: tableSnapshot(this.services, this.tracker, this.rates) };
      case 'get-connections':
        return { ok: true, connections: connectionSnapshot(this.tracker, performance.now()) };
      case 'get-timeouts':
        return { ok: true, timeouts: this.tracker.timeouts.get() };
      case 'get-counters':
        return { ok: true, counters: req.tables ? { ...this.counters(), tables: this.tableCounters() } : this.counters() };
      case 'reload':
        return this.reloadConfiguration ? this.reloadConfiguration() : { ok: false, errno: 'EOPNOTSUPP', message: 'this daemon has nothing to reload' };
      case 'reload-keepalived':
        return this.reloadKeepalived ? this.reloadKeepalived() : { ok: false, errno: 'EOPNOTSUPP', message: 'tapvsd was not started with --keepalived' };
      case 'get-checkers':
        return this.getCheckers ? this.getCheckers() : { ok: false, errno: 'EOPNOTSUPP', message: 'tapvsd was not started with --keepalived' };
      case 'batch': {
        if (!Array.isArray(req.commands)) return { ok: false, errno: 'EINVAL', message: 'batch needs commands' };
        const reply = this.refusedAcrossQueues(req.commands) ?? this.applyCommands(req.commands);
        if (reply.ok) this.log.info('rules restored', { commands: req.commands.length });
        return reply;
      }
      default: {
        const refused = this.refusedAcrossQueues([req]);
        if (refused) return refused;
        // The replica's connection counts are the queues' (gathered above); it frees what it deletes at once.
        if (this.multiqueue) this.services.dests.clearConnectionCounts();
        const commitTotals = this.totals.prepare([req]);
        const err = applyCommand(this.services, this.tracker.timeouts, req);
        if (err) return { ok: false, errno: err.errno, message: err.message };
        commitTotals();
        const queues = this.toQueues(req);
        if (!queues.ok) return queues;
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
    if (this.multiqueue) this.services.dests.clearConnectionCounts();
    const commitTotals = this.totals.prepare(commands);
    const fail = applyBatch(this.services, this.tracker, commands);
    if (fail) return { ok: false, errno: fail.errno, failedIndex: fail.failedIndex, message: fail.message };
    commitTotals();
    return this.toQueues({ op: 'batch', commands });
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
      const announces = !this.opts.queue || this.opts.queue.index === 0;
      if (what === 'service-added' && this.host && announces && c.fwmark === 0) {
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
    this.updateSteering();
  }

  private watchTable(): void {
    const refused = this.tracker.refusedFull;
    if (refused > this.lastTableFullLog) {
      this.log.warn('connection table full: new connections refused', { refused, limit: this.tracker.table.maxEntries });
      this.lastTableFullLog = refused;
    }
  }

  /** Data plane counters for status views and tests (multiqueue: every queue's, and their sums). */
  counters(): Record<string, unknown> {
    if (this.workers) {
      const queues = this.workers.broadcast({ op: 'get-counters' }).map((r) => (r.ok && r.counters ? r.counters : {}));
      return sumQueueCounters(queues);
    }
    return {
      drops: this.pipeline?.drops.snapshot() ?? {},
      framesIn: this.pipeline?.framesIn ?? 0,
      forwardedIn: this.pipeline?.forwardedIn ?? 0,
      forwardedOut: this.pipeline?.forwardedOut ?? 0,
      connections: this.tracker.table.count,
      tap: this.tap?.device.counters() ?? {},
      neighbors: this.neighbors.size,
      batches: this.pipeline?.batches ?? 0,
      icmpRateLimited: this.host?.icmpLimit.suppressed ?? 0,
      offload: { enabled: this.tap?.rxVnet != null, superFrames: this.pipeline?.offload.superFrames ?? 0, segmented: this.pipeline?.offload.segmented ?? 0 },
      connectionCapacity: { maxEntries: this.tracker.table.maxEntries, memoryBytes: this.tracker.table.memoryBytes() },
    };
  }

  /** The data plane's counters for the metrics collectors (null before start). */
  dataplaneCounters(): DataplaneCounters | null {
    if (this.workers) return this.queueDataplaneCounters();
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

  /** Multiqueue: the data plane counters summed over the queues, in the metrics' shape. */
  private queueDataplaneCounters(): DataplaneCounters {
    const c = this.counters() as { drops: Record<string, number>; framesIn: number; forwardedIn: number; forwardedOut: number; batches: number; tap: DataplaneCounters['tap'] };
    return {
      drops: Float64Array.from(DROP_REASON_NAMES, (name) => c.drops[name] ?? 0),
      framesIn: c.framesIn,
      forwardedIn: c.forwardedIn,
      forwardedOut: c.forwardedOut,
      batches: c.batches,
      tap: c.tap,
    };
  }

  /** A relayed ARP or Neighbour Discovery frame (another queue received it): learn from it, answer nothing. */
  learnFromRelayedFrame(frame: Uint8Array): void {
    this.pipeline?.learnFromRelayedFrame(frame, 0, frame.length, performance.now());
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.workers?.stop();
    this.workers = null;
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
    this.steering?.close();
    this.steering = null;
  }
}
