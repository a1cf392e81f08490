/**
 * Flow steering on a multiqueue TAP end to end: bench/multiqueue-director.js (the lab's NAT service on a
 * two-queue TAP, a pipeline per queue) with tapvs's BPF steering attached (src/dataplane/flow-steering.ts),
 * over IPv4 and over IPv6. Every reply must reach the queue that wrote its connection's request, and both
 * queues must carry connections; without the program the kernel's own steering does not manage that
 * (`npm run bench:mq-steering`).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../src/lab/processes.js';
import { LabTopology, labUnavailableReason } from '../../src/lab/topology.js';
import { testLabId, type Served } from './lab-fixture.js';
import type { SteeringCounts as Counts } from '../../bench/multiqueue-director.js';

const SKIP_REASON = labUnavailableReason();
const DIRECTOR_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/bench/multiqueue-director.js');

/** 100 HTTP connections through the steered two-queue director; its counts. */
async function steeredRun(ipv6: boolean): Promise<Counts> {
  const lab = new LabTopology({ id: testLabId(), realServers: 2, ipv6 });
  try {
    await lab.up();
    for (let i = 0; i < 2; i++) await lab.startRealServer(i);
    const director = lab.spawnIn(lab.dir, process.execPath, [DIRECTOR_JS, '--steering', ...(ipv6 ? ['--ipv6'] : [])]);
    await waitFor('multiqueue director', () => director.output().includes('ready') || director.child.exitCode !== null, 10_000);
    if (director.child.exitCode !== null) throw new Error(director.output());
    const res = await lab.client<Served[]>(['http', ipv6 ? '[fd00:1::100]:80' : '198.18.1.100:80', '--count', '100']);
    expect(res.filter((r) => r.error)).toEqual([]);
    expect(new Set(res.map((r) => r.server))).toEqual(new Set(['rs1', 'rs2']));
    process.kill(director.pid, 'SIGUSR1');
    await waitFor('counts', () => director.output().includes('{'), 5000);
    return JSON.parse(director.output().split('\n').find((l) => l.startsWith('{'))!) as Counts;
  } finally {
    await lab.down();
  }
}

describe.skipIf(SKIP_REASON !== null)('flow steering on a multiqueue TAP', () => {
  for (const ipv6 of [false, true]) {
    it(`${ipv6 ? 'IPv6' : 'IPv4'}: every reply reaches the queue of its request, and both queues are used`, async () => {
      const counts = await steeredRun(ipv6);
      expect(counts.requests).toBe(100);
      expect(counts.repliesSameQueue).toBeGreaterThanOrEqual(300); // SYN-ACK, response, FIN... per connection
      expect(counts.repliesOtherQueue).toBe(0);
      expect(counts.requestMoves).toBe(0);
      expect(Math.min(...counts.framesPerQueue)).toBeGreaterThan(100);
    }, 60_000);
  }
});
