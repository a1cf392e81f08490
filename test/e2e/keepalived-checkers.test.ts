/**
 * keepalived health checkers end to end: tapvsd --keepalived (LVS-NAT, delay_loop 1 s) in the lab's
 * director namespace, checking real servers in their namespaces through the namespace's own stack
 * (198.18.2.254). Every checker type against live and broken targets (HTTP status and digest, MISC exit
 * codes and misc_dynamic, UDP with and without require_reply, ICMP echo, DNS with a tiny responder,
 * TCP), inhibit_on_failure keeping a held connection, a real server stopped under a steady client load
 * (removed within delay_loop x (retry + 1) + timeouts, then no failed request; back with its weight
 * when it starts again), and every real server down -> the sorry server answers.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import type { RealServerCheckStatus } from '../../src/control/protocol.js';
import { waitFor, type Background } from '../../src/lab/processes.js';
import { LAB_VIP, LabTopology, labRealServer, labUnavailableReason } from '../../src/lab/topology.js';
import { tapvsOk, type Served, testLabId } from './lab-fixture.js';

const SKIP_REASON = labUnavailableReason();
const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);
const SERVER_JS = new URL('../../dist/src/lab/real-server.js', import.meta.url).pathname;
const CLIENT_JS = new URL('../../dist/src/lab/client.js', import.meta.url).pathname;

const work = mkdtempSync(join(tmpdir(), 'tapvs-kachk-e2e-'));
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));
const conf = join(work, 'keepalived.conf');
const codeFile = join(work, 'misc-code');
const miscScript = join(work, 'misc.sh');

const timing = '    delay_loop 1\n    retry 1\n    delay_before_retry 1\n    connect_timeout 1\n    lb_kind NAT\n';
const vs = (port: number, proto: 'TCP' | 'UDP', body: string): string => `virtual_server ${VIP} ${port} {\n    lb_algo rr\n    protocol ${proto}\n${timing}${body}}\n`;
const rs = (ip: string, port: number, body: string, extra = ''): string => `    real_server ${ip} ${port} {\n        weight 2\n${extra}        ${body}\n    }\n`;
const http = (urlBody: string): string => `HTTP_GET {\n            url {\n                path /\n                ${urlBody}\n            }\n        }`;

const CONF =
  '! health checkers, end to end\n' +
  vs(80, 'TCP', `    sorry_server ${RS2} 8081\n` + rs(RS1, 80, http('status_code 200')) + rs(RS2, 80, http(''))) +
  vs(81, 'TCP', rs(RS1, 80, `MISC_CHECK {\n            misc_path "${miscScript}"\n            misc_timeout 2\n            misc_dynamic\n        }`, '        inhibit_on_failure\n')) +
  vs(83, 'TCP', rs(RS1, 80, http('digest 0123456789abcdef0123456789abcdef'))) +
  vs(84, 'TCP', rs(RS1, 80, http('status_code 404'))) +
  vs(86, 'TCP', rs(RS1, 80, 'TCP_CHECK {\n        }') + rs(RS2, 8099, 'TCP_CHECK {\n        }')) +
  vs(85, 'TCP', rs(RS1, 80, 'PING_CHECK {\n        }') + rs('198.18.2.99', 80, 'PING_CHECK {\n        }')) +
  vs(9000, 'UDP', rs(RS1, 9000, 'UDP_CHECK {\n            payload 68656c6c6f\n            require_reply 7b\n        }') + rs(RS2, 9001, 'UDP_CHECK {\n        }')) +
  vs(53, 'UDP', rs(RS1, 5353, 'DNS_CHECK {\n            type A\n            name ok.example\n        }')) +
  vs(54, 'UDP', rs(RS1, 5353, 'DNS_CHECK {\n            type A\n            name bad.example\n        }'));

/** A DNS responder: NOERROR for ok.example, NXDOMAIN for anything else. */
const DNS_RESPONDER = `
const d = require('dgram').createSocket('udp4');
d.on('message', (m, r) => {
  let o = 12; const labels = [];
  while (o < m.length && m[o]) { labels.push(m.toString('latin1', o + 1, o + 1 + m[o])); o += m[o] + 1; }
  const resp = Buffer.from(m.subarray(0, o + 5));
  resp.writeUInt16BE(labels.join('.') === 'ok.example' ? 0x8180 : 0x8183, 2);
  d.send(resp, r.port, r.address);
});
d.bind(5353, '${RS1}', () => console.log('dns listening'));
`;

describe.skipIf(SKIP_REASON !== null)('keepalived health checkers end to end', () => {
  let lab: LabTopology;
  let daemon: Background;
  const realServers: Background[] = [];
  let control: ControlClient;

  beforeAll(async () => {
    writeFileSync(conf, CONF);
    writeFileSync(codeFile, '0\n');
    writeFileSync(miscScript, `#!/bin/sh\nexit $(cat ${codeFile})\n`);
    chmodSync(miscScript, 0o755);
    lab = new LabTopology({ id: testLabId(), realServers: 2 });
    try {
      await lab.up();
      realServers[0] = await lab.startRealServer(0);
      realServers[1] = await lab.startRealServer(1);
      const dns = lab.spawnIn(lab.rs[0], process.execPath, ['-e', DNS_RESPONDER]);
      await waitFor('dns responder', () => dns.output().includes('dns listening'), 10_000);
      const sorry = lab.spawnIn(lab.rs[1], process.execPath, [SERVER_JS, '--name', 'sorry', '--address', RS2, '--http-port', '8081', '--udp-port', '9002']);
      await waitFor('sorry server', () => sorry.output().includes('listening'), 10_000);
      daemon = await lab.startDirector(['--keepalived', conf]);
      control = new ControlClient(lab.socketPath);
    } catch (e) {
      await lab.down();
      throw e;
    }
  }, 60_000);
  afterAll(async () => {
    control?.close();
    await lab?.down();
  }, 60_000);

  async function status(): Promise<RealServerCheckStatus[]> {
    const r = await control.request({ op: 'get-checkers' });
    if (!r.ok) throw new Error(r.message);
    return r.checkers ?? [];
  }
  const find = (list: RealServerCheckStatus[], port: number, rsId: string): RealServerCheckStatus | undefined =>
    list.find((s) => s.virtualServer.endsWith(`${VIP}:${port}`) && s.realServer === rsId);

  /** `-> ADDR:PORT weight` of one service in tapvs -L -n. */
  async function dests(port: number): Promise<string[]> {
    const out = await tapvsOk(lab, ['-L', '-n']);
    const lines = out.split('\n');
    const i = lines.findIndex((l) => new RegExp(`^(TCP|UDP)\\s+${VIP.replace(/\./g, '\\.')}:${port}\\s`).test(l));
    const res: string[] = [];
    for (let j = i + 1; j < lines.length && lines[j].trim().startsWith('->'); j++) {
      const f = lines[j].trim().split(/\s+/);
      res.push(`${f[1]} w${f[3]}`);
    }
    return res.sort();
  }

  it('every checker type: live targets up, broken ones down with the reason; tapvs checkers shows it', async () => {
    const expected: [number, string, boolean, RegExp][] = [
      [80, `${RS1}:80`, true, /HTTP status ok/],
      [80, `${RS2}:80`, true, /HTTP status ok/],
      [81, `${RS1}:80`, true, /script exited 0/],
      [83, `${RS1}:80`, false, /MD5 digest [0-9a-f]{32} does not match 0123456789abcdef0123456789abcdef/],
      [84, `${RS1}:80`, false, /HTTP status 200 not in 404/],
      [86, `${RS1}:80`, true, /connected/],
      [86, `${RS2}:8099`, false, /ECONNREFUSED/],
      [85, `${RS1}:80`, true, /echo reply/],
      [85, '198.18.2.99:80', false, /no echo reply|ICMP/],
      [9000, `${RS1}:9000`, true, /reply of \d+ bytes accepted/],
      [9000, `${RS2}:9001`, false, /ECONNREFUSED/],
      [53, `${RS1}:5353`, true, /DNS NOERROR/],
      [54, `${RS1}:5353`, false, /DNS rcode NXDOMAIN/],
    ];
    let last: RealServerCheckStatus[] = [];
    try {
      await waitFor(
        'every checker has run',
        async () => {
          last = await status();
          return expected.every(([port, id]) => find(last, port, id)?.checkers.every((c) => c.result !== null) ?? false);
        },
        15_000,
        200,
      );
    } finally {
      for (const [port, id, alive, reason] of expected) {
        const s = find(last, port, id);
        expect({ port, id, alive: s?.alive, reason: s?.checkers[0]?.reason }).toEqual({ port, id, alive, reason: expect.stringMatching(reason) });
      }
    }
    expect(await dests(86)).toEqual([`${RS1}:80 w2`]);
    expect(await dests(84)).toEqual([]);
    expect(await dests(9000)).toEqual([`${RS1}:9000 w2`]);
    expect(await dests(53)).toEqual([`${RS1}:5353 w2`]);
    const text = await tapvsOk(lab, ['checkers']);
    expect(text).toContain(`virtual_server TCP ${VIP}:84`);
    expect(text).toMatch(new RegExp(`real_server ${RS1.replace(/\./g, '\\.')}:80  DOWN  weight 2\\n\\s+HTTP_GET\\s+${RS1.replace(/\./g, '\\.')}:80\\s+DOWN  FAILED at \\S+: /: HTTP status 200 not in 404`));
    expect(daemon.output()).toContain(`real server ${RS1}:80 of virtual_server TCP ${VIP}:84 is DOWN (removed): HTTP_GET ${RS1}:80: /: HTTP status 200 not in 404`);
  }, 30_000);

  it('MISC_CHECK: misc_dynamic weight from the exit code; inhibit_on_failure sets weight 0 and a held connection keeps working', async () => {
    writeFileSync(codeFile, '12\n');
    await waitFor('weight 10', async () => (await dests(81)).join() === `${RS1}:80 w10`, 8_000, 100);
    const holder = lab.spawnIn(lab.cli, process.execPath, [CLIENT_JS, 'hold', `${VIP}:81`, '--count', '1', '--ms', '3500', '--again']);
    await waitFor('held connection', async () => /\s1\s+\d+\s*$/m.test((await tapvsOk(lab, ['-L', '-n'])).split('\n').find((l) => l.includes(`${RS1}:80`) && l.includes(' 10 ')) ?? ''), 8_000, 100);
    writeFileSync(codeFile, '1\n');
    await waitFor('inhibited', async () => (await dests(81)).join() === `${RS1}:80 w0`, 8_000, 100);
    expect(find(await status(), 81, `${RS1}:80`)).toMatchObject({ alive: false, checkers: [{ reason: 'script exited 1' }] });
    await holder.exited;
    const held = JSON.parse(holder.output()) as (Served & { second?: Served })[];
    expect(held[0].server).toBe('rs1');
    expect(held[0].second).toMatchObject({ server: 'rs1' });
    writeFileSync(codeFile, '4\n');
    await waitFor('back with weight 2', async () => (await dests(81)).join() === `${RS1}:80 w2`, 8_000, 100);
  }, 30_000);

  it('a real server stopped under load is removed in time, then no request fails; started again it is back with its weight', async () => {
    const batches: { start: number; results: Served[] }[] = [];
    let loading = true;
    const load = (async () => {
      for (let i = 0; loading && i < 200; i++) {
        const start = Date.now();
        batches.push({ start, results: await lab.client<Served[]>(['http', `${VIP}:80`, '--count', '4']) });
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const killedAt = Date.now();
      process.kill(realServers[0].pid, 'SIGKILL');
      await realServers[0].exited;
      await waitFor('rs1 removed', async () => (await dests(80)).join() === `${RS2}:80 w2`, 10_000, 100);
      const removedAfter = (Date.now() - killedAt) / 1000;
      // delay_loop x (retry + 1) + (retry + 1) x connect_timeout, plus the polling
      expect(removedAfter).toBeLessThan(1 * 2 + 2 * 1 + 0.5);
      const removedAt = Date.now();
      await new Promise((r) => setTimeout(r, 2500));
      const after = batches.filter((b) => b.start > removedAt).flatMap((b) => b.results);
      expect(after.length).toBeGreaterThan(4);
      expect(after.filter((r) => r.error !== undefined)).toEqual([]);
      expect(new Set(after.map((r) => r.server))).toEqual(new Set(['rs2']));
      realServers[0] = await lab.startRealServer(0);
      await waitFor('rs1 back', async () => (await dests(80)).join() === `${RS1}:80 w2,${RS2}:80 w2`, 8_000, 100);
      const back = Date.now();
      await new Promise((r) => setTimeout(r, 1500));
      const later = batches.filter((b) => b.start > back).flatMap((b) => b.results);
      expect(later.filter((r) => r.error !== undefined)).toEqual([]);
      expect(later.map((r) => r.server)).toContain('rs1');
    } finally {
      loading = false;
      await load;
    }
    expect(daemon.output()).toMatch(new RegExp(`real server ${RS1.replace(/\./g, '\\.')}:80 of virtual_server TCP ${VIP.replace(/\./g, '\\.')}:80 is DOWN \\(removed\\): HTTP_GET ${RS1.replace(/\./g, '\\.')}:80: /: TCP connect: ECONNREFUSED`));
  }, 30_000);

  it('every real server down: the sorry server answers; one back: the sorry server leaves', async () => {
    process.kill(realServers[0].pid, 'SIGKILL');
    process.kill(realServers[1].pid, 'SIGKILL');
    await Promise.all([realServers[0].exited, realServers[1].exited]);
    await waitFor('sorry server in', async () => (await dests(80)).join() === `${RS2}:8081 w1`, 10_000, 100);
    const res = await lab.client<Served[]>(['http', `${VIP}:80`, '--count', '3']);
    expect(res.map((r) => r.server ?? r.error)).toEqual(['sorry', 'sorry', 'sorry']);
    expect(daemon.output()).toContain(`virtual_server TCP ${VIP}:80 quorum lost (alive weight 0, quorum 1, hysteresis 0); sorry server ${RS2}:8081 in`);
    realServers[0] = await lab.startRealServer(0);
    await waitFor('sorry server out', async () => (await dests(80)).join() === `${RS1}:80 w2`, 8_000, 100);
    const again = await lab.client<Served[]>(['http', `${VIP}:80`, '--count', '2']);
    expect(again.map((r) => r.server ?? r.error)).toEqual(['rs1', 'rs1']);
  }, 30_000);
});
