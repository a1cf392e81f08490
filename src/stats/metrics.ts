/**
 * Prometheus metrics (prom-client). Every value is read from the director's typed arrays and tables when
 * Prometheus scrapes (`collect()` callbacks); the data plane never calls prom-client.
 *
 * Two families:
 * - node_exporter's ipvs collector, same names, labels and label values (collector/ipvs_linux.go over
 *   /proc/net/ip_vs and /proc/net/ip_vs_stats), so existing IPVS dashboards work unchanged:
 *   node_ipvs_{connections,incoming_packets,outgoing_packets,incoming_bytes,outgoing_bytes}_total (no
 *   labels, director-wide totals) and node_ipvs_backend_{connections_active,connections_inactive,weight}
 *   with local_address, local_port, remote_address, remote_port, proto, local_mark. Address services
 *   have proto TCP/UDP and local_mark ""; fwmark services have local_address "", local_port "0",
 *   proto "FWM" and local_mark the mark as /proc prints it (%08X).
 * - tapvs's own, prefixed tapvs_: per service and per backend counters and IPVS estimator rates, drops
 *   by reason, connection-table entries by kind/protocol/state, capacity and memory, the neighbour
 *   cache, TAP and batch counters, a health placeholder, and prom-client's Node.js defaults (event-loop
 *   lag, heap, GC) as tapvs_nodejs_* / tapvs_process_*.
 *
 * Scrape cost: O(services + backends) for the per-service metrics, plus one pass over the connection
 * table's slots for tapvs_connections (measured: 5-10 ms at a million entries on the project's
 * machine, during which the data plane waits). Everything else is O(1) or O(neighbour slots).
 */
import type { BackendHealth } from '../control/health.js';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CONN_F_TEMPLATE } from '../conntrack/connection-flags.js';
import { TEMPLATE_ASSURED, type ConnectionTracker } from '../conntrack/connection-tracker.js';
import { TCP_STATE_COUNT, tcpStateName } from '../conntrack/tcp-state.js';
import { IPPROTO_TCP, IPPROTO_UDP, type DestinationConfig, type ServiceConfig } from '../control/model.js';
import type { ServiceTable } from '../control/service-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import { DROP_REASON_COUNT, DROP_REASON_NAMES } from '../dataplane/drops.js';
import { NEIGH_FAILED, NEIGH_INCOMPLETE, NEIGH_REACHABLE, type NeighborTable } from '../dataplane/neighbors.js';
import { STAT_FIELDS } from './counters.js';
import type { RateEstimator } from './rate-estimator.js';
import type { TotalStats } from './totals.js';

/** What the data plane counts, once it runs (null before the TAP is up). */
export interface DataplaneCounters {
  drops: Float64Array;
  framesIn: number;
  forwardedIn: number;
  forwardedOut: number;
  batches: number;
  tap: Partial<Record<'rxFrames' | 'rxErrors' | 'txFrames' | 'txErrors' | 'txBusy' | 'wakeups', number>>;
}

/** The connection table and the neighbour cache, as the collectors read them (tableCounters()). */
export interface TableCounters {
  entries: number;
  maxEntries: number;
  memoryBytes: number;
  refusedFull: number;
  /** Entries by "kind|proto|state" (connectionsByState). */
  byState: Record<string, number>;
  neighbors: { incomplete: number; reachable: number; failed: number; slots: number };
}

/** What the collectors read; the Director provides it. */
export interface MetricsSource {
  readonly services: ServiceTable;
  readonly rates: RateEstimator;
  readonly totals: TotalStats;
  dataplaneCounters(): DataplaneCounters | null;
  /** The connection table's and the neighbour cache's counts (a multiqueue director sums its queues'). */
  tableCounters(): TableCounters;
  /** Health-check state of the real servers (keepalived checkers), read at scrape time. */
  backendHealth(): BackendHealth;
}

export const NODE_IPVS_BACKEND_LABELS = ['local_address', 'local_port', 'remote_address', 'remote_port', 'proto', 'local_mark'] as const;
const SERVICE_LABELS = ['local_address', 'local_port', 'proto', 'local_mark'] as const;

type Labels = Record<string, string>;

/** node_exporter's labels of a service (without the remote side). */
export function serviceLabels(c: ServiceConfig): Labels {
  if (c.fwmark !== 0) {
    return { local_address: '', local_port: '0', proto: 'FWM', local_mark: (c.fwmark >>> 0).toString(16).toUpperCase().padStart(8, '0') };
  }
  const proto = c.protocol === IPPROTO_TCP ? 'TCP' : c.protocol === IPPROTO_UDP ? 'UDP' : c.protocol === 132 ? 'SCTP' : String(c.protocol);
  return { local_address: c.addr, local_port: String(c.port), proto, local_mark: '' };
}

/** node_exporter's labels of a backend, in its order. */
export function backendLabels(c: ServiceConfig, d: DestinationConfig): Labels {
  const s = serviceLabels(c);
  return {
    local_address: s.local_address,
    local_port: s.local_port,
    remote_address: d.addr,
    remote_port: String(d.port),
    proto: s.proto,
    local_mark: s.local_mark,
  };
}

const STAT_NAMES = ['connections', 'incoming_packets', 'outgoing_packets', 'incoming_bytes', 'outgoing_bytes'] as const;
const STAT_HELP = ['connections scheduled', 'packets client to real server', 'packets real server to client', 'bytes (IP length) client to real server', 'bytes (IP length) real server to client'];
const RATE_NAMES = ['connections_per_second', 'incoming_packets_per_second', 'outgoing_packets_per_second', 'incoming_bytes_per_second', 'outgoing_bytes_per_second'] as const;
const RATE_KEYS = ['cps', 'inpps', 'outpps', 'inbps', 'outbps'] as const;
const TAP_KEYS = [
  ['rxFrames', 'rx_frames'],
  ['rxErrors', 'rx_errors'],
  ['txFrames', 'tx_frames'],
  ['txErrors', 'tx_errors'],
  ['txBusy', 'tx_busy'],
  ['wakeups', 'wakeups'],
] as const;

interface Walk {
  service: (labels: Labels, svcId: number) => void;
  backend: (labels: Labels, destId: number, svcLabels: Labels, svcId: number) => void;
}

function eachServiceAndBackend(src: MetricsSource, walk: Walk): void {
  for (const svc of src.services.services) {
    const sl = serviceLabels(svc.config);
    walk.service(sl, svc.id);
    for (const id of svc.dests) {
      const d = svc.destConfigs.get(id);
      if (d) walk.backend(backendLabels(svc.config, d), id, sl, svc.id);
    }
  }
}

/** A registry with every tapvs collector; `defaults` adds prom-client's Node.js metrics (tapvs_ prefix). */
export function createMetricsRegistry(src: MetricsSource, opts: { defaults?: boolean } = {}): Registry {
  const registry = new Registry();
  const registers = [registry];

  // ---- node_exporter's ipvs collector -------------------------------------------------------------
  const totalHelp = ['The total number of connections made.', 'The total number of incoming packets.', 'The total number of outgoing packets.', 'The total amount of incoming data.', 'The total amount of outgoing data.'];
  STAT_NAMES.forEach((name, f) => {
    new Counter({
      name: `node_ipvs_${name}_total`,
      help: totalHelp[f],
      registers,
      collect() {
        this.reset();
        this.inc(src.totals.values()[f]);
      },
    });
  });
  // node_exporter sums backends with equal label values (relevant only when labels are dropped).
  const backendSums = (): Map<string, { labels: Labels; active: number; inact: number; weight: number }> => {
    const sums = new Map<string, { labels: Labels; active: number; inact: number; weight: number }>();
    const t = src.services.dests;
    eachServiceAndBackend(src, {
      service: () => {},
      backend: (labels, id) => {
        const key = NODE_IPVS_BACKEND_LABELS.map((l) => labels[l]).join('-');
        const s = sums.get(key) ?? { labels, active: 0, inact: 0, weight: 0 };
        s.active += t.activeConns[id];
        s.inact += t.inactConns[id];
        s.weight += t.weight[id];
        sums.set(key, s);
      },
    });
    return sums;
  };
  const backendGauge = (name: string, help: string, pick: (s: { active: number; inact: number; weight: number }) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: NODE_IPVS_BACKEND_LABELS,
      registers,
      collect() {
        this.reset();
        for (const s of backendSums().values()) this.set(s.labels, pick(s));
      },
    });
  };
  backendGauge('node_ipvs_backend_connections_active', 'The current active connections by local and remote address.', (s) => s.active);
  backendGauge('node_ipvs_backend_connections_inactive', 'The current inactive connections by local and remote address.', (s) => s.inact);
  backendGauge('node_ipvs_backend_weight', 'The current backend weight by local and remote address.', (s) => s.weight);

  // ---- tapvs: per service and per backend ---------------------------------------------------------
  STAT_NAMES.forEach((name, f) => {
    new Counter({
      name: `tapvs_service_${name}_total`,
      help: `Virtual service: ${STAT_HELP[f]} (ipvsadm -L --stats; zeroed by -Z).`,
      labelNames: SERVICE_LABELS,
      registers,
      collect() {
        this.reset();
        const v = src.services.serviceStats.values;
        for (const svc of src.services.services) this.inc(serviceLabels(svc.config), v[svc.id * STAT_FIELDS + f]);
      },
    });
    new Counter({
      name: `tapvs_backend_${name}_total`,
      help: `Real server: ${STAT_HELP[f]} (ipvsadm -L --stats; zeroed by -Z).`,
      labelNames: NODE_IPVS_BACKEND_LABELS,
      registers,
      collect() {
        this.reset();
        const v = src.services.destStats.values;
        eachServiceAndBackend(src, { service: () => {}, backend: (labels, id) => this.inc(labels, v[id * STAT_FIELDS + f]) });
      },
    });
  });
  RATE_NAMES.forEach((name, f) => {
    const key = RATE_KEYS[f];
    new Gauge({
      name: `tapvs_service_${name}`,
      help: `Virtual service: IPVS estimator rate (2 s period, 1/4 EWMA; ipvsadm -L --rate ${key.toUpperCase()}).`,
      labelNames: SERVICE_LABELS,
      registers,
      collect() {
        this.reset();
        for (const svc of src.services.services) this.set(serviceLabels(svc.config), src.rates.serviceRate(svc.id)[key]);
      },
    });
    new Gauge({
      name: `tapvs_backend_${name}`,
      help: `Real server: IPVS estimator rate (2 s period, 1/4 EWMA; ipvsadm -L --rate ${key.toUpperCase()}).`,
      labelNames: NODE_IPVS_BACKEND_LABELS,
      registers,
      collect() {
        this.reset();
        eachServiceAndBackend(src, { service: () => {}, backend: (labels, id) => this.set(labels, src.rates.destRate(id)[key]) });
      },
    });
  });
  new Gauge({
    name: 'tapvs_service_info',
    help: 'Virtual service configuration (value 1): scheduler.',
    labelNames: [...SERVICE_LABELS, 'scheduler'],
    registers,
    collect() {
      this.reset();
      for (const svc of src.services.services) this.set({ ...serviceLabels(svc.config), scheduler: svc.config.scheduler }, 1);
    },
  });
  new Gauge({
    name: 'tapvs_backend_connections_persistent',
    help: 'Real server: persistence templates pointing to it (ipvsadm -L --persistent-conn).',
    labelNames: NODE_IPVS_BACKEND_LABELS,
    registers,
    collect() {
      this.reset();
      const t = src.services.dests;
      eachServiceAndBackend(src, { service: () => {}, backend: (labels, id) => this.set(labels, t.persistConns[id]) });
    },
  });
  new Gauge({
    name: 'tapvs_backend_overloaded',
    help: 'Real server: 1 while over its upper connection threshold (-x), else 0.',
    labelNames: NODE_IPVS_BACKEND_LABELS,
    registers,
    collect() {
      this.reset();
      const t = src.services.dests;
      eachServiceAndBackend(src, { service: () => {}, backend: (labels, id) => this.set(labels, (t.flags[id] & DEST_F_OVERLOAD) !== 0 ? 1 : 0) });
    },
  });
  new Gauge({
    name: 'tapvs_backend_healthy',
    help: 'Real server health-check state from the keepalived checkers: 1 up (or not checked), 0 down.',
    labelNames: NODE_IPVS_BACKEND_LABELS,
    registers,
    collect() {
      this.reset();
      const health = src.backendHealth();
      for (const svc of src.services.services)
        for (const id of svc.dests) {
          const d = svc.destConfigs.get(id);
          if (d) this.set(backendLabels(svc.config, d), health(svc.config, d) === false ? 0 : 1);
        }
    },
  });

  // ---- tapvs: data plane ---------------------------------------------------------------------------
  new Counter({
    name: 'tapvs_drops_total',
    help: 'Frames the data plane dropped, by reason (reason "host" counts frames answered or ignored by the director\'s own stack).',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      const d = src.dataplaneCounters()?.drops;
      for (let i = 0; i < DROP_REASON_COUNT; i++) this.inc({ reason: DROP_REASON_NAMES[i] }, d ? d[i] : 0);
    },
  });
  const dp = (name: string, help: string, pick: (c: DataplaneCounters) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        const c = src.dataplaneCounters();
        this.inc(c ? pick(c) : 0);
      },
    });
  };
  dp('tapvs_rx_frames_total', 'Frames read from the TAP and processed.', (c) => c.framesIn);
  dp('tapvs_rx_batches_total', 'Batches read from the TAP (one JS call each); frames per batch = rate(tapvs_rx_frames_total) / rate(tapvs_rx_batches_total).', (c) => c.batches);
  new Counter({
    name: 'tapvs_forwarded_packets_total',
    help: 'Packets forwarded by NAT: direction "in" client to real server, "out" real server to client.',
    labelNames: ['direction'],
    registers,
    collect() {
      this.reset();
      const c = src.dataplaneCounters();
      this.inc({ direction: 'in' }, c?.forwardedIn ?? 0);
      this.inc({ direction: 'out' }, c?.forwardedOut ?? 0);
    },
  });
  new Gauge({
    name: 'tapvs_rx_batch_frames_mean',
    help: 'Mean frames per TAP read batch since start (no per-batch histogram is kept: the hot path stays untouched).',
    registers,
    collect() {
      const c = src.dataplaneCounters();
      this.set(c && c.batches > 0 ? c.framesIn / c.batches : 0);
    },
  });
  for (const [key, name] of TAP_KEYS) {
    dp(`tapvs_tap_${name}_total`, `TAP device counter ${key} (native addon).`, (c) => c.tap[key] ?? 0);
  }

  // ---- tapvs: connection table ---------------------------------------------------------------------
  new Gauge({
    name: 'tapvs_connection_table_entries',
    help: 'Entries in the connection table (connections and persistence templates).',
    registers,
    collect() {
      this.set(src.tableCounters().entries);
    },
  });
  new Gauge({
    name: 'tapvs_connection_table_max_entries',
    help: 'Connection table limit (--conn-max); beyond it new connections are refused.',
    registers,
    collect() {
      this.set(src.tableCounters().maxEntries);
    },
  });
  new Gauge({
    name: 'tapvs_connection_table_memory_bytes',
    help: 'Bytes held by the connection table arrays (entries, hash buckets, timer wheel).',
    registers,
    collect() {
      this.set(src.tableCounters().memoryBytes);
    },
  });
  new Counter({
    name: 'tapvs_connection_table_refused_total',
    help: 'New connections refused because the connection table was full.',
    registers,
    collect() {
      this.reset();
      this.inc(src.tableCounters().refusedFull);
    },
  });
  new Gauge({
    name: 'tapvs_connections',
    help: 'Connection table entries by kind (connection, template), protocol and state (as ipvsadm -L -c names them). Walks the table at scrape time.',
    labelNames: ['kind', 'proto', 'state'],
    registers,
    collect() {
      this.reset();
      for (const [k, n] of Object.entries(src.tableCounters().byState)) {
        const [kind, proto, state] = k.split('|');
        this.set({ kind, proto, state }, n);
      }
    },
  });

  // ---- tapvs: neighbour (ARP) cache ----------------------------------------------------------------
  new Gauge({
    name: 'tapvs_neighbor_cache_entries',
    help: 'ARP (neighbour) cache entries by state.',
    labelNames: ['state'],
    registers,
    collect() {
      const n = src.tableCounters().neighbors;
      this.set({ state: 'incomplete' }, n.incomplete);
      this.set({ state: 'reachable' }, n.reachable);
      this.set({ state: 'failed' }, n.failed);
    },
  });
  new Gauge({
    name: 'tapvs_neighbor_cache_capacity',
    help: 'ARP (neighbour) cache slots.',
    registers,
    collect() {
      this.set(src.tableCounters().neighbors.slots);
    },
  });

  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: 'tapvs_' });
  return registry;
}

/** A director's own table counters (one pass over the connection table and the neighbour slots). */
export function tableCountersOf(tracker: ConnectionTracker, neighbors: NeighborTable): TableCounters {
  const t = tracker.table;
  let incomplete = 0, reachable = 0, failed = 0;
  for (let s = 0; s < neighbors.slots; s++) {
    const st = neighbors.state[s];
    if (st === NEIGH_INCOMPLETE) incomplete++;
    else if (st === NEIGH_REACHABLE) reachable++;
    else if (st === NEIGH_FAILED) failed++;
  }
  return {
    entries: t.count,
    maxEntries: t.maxEntries,
    memoryBytes: t.memoryBytes(),
    refusedFull: tracker.refusedFull,
    byState: Object.fromEntries(connectionsByState(tracker)),
    neighbors: { incomplete, reachable, failed, slots: neighbors.slots },
  };
}

const PROTO_SLOTS = ['TCP', 'UDP', 'SCTP', 'IP', 'other'] as const;
const STATE_SLOTS = 16;

function protoSlot(p: number): number {
  return p === IPPROTO_TCP ? 0 : p === IPPROTO_UDP ? 1 : p === 132 ? 2 : p === 0 ? 3 : 4;
}

/**
 * Count the table's entries by kind|proto|state: one pass over the entries, counting into a small typed
 * array (no string or object per entry). TCP states and UDP are always present (0 when none).
 */
export function connectionsByState(tracker: ConnectionTracker): Map<string, number> {
  const t = tracker.table;
  // [kind (0 connection, 1 template)][protocol slot][state]
  const counts = new Float64Array(2 * PROTO_SLOTS.length * STATE_SLOTS);
  // A linear scan of the live flags (sequential memory) rather than the hash chains of forEach().
  const live = t.live, n = Math.min(t.capacity, live.length);
  for (let i = 0; i < n; i++) {
    if (live[i] !== 1) continue;
    const template = (t.flagsOf(i) & CONN_F_TEMPLATE) !== 0 ? 1 : 0;
    const state = t.stateOf(i) & (STATE_SLOTS - 1);
    counts[(template * PROTO_SLOTS.length + protoSlot(t.protocolOf(i))) * STATE_SLOTS + state]++;
  }
  const out = new Map<string, number>();
  for (let st = 0; st < TCP_STATE_COUNT; st++) out.set(`connection|TCP|${tcpStateName(st)}`, 0);
  out.set('connection|UDP|UDP', 0);
  const add = (key: string, n: number): void => {
    out.set(key, (out.get(key) ?? 0) + n);
  };
  for (let kind = 0; kind < 2; kind++) {
    for (let ps = 0; ps < PROTO_SLOTS.length; ps++) {
      const proto = PROTO_SLOTS[ps];
      for (let st = 0; st < STATE_SLOTS; st++) {
        const n = counts[(kind * PROTO_SLOTS.length + ps) * STATE_SLOTS + st];
        if (n === 0) continue;
        if (kind === 1) add(`template|${proto}|${st === TEMPLATE_ASSURED ? 'ASSURED' : 'NONE'}`, n);
        else add(`connection|${proto}|${ps === 0 ? tcpStateName(st) : ps === 1 ? 'UDP' : 'NONE'}`, n);
      }
    }
  }
  return out;
}
