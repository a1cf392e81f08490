/**
 * Flow steering on a multiqueue TAP end to end: bench/multiqueue-director.js (the lab's NAT service on a
 * two-queue TAP, a pipeline per queue) with tapvs's BPF steering attached (src/dataplane/flow-steering.ts).
 * Every reply must reach the queue that wrote its connection's request, and both queues must carry
 * connections; without the program the kernel's own steering does not manage that (bench:mq-steering).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type Background } from '../../src/lab/processes.js';
import { LabTopology, labUnavailableReason } from '../../src/lab/topology.js';
import { testLabId, type Served } from './lab-fixture.js';

const SKIP_REASON = labUnavailableReason();
const DIRECTOR_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/bench/multiqueue-director.js');

interface Counts {
  framesPerQueue: number[];
  requests: number;
  requestMoves: number;
  repliesSameQueue: number;
  repliesOtherQueue: number;
}

describe.skipIf(SKIP_REASON !== null)('flow steering on a multiqueue TAP', () => {
  let lab: LabTopology | null = null;
  let director: Background | null = null;
  beforeAll(async () => {
    lab = new LabTopology({ id: testLabId(), realServers: 2 });
    try {
      await lab.up();
      for (let i = 0; i < 2; i++) await lab.startRealServer(i);
      director = lab.spawnIn(lab.dir, process.execPath, [DIRECTOR_JS, '--steering']);
      await waitFor('multiqueue director', () => director!.output().includes('ready') || director!.child.exitCode !== null, 10_000);
      if (director.child.exitCode !== null) throw new Error(director.output());
    } catch (e) {
      await lab.down();
      throw e;
    }
  }, 60_000);
  afterAll(async () => {
    await lab?.down();
  }, 60_000);

  it('brings every reply to the queue of its request, and uses both queues', async () => {
    const res = await lab!.client<Served[]>(['http', '198.18.1.100:80', '--count', '100']);
    expect(res.filter((r) => r.error)).toEqual([]);
    expect(new Set(res.map((r) => r.server))).toEqual(new Set(['rs1', 'rs2']));
    process.kill(director!.pid, 'SIGUSR1');
    await waitFor('counts', () => director!.output().includes('{'), 5000);
    const counts = JSON.parse(director!.output().split('\n').find((l) => l.startsWith('{'))!) as Counts;
    expect(counts.requests).toBe(100);
    expect(counts.repliesSameQueue).toBeGreaterThanOrEqual(300); // SYN-ACK, response, FIN-ACK... per connection
    expect(counts.repliesOtherQueue).toBe(0);
    expect(counts.requestMoves).toBe(0);
    expect(Math.min(...counts.framesPerQueue)).toBeGreaterThan(100);
  });
});
