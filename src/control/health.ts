/**
 * Health-check state of a table's real servers, from the keepalived checkers' status (`get-checkers`):
 * what `tapvs top` shows and `tapvs_backend_healthy` exports. keepalived names a virtual server
 * `TCP 198.18.1.100:80`, `FWM 3` or `group NAME TCP` and a real server `198.18.2.11:80`; a group's real
 * servers are matched by address alone. A real server no checker watches has no health state (null).
 */
import type { DestinationKey, ServiceKey } from './model.js';
import type { RealServerCheckStatus } from './protocol.js';

export type BackendHealth = (service: ServiceKey, dest: DestinationKey) => boolean | null;

function hostPort(af: 4 | 6, addr: string, port: number): string {
  return af === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function virtualServerName(s: ServiceKey): string {
  if (s.fwmark !== 0) return `FWM ${s.fwmark >>> 0}${s.af === 6 ? ' inet6' : ''}`;
  const proto = s.protocol === 6 ? 'TCP' : s.protocol === 17 ? 'UDP' : s.protocol === 132 ? 'SCTP' : String(s.protocol);
  return `${proto} ${hostPort(s.af, s.addr, s.port)}`;
}

export function backendHealthFrom(statuses: readonly RealServerCheckStatus[]): BackendHealth {
  const exact = new Map<string, boolean>();
  const grouped = new Map<string, boolean>();
  for (const st of statuses) {
    if (st.virtualServer.startsWith('group ')) grouped.set(st.realServer, (grouped.get(st.realServer) ?? true) && st.alive);
    else exact.set(`${st.virtualServer}|${st.realServer}`, st.alive);
  }
  return (service, dest) => {
    const rs = hostPort(dest.af, dest.addr, dest.port);
    return exact.get(`${virtualServerName(service)}|${rs}`) ?? grouped.get(rs) ?? null;
  };
}

/** No checkers at all: nothing is known. */
export const NO_HEALTH: BackendHealth = () => null;
