#!/usr/bin/env node
/**
 * tapvsd — the tapvs daemon: owns a TAP device and balances the virtual services configured over its
 * control socket (with `tapvs`, ipvsadm's syntax) or from a rules file in `ipvsadm -S` format.
 *
 *   tapvsd --tap IFNAME [--bridge BRIDGE] [--mac MAC] --address IP/PREFIX [--address ...]
 *          [--gateway IP] [--socket PATH] [--rules FILE] [--conn-max N] [--log-format text|json]
 *          [--metrics HOST:PORT] [--keepalived FILE]
 *   tapvsd --keepalived FILE [--rules FILE] --check
 *
 * SIGHUP re-reads --rules FILE and replaces the configuration with it, all or nothing. With
 * --keepalived, SIGHUP re-reads keepalived.conf (and --rules, in the same batch) and applies only the
 * difference (src/keepalived/daemon.ts).
 */
import fs from 'node:fs';
import { Director } from '../director.js';
import { parseIpv4 } from '../dataplane/wire/ipv4.js';
import { parseIpv6 } from '../dataplane/wire/ipv6.js';
import type { InterfaceAddress6 } from '../dataplane/addresses6.js';
import type { InterfaceAddress } from '../dataplane/routes.js';
import { Logger } from '../logger.js';
import { IpvsSysctls } from '../control/sysctls.js';
import { socketPathFromEnv, type Reply } from '../control/protocol.js';
import { parseRestoreText } from './restore-input.js';
import { parseMetricsListen, type MetricsListen } from '../stats/metrics-server.js';
import { reloadOnSighup, runKeepalivedCheck, startKeepalived } from '../keepalived/daemon.js';
import type { KeepalivedController } from '../keepalived/controller.js';

const USAGE = `Usage: tapvsd --tap IFNAME [--bridge BRIDGE] [--mac MAC] --address IP/PREFIX [--address IP/PREFIX ...]
              [--gateway IP] [--socket PATH] [--rules FILE] [--conn-max N] [--log-format text|json]
              [--metrics HOST:PORT] [--keepalived FILE] [--no-offload]
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
  --sysctl NAME=VALUE IPVS behaviour switch, named as the kernel's sysctl (repeatable):
                      expire_nodest_conn=0|1, expire_quiescent_template=0|1, conn_reuse_mode=0..3
  --keepalived FILE   load the LVS part of a keepalived.conf at start (after --rules, as a second
                      all-or-nothing batch); SIGHUP or 'reload-keepalived' re-reads it and applies only
                      the difference (with --rules, SIGHUP reloads both files in one batch)
  --check             with --keepalived: validate and exit like keepalived -t (0 fine, 4 values fixed
                      up or unknown keywords, 3 cannot run); needs no TAP and no privileges
`;

interface DaemonArgs {
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
  offload?: boolean;
  mtu?: number;
  metrics?: MetricsListen;
  keepalived?: string;
  check?: boolean;
}

class UsageError extends Error {}

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
  if (out.addresses.length === 0) throw new UsageError('at least one --address is required');
  return { ...out, socket: socketPathFromEnv(out.socket) } as DaemonArgs;
}

async function main(argv: string[]): Promise<number> {
  let args: DaemonArgs | 'help';
  try {
    args = parseDaemonArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tapvsd: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.check && args.keepalived)
    return runKeepalivedCheck(args.keepalived, args.rules, (s) => process.stdout.write(s), (s) => process.stderr.write(s));
  const logger = new Logger(args.logFormat);
  const director = new Director({
    tap: args.tap,
    bridge: args.bridge,
    mac: args.mac,
    addresses: args.addresses,
    addresses6: args.addresses6,
    gateway: args.gateway,
    gateway6: args.gateway6,
    socketPath: args.socket,
    connMax: args.connMax,
    sysctls: args.sysctls,
    busyPollUs: args.busyPollUs,
    offload: args.offload,
    mtu: args.mtu,
    logger,
    metrics: args.metrics,
  });

  if (args.rules) {
    let text: string;
    try {
      text = fs.readFileSync(args.rules, 'utf8');
    } catch (e) {
      process.stderr.write(`tapvsd: cannot read rules file ${args.rules}: ${(e as Error).message}\n`);
      return 2;
    }
    const parsed = parseRestoreText(text);
    if ('error' in parsed) {
      process.stderr.write(`tapvsd: ${args.rules}:${parsed.line}: ${parsed.error}\n`);
      return 2;
    }
    const reply = director.applyInitial({ op: 'batch', commands: parsed.commands });
    if (!reply.ok) {
      const line = reply.failedIndex !== undefined ? parsed.lines[reply.failedIndex] : 0;
      process.stderr.write(`tapvsd: ${args.rules}:${line}: ${reply.message ?? reply.errno}; no rules applied\n`);
      return 2;
    }
    logger.info('rules loaded', { file: args.rules, commands: parsed.commands.length });
  }

  let keepalived: KeepalivedController | null = null;
  if (args.keepalived) {
    const started = startKeepalived(args.keepalived, director, logger);
    if ('error' in started) {
      process.stderr.write(`tapvsd: ${started.error}\n`);
      return 2;
    }
    keepalived = started;
  }

  try {
    await director.start();
  } catch (e) {
    process.stderr.write(`tapvsd: ${(e as Error).message}\n`);
    await director.stop();
    return 1;
  }
  keepalived?.startCheckers(); // health checkers run once the data plane is up

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    keepalived?.stop(); // health checkers
    director.stop().then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`tapvsd: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  // Reload (SIGHUP, systemctl reload, `tapvs reload`): re-read --rules and --keepalived and apply only
  // the difference, all or nothing.
  const reload = (): Reply => {
    if (keepalived) return reloadOnSighup(keepalived, args.rules, logger);
    if (!args.rules) {
      logger.warn('reload ignored: no --rules or --keepalived file to reload');
      return { ok: false, errno: 'EINVAL', message: 'nothing to reload: tapvsd was started without --rules or --keepalived' };
    }
    const file = args.rules;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      logger.error('rules reload failed, configuration unchanged', { file, error: (e as Error).message });
      return { ok: false, errno: 'EINVAL', message: `cannot read ${file}: ${(e as Error).message}; configuration unchanged` };
    }
    const parsed = parseRestoreText(text);
    if ('error' in parsed) {
      logger.error('rules reload failed, configuration unchanged', { file, line: parsed.line, error: parsed.error });
      return { ok: false, errno: 'EINVAL', message: `${file}:${parsed.line}: ${parsed.error}; configuration unchanged` };
    }
    const reply = director.replaceRules(parsed.commands);
    if (!reply.ok) {
      const line = reply.failedIndex !== undefined ? parsed.lines[reply.failedIndex] ?? null : null;
      logger.error('rules reload failed, configuration unchanged', { file, line, error: reply.message ?? reply.errno });
      return { ok: false, errno: reply.errno, message: `${file}${line !== null ? `:${line}` : ''}: ${reply.message ?? reply.errno}; configuration unchanged` };
    }
    logger.info('rules reloaded', { file, commands: parsed.commands.length });
    return { ok: true, message: `${file} reloaded` };
  };
  director.reloadConfiguration = reload;
  process.on('SIGHUP', () => {
    if (!stopping) reload();
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e) => {
    process.stderr.write(`tapvsd: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
