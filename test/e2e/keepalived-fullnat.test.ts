/**
 * FULLNAT from keepalived.conf end to end, written as DPVS's keepalived writes it (local_address_group,
 * lb_kind FNAT, laddr_group_name, proxy_protocol v2): the director starts with `tapvsd --keepalived FILE`,
 * the real servers have no default route (only FULLNAT lets them answer), and see the local address as
 * their peer; the PROXY v2 service hands them the client's address. A SIGHUP with another local address
 * group changes the local addresses by difference.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, waitFor, type Background } from '../../src/lab/processes.js';
import { LAB_CLIENT, LAB_VIP, LabTopology, TAPVSD_JS, labRealServer, labUnavailableReason } from '../../src/lab/topology.js';
import { servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const SKIP_REASON = labUnavailableReason();
const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);
const LIP = '198.18.2.200';

const work = mkdtempSync(join(tmpdir(), 'tapvs-ka-fnat-e2e-'));
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));
const conf = join(work, 'keepalived.conf');

const config = (lips: string): string =>
  `local_address_group lips {\n    ${lips}\n}\n` +
  `virtual_server ${VIP} 80 {\n    lb_algo rr\n    lb_kind FNAT\n    protocol TCP\n    laddr_group_name lips\n` +
  `    real_server ${RS1} 80 {\n    }\n    real_server ${RS2} 80 {\n    }\n}\n` +
  `virtual_server ${VIP} 8080 {\n    lb_algo rr\n    lb_kind FNAT\n    protocol TCP\n    laddr_group_name lips\n    proxy_protocol v2\n` +
  `    real_server ${RS1} 8080 {\n    }\n}\n`;

interface ProxyServed extends Served {
  proxyClient?: string | null;
}

describe.skipIf(SKIP_REASON !== null)('keepalived.conf FULLNAT end to end', () => {
  let lab: LabTopology;
  let daemon: Background;

  beforeAll(() => writeFileSync(conf, config(LIP)));
  const env = useLab({
    directorArgs: ['--keepalived', conf],
    startRealServers: async (l) => {
      for (let i = 0; i < 2; i++) {
        // No gateway: the real servers only know their own subnet (where the local addresses are).
        const r = await l.exec(l.rs[i], 'ip', ['route', 'del', 'default']);
        expect(r.code).toBe(0);
        await l.startRealServer(i); // plain HTTP on port 80
      }
      await l.startRealServer(0, ['--http-port', '8080', '--udp-port', '9001', '--proxy-protocol']); // rs1:8080 expects PROXY v2
    },
  });
  beforeAll(() => {
    lab = env.lab();
    daemon = env.daemon();
  });

  it('--check accepts the file', async () => {
    const r = await run(process.execPath, [TAPVSD_JS, '--keepalived', conf, '--check']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain('2 virtual server(s), 2 service(s), 3 destination(s); 0 error(s), 0 warning(s)');
  });

  it('serves through the local address; PROXY v2 carries the client address', async () => {
    const listing = await tapvsOk(lab, ['-L', '-n']);
    expect(listing).toContain(`  -> ${`${RS1}:80`.padEnd(28)} FullNat 1`);
    expect(listing).toContain(`  -> ${`${RS2}:80`.padEnd(28)} FullNat 1`);
    expect(await tapvsOk(lab, ['-G', '-t', `${VIP}:80`])).toContain(` ${LIP}\n`);

    const res = await lab.client<Served[]>(['http', `${VIP}:80`, '--count', '4']);
    expect(servers(res).sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
    for (const r of res) {
      expect(r.from).toBe(`${VIP}:80`);
      expect(r.peer).toBe(LIP); // the real server sees the local address, not the client
    }
    const proxied = await lab.client<ProxyServed[]>(['http', `${VIP}:8080`, '--count', '2']);
    for (const r of proxied) {
      expect(r.server).toBe('rs1');
      expect(r.peer).toBe(LIP);
      expect(r.proxyClient).toMatch(new RegExp(`^${LAB_CLIENT.replace(/\./g, '\\.')}:\\d+$`));
    }
  });

  it('SIGHUP with another local_address_group adds and deletes local addresses by difference', async () => {
    writeFileSync(conf, config('198.18.2.201-202'));
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor('reloaded local addresses', async () => (await tapvsOk(lab, ['-G', '-t', `${VIP}:80`])).includes('198.18.2.202'), 10_000);
    expect(daemon.output()).toMatch(/keepalived configuration reloaded: 6 change\(s\) \(4 added, 0 edited, 2 deleted\)/);
    const lips = await tapvsOk(lab, ['-G']);
    expect(lips).not.toContain(LIP);
    expect(lips.match(/198\.18\.2\.20[12]/g)).toHaveLength(4);
    const res = await lab.client<Served[]>(['http', `${VIP}:80`, '--count', '4']);
    expect(new Set(res.map((r) => r.peer))).toEqual(new Set(['198.18.2.201', '198.18.2.202']));
    for (const r of res) expect(r.error).toBeUndefined();
  });
});
