/**
 * FULLNAT end to end: both addresses rewritten (CIP -> VIP becomes LIP -> RIP), so the real servers need
 * no route back through the director — this lab deletes their default route. The client address reaches
 * the real server through PROXY protocol v2 when the service asks for it.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LAB_CLIENT, LAB_VIP, labRealServer } from '../../src/lab/topology.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);
const LIP = '198.18.2.200';
const LIP2 = '198.18.2.201';

interface ProxyServed extends Served {
  proxyClient?: string | null;
}

describe.skipIf(SKIP_REASON !== null)('FULLNAT end to end', () => {
  const { lab } = useLab();

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      // No gateway: the real servers only know their own subnet (where the LIPs are).
      const r = await lab().exec(lab().rs[i], 'ip', ['route', 'del', 'default']);
      expect(r.code).toBe(0);
      await lab().startRealServer(i, ['--http-port', '8080', '--udp-port', '9001', '--proxy-protocol']);
    }
  });

  beforeEach(async () => {
    await tapvsOk(lab(), ['-C']);
  });

  it('rewrites both addresses; real servers without a route to the client still answer', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-t', `${VIP}:80`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '--fullnat']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '--fullnat']);
    const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '4']);
    expect(servers(res)).toEqual(['rs2', 'rs1', 'rs2', 'rs1']);
    for (const r of res) {
      expect(r.from).toBe(`${VIP}:80`);
      expect(r.peer).toBe(LIP); // the real server sees the local address, not the client
      expect(r.peerPort).toBeGreaterThanOrEqual(5000);
    }
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain(`  -> ${`${RS1}:80`.padEnd(28)} FullNat 1      0          2         \n`);
    const stats = await tapvsOk(lab(), ['-L', '-n', '--stats', '--exact']);
    expect(Number(stats.split('\n').find((l) => l.startsWith('TCP'))!.trim().split(/\s+/)[4])).toBeGreaterThan(0); // OutPkts
    // Without a local address the service cannot connect anybody (no-local-port drop): the client times out.
    await tapvsOk(lab(), ['--del-laddr', '-t', `${VIP}:80`, '-z', LIP]);
    const none = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '1'], 15_000);
    expect(none[0].error).toBeDefined();
  });

  it('UDP, with local addresses taken round robin', async () => {
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9000`, '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-u', `${VIP}:9000`, '-z', LIP]);
    await tapvsOk(lab(), ['--add-laddr', '-u', `${VIP}:9000`, '-z', LIP2]);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', `${RS1}:9000`, '--fullnat']);
    const res = await lab().client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '4']);
    expect(servers(res)).toEqual(['rs1', 'rs1', 'rs1', 'rs1']);
    expect(res.map((r) => r.peer)).toEqual([LIP, LIP2, LIP, LIP2]);
    for (const r of res) expect(r.from).toBe(`${VIP}:9000`);
  });

  it('ICMP errors of the real server reach the client translated (a UDP port nobody serves is refused)', async () => {
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9999`, '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-u', `${VIP}:9999`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9999`, '-r', `${RS1}:9999`, '--fullnat']);
    const r = await lab().exec(lab().cli, 'python3', [
      '-c',
      `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(3)\ns.connect(('${VIP}',9999))\ns.send(b'x')\ntry:\n  s.recv(100); print('reply')\nexcept ConnectionRefusedError: print('refused')\nexcept socket.timeout: print('timeout')`,
    ]);
    // rs1's port unreachable (RIP -> LIP about LIP:lport -> RIP:9999) arrives as one about VIP:9999.
    expect(r.stdout.trim()).toBe('refused');
  });

  it('TOA: the SYN reaching the real server carries option 254 with the client address and port', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr', '--toa']);
    await tapvsOk(lab(), ['--add-laddr', '-t', `${VIP}:80`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '--fullnat']);
    // A raw AF_PACKET sniffer on rs1 prints the TCP options of the first SYN to port 80 (bounded: 8 s).
    const sniffer = lab().spawnIn(lab().rs[0], 'python3', [
      '-c',
      [
        'import socket,select,time,sys',
        's=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.ntohs(0x0800)); s.bind(("eth0",0))',
        'print("ready",flush=True); end=time.time()+8',
        'while time.time()<end:',
        '  r,_,_=select.select([s],[],[],0.5)',
        '  if not r: continue',
        '  f=s.recv(2048); ip=f[14:]; ihl=(ip[0]&15)*4',
        '  if ip[9]!=6: continue',
        '  t=ip[ihl:]',
        '  if int.from_bytes(t[2:4],"big")!=80 or (t[13]&0x12)!=0x02: continue',
        '  print("options",t[20:(t[12]>>4)*4].hex(),flush=True); sys.exit(0)',
      ].join('\n'),
    ]);
    const deadline = Date.now() + 5000;
    while (!sniffer.output().includes('ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '1']);
    expect(res[0].server).toBe('rs1');
    await sniffer.exited;
    const opts = /options ([0-9a-f]+)/.exec(sniffer.output())?.[1] ?? '';
    // kind 254, length 8, client port, 198.18.1.2
    expect(opts).toMatch(/fe08[0-9a-f]{4}c6120102/);
    const port = parseInt(/fe08([0-9a-f]{4})c6120102/.exec(opts)![1], 16);
    expect(port).toBeGreaterThan(1023); // the client's ephemeral port
  });

  it('PROXY protocol v2: the real server reads the client address while its peer is the local address', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr', '--proxy-protocol']);
    await tapvsOk(lab(), ['--add-laddr', '-t', `${VIP}:80`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS1}:8080`, '--fullnat']);
    const res = await lab().client<ProxyServed[]>(['http', `${VIP}:80`, '--count', '3']);
    for (const r of res) {
      expect(r.server).toBe('rs1');
      expect(r.peer).toBe(LIP);
      expect(r.proxyClient).toMatch(new RegExp(`^${LAB_CLIENT.replace(/\./g, '\\.')}:\\d+$`));
      expect(r.from).toBe(`${VIP}:80`);
    }
    // A larger request (a full segment) still fits once the header is added: the MSS was clamped.
    const big = await lab().exec(lab().cli, 'curl', ['-s', '-m', '5', '-H', `X-Pad: ${'p'.repeat(3000)}`, `http://${VIP}/big`]);
    expect(big.code).toBe(0);
    expect(JSON.parse(big.stdout).proxyClient).toMatch(/^198\.18\.1\.2:/);
  });
});
