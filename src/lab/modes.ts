/**
 * The lab's forwarding methods, one entry each: how the real servers are prepared, the ipvsadm flag of
 * the real servers, and how the lab describes them. `npm run lab -- --mode NAME`, the packet walk and
 * the end-to-end tests all build a lab through `startLab` with one of these.
 *
 * Adding a method (FULLNAT, say) is one more entry: its flag, its real-server preparation, the extra
 * service commands it needs (a local address pool), and address roles for the walk (LIP).
 */
import { hostPort, labAddresses, type LabAddresses } from './family.js';
import { must } from './processes.js';
import type { LabTopology } from './topology.js';

export { LAB_LIP, LAB_LIP6 } from './family.js';

/**
 * A forwarding method in the lab. Every member takes the lab's addresses (`a`, IPv4 or IPv6: see
 * family.ts), so one entry serves both `npm run lab` and `npm run lab -- --ipv6`.
 */
export interface LabMode {
  /** The --mode name. */
  name: string;
  /** As the articles name it: LVS-NAT, LVS-DR, ... */
  title: string;
  /** Which seed article sets this method up. */
  seed: string;
  /** The real servers' forwarding flag for `tapvs -a` (-m, -g, -i). */
  forwardFlag: string;
  /** One line per real server for the lab's banner. */
  describeRealServer(a: LabAddresses, i: number): string;
  /** Run on real server i before its test server starts (VIP on lo, ARP sysctls, tunnel receiver...). */
  prepareRealServer(lab: LabTopology, a: LabAddresses, i: number): Promise<void>;
  /** Extra arguments for the real server's test server (src/lab/real-server.ts). */
  realServerArgs(a: LabAddresses): string[];
  /** Extra tapvs commands for the service `service` ([VIP]:port) after its real servers are added. */
  extraCommands?(a: LabAddresses, service: string): string[][];
  /** Extra address roles for the packet walk (address -> name as in the articles). */
  roles?(a: LabAddresses): Record<string, string>;
}

const directRoutingServer = (a: LabAddresses, i: number): string =>
  a.ipv6 ? `real server ${a.realServer(i)}, VIP ${a.vip} on lo` : `real server ${a.realServer(i)}, VIP ${a.vip} on lo (arp_ignore=1, arp_announce=2)`;

/** Requests arrive for the VIP: the UDP echo listens there (HTTP listens on every address). */
const udpOnVip = (a: LabAddresses): string[] => [a.ipv6 ? '--udp-address6' : '--udp-address', a.vip];

export const LAB_MODES: Record<string, LabMode> = {
  nat: {
    name: 'nat',
    title: 'LVS-NAT',
    seed: 'seed 002',
    forwardFlag: '-m',
    describeRealServer: (a, i) => `real server ${a.realServer(i)} gw ${a.dip}`,
    prepareRealServer: async () => undefined,
    realServerArgs: () => [],
  },
  dr: {
    name: 'dr',
    title: 'LVS-DR',
    seed: 'seed 003',
    forwardFlag: '-g',
    describeRealServer: directRoutingServer,
    prepareRealServer: (lab, a, i) => lab.realServerForDirectRouting(i, a.vip),
    realServerArgs: udpOnVip,
  },
  tun: {
    name: 'tun',
    title: 'LVS-TUN',
    seed: 'seed 004',
    forwardFlag: '-i',
    describeRealServer: (a, i) => `${directRoutingServer(a, i)}, ${a.ipv6 ? 'IPv6-in-IPv6' : 'IPIP'} received by tapvs-rs ipip`,
    prepareRealServer: async (lab, a, i) => {
      await lab.realServerForDirectRouting(i, a.vip);
      await lab.startTunnelReceiver(i, a.vip, 'ipip');
    },
    realServerArgs: udpOnVip,
  },
  fullnat: {
    name: 'fullnat',
    title: 'FULLNAT',
    seed: 'seed 004',
    forwardFlag: '--fullnat',
    describeRealServer: (a, i) => `real server ${a.realServer(i)}, no ${a.ipv6 ? 'IPv6 ' : ''}default route (FULLNAT needs none)`,
    // Both addresses are rewritten, so the real servers need no route back through the director.
    prepareRealServer: async (lab, a, i) => {
      await must('ip', ['-n', lab.rs[i], ...(a.ipv6 ? ['-6'] : []), 'route', 'del', 'default']);
    },
    realServerArgs: () => [],
    extraCommands: (a, service) => [['--add-laddr', '-t', service, '-z', a.lip]],
    roles: (a) => ({ [a.lip]: 'LIP' }),
  },
};

export const LAB_MODE_NAMES = Object.keys(LAB_MODES);

export function labMode(name: string): LabMode {
  const m = LAB_MODES[name];
  if (!m) throw new Error(`unknown mode '${name}' (one of ${LAB_MODE_NAMES.join(', ')})`);
  return m;
}

/** Address roles as the articles name them, for the addresses the lab's service runs on. */
export function labRoles(lab: LabTopology, mode: LabMode): Record<string, string> {
  const a = labAddresses(lab);
  const roles: Record<string, string> = { [a.client]: 'CIP', [a.vip]: 'VIP', [a.dip]: 'DIP', [a.directorFront]: 'DIP(front)' };
  lab.rs.forEach((_, i) => (roles[a.realServer(i)] = 'RIP'));
  return { ...roles, ...(mode.roles?.(a) ?? {}) };
}

/** Build the namespaces, prepare and start the real servers for `mode`, and start the director. */
export async function startLab(lab: LabTopology, mode: LabMode, directorArgs: string[] = []): Promise<void> {
  const a = labAddresses(lab);
  await lab.up();
  for (let i = 0; i < lab.rs.length; i++) {
    await mode.prepareRealServer(lab, a, i);
    await lab.startRealServer(i, mode.realServerArgs(a));
  }
  await lab.startDirector(directorArgs);
}

/**
 * The tapvs commands that configure the lab's service for `mode` (as the seed articles do with ipvsadm),
 * on the lab's VIP (IPv6 in an IPv6 lab, written [VIP]:port) unless `vip` says otherwise.
 */
export function labServiceCommands(lab: LabTopology, mode: LabMode, scheduler = 'rr', vip = labAddresses(lab).vip, port = 80): string[][] {
  const a = labAddresses(lab);
  const service = hostPort(vip, port);
  return [
    ['-C'],
    ['-A', '-t', service, '-s', scheduler],
    ...lab.rs.map((_, i) => ['-a', '-t', service, '-r', hostPort(a.realServer(i), port), mode.forwardFlag]),
    ...(mode.extraCommands?.(a, service) ?? []),
  ];
}

/** Run tapvs commands against the lab; throws with tapvs's stderr on the first failure. */
export async function applyCommands(lab: LabTopology, commands: string[][], echo?: (line: string) => void): Promise<void> {
  for (const c of commands) {
    echo?.(`# tapvs ${c.join(' ')}`);
    const r = await lab.tapvs(c);
    if (r.code !== 0) throw new Error(`tapvs ${c.join(' ')} failed: ${r.stderr.trim()}`);
  }
}
