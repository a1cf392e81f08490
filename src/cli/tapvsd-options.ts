/**
 * tapvsd's command line: the options, their checks (a UsageError names what is wrong) and the usage text.
 * Kept apart from tapvsd.ts so that it can be tested without starting a daemon.
 */
import { parseIpv4 } from '../dataplane/wire/ipv4.js';
import { parseIpv6 } from '../dataplane/wire/ipv6.js';
import type { InterfaceAddress6 } from '../dataplane/addresses6.js';
import type { InterfaceAddress } from '../dataplane/routes.js';
import { IpvsSysctls } from '../control/sysctls.js';
import { socketPathFromEnv } from '../control/protocol.js';
import { parseMetricsListen, type MetricsListen } from '../stats/metrics-server.js';

export const USAGE = `Usage: tapvsd --tap IFNAME [--bridge BRIDGE] [--mac MAC] --address IP/PREFIX [--address IP/PREFIX ...]
              [--gateway IP] [--socket PATH] [--rules FILE] [--conn-max N] [--log-format text|json]
              [--metrics HOST:PORT] [--keepalived FILE] [--no-offload] [--queues N]
       tapvsd --keepalived FILE [--rules FILE] --check

  --tap IFNAME        TAP device to create (or attach to) in the current network namespace
  --bridge BRIDGE     enslave the TAP to this existing Linux bridge
  --mac MAC           the director's MAC address on the LAN (default: random, locally administered)
  --address IP/PREFIX the director's own address (DIP); ARP and ICMP echo are answered for it and every VIP.
                      An IPv6 address (fd00:1::1/64) works the same for IPv6: Neighbour Discovery, ping,
                      and the source of what IPv6 services send on its prefix
  --gateway IP        default route for destinations outside the --address subnets (once per family)
  --socket PATH       control socket (default $TAPVS_SOCKET or /run/tapvs.sock), created mode 0600
  --rules FILE        rules in 'ipvsadm -S' format, applied at start (all or nothing); SIGHUP re-reads
                      the file and replaces the whole configuration with it (all or nothing)
  --conn-max N        connection table limit (default 1048576); beyond it new connections are refused
  --log-format F      text (default) or json
  --metrics HOST:PORT serve Prometheus metrics at http://HOST:PORT/metrics ([IPv6]:PORT, :PORT = all)
  --mtu N             MTU of the director's link (68..9000, default 1500): the TAP's MTU and the tunnel
                      MTU checks
  --no-offload        no TAP offloads. By default the TAP has them (IFF_VNET_HDR, checksum and TCP
                      segmentation): TCP crosses it as super-frames of up to 64 KB (tunnels and PROXY/TOA
                      services cut them in userspace); --offload asks for them explicitly
  --busy-poll-us N    after a batch, keep polling the TAP for N µs (0..1000, default 0 = off): lower
                      latency for CPU spent while traffic flows (an idle daemon does not spin)
  --queues N          TAP queues (1..16, default 1). N > 1 opens a multiqueue TAP with one worker
                      thread per queue, each with its own connection table (--conn-max shared out); a
                      BPF program steers both directions of a connection to one queue. lc/wlc and
                      friends, and -x/-y thresholds, count each queue's connections only
  --steer-by KIND     with --queues: 'address-port' (default) spreads a client's connections over the
                      queues by port; 'address' keeps all of a client's connections on one queue, so
                      persistent services (per client address, -M 255.255.255.255 or 128) work
  --sysctl NAME=VALUE IPVS behaviour switch, named as the kernel's sysctl (repeatable):
                      expire_nodest_conn=0|1, expire_quiescent_template=0|1, conn_reuse_mode=0..3
  --keepalived FILE   load the LVS part of a keepalived.conf at start (after --rules, as a second
                      all-or-nothing batch); SIGHUP or 'reload-keepalived' re-reads it and applies only
                      the difference (with --rules, SIGHUP reloads both files in one batch)
  --check             with --keepalived: validate and exit like keepalived -t (0 fine, 4 values fixed
                      up or unknown keywords, 3 cannot run); needs no TAP and no privileges
`;

export interface DaemonArgs {
  tap: string;
  bridge?: string;
  mac?: Uint8Array;
  addresses: InterfaceAddress[];
  addresses6: InterfaceAddress6[];
  gateway?: number;
  gateway6?: Uint8Array;
  socket: string;
  rules?: string;
  connMax: number;
  logFormat: 'text' | 'json';
  sysctls: IpvsSysctls;
  busyPollUs?: number;
  queues?: number;
  steerByAddress?: boolean;
  offload?: boolean;
  mtu?: number;
  metrics?: MetricsListen;
  keepalived?: string;
  check?: boolean;
}

export class UsageError extends Error {}

function parseMac(text: string): Uint8Array {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(text);
  if (!m) throw new UsageError(`invalid MAC address '${text}'`);
  const mac = new Uint8Array(m.slice(1).map((h) => parseInt(h, 16)));
  if (mac[0] & 1) throw new UsageError(`MAC address '${text}' is multicast`);
  return mac;
}

function parseAddress6(text: string): InterfaceAddress6 {
  const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(text);
  const addr = m ? parseIpv6(m[1]) : null;
  const prefix = m ? Number(m[2]) : NaN;
  if (!addr || !(prefix >= 1 && prefix <= 128)) throw new UsageError(`invalid address '${text}' (expected IPv6/PREFIX)`);
  return { addr, prefix };
}

function parseAddress(text: string): InterfaceAddress {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const addr = m ? parseIpv4(m[1]) : NaN;
  const prefix = m ? Number(m[2]) : NaN;
  if (!(addr >= 0) || !(prefix >= 0 && prefix <= 32)) throw new UsageError(`invalid address '${text}' (expected IPv4/PREFIX)`);
  return { addr, prefix };
}

export function parseDaemonArgs(argv: string[]): DaemonArgs | 'help' {
  const out: Partial<DaemonArgs> & { addresses: InterfaceAddress[]; addresses6: InterfaceAddress6[]; sysctls: IpvsSysctls } = {
    addresses: [],
    addresses6: [],
    connMax: 1 << 20,
    logFormat: 'text',
    sysctls: new IpvsSysctls(),
  };
  for (let i = 0; i < argv.length; i++) {
    const opt = argv[i];
    if (opt === '-h' || opt === '--help') return 'help';
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`option ${opt} needs a value`);
      return v;
    };
    switch (opt) {
      case '--tap':
        out.tap = value();
        if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(out.tap)) throw new UsageError(`invalid interface name '${out.tap}'`);
        break;
      case '--bridge':
        out.bridge = value();
        break;
      case '--mac':
        out.mac = parseMac(value());
        break;
      case '--address': {
        const v = value();
        if (v.includes(':')) out.addresses6.push(parseAddress6(v));
        else out.addresses.push(parseAddress(v));
        break;
      }
      case '--gateway': {
        const text = value();
        if (text.includes(':')) {
          const g6 = parseIpv6(text);
          if (!g6) throw new UsageError(`invalid gateway '${text}'`);
          out.gateway6 = g6;
          break;
        }
        const g = parseIpv4(text);
        if (!(g >= 0)) throw new UsageError(`invalid gateway '${argv[i]}'`);
        out.gateway = g;
        break;
      }
      case '--socket':
        out.socket = value();
        break;
      case '--rules':
        out.rules = value();
        break;
      case '--conn-max': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 1 << 26) throw new UsageError(`invalid --conn-max '${argv[i]}' (1..67108864)`);
        out.connMax = n;
        break;
      }
      case '--log-format': {
        const f = value();
        if (f !== 'text' && f !== 'json') throw new UsageError(`invalid --log-format '${f}' (text or json)`);
        out.logFormat = f;
        break;
      }
      case '--metrics': {
        const m = parseMetricsListen(value());
        if (!m) throw new UsageError(`invalid --metrics '${argv[i]}' (expected HOST:PORT)`);
        out.metrics = m;
        break;
      }
      case '--keepalived':
        out.keepalived = value();
        break;
      case '--check':
        out.check = true;
        break;
      case '--mtu': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 68 || n > 9000) throw new UsageError(`invalid --mtu '${argv[i]}' (68..9000)`);
        out.mtu = n;
        break;
      }
      case '--offload':
        out.offload = true;
        break;
      case '--no-offload':
        out.offload = false;
        break;
      case '--busy-poll-us': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 0 || n > 1000) throw new UsageError(`invalid --busy-poll-us '${argv[i]}' (0..1000)`);
        out.busyPollUs = n;
        break;
      }
      case '--queues': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 16) throw new UsageError(`invalid --queues '${argv[i]}' (1..16)`);
        out.queues = n;
        break;
      }
      case '--steer-by': {
        const v = value();
        if (v !== 'address' && v !== 'address-port') throw new UsageError(`invalid --steer-by '${v}' (address or address-port)`);
        out.steerByAddress = v === 'address';
        break;
      }
      case '--sysctl': {
        const err = out.sysctls.set(value());
        if (err) throw new UsageError(`--sysctl: ${err}`);
        break;
      }
      default:
        throw new UsageError(`unknown option '${opt}'`);
    }
  }
  if (out.check) {
    if (!out.keepalived) throw new UsageError('--check needs --keepalived FILE');
    return { ...out, tap: out.tap ?? '', socket: socketPathFromEnv(out.socket) } as DaemonArgs;
  }
  if (!out.tap) throw new UsageError('--tap is required');
  if (out.steerByAddress !== undefined && (out.queues ?? 1) < 2) throw new UsageError('--steer-by needs --queues 2 or more');
  if (out.addresses.length === 0 && out.addresses6.length === 0) throw new UsageError('at least one --address is required');
  return { ...out, socket: socketPathFromEnv(out.socket) } as DaemonArgs;
}
