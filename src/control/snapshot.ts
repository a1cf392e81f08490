/** Build the listing snapshots the CLI prints (the kernel's service/destination/connection dumps). */
import { CONN_F_TEMPLATE } from '../conntrack/connection-flags.js';
import { TEMPLATE_ASSURED, type ConnectionTracker } from '../conntrack/connection-tracker.js';
import { tcpStateName } from '../conntrack/tcp-state.js';
import { formatIpv4 } from '../dataplane/wire/ipv4.js';
import type { RateEstimator } from '../stats/rate-estimator.js';
import { IPPROTO_TCP, IPPROTO_UDP, type ConnectionSnapshot, type TableSnapshot } from './model.js';
import type { ServiceTable } from './service-table.js';

/** The size IPVS reports in its version header (conn_tab_bits default 12). */
export const CONN_TAB_SIZE = 4096;

export function tableSnapshot(services: ServiceTable, tracker: ConnectionTracker, rates: RateEstimator): TableSnapshot {
  const d = services.dests;
  return {
    connTabSize: CONN_TAB_SIZE,
    timeouts: tracker.timeouts.get(),
    marks: services.markRules.map((r) => ({ ...r, ports: r.ports.map(([lo, hi]) => [lo, hi] as [number, number]) })),
    services: services.services.map((svc) => ({
      ...svc.config,
      stats: services.serviceStats.snapshot(svc.id),
      rate: rates.serviceRate(svc.id),
      laddrs: svc.laddrs.map((a) => (svc.config.af === 6 ? services.addresses6.text(a) : formatIpv4(a))),
      dests: svc.dests.map((id) => ({
        ...svc.destConfigs.get(id)!,
        activeConns: d.activeConns[id],
        inactConns: d.inactConns[id],
        persistConns: d.persistConns[id],
        stats: services.destStats.snapshot(id),
        rate: rates.destRate(id),
      })),
    })),
  };
}

function protocolName(p: number, template: boolean): string {
  if (p === IPPROTO_TCP) return 'TCP';
  if (p === IPPROTO_UDP) return 'UDP';
  if (p === 132) return 'SCTP';
  return template ? 'IP' : String(p);
}

export function connectionSnapshot(tracker: ConnectionTracker, now: number): ConnectionSnapshot[] {
  const t = tracker.table;
  const out: ConnectionSnapshot[] = [];
  t.forEach((i) => {
    const template = (t.flagsOf(i) & CONN_F_TEMPLATE) !== 0;
    const p = t.protocolOf(i);
    const inet6 = t.isInet6(i);
    const text = (a: number): string => (inet6 ? t.addresses6.text(a) : formatIpv4(a));
    out.push({
      protocol: protocolName(p, template),
      expires: t.remainingSeconds(i, now),
      // Templates show NONE until a connection under them got established (or a UDP reply), then ASSURED.
      state: template ? (t.stateOf(i) === TEMPLATE_ASSURED ? 'ASSURED' : 'NONE') : p === IPPROTO_TCP ? tcpStateName(t.stateOf(i)) : p === IPPROTO_UDP ? 'UDP' : 'NONE',
      af: inet6 ? 6 : 4,
      caddr: text(t.caddrOf(i)),
      cport: t.cportOf(i),
      // A fwmark template's "VIP" is the mark itself (shown as an IPv4 address, as the kernel does).
      vaddr: inet6 && !(template && p === 0) ? text(t.vaddrOf(i)) : formatIpv4(t.vaddrOf(i)),
      vport: t.vportOf(i),
      daddr: text(t.daddrOf(i)),
      dport: t.dportOf(i),
      template,
      peName: '',
      peData: '',
    });
  });
  return out;
}
