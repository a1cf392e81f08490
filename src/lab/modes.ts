/**
 * The lab's forwarding methods, one entry each: how the real servers are prepared, the ipvsadm flag of
 * the real servers, and how the lab describes them. `npm run lab -- --mode NAME`, the packet walk and
 * the end-to-end tests all build a lab through `startLab` with one of these.
 *
 * Adding a method (FULLNAT, say) is one more entry: its flag, its real-server preparation, the extra
 * service commands it needs (a local address pool), and address roles for the walk (LIP).
 */
import { must } from './processes.js';
import { LAB_CLIENT, LAB_DIP, LAB_DIRECTOR_FRONT, LAB_VIP, labRealServer, type LabTopology } from './topology.js';

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
  describeRealServer(i: number): string;
  /** Run on real server i before its test server starts (VIP on lo, ARP sysctls, tunnel receiver...). */
  prepareRealServer(lab: LabTopology, i: number): Promise<void>;
  /** Extra arguments for the real server's test server (src/lab/real-server.ts). */
  realServerArgs: string[];
  /** Extra tapvs commands after the service and its real servers are added. */
  extraCommands?(vip: string, port: number): string[][];
  /** Extra address roles for the packet walk (address -> name as in the articles). */
  roles?: Record<string, string>;
}

/** FULLNAT's local address (LIP), on the real servers' subnet. */
export const LAB_LIP = '198.18.2.200';

const directRoutingServer = (i: number): string => `real server ${labRealServer(i)}, VIP ${LAB_VIP} on lo (arp_ignore=1, arp_announce=2)`;

export const LAB_MODES: Record<string, LabMode> = {
  nat: {
    name: 'nat',
    title: 'LVS-NAT',
    seed: 'seed 002',
    forwardFlag: '-m',
    describeRealServer: (i) => `real server ${labRealServer(i)} gw ${LAB_DIP}`,
    prepareRealServer: async () => undefined,
    realServerArgs: [],
  },
  dr: {
    name: 'dr',
    title: 'LVS-DR',
    seed: 'seed 003',
    forwardFlag: '-g',
    describeRealServer: directRoutingServer,
    prepareRealServer: (lab, i) => lab.realServerForDirectRouting(i),
    // Requests arrive for the VIP: the UDP echo listens there (HTTP listens on every address).
    realServerArgs: ['--udp-address', LAB_VIP],
  },
  tun: {
    name: 'tun',
    title: 'LVS-TUN',
    seed: 'seed 004',
    forwardFlag: '-i',
    describeRealServer: (i) => `${directRoutingServer(i)}, IPIP received by tapvs-rs ipip`,
    prepareRealServer: async (lab, i) => {
      await lab.realServerForDirectRouting(i);
      await lab.startTunnelReceiver(i);
    },
    realServerArgs: ['--udp-address', LAB_VIP],
  },
  fullnat: {
    name: 'fullnat',
    title: 'FULLNAT',
    seed: 'seed 004',
    forwardFlag: '--fullnat',
    describeRealServer: (i) => `real server ${labRealServer(i)}, no default route (FULLNAT needs none)`,
    // Both addresses are rewritten, so the real servers need no route back through the director.
    prepareRealServer: async (lab, i) => {
      await must('ip', ['-n', lab.rs[i], 'route', 'del', 'default']);
    },
    realServerArgs: [],
    extraCommands: (vip, port) => [['--add-laddr', '-t', `${vip}:${port}`, '-z', LAB_LIP]],
    roles: { [LAB_LIP]: 'LIP' },
  },
};

export const LAB_MODE_NAMES = Object.keys(LAB_MODES);

export function labMode(name: string): LabMode {
  const m = LAB_MODES[name];
  if (!m) throw new Error(`unknown mode '${name}' (one of ${LAB_MODE_NAMES.join(', ')})`);
  return m;
}

/** Address roles as the articles name them. */
export function labRoles(lab: LabTopology, mode: LabMode): Record<string, string> {
  const roles: Record<string, string> = { [LAB_CLIENT]: 'CIP', [LAB_VIP]: 'VIP', [LAB_DIP]: 'DIP', [LAB_DIRECTOR_FRONT]: 'DIP(front)' };
  lab.rs.forEach((_, i) => (roles[labRealServer(i)] = 'RIP'));
  return { ...roles, ...(mode.roles ?? {}) };
}

/** Build the namespaces, prepare and start the real servers for `mode`, and start the director. */
export async function startLab(lab: LabTopology, mode: LabMode, directorArgs: string[] = []): Promise<void> {
  await lab.up();
  for (let i = 0; i < lab.rs.length; i++) {
    await mode.prepareRealServer(lab, i);
    await lab.startRealServer(i, mode.realServerArgs);
  }
  await lab.startDirector(directorArgs);
}

/** The tapvs commands that configure the lab's service for `mode` (as the seed articles do with ipvsadm). */
export function labServiceCommands(lab: LabTopology, mode: LabMode, scheduler = 'rr', vip = LAB_VIP, port = 80): string[][] {
  return [
    ['-C'],
    ['-A', '-t', `${vip}:${port}`, '-s', scheduler],
    ...lab.rs.map((_, i) => ['-a', '-t', `${vip}:${port}`, '-r', `${labRealServer(i)}:${port}`, mode.forwardFlag]),
    ...(mode.extraCommands?.(vip, port) ?? []),
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
