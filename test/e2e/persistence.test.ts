/**
 * IPVS scheduling behaviour end to end, with real TCP/UDP clients and servers in namespaces:
 * persistence (-p), PCC (port-0 service), the fwmark group of seed 002's PNMP demo (tapvs mark rules in
 * place of iptables MARK), quiesced real servers (-w 0), thresholds (-x/-y) and what -L -c shows.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { LAB_CLIENT, LAB_VIP, labRealServer } from '../../src/lab/topology.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(SKIP_REASON !== null)('persistence, fwmark, quiescing and thresholds end to end', () => {
  const { lab } = useLab();
  let extraServersStarted = false;

  beforeEach(async () => {
    await tapvsOk(lab(), ['-C']);
    await tapvsOk(lab(), ['--set', '900', '120', '300']);
    const marks = await tapvsOk(lab(), ['-S', '-n']);
    for (const line of marks.split('\n').filter((l) => l.startsWith('--add-mark'))) await tapvsOk(lab(), ['--del-mark', ...line.split(' ').slice(1)]);
    if (!extraServersStarted) {
      // A second HTTP port on each real server (443, as in seed 002's HTTP+HTTPS example; plain HTTP).
      for (let i = 0; i < 2; i++) await lab().startRealServer(i, ['--http-port', '443', '--udp-port', '9443']);
      extraServersStarted = true;
    }
  });

  it('-p keeps a client on one real server across connections until the template expires', async () => {
    await tapvsOk(lab(), ['--set', '0', '0', '1']); // UDP connections expire 1 s after their last datagram
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9000`, '-s', 'rr', '-p', '3']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', `${RS1}:9000`, '-m']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', `${RS2}:9000`, '-m']);
    const first = servers(await lab().client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '4']));
    expect(new Set(first).size).toBe(1); // four connections (new source port each), one real server
    const list = await tapvsOk(lab(), ['-L', '-n']);
    expect(list).toContain(`UDP  ${VIP}:9000 rr persistent 3\n`);
    const conns = await tapvsOk(lab(), ['-L', '-n', '-c']);
    // The template: client address, port 0, VIP:9000 -> RS:9000, ASSURED once a reply was seen.
    expect(conns).toMatch(new RegExp(`^UDP 00:0[0-3]  ASSURED     ${LAB_CLIENT.replace(/\./g, '\\.')}:0\\s+198\\.18\\.1\\.100:9000\\s+198\\.18\\.2\\.1[12]:9000$`, 'm'));
    // --persistent-conn: Weight PersistConn ActiveConn InActConn per real server; one template in all.
    const pc = (await tapvsOk(lab(), ['-L', '-n', '--persistent-conn'])).split('\n').filter((l) => l.startsWith('  -> 198'));
    expect(pc.map((l) => Number(l.trim().split(/\s+/)[3])).sort()).toEqual([0, 1]);
    await sleep(4500); // connections gone after 1 s, the template after 3 s
    const later = servers(await lab().client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '2']));
    expect(later[0]).not.toBe(first[0]); // scheduled anew: rr moved on
    expect(later[1]).toBe(later[0]);
  });

  it('PCC: a port-0 persistent service sends all ports of the VIP to one real server', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:0`, '-s', 'rr', '-p', '60']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:0`, '-r', RS1, '-m']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:0`, '-r', RS2, '-m']);
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain(`TCP  ${VIP}:0 rr persistent 60\n  -> ${`${RS1}:0`.padEnd(28)} Masq    1`);
    const a = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '3']);
    const b = await lab().client<Served[]>(['http', `${VIP}:443`, '--count', '3']);
    const all = servers([...a, ...b]);
    expect(new Set(all).size).toBe(1);
    expect(b[0].from).toBe(`${VIP}:443`);
  });

  it('fwmark group (seed 002 PNMP): HTTP and HTTPS of one client go to the same real server', async () => {
    await tapvsOk(lab(), ['--add-mark', '-d', VIP, '-p', 'tcp', '--dport', '80', '--set-mark', '3']);
    await tapvsOk(lab(), ['--add-mark', '-d', VIP, '-p', 'tcp', '--dport', '443', '--set-mark', '3']);
    await tapvsOk(lab(), ['-A', '-f', '3', '-s', 'rr', '-p', '600']);
    await tapvsOk(lab(), ['-a', '-f', '3', '-r', RS1, '-m']);
    await tapvsOk(lab(), ['-a', '-f', '3', '-r', RS2, '-m']);
    const list = await tapvsOk(lab(), ['-L', '-n']);
    expect(list).toContain('FWM  3 rr persistent 600\n');
    const mixed: Served[] = [];
    for (let i = 0; i < 3; i++) {
      mixed.push(...(await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '1'])));
      mixed.push(...(await lab().client<Served[]>(['http', `${VIP}:443`, '--count', '1'])));
    }
    expect(new Set(servers(mixed)).size).toBe(1);
    const conns = await tapvsOk(lab(), ['-L', '-n', '-c']);
    expect(conns).toMatch(new RegExp(`^IP  09:5\\d  ASSURED     ${LAB_CLIENT.replace(/\./g, '\\.')}:0\\s+0\\.0\\.0\\.3:0\\s+198\\.18\\.2\\.1[12]:0$`, 'm'));
    // A port without a mark rule and without a service is refused by the director's stack.
    const other = await lab().client<Served[]>(['http', `${VIP}:8080`, '--count', '1']);
    expect(other[0].error).toMatch(/ECONNREFUSED/);
    // Mark rules survive -S / -R.
    const saved = await tapvsOk(lab(), ['-S', '-n']);
    expect(saved.split('\n').filter((l) => l.startsWith('--add-mark')).length).toBe(2);
    await tapvsOk(lab(), ['-C']);
    for (const line of saved.split('\n').filter((l) => l.startsWith('--add-mark'))) await tapvsOk(lab(), ['--del-mark', ...line.split(' ').slice(1)]);
    await tapvsOk(lab(), ['-R'], saved);
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe(saved);
  });

  it('--ops schedules every UDP datagram on its own, and replies still come back from the VIP', async () => {
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9000`, '-s', 'rr', '-o']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', `${RS1}:9000`, '-m']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', `${RS2}:9000`, '-m']);
    // One socket (one source port): without --ops all four datagrams would be one connection.
    const res = await lab().client<Served[]>(['udp', `${VIP}:9000`, '--count', '4']);
    expect(servers(res)).toEqual(['rs2', 'rs1', 'rs2', 'rs1']);
    for (const r of res) expect(r.from).toBe(`${VIP}:9000`);
    const list = await tapvsOk(lab(), ['-L', '-n']);
    expect(list).toContain(`UDP  ${VIP}:9000 rr ops\n`);
    expect(list).toContain(`  -> ${`${RS1}:9000`.padEnd(28)} Masq    1      0          0         \n`); // counted nowhere, as in the kernel
    const stats = await tapvsOk(lab(), ['-L', '-n', '--stats', '--exact']);
    expect(Number(stats.split('\n').find((l) => l.startsWith('UDP'))!.trim().split(/\s+/)[2])).toBe(4);
  });

  it('source/destination hashing schedulers keep one client on one real server (sh, mh, dh), sh-port spreads ports', async () => {
    for (const sched of ['sh', 'mh', 'dh']) {
      await tapvsOk(lab(), ['-C']);
      await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', sched]);
      await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m']);
      await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '-m']);
      const res = servers(await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '6']));
      expect(res.every((r) => r.startsWith('rs')), `${sched}: ${res}`).toBe(true);
      expect(new Set(res).size, `${sched}: ${res}`).toBe(1);
    }
    // With sh-port the client's source port is part of the key: many connections reach both servers.
    await tapvsOk(lab(), ['-E', '-t', `${VIP}:80`, '-s', 'sh', '-b', 'sh-port']);
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain(`TCP  ${VIP}:80 sh (sh-port)\n`);
    const spread = servers(await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '24']));
    expect(new Set(spread)).toEqual(new Set(['rs1', 'rs2']));
  });

  it('-w 0 quiesces: no new connections, while open ones keep working', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '-m']);
    const holder = lab().spawnIn(lab().cli, process.execPath, [
      new URL('../../dist/src/lab/client.js', import.meta.url).pathname, 'hold', `${VIP}:80`, '--count', '2', '--ms', '2500', '--again',
    ]);
    await sleep(1000);
    await tapvsOk(lab(), ['-e', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m', '-w', '0']);
    const fresh = servers(await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '4']));
    expect(fresh).toEqual(['rs2', 'rs2', 'rs2', 'rs2']);
    await holder.exited;
    const held = JSON.parse(holder.output()) as Served[];
    expect(servers(held).sort()).toEqual(['rs1', 'rs2']);
    // The connection to the quiesced rs1 still carries a second request to completion.
    for (const h of held) expect(h.second?.server).toBe(h.server);
  });

  it('-x stops new connections at the upper threshold and -y lets them resume below the lower one', async () => {
    await tapvsOk(lab(), ['--set', '0', '0', '1']);
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9000`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', `${RS1}:9000`, '-m', '-x', '2', '-y', '1']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', `${RS2}:9000`, '-m']);
    const th = await tapvsOk(lab(), ['-L', '-n', '--thresholds']);
    expect(th).toContain(`  -> ${`${RS1}:9000`.padEnd(28)} 2          1          `);
    // List order [rs2, rs1]: rs2, rs1, rs2, rs1 (rs1 now has 2 connections = -x: overloaded), then rs2 only.
    const burst = servers(await lab().client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '6']));
    expect(burst).toEqual(['rs2', 'rs1', 'rs2', 'rs1', 'rs2', 'rs2']);
    await sleep(2500); // UDP connections expire: rs1 drops below -y 1
    const after = servers(await lab().client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '2']));
    expect(after).toContain('rs1');
  });
});
