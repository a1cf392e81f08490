/**
 * keepalived.conf with an IPv6 virtual server end to end: tapvsd --keepalived in the IPv6 lab, TCP_CHECK
 * health checks from the director namespace's own stack (fd00:2::254) to IPv6 real servers. A real
 * server that stops is taken out within delay_loop x (retry + 1) + connect_timeout, and comes back when
 * it starts again; clients only ever reach live servers.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stop, waitFor, type Background } from '../../src/lab/processes.js';
import { LAB_CLIENT6, LAB_VIP6, labRealServer6 } from '../../src/lab/topology.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const work = mkdtempSync(join(tmpdir(), 'tapvs-ka6-e2e-'));
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));
const conf = join(work, 'keepalived.conf');
const RS1 = labRealServer6(0), RS2 = labRealServer6(1);
writeFileSync(
  conf,
  `virtual_server ${LAB_VIP6} 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    retry 1\n    delay_before_retry 1\n    connect_timeout 1\n` +
    `    real_server ${RS1} 80 {\n        weight 1\n        TCP_CHECK {\n        }\n    }\n` +
    `    real_server ${RS2} 80 {\n        weight 1\n        TCP_CHECK {\n        }\n    }\n}\n`,
);

describe.skipIf(SKIP_REASON !== null)('keepalived: an IPv6 virtual server with TCP_CHECK', () => {
  const started: Background[] = [];
  const { lab } = useLab({
    realServers: 2,
    ipv6: true,
    directorArgs: ['--keepalived', conf],
    startRealServers: async (l) => {
      for (let i = 0; i < 2; i++) started.push(await l.startRealServer(i));
    },
  });

  const list = async (): Promise<string> => tapvsOk(lab(), ['-L', '-n']);

  it('loads the IPv6 service, takes a stopped real server out and puts it back when it returns', async () => {
    const initial = await list();
    expect(initial).toContain(`TCP  [${LAB_VIP6}]:80 rr\n`);
    expect(initial).toContain(`  -> [${RS1}]:80`);
    expect(initial).toContain(`  -> [${RS2}]:80`);
    const both = await lab().client<Served[]>(['http', `[${LAB_VIP6}]:80`, '--count', '4']);
    expect(servers(both).sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
    expect(new Set(both.map((r) => r.peer))).toEqual(new Set([LAB_CLIENT6]));

    await stop(started[1]); // rs2's server goes away
    await waitFor('rs2 removed by its TCP_CHECK', async () => !(await list()).includes(`[${RS2}]:80`), 15_000);
    const one = await lab().client<Served[]>(['http', `[${LAB_VIP6}]:80`, '--count', '4']);
    expect(servers(one)).toEqual(['rs1', 'rs1', 'rs1', 'rs1']);

    started[1] = await lab().startRealServer(1);
    await waitFor('rs2 back', async () => (await list()).includes(`[${RS2}]:80`), 15_000);
    const again = await lab().client<Served[]>(['http', `[${LAB_VIP6}]:80`, '--count', '4']);
    expect(servers(again).sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
  }, 60_000);
});
