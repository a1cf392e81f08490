/**
 * The director-wide totals (the kernel's `ipvs->tot_stats`, /proc/net/ip_vs_stats, node_exporter's
 * node_ipvs_*_total). The data plane counts per service and per destination only, so the totals are
 * computed when read: the sum over the current services plus what services had counted when they were
 * deleted or zeroed one by one. As in the kernel, `-C` keeps the totals, `-Z` of one service keeps them,
 * and `-Z` of everything zeroes them. (Packets counted for a deleted service's id after its deletion are
 * not in the totals; the kernel would count them.)
 */
import type { StatsSnapshot } from '../control/model.js';
import type { Command } from '../control/protocol.js';
import type { ServiceTable } from '../control/service-table.js';
import { STAT_FIELDS } from './counters.js';

export class TotalStats {
  private readonly retired = new Float64Array(STAT_FIELDS);

  constructor(private readonly services: ServiceTable) {}

  /**
   * Call before applying `commands`; call the function it returns once they applied. A `-Z` of one
   * service keeps that service's counts in the totals; a `-Z` of everything zeroes them. (Nothing flows
   * while a batch applies, so the counts before the batch are the ones the zeroing removes.)
   */
  prepare(commands: readonly Command[]): () => void {
    let zeroAll = false;
    const keep = new Float64Array(STAT_FIELDS);
    const seen = new Set<number>();
    const v = this.services.serviceStats.values;
    for (const c of commands) {
      if (c.op !== 'zero') continue;
      if (!c.service) {
        zeroAll = true;
        continue;
      }
      const svc = this.services.find(c.service);
      if (!svc || seen.has(svc.id)) continue;
      seen.add(svc.id);
      for (let f = 0; f < STAT_FIELDS; f++) keep[f] += v[svc.id * STAT_FIELDS + f];
    }
    return () => {
      if (zeroAll) this.retired.fill(0);
      else for (let f = 0; f < STAT_FIELDS; f++) this.retired[f] += keep[f];
    };
  }

  /** Keep what service `id` counted (call when it is deleted: its counters are gone from the table). */
  retire(id: number): void {
    const v = this.services.serviceStats.values, o = id * STAT_FIELDS;
    if (o + STAT_FIELDS > v.length) return;
    for (let f = 0; f < STAT_FIELDS; f++) this.retired[f] += v[o + f];
  }

  values(): Float64Array {
    const out = Float64Array.from(this.retired);
    const v = this.services.serviceStats.values;
    for (const svc of this.services.services) {
      const o = svc.id * STAT_FIELDS;
      for (let f = 0; f < STAT_FIELDS; f++) out[f] += v[o + f];
    }
    return out;
  }

  snapshot(): StatsSnapshot {
    const t = this.values();
    return { conns: t[0], inpkts: t[1], outpkts: t[2], inbytes: t[3], outbytes: t[4] };
  }
}
