/**
 * The lab topology, used by `npm run lab`, the end-to-end tests and the benchmarks alike:
 *
 *   netns <id>-cli  client  198.18.1.2/24 ─┐
 *   netns <id>-dir  director: Linux bridge br0 + TAP tapvs0 (tapvsd: 198.18.1.1/24, DIP 198.18.2.1/24,
 *                   VIPs such as 198.18.1.100); the namespace's own stack has 198.18.2.254/24 on br0
 *   netns <id>-rs1  real server 198.18.2.11/24, default via 198.18.2.1 (the DIP) ─┤
 *   netns <id>-rs2  real server 198.18.2.12/24, default via 198.18.2.1            ─┘
 *
 * With `ipv6`, the same in IPv6 beside it: client fd00:1::2/64, director fd00:1::1/64 and fd00:2::1/64 (VIPs
 * such as fd00:1::100), real servers fd00:2::11/64... with their default route via fd00:2::1.
 *
 * One L2 segment (as LVS-NAT on one switch), two subnets: the client reaches the VIP on-link, the real
 * servers answer through their gateway, the director. Everything lives in namespaces this code creates
 * (addresses from 198.18.0.0/15 only) and is deleted by down(), also after failures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { background, must, run, stop, waitFor, type Background, type RunResult } from './processes.js';

export const LAB_VIP = '198.18.1.100';
export const LAB_CLIENT = '198.18.1.2';
export const LAB_DIRECTOR_FRONT = '198.18.1.1';
export const LAB_DIP = '198.18.2.1';
export const LAB_DIRECTOR_HOST = '198.18.2.254';
export const LAB_TAP = 'tapvs0';
export const LAB_BRIDGE = 'br0';
/** Real server i (0-based) has this address. */
export const labRealServer = (i: number): string => `198.18.2.${11 + i}`;
export const LAB_UDP_PORT = 9000;
export const LAB_CLIENT_SUBNET = '198.18.1.0/24';
/** The IPv6 lab (LabOptions.ipv6). */
export const LAB_VIP6 = 'fd00:1::100';
export const LAB_CLIENT6 = 'fd00:1::2';
export const LAB_DIRECTOR_FRONT6 = 'fd00:1::1';
export const LAB_DIP6 = 'fd00:2::1';
/** The director namespace's own IPv6 address on the bridge (what keepalived's checkers connect from). */
export const LAB_DIRECTOR_HOST6 = 'fd00:2::254';
export const LAB_CLIENT_SUBNET6 = 'fd00:1::/64';
export const labRealServer6 = (i: number): string => `fd00:2::${11 + i}`;

const here = path.dirname(fileURLToPath(import.meta.url));
/** The package root (this file is dist/src/lab/topology.js or src/lab/topology.ts). */
export const PACKAGE_ROOT = fs.existsSync(path.resolve(here, '../../package.json')) ? path.resolve(here, '../..') : path.resolve(here, '../../..');
const DIST = path.join(PACKAGE_ROOT, 'dist', 'src');
export const TAPVSD_JS = path.join(DIST, 'cli', 'tapvsd.js');
export const TAPVS_JS = path.join(DIST, 'cli', 'tapvs.js');
export const TAPVS_RS_JS = path.join(DIST, 'cli', 'tapvs-rs.js');
const SERVER_JS = path.join(DIST, 'lab', 'real-server.js');
const CLIENT_JS = path.join(DIST, 'lab', 'client.js');

export interface LabOptions {
  /** Namespace name prefix; unique per run. */
  id?: string;
  realServers?: number;
  /** Keep IPv6 on in the namespaces (the lab turns it off by default to keep the LAN quiet). */
  ipv6?: boolean;
}

export class LabTopology {
  readonly id: string;
  readonly cli: string;
  readonly dir: string;
  readonly rs: string[];
  readonly socketPath: string;
  private readonly workDir: string;
  private readonly processes: Background[] = [];
  private daemon: Background | null = null;
  private created: string[] = [];
  /** Built with IPv6 addresses beside the IPv4 ones (LabOptions.ipv6). */
  readonly ipv6: boolean;

  constructor(opts: LabOptions = {}) {
    this.id = opts.id ?? `tapvs-${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    this.cli = `${this.id}-cli`;
    this.dir = `${this.id}-dir`;
    this.rs = Array.from({ length: opts.realServers ?? 2 }, (_, i) => `${this.id}-rs${i + 1}`);
    this.workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-lab-'));
    this.ipv6 = opts.ipv6 ?? false;
    this.socketPath = path.join(this.workDir, 'tapvs.sock');
  }

  /** Build the namespaces, the bridge and the veth links. */
  async up(): Promise<void> {
    const ns = [this.dir, this.cli, ...this.rs];
    for (const n of ns) {
      await must('ip', ['netns', 'add', n]);
      this.created.push(n);
      await must('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
      // Keep IPv6 quiet on the lab LAN (router solicitations, DAD) unless a test wants it.
      if (!this.ipv6) await run('ip', ['netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      // IPv6 labs: no duplicate address detection, so link-local addresses (ND's sources) are usable at once
      // and the first exchanges of a fresh lab are not delayed or retransmitted.
      else await must('ip', ['netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    }
    await must('ip', ['-n', this.dir, 'link', 'add', LAB_BRIDGE, 'type', 'bridge', 'forward_delay', '0']);
    await must('ip', ['-n', this.dir, 'link', 'set', LAB_BRIDGE, 'up']);
    await must('ip', ['-n', this.dir, 'addr', 'add', `${LAB_DIRECTOR_HOST}/24`, 'dev', LAB_BRIDGE]);
    // The director namespace's own stack reaches the real servers over IPv6 too (keepalived's checkers).
    if (this.ipv6) await must('ip', ['-n', this.dir, '-6', 'addr', 'add', `${LAB_DIRECTOR_HOST6}/64`, 'dev', LAB_BRIDGE, 'nodad']);
    const hosts: [string, string, string | null][] = [
      [this.cli, `${LAB_CLIENT}/24`, null],
      ...this.rs.map((n, i): [string, string, string] => [n, `${labRealServer(i)}/24`, LAB_DIP]),
    ];
    for (let i = 0; i < hosts.length; i++) {
      const [n, addr, gw] = hosts[i];
      const port = `v${i}`;
      await must('ip', ['-n', this.dir, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n]);
      await must('ip', ['-n', this.dir, 'link', 'set', port, 'master', LAB_BRIDGE, 'up']);
      await must('ip', ['-n', n, 'addr', 'add', addr, 'dev', 'eth0']);
      await must('ip', ['-n', n, 'link', 'set', 'eth0', 'up']);
      if (gw) await must('ip', ['-n', n, 'route', 'add', 'default', 'via', gw]);
      if (this.ipv6) {
        // nodad: usable at once (no duplicate address detection wait).
        const rs = i - 1;
        await must('ip', ['-n', n, '-6', 'addr', 'add', rs < 0 ? `${LAB_CLIENT6}/64` : `${labRealServer6(rs)}/64`, 'dev', 'eth0', 'nodad']);
        if (rs >= 0) await must('ip', ['-n', n, '-6', 'route', 'add', 'default', 'via', LAB_DIP6]);
      }
    }
  }

  /**
   * Start tapvsd in the director namespace on a TAP enslaved to the bridge; resolves when it listens.
   * `addresses` replaces the lab's director addresses (all of them, both families) when given.
   */
  async startDirector(extraArgs: string[] = [], addresses?: string[]): Promise<Background> {
    const own = addresses ?? [
      `${LAB_DIRECTOR_FRONT}/24`, `${LAB_DIP}/24`,
      ...(this.ipv6 ? [`${LAB_DIRECTOR_FRONT6}/64`, `${LAB_DIP6}/64`] : []),
    ];
    const d = background('ip', [
      'netns', 'exec', this.dir, process.execPath, TAPVSD_JS,
      '--tap', LAB_TAP, '--bridge', LAB_BRIDGE,
      ...own.flatMap((a) => ['--address', a]),
      '--socket', this.socketPath, ...extraArgs,
    ]);
    this.daemon = d;
    this.processes.push(d);
    await waitFor('tapvsd control socket', () => d.output().includes('control socket listening') || d.child.exitCode !== null, 15_000);
    if (d.child.exitCode !== null) throw new Error(`tapvsd exited (${d.child.exitCode}):\n${d.output()}`);
    return d;
  }

  async stopDirector(): Promise<void> {
    if (this.daemon) await stop(this.daemon);
    this.daemon = null;
  }

  get daemonOutput(): string {
    return this.daemon?.output() ?? '';
  }

  /** Run `tapvs` against this lab's daemon. */
  tapvs(args: string[], input?: string): Promise<RunResult> {
    return run(process.execPath, [TAPVS_JS, '--socket', this.socketPath, ...args], { input, timeoutMs: 15_000 });
  }

  /** Start the test real server (HTTP on 80, UDP echo on 9000) in real-server namespace i. */
  async startRealServer(i: number, extraArgs: string[] = []): Promise<Background> {
    const v6 = this.ipv6 ? ['--address6', labRealServer6(i)] : [];
    const p = background('ip', ['netns', 'exec', this.rs[i], process.execPath, SERVER_JS, '--name', `rs${i + 1}`, '--address', labRealServer(i), ...v6, ...extraArgs]);
    this.processes.push(p);
    await waitFor(`real server rs${i + 1}`, () => p.output().includes('listening') || p.child.exitCode !== null, 10_000);
    if (p.child.exitCode !== null) throw new Error(`real server exited: ${p.output()}`);
    return p;
  }

  /**
   * Prepare real server i for direct routing (and tunnelling) as seed 003 does: the VIP on lo, ARP for it
   * suppressed (arp_ignore=1, arp_announce=2), and the client subnet reached directly on the LAN, so
   * replies go straight to the client instead of through the director.
   */
  async realServerForDirectRouting(i: number, vip = LAB_VIP): Promise<void> {
    await this.holdVipOnLoopback(i, vip);
    if (vip.includes(':')) await must('ip', ['-n', this.rs[i], '-6', 'route', 'add', LAB_CLIENT_SUBNET6, 'dev', 'eth0']);
    else await must('ip', ['-n', this.rs[i], 'route', 'add', LAB_CLIENT_SUBNET, 'dev', 'eth0']);
  }

  /** The VIP on real server i's lo, with ARP for it suppressed (arp_ignore=1, arp_announce=2). */
  async holdVipOnLoopback(i: number, vip: string): Promise<void> {
    const n = this.rs[i];
    // An IPv6 address on lo is not announced on eth0 by Neighbour Discovery: no sysctls needed.
    if (vip.includes(':')) return void (await must('ip', ['-n', n, '-6', 'addr', 'add', `${vip}/128`, 'dev', 'lo']));
    await must('ip', ['-n', n, 'addr', 'add', `${vip}/32`, 'dev', 'lo']);
    for (const dev of ['all', 'lo', 'eth0']) {
      await must('ip', ['netns', 'exec', n, 'sysctl', '-qw', `net.ipv4.conf.${dev}.arp_ignore=1`, `net.ipv4.conf.${dev}.arp_announce=2`]);
    }
  }

  /** Start `tapvs-rs ipip|gre|gue` (the LVS-TUN receiver) in real-server namespace i. */
  async startTunnelReceiver(i: number, vip = LAB_VIP, kind: 'ipip' | 'gre' | 'gue' = 'ipip', port = 0): Promise<Background> {
    const director = vip.includes(':') ? LAB_DIP6 : LAB_DIP;
    const args = [TAPVS_RS_JS, kind, '--vip', vip, '--director', director, ...(kind === 'gue' ? ['--port', String(port)] : [])];
    const p = background('ip', ['netns', 'exec', this.rs[i], process.execPath, ...args]);
    this.processes.push(p);
    await waitFor(`tapvs-rs ${kind}`, () => p.output().includes(`${kind} receiver listening`) || p.child.exitCode !== null, 10_000);
    if (p.child.exitCode !== null) throw new Error(`tapvs-rs exited: ${p.output()}`);
    return p;
  }

  /** Run the lab client in the client namespace; returns its parsed JSON result. */
  async client<T = unknown>(args: string[], timeoutMs = 30_000): Promise<T> {
    const r = await run('ip', ['netns', 'exec', this.cli, process.execPath, CLIENT_JS, ...args], { timeoutMs });
    if (r.code !== 0) throw new Error(`client ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Run any command in one of the lab's namespaces. */
  exec(ns: string, cmd: string, args: string[], timeoutMs = 15_000): Promise<RunResult> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs });
  }

  /** Start any long-running command in a namespace (stopped by down()). */
  spawnIn(ns: string, cmd: string, args: string[]): Background {
    const p = background('ip', ['netns', 'exec', ns, cmd, ...args]);
    this.processes.push(p);
    return p;
  }

  /** Stop every process this lab started (by PID), delete its namespaces and files. Safe to call twice. */
  async down(): Promise<void> {
    await Promise.all(this.processes.splice(0).map((p) => stop(p)));
    this.daemon = null;
    for (const n of this.created.splice(0).reverse()) await run('ip', ['netns', 'del', n]);
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** Namespaces whose name starts with `prefix` (leftovers of an interrupted run). */
export async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n && n.startsWith(prefix));
}

/** True when `name` is an executable on PATH. */
export function hasCommand(name: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Can this process build the lab (root, /dev/net/tun, ip)? Returns the reason when not. */
export function labUnavailableReason(): string | null {
  if (process.getuid && process.getuid() !== 0) return 'not running as root';
  if (!fs.existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (!hasCommand('ip')) return 'no ip command (install iproute2)';
  if (!fs.existsSync(TAPVSD_JS)) return `not built (${TAPVSD_JS} missing): run npm run build`;
  return null;
}
