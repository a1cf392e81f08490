/**
 * The tapvs DR path of the benchmark (seed 003's setup, made to live beside the NAT paths): every real
 * server holds the DR VIP on lo with ARP for it suppressed (arp_ignore=1, arp_announce=2), and traffic
 * sourced from the DR VIP goes straight to the client subnet over the bridge through its own routing
 * table. Traffic sourced from the backend addresses keeps its route through the director, so the NAT
 * paths are unchanged. Everything happens inside the real servers' namespaces.
 */
import { must } from '../src/lab/processes.js';
import { LAB_CLIENT_SUBNET, type LabTopology } from '../src/lab/topology.js';

/** The VIP of the DR path. */
export const DR_VIP = '198.18.1.104';
const DR_TABLE = '104';

export async function addDirectRoutingPath(lab: LabTopology): Promise<void> {
  for (const [i, ns] of lab.rs.entries()) {
    await lab.holdVipOnLoopback(i, DR_VIP);
    await must('ip', ['-n', ns, 'route', 'add', LAB_CLIENT_SUBNET, 'dev', 'eth0', 'src', DR_VIP, 'table', DR_TABLE]);
    await must('ip', ['-n', ns, 'rule', 'add', 'from', DR_VIP, 'lookup', DR_TABLE, 'priority', '104']);
  }
}
