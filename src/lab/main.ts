/**
 * `npm run lab`: the LVS demos of the seed articles, on this machine, in one command.
 *
 * Builds network namespaces (a client, the director running tapvsd on a TAP, two real servers with an
 * HTTP server that answers with its own name), configures the service with tapvs the way the seed
 * articles do with ipvsadm, sends requests from the client, shows which real server answered each, lists
 * the table with statistics, and tears everything down (also on Ctrl-C or failure). The forwarding
 * method comes from the table in modes.ts (nat, the default, as seed 002; dr as seed 003; tun; fullnat).
 * --ipv6 runs the same over IPv6 (addresses in family.ts: VIP fd00:1::100, TUN as IPv6-in-IPv6).
 *
 *   npm run lab [-- --mode nat|dr|tun|fullnat] [--ipv6] [--requests N] [--scheduler rr|wrr|lc|wlc] [--keep]
 *               [--queues N]
 *               [--walk [--pcap DIR] [--all] [--capture cap|tcpdump]]
 *
 * --walk captures one more connection at the client, the director's TAP and the real servers, writes
 * pcap files (into --pcap DIR, default a new temporary directory) and prints its hop-by-hop table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyCommands, labMode, LAB_MODE_NAMES, labRoles, labServiceCommands, startLab, type LabMode } from './modes.js';
import { hostPort, labAddresses } from './family.js';
import { ControlClient } from '../control/client.js';
import { hasCommand, labUnavailableReason, LabTopology } from './topology.js';
import { run } from './processes.js';
import { packetWalk, type CaptureBackend } from './walk.js';

interface Served {
  server?: string;
  address?: string;
  peer?: string;
  from?: string;
  error?: string;
}

function option(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
}

/** The client reports `address:port` with a bare IPv6 address; print it as [address]:port. */
const out = (s = ''): void => {
  process.stdout.write(s + '\n');
};

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('-h') || args.includes('--help')) {
    out(`usage: npm run lab [-- --mode ${LAB_MODE_NAMES.join('|')}] [--ipv6] [--requests N] [--scheduler NAME] [--keep] [--queues N]`);
    out('                   [--walk [--pcap DIR] [--all] [--capture cap|tcpdump]]');
    out('--ipv6: the service, the requests and the walk on IPv6 (VIP fd00:1::100, real servers fd00:2::11...)');
    return 0;
  }
  let mode: LabMode;
  try {
    mode = labMode(option(args, '--mode', 'nat'));
  } catch (e) {
    process.stderr.write(`lab: ${(e as Error).message}\n`);
    return 2;
  }
  const walk = args.includes('--walk');
  const capture = option(args, '--capture', 'auto');
  if (!['auto', 'cap', 'tcpdump'].includes(capture)) {
    process.stderr.write(`lab: --capture is cap or tcpdump, not '${capture}'\n`);
    return 2;
  }
  const requests = Math.max(1, Math.min(1000, Number(option(args, '--requests', '10')) || 10));
  const scheduler = option(args, '--scheduler', 'rr');
  const keep = args.includes('--keep');
  // tapvsd --queues N: a multiqueue TAP with a worker thread per queue; the lab shows what each queue carried.
  const queues = Math.max(1, Math.min(16, Number(option(args, '--queues', '1')) || 1));
  // A fresh Debian machine may lack iproute2; the lab installs it (as the benchmark installs its tools).
  if (!hasCommand('ip') && process.getuid?.() === 0 && hasCommand('apt-get')) {
    process.stdout.write('lab: installing iproute2 (apt-get)\n');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = await run('apt-get', ['install', '-y', '-qq', 'iproute2'], { timeoutMs: 300_000, env });
    if (r.code !== 0) {
      await run('apt-get', ['update', '-qq'], { timeoutMs: 300_000, env });
      r = await run('apt-get', ['install', '-y', '-qq', 'iproute2'], { timeoutMs: 300_000, env });
    }
    if (r.code !== 0) process.stderr.write(`lab: apt-get install iproute2 failed: ${r.stderr.trim()}\n`);
  }
  const why = labUnavailableReason();
  if (why) {
    process.stderr.write(`lab: cannot build the lab: ${why} (the lab needs root, /dev/net/tun and iproute2)\n`);
    return 1;
  }

  const lab = new LabTopology({ id: `tapvs-lab${process.pid}`, ipv6: args.includes('--ipv6') });
  const a = labAddresses(lab);
  const vip80 = hostPort(a.vip, 80);
  const url = `http://${a.ipv6 ? `[${a.vip}]` : a.vip}/`;
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write('\nlab: interrupted, tearing down...\n');
    lab.down().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    out(`== tapvs lab: ${mode.title} (${mode.seed})${a.ipv6 ? ' over IPv6' : ''} ==`);
    out(`client      ${a.client}            netns ${lab.cli}`);
    out(`director    VIP ${a.vip}, ${a.directorFront}/${a.prefixLength}, DIP ${a.dip}/${a.prefixLength}   netns ${lab.dir} (tapvsd on TAP tapvs0, bridge br0)`);
    lab.rs.forEach((n, i) => out(`${mode.describeRealServer(a, i)}  netns ${n}`));
    out();
    await startLab(lab, mode, queues > 1 ? ['--queues', String(queues)] : []);
    await applyCommands(lab, labServiceCommands(lab, mode, scheduler), out);
    out();

    out(`# ${requests} HTTP requests from the client (${a.client}) to ${url}, one TCP connection each`);
    const results = await lab.client<Served[]>(['http', vip80, '--count', String(requests)], 60_000);
    results.forEach((r, i) => {
      if (r.error) out(`request ${String(i + 1).padStart(3)}: FAILED ${r.error}`);
      else out(`request ${String(i + 1).padStart(3)}: answered by ${r.server} (${r.address}), which saw the client as ${r.peer}; reply came from ${r.from}`);
    });
    const failed = results.filter((r) => r.error).length;
    out();

    for (const c of [['-L', '-n'], ['-L', '-n', '--stats']]) {
      out(`# tapvs ${c.join(' ')}`);
      process.stdout.write((await lab.tapvs(c)).stdout);
      out();
    }
    if (queues > 1) {
      const client = new ControlClient(lab.socketPath);
      const reply = await client.request({ op: 'get-counters' }).finally(() => client.close());
      const per = reply.ok ? ((reply.counters?.queues ?? []) as { framesIn: number; forwardedIn: number }[]) : [];
      out(`# frames per TAP queue (each queue a worker thread with its own connection table)`);
      per.forEach((q, i) => out(`queue ${i}: ${q.framesIn} frames in, ${q.forwardedIn} forwarded to real servers`));
      out();
    }

    if (walk) {
      const pcapDir = option(args, '--pcap', '') || fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-walk-'));
      out(`# packet walk: one more request, captured at the client, the director's TAP and the real servers`);
      const w = await packetWalk(lab, {
        pcapDir: path.resolve(pcapDir),
        roles: labRoles(lab, mode),
        title: mode.title,
        all: args.includes('--all'),
        backend: capture as CaptureBackend | 'auto',
      });
      out(w.text);
      out();
    }

    if (keep) {
      out('The lab stays up. Try, in another shell:');
      out(`  ip netns exec ${lab.cli} curl -s${a.ipv6 ? 'g' : ''} ${url}`);
      out(`  node dist/src/cli/tapvs.js --socket ${lab.socketPath} -L -n --stats`);
      out('Press Ctrl-C to tear it down.');
      await new Promise(() => undefined);
    }
    out(failed === 0 ? `lab: all ${requests} requests answered through tapvs` : `lab: ${failed} of ${requests} requests failed`);
    return failed === 0 ? 0 : 1;
  } catch (e) {
    process.stderr.write(`lab: ${(e as Error).message}\n`);
    const log = lab.daemonOutput;
    if (log) process.stderr.write(`tapvsd log:\n${log}\n`);
    return 1;
  } finally {
    if (!interrupted) await lab.down();
  }
}

main().then((code) => process.exit(code));
