/**
 * IPv6 services end to end: the IPv6 lab (client fd00:1::2, tapvsd fd00:1::1 and fd00:2::1, real servers
 * fd00:2::11 and ::12 routed via fd00:2::1), real kernel TCP and UDP through the TAP. NAT, DR, TUN (IPv6 in
 * IPv6, received by tapvs-rs on a kernel without ip6_tunnel) and FULLNAT,
 * listings with [addr]:port, -S/-R, and the director's Neighbour Discovery for VIPs.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { LAB_CLIENT6, LAB_VIP6, labRealServer6 } from '../../src/lab/topology.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';
import { ControlClient } from '../../src/control/client.js';

const VIP = LAB_VIP6;
const DR_VIP = 'fd00:1::101';
const FN_VIP = 'fd00:1::102';
const TUN_VIP = 'fd00:1::103';
const LIP = 'fd00:2::200';
const RS1 = labRealServer6(0);
const RS2 = labRealServer6(1);
const DIRECTOR_MAC = '02:00:00:00:00:fe';

describe.skipIf(SKIP_REASON !== null)('IPv6 services', () => {
  const { lab } = useLab({ realServers: 2, ipv6: true, directorArgs: ['--mac', DIRECTOR_MAC] });

  beforeEach(async () => {
    await tapvsOk(lab(), ['-C']);
  });

  it('NAT: HTTP and UDP to [VIP] reach both real servers, which see the client address; replies come from the VIP', async () => {
    await tapvsOk(lab(), ['-A', '-t', `[${VIP}]:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `[${VIP}]:80`, '-r', `[${RS1}]:80`, '-m']);
    await tapvsOk(lab(), ['-a', '-t', `[${VIP}]:80`, '-r', `[${RS2}]:80`, '-m']);
    await tapvsOk(lab(), ['-A', '-u', `[${VIP}]:9000`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `[${VIP}]:9000`, '-r', `[${RS1}]:9000`, '-m']);
    await tapvsOk(lab(), ['-a', '-u', `[${VIP}]:9000`, '-r', `[${RS2}]:9000`, '-m']);

    const http = await lab().client<Served[]>(['http', `[${VIP}]:80`, '--count', '4']);
    expect(servers(http).sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
    expect(new Set(http.map((r) => r.peer))).toEqual(new Set([LAB_CLIENT6]));

    const udp = await lab().client<Served[]>(['udp-new', `[${VIP}]:9000`, '--count', '4']);
    expect(servers(udp).sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
    expect(new Set(udp.map((r) => r.peer))).toEqual(new Set([LAB_CLIENT6]));
    expect(new Set(udp.map((r) => r.from))).toEqual(new Set([`[${VIP}]:9000`]));

    // Listings as ipvsadm prints IPv6.
    const list = await tapvsOk(lab(), ['-L', '-n']);
    expect(list).toContain(`TCP  [${VIP}]:80 rr\n`);
    expect(list).toContain(`  -> [${RS1}]:80`);
    expect(list).toMatch(/UDP {2}\[fd00:1::100\]:9000 rr\n/);
    const conns = await tapvsOk(lab(), ['-L', '-n', '-c']);
    expect(conns).toMatch(new RegExp(`UDP .* \\[${LAB_CLIENT6}\\]:\\d+ +\\[${VIP}\\]:9000 +\\[fd00:2::1[12]\\]:9000`));
    const stats = await tapvsOk(lab(), ['-L', '-n', '-t', `[${VIP}]:80`, '--stats', '--exact']);
    expect(stats).toMatch(/\[fd00:1::100\]:80 +4 +/);
  });

  it('-S prints IPv6 rules that -R restores unchanged', async () => {
    await tapvsOk(lab(), ['-A', '-t', `[${VIP}]:80`, '-s', 'wlc', '-p', '60', '-M', '64']);
    await tapvsOk(lab(), ['-a', '-t', `[${VIP}]:80`, '-r', `[${RS1}]:80`, '-m', '-w', '3']);
    const saved = await tapvsOk(lab(), ['-S', '-n']);
    expect(saved).toBe(`-A -t [${VIP}]:80 -s wlc -p 60 -M 64\n-a -t [${VIP}]:80 -r [${RS1}]:80 -m -w 3\n`);
    await tapvsOk(lab(), ['-C']);
    await tapvsOk(lab(), ['-R'], saved);
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe(saved);
  });

  it('answers neighbour solicitations and ping6 for a VIP', async () => {
    await tapvsOk(lab(), ['-A', '-t', `[${VIP}]:80`, '-s', 'rr']);
    const ping = await lab().exec(lab().cli, 'ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', VIP]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    const neigh = await lab().exec(lab().cli, 'ip', ['-6', 'neigh', 'show', VIP]);
    expect(neigh.stdout).toContain(`lladdr ${DIRECTOR_MAC}`);
    // A port of the VIP without a service is refused at once (RST), as the director's own stack would.
    const refused = await lab().client<Served[]>(['http', `[${VIP}]:82`, '--count', '1']);
    expect(refused[0].error).toMatch(/ECONNREFUSED/);
  });

  // Before the DR test, which gives rs2 a route to the client that bypasses the director.
  it('fwmark over IPv6 (-f N -6, seed 002 PNMP): mark rules for [VIP] group HTTP and UDP of one client on one real server', async () => {
    const marks = await tapvsOk(lab(), ['-S', '-n']);
    for (const line of marks.split('\n').filter((l) => l.startsWith('--add-mark'))) await tapvsOk(lab(), ['--del-mark', ...line.split(' ').slice(1)]);
    await tapvsOk(lab(), ['--add-mark', '-d', VIP, '-p', 'tcp', '--dport', '80', '--set-mark', '3']);
    await tapvsOk(lab(), ['--add-mark', '-d', VIP, '-p', 'udp', '--dport', '9000', '--set-mark', '3']);
    // The same mark for IPv4 is another service (IPVS keys fwmark services by family and mark).
    await tapvsOk(lab(), ['-A', '-f', '3', '-s', 'rr']);
    await tapvsOk(lab(), ['-A', '-f', '3', '-6', '-s', 'rr', '-p', '600']);
    await tapvsOk(lab(), ['-a', '-f', '3', '-6', '-r', RS1, '-m']); // ipvsadm takes [addr] only with :port
    await tapvsOk(lab(), ['-a', '-f', '3', '-6', '-r', RS2, '-m']);
    const list = await tapvsOk(lab(), ['-L', '-n']);
    expect(list).toContain('FWM  3 IPv6 rr persistent 600\n');
    const mixed: Served[] = [];
    for (let i = 0; i < 3; i++) {
      mixed.push(...(await lab().client<Served[]>(['http', `[${VIP}]:80`, '--count', '1'])));
      mixed.push(...(await lab().client<Served[]>(['udp', `[${VIP}]:9000`, '--count', '1'])));
    }
    expect(mixed.filter((r) => r.error)).toEqual([]);
    expect(new Set(servers(mixed)).size).toBe(1);
    expect(new Set(mixed.map((r) => r.peer))).toEqual(new Set([LAB_CLIENT6]));
    expect(new Set(mixed.map((r) => r.from))).toEqual(new Set([`[${VIP}]:80`, `[${VIP}]:9000`]));
    // One template: the client, the mark as the "VIP" (shown as an IPv4 address, as the kernel does).
    const conns = await tapvsOk(lab(), ['-L', '-n', '-c']);
    expect(conns).toMatch(new RegExp(`^IP  09:5\\d  (NONE|ASSURED) +\\[${LAB_CLIENT6}\\]:0 +0\\.0\\.0\\.3:0 +\\[fd00:2::1[12]\\]:0$`, 'm'));
    // Rules and services survive -S / -R.
    const saved = await tapvsOk(lab(), ['-S', '-n']);
    expect(saved).toContain(`--add-mark -d ${VIP} -p tcp --dport 80 --set-mark 3\n`);
    expect(saved).toContain('-A -f 3 -6 -s rr -p 600\n');
    await tapvsOk(lab(), ['-C']);
    for (const line of saved.split('\n').filter((l) => l.startsWith('--add-mark'))) await tapvsOk(lab(), ['--del-mark', ...line.split(' ').slice(1)]);
    await tapvsOk(lab(), ['-R'], saved);
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe(saved);
    // Leave no mark rules to the tests after this one (-C clears services only, as ipvsadm -C does).
    for (const line of saved.split('\n').filter((l) => l.startsWith('--add-mark'))) await tapvsOk(lab(), ['--del-mark', ...line.split(' ').slice(1)]);
  });

  it('DR: the real server holds the VIP on lo and answers the client directly', async () => {
    // rs2 serves DR and TUN (its route to the client subnet bypasses the director); rs1 stays a NAT server.
    await lab().realServerForDirectRouting(1, DR_VIP);
    await tapvsOk(lab(), ['-A', '-t', `[${DR_VIP}]:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `[${DR_VIP}]:80`, '-r', `[${RS2}]:80`, '-g']);
    const res = await lab().client<Served[]>(['http', `[${DR_VIP}]:80`, '--count', '3']);
    expect(servers(res)).toEqual(['rs2', 'rs2', 'rs2']);
    expect(new Set(res.map((r) => r.peer))).toEqual(new Set([LAB_CLIENT6]));
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain(`  -> ${`[${RS2}]:80`.padEnd(28)} Route   1`);
    // The replies bypassed the director: it saw client packets only.
    const stats = await tapvsOk(lab(), ['-L', '-n', '-t', `[${DR_VIP}]:80`, '--stats', '--exact']);
    const line = stats.split('\n').find((l) => l.startsWith('TCP'))!;
    const [, , , inPkts, outPkts] = line.trim().split(/\s+/);
    expect(Number(inPkts)).toBeGreaterThan(0);
    expect(Number(outPkts)).toBe(0);
  });

  it('TUN: IPv6 in IPv6 to tapvs-rs ipip on a real server without ip6_tunnel; it answers the client directly; packet too big', async () => {
    await lab().holdVipOnLoopback(1, TUN_VIP); // rs2's route to the client subnet is there since the DR test
    await lab().startTunnelReceiver(1, TUN_VIP, 'ipip');
    await tapvsOk(lab(), ['-A', '-t', `[${TUN_VIP}]:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `[${TUN_VIP}]:80`, '-r', `[${RS2}]:80`, '-i']);
    const res = await lab().client<Served[]>(['http', `[${TUN_VIP}]:80`, '--count', '3']);
    expect(servers(res)).toEqual(['rs2', 'rs2', 'rs2']);
    expect(new Set(res.map((r) => r.peer))).toEqual(new Set([LAB_CLIENT6]));
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain(`  -> ${`[${RS2}]:80`.padEnd(28)} Tunnel  1`);
    // An 8 KB request: full 1500-byte segments from the client, 1540 bytes once tunnelled: packet too big
    // (MTU 1460) to the client, which retries with smaller segments.
    const r = await lab().exec(lab().cli, 'python3', [
      '-c',
      `import socket\ns=socket.create_connection(('${TUN_VIP}',80),timeout=10)\ns.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\nX-Pad: '+b'a'*8000+b'\\r\\nConnection: close\\r\\n\\r\\n')\nd=b''\nwhile True:\n  c=s.recv(65536)\n  if not c: break\n  d+=c\nprint(d.split(b'\\r\\n')[0].decode())`,
    ], 20_000);
    expect(r.stdout.trim(), r.stderr).toBe('HTTP/1.1 200 OK');
    const client = new ControlClient(lab().socketPath);
    const reply = await client.request({ op: 'get-counters' });
    client.close();
    expect(reply.ok && (reply.counters as { drops: Record<string, number> }).drops['too-big']).toBeGreaterThan(0);
  });

  it('translates ICMPv6 errors: a UDP port the real server does not serve is refused at the client (NAT and FULLNAT)', async () => {
    await tapvsOk(lab(), ['-A', '-u', `[${VIP}]:9999`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `[${VIP}]:9999`, '-r', `[${RS1}]:9999`, '-m']);
    await tapvsOk(lab(), ['-A', '-u', `[${FN_VIP}]:9999`, '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-u', `[${FN_VIP}]:9999`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-u', `[${FN_VIP}]:9999`, '-r', `[${RS1}]:9999`, '--fullnat']);
    for (const vip of [VIP, FN_VIP]) {
      const r = await lab().exec(lab().cli, 'python3', [
        '-c',
        `import socket\ns=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\ns.settimeout(3)\ns.connect(('${vip}',9999))\ns.send(b'x')\ntry:\n  s.recv(100); print('reply')\nexcept ConnectionRefusedError: print('refused')\nexcept socket.timeout: print('timeout')`,
      ]);
      // rs1's port unreachable (about CIP -> RIP:9999, or LIP -> RIP:9999) arrives as one about [VIP]:9999.
      expect(r.stdout.trim(), vip).toBe('refused');
    }
  });

  it('FULLNAT: real servers see the local address as peer and need no route back to the client', async () => {
    await tapvsOk(lab(), ['-A', '-t', `[${FN_VIP}]:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-t', `[${FN_VIP}]:80`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-t', `[${FN_VIP}]:80`, '-r', `[${RS1}]:80`, '--fullnat']);
    await tapvsOk(lab(), ['-a', '-t', `[${FN_VIP}]:80`, '-r', `[${RS2}]:80`, '--fullnat']);
    const res = await lab().client<Served[]>(['http', `[${FN_VIP}]:80`, '--count', '4']);
    expect(servers(res).sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
    expect(new Set(res.map((r) => r.peer))).toEqual(new Set([LIP]));
    expect(res.every((r) => (r.peerPort ?? 0) >= 5000)).toBe(true);
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain(`  -> [${RS1}]:80`);
  });

  it('FULLNAT with PROXY protocol v2: the real server reads the IPv6 client address from the header, sees the LIP as peer', async () => {
    await lab().startRealServer(0, ['--http-port', '8080', '--udp-port', '9001', '--proxy-protocol']);
    await tapvsOk(lab(), ['-A', '-t', `[${FN_VIP}]:80`, '-s', 'rr', '--proxy-protocol']);
    await tapvsOk(lab(), ['--add-laddr', '-t', `[${FN_VIP}]:80`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-t', `[${FN_VIP}]:80`, '-r', `[${RS1}]:8080`, '--fullnat']);
    const res = await lab().client<(Served & { proxyClient?: string })[]>(['http', `[${FN_VIP}]:80`, '--count', '3']);
    expect(servers(res)).toEqual(['rs1', 'rs1', 'rs1']);
    expect(new Set(res.map((r) => r.peer))).toEqual(new Set([LIP]));
    for (const r of res) expect(r.proxyClient).toMatch(new RegExp(`^\\[${LAB_CLIENT6}\\]:\\d+$`));
  });

  it('refuses what IPv6 services do not have yet with an error and no change', async () => {
    await tapvsOk(lab(), ['-A', '-t', `[${VIP}]:80`, '-s', 'rr']);
    const mixed = await lab().tapvs(['-a', '-t', `[${VIP}]:80`, '-r', '198.18.2.11:80', '-m']);
    // ipvsadm's own check, before anything reaches the daemon.
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('Different address family is allowed only for tunneling servers');
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe(`-A -t [${VIP}]:80 -s rr\n`);
  });

});
