/**
 * Persistent services (-p): a template records "client network → real server"; each new connection of
 * that client network is created under it (kernel ip_vs_core.c ip_vs_sched_persist).
 *
 * Template keys, as the kernel builds them (snet = client address & netmask):
 *   port P service, packet to P:   <protocol, snet, 0, VIP, P>      → template daddr:dport = RS:RS port
 *   port-0 service (PCC):          <protocol, snet, 0, VIP, 0>      → RS:0
 *   fwmark service:                <IPPROTO_IP, snet, 0, mark, 0>   → RS:0
 * IPv6 services (protocol tagged with PROTO_INET6): snet is the id of the client address masked to the
 * service's prefix length (-M 64 and the like), made by the caller.
 * The FTP special case (port 21) of the kernel is not reproduced.
 *
 * Timers follow the kernel: a template is re-armed to its timeout only when a new connection is created
 * under it; when it fires while it still controls connections it is re-armed for 60 s (and keeps 60 s as
 * its timeout from then on); a template whose real server is gone is made unmatchable and left to expire.
 */
import type { VirtualService } from '../control/service-table.js';
import { SVC_F_ONEPACKET } from '../control/model.js';
import type { ConnectionTracker } from './connection-tracker.js';

export const PERSIST_NO_DESTINATION = -1;
export const PERSIST_TABLE_FULL = -2;

/**
 * Create a connection for a new packet of a persistent service. `pick` runs the service's scheduler and
 * is called only when no usable template exists. Returns the connection id, PERSIST_NO_DESTINATION or
 * PERSIST_TABLE_FULL.
 */
export function schedulePersistent(
  tracker: ConnectionTracker,
  svc: VirtualService,
  protocol: number,
  caddr: number,
  cport: number,
  vaddr: number,
  vport: number,
  now: number,
  pick: () => number,
  /** The client network: caddr & netmask for IPv4; for IPv6 the caller's id of the masked address. */
  snet = (caddr & svc.netmask) >>> 0,
): number {
  const t = tracker.table, d = tracker.dests;
  const svcPort = svc.config.port;
  let tProtocol = protocol, tVaddr = vaddr, tVport = 0;
  if (vport === svcPort) tVport = vport;
  else if (svc.config.fwmark !== 0) {
    tProtocol = protocol & ~0xff; // IPPROTO_IP, keeping the family tag
    tVaddr = svc.config.fwmark >>> 0;
  }
  let ct = t.lookupTemplate(tProtocol, snet, tVaddr, tVport);
  let dest: number;
  if (ct >= 0 && tracker.templateUsable(ct)) {
    dest = t.destOf(ct);
    t.refresh(ct, t.timeout[ct], now); // kernel: ip_vs_conn_put re-arms with the template's timeout
  } else {
    dest = pick();
    if (dest < 0) return PERSIST_NO_DESTINATION;
    const tDport = vport === svcPort ? d.port[dest] : 0;
    ct = tracker.createTemplate(tProtocol, snet, tVaddr, tVport, dest, tDport, svc.timeoutMs, now);
    if (ct < 0) return PERSIST_TABLE_FULL;
  }
  // The connection goes to the template's real server; to its port when the packet came to the service
  // port, else to the packet's own port (port-0 and fwmark services keep the client's port).
  const dport = vport === svcPort && d.port[dest] !== 0 ? d.port[dest] : vport;
  const onePacket = (svc.config.flags & SVC_F_ONEPACKET) !== 0 && (protocol & 0xff) === 17;
  const id = tracker.create(protocol, caddr, cport, vaddr, vport, dest, now, dport, onePacket);
  if (id < 0) return PERSIST_TABLE_FULL;
  tracker.controlBy(id, ct);
  return id;
}
