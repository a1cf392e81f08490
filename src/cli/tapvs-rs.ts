#!/usr/bin/env node
/**
 * tapvs-rs — helpers for real servers behind a tapvs director.
 *
 *   tapvs-rs ipip --vip VIP [--vip VIP ...] [--director IP ...] [--device NAME] [--setup]
 *
 * Receives the director's IPIP (LVS-TUN) packets on a host without the `ipip` kernel module and hands the
 * inner packets to the local stack through a TUN device. With --setup it also prepares the host as LVS-TUN
 * real servers are prepared: each VIP on lo, arp_ignore=1 and arp_announce=2 (the host must not answer ARP
 * for the VIP), reverse-path filtering off for the TUN device (the client's packets arrive on it, the
 * replies leave through the normal route).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { parseIpv4, formatIpv4 } from '../dataplane/wire/ipv4.js';
import { IpipReceiver } from '../realserver/ipip-receiver.js';
import { Logger } from '../logger.js';

const USAGE = `Usage: tapvs-rs ipip --vip VIP [--vip VIP ...] [--director IP ...] [--device NAME] [--setup]

  --vip VIP        a virtual IP this real server serves (inner packets to other addresses are dropped)
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
  if (argv[0] !== 'ipip') fail(`unknown command '${argv[0]}'`);
  const vips: number[] = [], directors: number[] = [];
  let device = 'tapvs-ipip0', setup = false;
  for (let i = 1; i < argv.length; i++) {
    const o = argv[i];
    const val = (): string => argv[++i] ?? fail(`option ${o} needs a value`);
    if (o === '--vip' || o === '--director') {
      const v = val();
      const a = parseIpv4(v);
      if (!(a >= 0)) fail(`invalid address '${v}'`);
      (o === '--vip' ? vips : directors).push(a);
    } else if (o === '--device') {
      device = val();
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(device)) fail(`invalid device name '${device}'`);
    } else if (o === '--setup') setup = true;
    else fail(`unknown option '${o}'`);
  }
  if (vips.length === 0) fail('at least one --vip is required');
  const log = new Logger();
  if (fs.existsSync('/sys/class/net/tunl0')) {
    fail('this host has the ipip module (tunl0 exists): use it instead — see the README (LVS-TUN real servers)');
  }
  let receiver: IpipReceiver;
  try {
    receiver = new IpipReceiver({ vips, directors, device });
    sysctlWrite(`conf/${receiver.deviceName}/rp_filter`, '0', log);
    // The effective rp_filter of an interface is max(all, interface).
    if (fs.readFileSync('/proc/sys/net/ipv4/conf/all/rp_filter', 'utf8').trim() !== '0') sysctlWrite('conf/all/rp_filter', '0', log);
    if (setup) {
      for (const v of vips) {
        const have = execFileSync('ip', ['-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
        if (!have.includes(` ${formatIpv4(v)}/`)) execFileSync('ip', ['addr', 'add', `${formatIpv4(v)}/32`, 'dev', 'lo']);
      }
      for (const dev of ['all', 'lo']) {
        sysctlWrite(`conf/${dev}/arp_ignore`, '1', log);
        sysctlWrite(`conf/${dev}/arp_announce`, '2', log);
      }
    }
    receiver.start((e) => log.error('raw socket error', { error: e.message }));
  } catch (e) {
    process.stderr.write(`tapvs-rs: ${(e as Error).message}\n`);
    process.exit(1);
  }
  log.info('ipip receiver listening', { device: receiver.deviceName, vips: vips.map(formatIpv4), directors: directors.map(formatIpv4) });
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
