/**
 * The reference path that bypasses the director: real server 1 gets a second, front address on the
 * client subnet (as rs1's 198.18.1.11 in perf.md §2), so the client reaches it on-link over the bridge.
 *
 * Replies of the NATed path must still go through the director, although the client subnet is now
 * on-link for rs1: traffic sourced from the backend address uses its own routing table whose default
 * route is the DIP (source-based routing, as in perf.md). Everything happens inside rs1's namespace.
 */
import { must } from '../src/lab/processes.js';
import { LAB_DIP, labRealServer } from '../src/lab/topology.js';

/** rs1's front address on the client subnet. */
export const DIRECT_ADDRESS = '198.18.1.11';
const BACKEND_TABLE = '100';

/** Add the front address and the source-based route for the backend address in namespace `rsNs`. */
export async function addDirectPath(rsNs: string): Promise<void> {
  const backend = labRealServer(0);
  await must('ip', ['-n', rsNs, 'addr', 'add', `${DIRECT_ADDRESS}/24`, 'dev', 'eth0']);
  await must('ip', ['-n', rsNs, 'route', 'add', '198.18.2.0/24', 'dev', 'eth0', 'src', backend, 'table', BACKEND_TABLE]);
  await must('ip', ['-n', rsNs, 'route', 'add', 'default', 'via', LAB_DIP, 'dev', 'eth0', 'table', BACKEND_TABLE]);
  await must('ip', ['-n', rsNs, 'rule', 'add', 'from', backend, 'lookup', BACKEND_TABLE, 'priority', '100']);
}
