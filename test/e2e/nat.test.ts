/**
 * NAT (LVS-NAT, ipvsadm -m) end to end: real TCP and UDP clients and servers in network namespaces,
 * the director running tapvsd on a TAP, configured with tapvs exactly as seed 002's NAT demo does.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { LAB_CLIENT, LAB_DIRECTOR_FRONT, LAB_TAP, LAB_VIP, labRealServer } from '../../src/lab/topology.js';
import { ControlClient } from '../../src/control/client.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);
const DIRECTOR_MAC = '02:00:00:00:00:fe';

describe.skipIf(SKIP_REASON !== null)('NAT end to end', () => {
  const { lab } = useLab({ directorArgs: ['--mac', DIRECTOR_MAC] });

  beforeEach(async () => {
    await tapvsOk(lab(), ['-C']);
  });

  async function natService(vport: number, sched: string, rports: [string, number, number][], proto = '-t'): Promise<void> {
    await tapvsOk(lab(), ['-A', proto, `${VIP}:${vport}`, '-s', sched]);
    for (const [rip, rport, weight] of rports) await tapvsOk(lab(), ['-a', proto, `${VIP}:${vport}`, '-r', `${rip}:${rport}`, '-m', '-w', String(weight)]);
  }

  it('balances HTTP round robin, the client talks to VIP:80 and the real servers see the client address', async () => {
    await natService(80, 'rr', [
      [RS1, 80, 1],
      [RS2, 80, 1],
    ]);
    const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '6']);
    // Kernel list order is newest first: rs2 was added last, so rr starts there.
    expect(servers(res)).toEqual(['rs2', 'rs1', 'rs2', 'rs1', 'rs2', 'rs1']);
    for (const r of res) {
      expect(r.from).toBe(`${VIP}:80`);
      expect(r.peer).toBe(LAB_CLIENT);
    }
  });

  it('answers UDP request/response through the VIP', async () => {
    await natService(9000, 'rr', [
      [RS1, 9000, 1],
      [RS2, 9000, 1],
    ], '-u');
    const res = await lab().client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '4']);
    expect(servers(res)).toEqual(['rs2', 'rs1', 'rs2', 'rs1']);
    for (const r of res) {
      expect(r.from).toBe(`${VIP}:9000`);
      expect(r.peer).toBe(LAB_CLIENT);
    }
    // Datagrams of one client socket are one connection: they stick to one real server.
    const same = await lab().client<Served[]>(['udp', `${VIP}:9000`, '--count', '3']);
    expect(new Set(servers(same)).size).toBe(1);
    const conns = await tapvsOk(lab(), ['-L', '-n', '-c']);
    expect(conns).toMatch(new RegExp(`^UDP\\s+0[45]:\\d\\d\\s+UDP\\s+${LAB_CLIENT.replace(/\./g, '\\.')}:\\d+\\s+198\\.18\\.1\\.100:9000\\s+198\\.18\\.2\\.1[12]:9000$`, 'm'));
  });

  it('wrr sends new connections in proportion to the weights (3:1)', async () => {
    await natService(80, 'wrr', [
      [RS1, 80, 3],
      [RS2, 80, 1],
    ]);
    const res = servers(await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '8']));
    expect(res.filter((s) => s === 'rs1').length).toBe(6);
    expect(res.filter((s) => s === 'rs2').length).toBe(2);
  });

  it('wlc follows active connections and weights while connections are held open', async () => {
    // A port of its own: a real server re-added to a service keeps the connections it still has (the
    // kernel's trash), and this test counts connections from zero.
    await natService(8201, 'wlc', [
      [RS1, 80, 3],
      [RS2, 80, 1],
    ]);
    // List order [rs2, rs1]; overhead = active*256 + inactive, compared as overhead/weight:
    // 0/1 vs 0/3 -> rs2; 256/1 vs 0/3 -> rs1; 256 vs 256/3 -> rs1; 256 vs 512/3 -> rs1; 256 vs 768/3 -> rs2 (tie keeps the first).
    const res = await lab().client<Served[]>(['hold', `${VIP}:8201`, '--count', '5', '--ms', '300']);
    expect(servers(res)).toEqual(['rs2', 'rs1', 'rs1', 'rs1', 'rs2']);
  });

  it('lc picks the real server with the fewest connections, not the next in turn', async () => {
    await natService(80, 'lc', [[RS1, 80, 1]]);
    // One connection held open on rs1 while rs2 joins.
    const holder = lab().spawnIn(lab().cli, process.execPath, [
      new URL('../../dist/src/lab/client.js', import.meta.url).pathname, 'hold', `${VIP}:80`, '--count', '1', '--ms', '6000',
    ]);
    await waitForActive(1);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '-m']);
    const res = await lab().client<Served[]>(['hold', `${VIP}:80`, '--count', '3', '--ms', '200']);
    // rs2 (0) < rs1 (256) -> rs2; tie 256/256 -> rs2 (first in list); rs1 256 < rs2 512 -> rs1.
    expect(servers(res)).toEqual(['rs2', 'rs2', 'rs1']);
    await holder.exited;
    expect(JSON.parse(holder.output())[0].server).toBe('rs1');
  });

  async function waitForActive(n: number): Promise<void> {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const out = await tapvsOk(lab(), ['-L', '-n']);
      const active = [...out.matchAll(/->\s+\S+\s+Masq\s+\d+\s+(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
      if (active >= n) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('held connection never became active');
  }

  it('maps ports: VIP:8080 to real servers on port 80', async () => {
    await natService(8080, 'rr', [[RS1, 80, 1]]);
    const res = await lab().client<Served[]>(['http', `${VIP}:8080`, '--count', '2']);
    expect(servers(res)).toEqual(['rs1', 'rs1']);
    expect(res[0].from).toBe(`${VIP}:8080`);
  });

  it('answers ICMP echo and ARP for the VIP with the director MAC', async () => {
    await natService(80, 'rr', [[RS1, 80, 1]]);
    const ping = await lab().exec(lab().cli, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', VIP]);
    expect(ping.code).toBe(0);
    expect(ping.stdout).toMatch(/2 received/);
    const neigh = await lab().exec(lab().cli, 'ip', ['neigh', 'show', VIP]);
    expect(neigh.stdout).toContain(`lladdr ${DIRECTOR_MAC}`);
    // The director's own address answers too.
    const ping2 = await lab().exec(lab().cli, 'ping', ['-c', '1', '-W', '2', LAB_DIRECTOR_FRONT]);
    expect(ping2.code).toBe(0);
  });

  it('sends ICMP port unreachable when no real server is available, and RST for a port without a service', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:81`, '-s', 'rr']);
    const none = await lab().client<Served[]>(['http', `${VIP}:81`, '--count', '1']);
    expect(none[0].error).toMatch(/ECONNREFUSED|EHOSTUNREACH/);
    const client = new ControlClient(lab().socketPath);
    const reply = await client.request({ op: 'get-counters' });
    client.close();
    expect(reply.ok && (reply.counters as { drops: Record<string, number> }).drops['no-destination']).toBeGreaterThan(0);
    const noService = await lab().client<Served[]>(['http', `${VIP}:82`, '--count', '1']);
    expect(noService[0].error).toMatch(/ECONNREFUSED/);
  });

  it('limits the port unreachables it sends one client as the kernel does: a burst of 6, then one a second', async () => {
    await natService(9000, 'rr', [[RS1, 9000, 1]], '-u'); // VIP:9000 served; VIP:9998 is not
    // A client address of its own, so that no earlier test has spent its bucket.
    const src = '198.18.1.50';
    expect((await lab().exec(lab().cli, 'ip', ['addr', 'add', `${src}/24`, 'dev', 'eth0'])).code).toBe(0);
    const r = await lab().exec(lab().cli, 'python3', [
      '-c',
      `import socket, time\n` +
        `icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n` +
        `icmp.settimeout(0.2)\n` +
        `udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n` +
        `udp.bind(('${src}', 0))\n` +
        `for i in range(20): udp.sendto(b'x', ('${VIP}', 9998))\n` +
        `n = 0\nend = time.time() + 0.8\n` +
        `while time.time() < end:\n` +
        `  try:\n    d, a = icmp.recvfrom(2048)\n  except socket.timeout:\n    continue\n` +
        `  ihl = (d[0] & 15) * 4\n` +
        `  if a[0] == '${VIP}' and d[ihl] == 3 and d[ihl + 1] == 3 and socket.inet_ntoa(d[ihl + 20:ihl + 24]) == '${src}': n += 1\n` +
        `print(n)`,
    ]);
    expect(r.stdout.trim(), r.stderr).toBe('6');
    const client = new ControlClient(lab().socketPath);
    const reply = await client.request({ op: 'get-counters' });
    client.close();
    expect(reply.ok && (reply.counters as { icmpRateLimited: number }).icmpRateLimited).toBeGreaterThanOrEqual(14);
  });

  it('translates ICMP errors: a UDP port the real server does not serve is refused at the client', async () => {
    await natService(9999, 'rr', [[RS1, 9999, 1]], '-u');
    const r = await lab().exec(lab().cli, 'python3', [
      '-c',
      `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(3)\ns.connect(('${VIP}',9999))\ns.send(b'x')\ntry:\n  s.recv(100); print('reply')\nexcept ConnectionRefusedError: print('refused')\nexcept socket.timeout: print('timeout')`,
    ]);
    // The real server's port unreachable (RIP -> CIP about CIP -> RIP:9999) arrives as one about VIP:9999.
    expect(r.stdout.trim()).toBe('refused');
  });

  it('lists exactly like ipvsadm -L -n and counts in --stats', async () => {
    // Its own port: connection counts from zero (see the wlc test).
    await natService(8202, 'rr', [
      [RS1, 80, 1],
      [RS2, 80, 2],
    ]);
    await lab().client(['http', `${VIP}:8202`, '--count', '4']);
    const list = await tapvsOk(lab(), ['-L', '-n']);
    expect(list).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
        `TCP  ${VIP}:8202 rr\n` +
        `  -> ${`${RS1}:80`.padEnd(28)} Masq    1      0          2         \n` +
        `  -> ${`${RS2}:80`.padEnd(28)} Masq    2      0          2         \n`,
    );
    const stats = await tapvsOk(lab(), ['-L', '-n', '--stats', '--exact']);
    const svcLine = stats.split('\n').find((l) => l.startsWith('TCP'))!;
    const [conns, inpkts, outpkts, inbytes, outbytes] = svcLine.trim().split(/\s+/).slice(2).map(Number);
    expect(conns).toBe(4);
    expect(inpkts).toBeGreaterThanOrEqual(4 * 5); // SYN, ACK, request, FIN, ACK per connection at least
    expect(outpkts).toBeGreaterThanOrEqual(4 * 3);
    expect(inbytes).toBeGreaterThan(inpkts * 40);
    expect(outbytes).toBeGreaterThan(outpkts * 40);
    // -Z zeroes the counters, not the connection counts.
    await tapvsOk(lab(), ['-Z']);
    const zeroed = await tapvsOk(lab(), ['-L', '-n', '--stats', '--exact']);
    expect(zeroed.split('\n').find((l) => l.startsWith('TCP'))!.trim().split(/\s+/).slice(2).map(Number)).toEqual([0, 0, 0, 0, 0]);
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain('Masq    1      0          2');
  });

  it('saves with -S and restores with -R, all or nothing', async () => {
    await natService(80, 'wrr', [
      [RS1, 80, 3],
      [RS2, 80, 1],
    ]);
    await natService(9000, 'rr', [[RS1, 9000, 1]], '-u');
    const saved = await tapvsOk(lab(), ['-S', '-n']);
    expect(saved).toBe(
      `-A -t ${VIP}:80 -s wrr\n-a -t ${VIP}:80 -r ${RS1}:80 -m -w 3\n-a -t ${VIP}:80 -r ${RS2}:80 -m -w 1\n` +
        `-A -u ${VIP}:9000 -s rr\n-a -u ${VIP}:9000 -r ${RS1}:9000 -m -w 1\n`,
    );
    await tapvsOk(lab(), ['-C']);
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe('');
    await tapvsOk(lab(), ['-R'], saved);
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe(saved);
    // A failing third line (duplicate destination) must leave the tables exactly as they were.
    const bad = `-A -t ${VIP}:81 -s rr\n-a -t ${VIP}:81 -r ${RS1}:80 -m\n-a -t ${VIP}:81 -r ${RS1}:80 -m\n`;
    const r = await lab().tapvs(['-R'], bad);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('line 3');
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe(saved);
    // And traffic still flows with the restored rules.
    const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '4']);
    expect(servers(res).filter((s) => s === 'rs1').length).toBe(3);
  });

  it('keeps established connections when the scheduler is edited', async () => {
    await natService(8203, 'rr', [[RS1, 80, 1]]); // its own port: counts from zero (see the wlc test)
    const holder = lab().spawnIn(lab().cli, process.execPath, [
      new URL('../../dist/src/lab/client.js', import.meta.url).pathname, 'hold', `${VIP}:8203`, '--count', '1', '--ms', '1500',
    ]);
    await waitForActive(1);
    await tapvsOk(lab(), ['-E', '-t', `${VIP}:8203`, '-s', 'wlc']);
    expect(await tapvsOk(lab(), ['-L', '-n'])).toMatch(/TCP\s+198\.18\.1\.100:8203 wlc\n\s+-> 198\.18\.2\.11:80\s+Masq\s+1\s+1\s+0/);
    await holder.exited;
    expect(JSON.parse(holder.output())[0].server).toBe('rs1');
  });
});

describe.skipIf(SKIP_REASON !== null)('tapvsd lifecycle', () => {
  const { lab } = useLab({ realServers: 1 });

  it('removes the TAP it created when stopped with SIGTERM', async () => {
    expect((await lab().exec(lab().dir, 'ip', ['link', 'show', LAB_TAP])).code).toBe(0);
    await lab().stopDirector();
    expect((await lab().exec(lab().dir, 'ip', ['link', 'show', LAB_TAP])).code).not.toBe(0);
  });
});

describe.skipIf(SKIP_REASON !== null)('tapvsd with busy-polling', () => {
  const { lab } = useLab({ directorArgs: ['--busy-poll-us', '200'] });

  it('forwards as usual, answers the control socket, and catches batches without a wake-up', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '-m']);
    const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '20']);
    expect(servers(res).filter((s) => s === 'rs1').length).toBe(10);
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain(`TCP  ${VIP}:80 rr`);
    const client = new ControlClient(lab().socketPath);
    const reply = await client.request({ op: 'get-counters' });
    client.close();
    const tap = reply.ok ? (reply.counters as { tap: { busyPollBatches: number } }).tap : { busyPollBatches: 0 };
    expect(tap.busyPollBatches).toBeGreaterThan(0);
  });
});

describe.skipIf(SKIP_REASON !== null)('the director on IPv6', () => {
  // The IPv6 lab: the client has fd00:1::2/64, tapvsd fd00:1::1/64 and fd00:2::1/64.
  const { lab } = useLab({ realServers: 1, ipv6: true, directorArgs: ['--mac', DIRECTOR_MAC] });

  it('answers neighbour discovery and ping6 for its own IPv6 address', async () => {
    const ping = await lab().exec(lab().cli, 'ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', 'fd00:1::1']);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    expect(ping.stdout).toMatch(/2 received/);
    const neigh = await lab().exec(lab().cli, 'ip', ['-6', 'neigh', 'show', 'fd00:1::1']);
    expect(neigh.stdout).toContain(`lladdr ${DIRECTOR_MAC}`);
    // An address that is not the director's gets no answer.
    const other = await lab().exec(lab().cli, 'ping', ['-6', '-c', '1', '-W', '1', 'fd00:1::9']);
    expect(other.code).not.toBe(0);
  });
});
