/**
 * keepalived.conf end to end: a lab director started with `tapvsd --keepalived FILE` (LVS-NAT), the
 * table checked with `tapvs -L -n`, then the file rewritten and reloaded with SIGHUP (and with the
 * `reload-keepalived` control request) while a held client connection keeps working and the unchanged
 * real server keeps its counters. Also: a configuration the data plane refuses stops tapvsd with the
 * virtual_server's file:line before any TAP exists, and --check needs neither a TAP nor root.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { run, waitFor, type Background } from '../../src/lab/processes.js';
import { LAB_VIP, LabTopology, TAPVSD_JS, labRealServer, labUnavailableReason } from '../../src/lab/topology.js';
import { servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const SKIP_REASON = labUnavailableReason();
const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);
const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/keepalived');
const CLIENT_JS = new URL('../../dist/src/lab/client.js', import.meta.url).pathname;

const work = mkdtempSync(join(tmpdir(), 'tapvs-ka-e2e-'));
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));
const conf = join(work, 'keepalived.conf');

function virtualServer(port: number, sched: string, realServers: [string, number, number][]): string {
  const rs = realServers
    .map(([ip, rport, w]) => `    real_server ${ip} ${rport} {\n        weight ${w}\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n`)
    .join('');
  return `virtual_server ${VIP} ${port} {\n    delay_loop 6\n    lb_algo ${sched}\n    lb_kind NAT\n    protocol TCP\n${rs}}\n`;
}

const V1 = '! keepalived.conf v1\nglobal_defs {\n    router_id E2E\n}\n' + virtualServer(80, 'rr', [[RS1, 80, 1]]) + virtualServer(8080, 'rr', [[RS2, 80, 1]]);
const V2 =
  '! keepalived.conf v2\nglobal_defs {\n    router_id E2E\n}\n' +
  virtualServer(80, 'wrr', [
    [RS1, 80, 1],
    [RS2, 80, 2],
  ]) +
  virtualServer(81, 'rr', [[RS2, 80, 1]]);
const V3 = '! keepalived.conf v3\n' + virtualServer(80, 'wrr', [[RS1, 80, 1]]);

/** Service lines and their destinations of `tapvs -L -n`, without the header. */
function table(listing: string): string[] {
  return listing
    .split('\n')
    .slice(3)
    .filter((l) => l !== '')
    .map((l) => l.replace(/\s+/g, ' ').trim());
}

describe.skipIf(SKIP_REASON !== null)('keepalived.conf end to end', () => {
  let lab: LabTopology;
  let daemon: Background;

  beforeAll(() => writeFileSync(conf, V1));
  const env = useLab({ directorArgs: ['--keepalived', conf] });
  beforeAll(() => {
    lab = env.lab();
    daemon = env.daemon();
  });

  async function activeOn(rs: string): Promise<number> {
    const out = await tapvsOk(lab, ['-L', '-n']);
    const m = new RegExp(`-> ${rs.replace(/\./g, '\\.')}:80\\s+Masq\\s+\\d+\\s+(\\d+)`).exec(out);
    return m ? Number(m[1]) : 0;
  }

  it('loads the file at start: tapvs -L -n shows its services', async () => {
    expect(table(await tapvsOk(lab, ['-L', '-n']))).toEqual([
      `TCP ${VIP}:80 rr`,
      `-> ${RS1}:80 Masq 1 0 0`,
      `TCP ${VIP}:8080 rr`,
      `-> ${RS2}:80 Masq 1 0 0`,
    ]);
    expect(daemon.output()).toContain('keepalived configuration loaded');
    const res = await lab.client<Served[]>(['http', `${VIP}:80`, '--count', '3']);
    expect(servers(res)).toEqual(['rs1', 'rs1', 'rs1']);
  });

  it('SIGHUP applies the difference; a held connection keeps working and the kept real server its counters', async () => {
    const holder = lab.spawnIn(lab.cli, process.execPath, [CLIENT_JS, 'hold', `${VIP}:80`, '--count', '1', '--ms', '4000', '--again']);
    await waitFor('held connection', async () => (await activeOn(RS1)) === 1, 10_000);
    writeFileSync(conf, V2);
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor('reloaded table', async () => (await tapvsOk(lab, ['-L', '-n'])).includes(`${VIP}:81`), 10_000);
    expect(table(await tapvsOk(lab, ['-L', '-n']))).toEqual([
      `TCP ${VIP}:80 wrr`,
      `-> ${RS1}:80 Masq 1 1 3`,
      `-> ${RS2}:80 Masq 2 0 0`,
      `TCP ${VIP}:81 rr`,
      `-> ${RS2}:80 Masq 1 0 0`,
    ]);
    // The destination was edited in place, never re-created: its connection count goes on from 4.
    const stats = await tapvsOk(lab, ['-L', '-n', '--stats', '--exact']);
    const rs1 = stats.split('\n').find((l) => l.includes(`-> ${RS1}:80`))!.trim().split(/\s+/);
    expect(Number(rs1[2])).toBe(4);
    await holder.exited;
    const held = JSON.parse(holder.output()) as (Served & { second?: Served })[];
    expect(held[0].server).toBe('rs1');
    expect(held[0].second?.server).toBe('rs1');
    expect(held[0].second?.error).toBeUndefined();
    expect(daemon.output()).toMatch(/keepalived configuration reloaded: 5 change\(s\)/);
    const res = await lab.client<Served[]>(['http', `${VIP}:81`, '--count', '2']);
    expect(servers(res)).toEqual(['rs2', 'rs2']);
  });

  it('the reload-keepalived control request does the same; a broken file changes nothing', async () => {
    writeFileSync(conf, V3 + 'virtual_server 198.18.1.100 82 {\n    lb_kind NAT\n    persistence_timeout 60\n    persistence_engine sip\n    protocol TCP\n    real_server 198.18.2.11 82 {\n    }\n}\n');
    const client = new ControlClient(lab.socketPath);
    try {
      const bad = await client.request({ op: 'reload-keepalived' });
      expect(bad.ok).toBe(false);
      expect(!bad.ok && bad.message).toMatch(new RegExp(`^keepalived reload refused, configuration unchanged: ${conf}:\\d+: virtual_server TCP ${VIP.replace(/\./g, '\\.')}:82: `));
      expect(table(await tapvsOk(lab, ['-L', '-n']))).toHaveLength(5);
      writeFileSync(conf, V3);
      const ok = await client.request({ op: 'reload-keepalived' });
      expect(ok).toEqual({ ok: true, message: 'keepalived configuration reloaded: 2 change(s) (0 added, 0 edited, 2 deleted)' });
    } finally {
      client.close();
    }
    const final = table(await tapvsOk(lab, ['-L', '-n']));
    expect(final).toHaveLength(2);
    expect(final[0]).toBe(`TCP ${VIP}:80 wrr`);
    expect(final[1]).toMatch(new RegExp(`^-> ${RS1.replace(/\./g, '\\.')}:80 Masq 1 0 \\d+$`));
  });
});

describe.skipIf(SKIP_REASON !== null)('tapvsd --keepalived without a lab', () => {
  it('stops with the virtual_server file:line of what the data plane refuses, before creating its TAP', async () => {
    const file = join(FIXTURES, 'pe-vs.conf');
    const r = await run(process.execPath, [TAPVSD_JS, '--tap', 'tvtkagre0', '--address', '198.18.1.1/24', '--socket', join(work, 'x.sock'), '--keepalived', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`tapvsd: ${file}:4: virtual_server TCP 198.18.1.100:80: `);
    expect(r.stderr).toContain('refused by tapvsd: persistence engines (--pe) are not supported yet; nothing applied');
    expect(execFileSync('ip', ['link', 'show']).toString()).not.toContain('tvtkagre0');
  });

  it('--check validates like keepalived -t without a TAP and without root', async () => {
    const asNobody = (args: string[]) => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, TAPVSD_JS, ...args]);
    const seed = await asNobody(['--keepalived', join(FIXTURES, 'seed-001-tcp-http.conf'), '--check']);
    expect(seed.code).toBe(4);
    expect(seed.stderr).toContain("seed-001-tcp-http.conf:26: warning: Unknown keyword 'nb_get_retry' in TCP_CHECK");
    expect(seed.stdout).toContain('1 virtual server(s), 1 service(s), 2 destination(s); 0 error(s), 2 warning(s)');
    writeFileSync(conf, V1);
    const clean = await asNobody(['--keepalived', conf, '--check']);
    expect([clean.code, clean.stderr]).toEqual([0, '']);
    const refused = await asNobody(['--keepalived', join(FIXTURES, 'pe-vs.conf'), '--check']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('pe-vs.conf:4: error: virtual_server TCP 198.18.1.100:80');
    const ipv6 = await asNobody(['--keepalived', join(FIXTURES, 'ipv6-vs.conf'), '--check']);
    expect([ipv6.code, ipv6.stderr]).toEqual([0, '']);
  });
});
