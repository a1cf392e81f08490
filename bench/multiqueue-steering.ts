/**
 * Multiqueue groundwork (issue: performance): with IFF_MULTI_QUEUE, does the kernel hand both directions
 * of a NAT connection to the same queue? tun.c picks the queue of a frame for userspace by a symmetric
 * flow hash, and learns "this flow belongs to queue q" from every frame userspace writes on q
 * (tun_automq_select_queue, tun_flow_update; entries are forgotten after ~3 s idle). A request that queue q
 * receives and writes out NAT-ed (CIP -> RIP) should therefore bring its reply (RIP -> CIP) to q too.
 *
 * This measures it on the lab: a two-queue TAP, one Pipeline per queue over shared tables (one thread:
 * where frames land, not parallel speed; bench/multiqueue-director.ts), short HTTP connections, and held
 * connections that idle past the kernel's flow expiry before their second request; first with the
 * kernel's steering, then with tapvs's BPF steering by the client end (src/dataplane/flow-steering.ts).
 *
 *   npm run bench:mq-steering [-- --connections N]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabTopology } from '../src/lab/topology.js';
import { stop, waitFor } from '../src/lab/processes.js';
import type { SteeringCounts as Counts } from './multiqueue-director.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DIRECTOR_JS = path.join(here, 'multiqueue-director.js');
const args = process.argv.slice(2);
const ci = args.indexOf('--connections');
const N = ci >= 0 ? Math.max(10, Math.min(2000, Number(args[ci + 1]) || 400)) : 400;

async function main(): Promise<number> {
  const lab = new LabTopology({ id: `tapvs-mq${process.pid}`, realServers: 2 });
  const interrupt = (): void => void lab.down().then(() => process.exit(130));
  process.on('SIGINT', interrupt);
  try {
    await lab.up();
    for (let i = 0; i < 2; i++) await lab.startRealServer(i);
    console.log(`multiqueue steering, 2 queues, lab NAT service (node ${process.version})`);
    let failed = 0;
    for (const steering of [false, true]) {
      failed += await measure(lab, steering);
    }
    console.log('same q = replies that reached the queue which last received (and wrote out) a client packet of their connection;');
    console.log('c-moves = client packets that arrived on another queue than the connection\'s previous client packet');
    return failed === 0 ? 0 : 1;
  } finally {
    await lab.down();
  }
}

/** One round of the load with the kernel's steering or tapvs's; returns the failed requests. */
async function measure(lab: LabTopology, steering: boolean): Promise<number> {
  const d = lab.spawnIn(lab.dir, process.execPath, [DIRECTOR_JS, ...(steering ? ['--steering'] : [])]);
  await waitFor('multiqueue director', () => d.output().includes('ready') || d.child.exitCode !== null, 10_000);
  if (d.child.exitCode !== null) throw new Error(d.output());
  let seen = 0;
  const read = async (): Promise<Counts> => {
    const lines = (): string[] => d.output().split('\n').filter((l) => l.startsWith('{'));
    process.kill(d.pid, 'SIGUSR1');
    await waitFor('counts', () => lines().length > seen, 5000);
    return JSON.parse(lines()[seen++]) as Counts;
  };
  const row = (name: string, c: Counts, before: Counts): string => {
    const same = c.repliesSameQueue - before.repliesSameQueue, other = c.repliesOtherQueue - before.repliesOtherQueue;
    const frames = c.framesPerQueue.map((f, q) => f - before.framesPerQueue[q]);
    const moves = c.requestMoves - before.requestMoves;
    return `${name.padEnd(52)} ${String(c.requests - before.requests).padStart(6)} ${String(same).padStart(8)} ${String(other).padStart(8)} ${((100 * same) / Math.max(1, same + other)).toFixed(1).padStart(7)} % ${String(moves).padStart(7)}   ${frames.join(' / ')}`;
  };
  console.log(`\n${steering ? 'tapvs steering (BPF, by the client end)' : 'kernel steering (automq)'}`);
  console.log(`${'load'.padEnd(52)} ${'conns'.padStart(6)} ${'same q'.padStart(8)} ${'other q'.padStart(8)} ${'same'.padStart(9)} ${'c-moves'.padStart(7)}   frames q0 / q1`);
  const c0 = await read();
  const short = await lab.client<{ error?: string }[]>(['http', '198.18.1.100:80', '--count', String(N)], 180_000);
  const c1 = await read();
  console.log(row(`${N} short HTTP connections (one request each)`, c1, c0));
  const held = await lab.client<{ error?: string; second?: { error?: string } }[]>(['hold', '198.18.1.100:80', '--count', '50', '--ms', '5000', '--again'], 120_000);
  const c2 = await read();
  console.log(row('50 held connections, 5 s idle, then a second request', c2, c1));
  const failed = short.filter((r) => r.error).length + held.filter((r) => r.error || r.second?.error).length;
  console.log(`failed requests: ${failed}; replies with no recorded request: ${c2.repliesUnknown}`);
  await stop(d);
  return failed;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`bench:mq-steering: ${e.message}`);
    process.exit(1);
  },
);
