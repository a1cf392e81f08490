#!/usr/bin/env node
/**
 * tapvs-rs — helpers for real servers behind a tapvs director.
 *
 *   tapvs-rs ipip|gre --vip VIP [--vip VIP ...] [--director IP ...] [--device NAME] [--setup]
 *   tapvs-rs gue --port N --vip VIP [...]
 *
 * Receives the director's tunnelled (LVS-TUN) packets on a host without the kernel's tunnel modules
 * (ipip, ip_gre, fou) and hands the inner packets to the local stack through a TUN device. With --setup it also prepares the host as LVS-TUN
 * real servers are prepared: each VIP on lo, arp_ignore=1 and arp_announce=2 (the host must not answer ARP
 * for the VIP), reverse-path filtering off for the TUN device (the client's packets arrive on it, the
 * replies leave through the normal route).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { parseIpv4, formatIpv4 } from '../dataplane/wire/ipv4.js';
import { formatIpv6, parseIpv6 } from '../dataplane/wire/ipv6.js';
import { TunnelReceiver } from '../realserver/tunnel-receiver.js';
import { Logger } from '../logger.js';

const USAGE = `Usage: tapvs-rs ipip|gre --vip VIP [--vip VIP ...] [--director IP ...] [--device NAME] [--setup]
       tapvs-rs gue --port N --vip VIP [...]

  ipip, gre, gue   the director's tunnel type (tapvs -a ... -i [--tun-type gre|gue --tun-port N])
  --port N         gue: the UDP port the director sends to (its --tun-port)

  --vip VIP        a virtual IP this real server serves (inner packets to other addresses are dropped);
                   ipip: an IPv6 VIP receives IPv6-in-IPv6 (the tunnel of IPv6 services)
  --director IP    accept tunnelled packets only from this director address (repeatable; default: any)
  --device NAME    the TUN device to create (default tapvs-ipip0)
  --setup          also put each VIP on lo and set arp_ignore=1, arp_announce=2 (as for LVS-DR/TUN)
`;

function fail(msg: string): never {
  process.stderr.write(`tapvs-rs: ${msg}\n${USAGE}`);
  process.exit(2);
}

function sysctlWrite(path: string, value: string, log: Logger): void {
  const full = `/proc/sys/net/ipv4/${path}`;
  const old = fs.readFileSync(full, 'utf8').trim();
  if (old !== value) {
    fs.writeFileSync(full, value);
    log.info('sysctl set', { key: path.replace(/\//g, '.'), from: old, to: value });
  }
}

function main(argv: string[]): void {
  if (argv[0] === '-h' || argv[0] === '--help' || argv.length === 0) {
    process.stdout.write(USAGE);
    process.exit(argv.length === 0 ? 2 : 0);
  }
  const kind = argv[0];
  if (kind !== 'ipip' && kind !== 'gre' && kind !== 'gue') fail(`unknown command '${argv[0]}'`);
  const vips: number[] = [], directors: number[] = [];
  const vips6: Uint8Array[] = [], directors6: string[] = [];
  let device = `tapvs-${kind}0`, setup = false, port = 0;
  for (let i = 1; i < argv.length; i++) {
    const o = argv[i];
    const val = (): string => argv[++i] ?? fail(`option ${o} needs a value`);
    if (o === '--vip' || o === '--director') {
      const v = val();
      const a6 = v.includes(':') ? parseIpv6(v) : null;
      if (a6) {
        if (kind !== 'ipip') fail(`${kind} carries IPv4 only: '${v}' is an IPv6 address`);
        if (o === '--vip') vips6.push(a6);
        else directors6.push(formatIpv6(a6));
        continue;
      }
      const a = parseIpv4(v);
      if (!(a >= 0)) fail(`invalid address '${v}'`);
      (o === '--vip' ? vips : directors).push(a);
    } else if (o === '--device') {
      device = val();
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(device)) fail(`invalid device name '${device}'`);
    } else if (o === '--port') {
      const v = val();
      port = Number(v);
      if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`invalid port '${v}'`);
    } else if (o === '--setup') setup = true;
    else fail(`unknown option '${o}'`);
  }
  if (vips.length === 0 && vips6.length === 0) fail('at least one --vip is required');
  if (kind === 'gue' && port === 0) fail('gue needs --port (the director\'s --tun-port)');
  if (kind !== 'gue' && port !== 0) fail('--port is for gue only');
  const log = new Logger();
  // Where the kernel's own module is loaded it would also take the packets: deliver them twice, never.
  if (kind === 'ipip' && vips6.length > 0 && fs.existsSync('/sys/class/net/ip6tnl0')) {
    fail('this host has the ip6_tunnel module (ip6tnl0 exists): use an ip6tnl device instead — see the README (LVS-TUN real servers)');
  }
  if (kind === 'ipip' && vips.length > 0 && fs.existsSync('/sys/class/net/tunl0')) {
    fail('this host has the ipip module (tunl0 exists): use it instead — see the README (LVS-TUN real servers)');
  }
  if (kind === 'gre' && fs.existsSync('/sys/class/net/gre0')) {
    fail('this host has the ip_gre module (gre0 exists): use a GRE device instead');
  }
  let receiver: TunnelReceiver;
  try {
    receiver = new TunnelReceiver({ kind, vips, directors, device, port, vips6, directors6 });
    sysctlWrite(`conf/${receiver.deviceName}/rp_filter`, '0', log);
    // The effective rp_filter of an interface is max(all, interface).
    if (fs.readFileSync('/proc/sys/net/ipv4/conf/all/rp_filter', 'utf8').trim() !== '0') sysctlWrite('conf/all/rp_filter', '0', log);
    if (setup) {
      for (const v of vips) {
        const have = execFileSync('ip', ['-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
        if (!have.includes(` ${formatIpv4(v)}/`)) execFileSync('ip', ['addr', 'add', `${formatIpv4(v)}/32`, 'dev', 'lo']);
      }
      for (const v of vips6) {
        const have = execFileSync('ip', ['-o', '-6', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
        if (!have.includes(` ${formatIpv6(v)}/`)) execFileSync('ip', ['-6', 'addr', 'add', `${formatIpv6(v)}/128`, 'dev', 'lo']);
      }
      for (const dev of ['all', 'lo']) {
        sysctlWrite(`conf/${dev}/arp_ignore`, '1', log);
        sysctlWrite(`conf/${dev}/arp_announce`, '2', log);
      }
    }
  } catch (e) {
    process.stderr.write(`tapvs-rs: ${(e as Error).message}\n`);
    process.exit(1);
  }
  receiver
    .start((e) => log.error('socket error', { error: e.message }))
    .then(() => log.info(`${kind} receiver listening`, { device: receiver.deviceName, vips: [...vips.map(formatIpv4), ...vips6.map((v) => formatIpv6(v))], directors: [...directors.map(formatIpv4), ...directors6], ...(port ? { port } : {}) }))
    .catch((e: Error) => {
      process.stderr.write(`tapvs-rs: ${e.message}\n`);
      process.exit(1);
    });
  const stop = (signal: string): void => {
    log.info('stopping', { signal, ...receiver.counters });
    receiver.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGUSR1', () => log.info('counters', { ...receiver.counters }));
}

main(process.argv.slice(2));
