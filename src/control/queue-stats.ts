/**
 * The counters of a multiqueue director (tapvsd --queues N), summed: every queue's worker counts its own
 * packets, bytes and connections in its own replica of the service table, and the listings, the rate
 * estimator and the metrics read the main thread's replica. `addQueueTables` makes the main replica's
 * counters the sum of the queues' table snapshots, matching services and real servers by their keys (a
 * worker's ids may differ from the main thread's: a real server revived from one worker's trash keeps
 * its old id there).
 */
import type { TableSnapshot } from './model.js';
import { sameDestinationKey } from './model.js';
import type { ServiceTable } from './service-table.js';
import { STAT_FIELDS } from '../stats/counters.js';
import type { TableCounters } from '../stats/metrics.js';

/** Set `services`' statistics and connection counts to the sums over `queues`' snapshots. */
export function addQueueTables(services: ServiceTable, queues: readonly TableSnapshot[]): void {
  const ss = services.serviceStats, ds = services.destStats, d = services.dests;
  for (const svc of services.services) {
    ss.zero(svc.id);
    for (const id of svc.dests) ds.zero(id);
  }
  d.clearConnectionCounts();
  for (const q of queues) {
    for (const qs of q.services) {
      const svc = services.find(qs);
      if (!svc) continue; // changed since the snapshot: the next one has it
      addStats(ss.values, svc.id, qs.stats);
      for (const qd of qs.dests) {
        let id = -1;
        for (const [did, c] of svc.destConfigs) if (sameDestinationKey(c, qd)) id = did;
        if (id < 0) continue;
        addStats(ds.values, id, qd.stats);
        d.activeConns[id] += qd.activeConns;
        d.inactConns[id] += qd.inactConns;
        d.persistConns[id] += qd.persistConns;
      }
    }
  }
}

function addStats(values: Float64Array, id: number, s: { conns: number; inpkts: number; outpkts: number; inbytes: number; outbytes: number }): void {
  const o = id * STAT_FIELDS;
  values[o] += s.conns;
  values[o + 1] += s.inpkts;
  values[o + 2] += s.outpkts;
  values[o + 3] += s.inbytes;
  values[o + 4] += s.outbytes;
}

/** The data plane counters of every queue (`get-counters`), with the totals the single-queue reply has. */
export function sumQueueCounters(queues: readonly Record<string, unknown>[]): Record<string, unknown> {
  const sum: Record<string, unknown> = { queues };
  for (const key of ['framesIn', 'forwardedIn', 'forwardedOut', 'connections', 'batches', 'neighbors', 'icmpRateLimited'])
    sum[key] = queues.reduce((n, q) => n + (typeof q[key] === 'number' ? (q[key] as number) : 0), 0);
  for (const key of ['drops', 'tap', 'offload', 'connectionCapacity']) sum[key] = sumNumbers(queues.map((q) => q[key]));
  return sum;
}

/** The queues' connection tables and neighbour caches, added up (the metrics' view of a multiqueue director). */
export function sumTableCounters(queues: readonly TableCounters[]): TableCounters {
  const sum: TableCounters = { entries: 0, maxEntries: 0, memoryBytes: 0, refusedFull: 0, byState: {}, neighbors: { incomplete: 0, reachable: 0, failed: 0, slots: 0 } };
  for (const q of queues) {
    sum.entries += q.entries;
    sum.maxEntries += q.maxEntries;
    sum.memoryBytes += q.memoryBytes;
    sum.refusedFull += q.refusedFull;
    for (const [k, n] of Object.entries(q.byState)) sum.byState[k] = (sum.byState[k] ?? 0) + n;
    for (const k of ['incomplete', 'reachable', 'failed', 'slots'] as const) sum.neighbors[k] += q.neighbors[k];
  }
  return sum;
}

/** The numeric fields of `objects` added up by name (booleans: true when any is). */
function sumNumbers(objects: readonly unknown[]): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  for (const o of objects) {
    if (typeof o !== 'object' || o === null) continue;
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'number') out[k] = ((out[k] as number | undefined) ?? 0) + v;
      else if (typeof v === 'boolean') out[k] = out[k] === true || v;
    }
  }
  return out;
}
