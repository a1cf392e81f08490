/**
 * Direct routing (LVS-DR, ipvsadm -g, "Route") end to end, set up as seed 003 does: the real server holds
 * the VIP on lo with arp_ignore=1/arp_announce=2 and answers the client directly; the director only
 * rewrites the destination MAC. Plus a service mixing one NAT and one DR real server, as IPVS allows.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LAB_CLIENT, LAB_VIP, labRealServer } from '../../src/lab/topology.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);
const DIRECTOR_MAC = '02:00:00:00:00:fe';

function statsOf(listing: string, prefix: string): number[] {
  const line = listing.split('\n').find((l) => l.startsWith(prefix));
  if (!line) throw new Error(`no line ${prefix} in\n${listing}`);
  return line.slice(prefix.length).trim().split(/\s+/).map(Number);
}

describe.skipIf(SKIP_REASON !== null)('direct routing end to end', () => {
  const { lab } = useLab({ directorArgs: ['--mac', DIRECTOR_MAC] });

  beforeAll(async () => {
    // rs2 becomes a DR real server; its UDP echo also listens on the VIP (DR packets arrive for the VIP).
    await lab().realServerForDirectRouting(1);
    await lab().startRealServer(1, ['--no-http', '--udp-address', VIP]);
  });

  beforeEach(async () => {
    await tapvsOk(lab(), ['-C']);
  });

  it('forwards to the real server by MAC only; replies go straight to the client', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '-g']);
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain(`  -> ${`${RS2}:80`.padEnd(28)} Route   1      0          0         \n`);
    const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '4']);
    expect(servers(res)).toEqual(['rs2', 'rs2', 'rs2', 'rs2']);
    for (const r of res) {
      expect(r.from).toBe(`${VIP}:80`); // the real server answered from the VIP it holds on lo
      expect(r.peer).toBe(LAB_CLIENT); // and saw the real client
    }
    const stats = await tapvsOk(lab(), ['-L', '-n', '--stats', '--exact']);
    const [conns, inpkts, outpkts] = statsOf(stats, `TCP  ${VIP}:80`);
    expect(conns).toBe(4);
    expect(inpkts).toBeGreaterThanOrEqual(4 * 4);
    expect(outpkts).toBe(0); // the director never sees a DR reply
    // The input-only state table: after the client's FIN the connection is in FIN_WAIT.
    const conns2 = await tapvsOk(lab(), ['-L', '-n', '-c']);
    expect(conns2).toMatch(new RegExp(`^TCP \\d\\d:\\d\\d  FIN_WAIT    ${LAB_CLIENT.replace(/\./g, '\\.')}:\\d+\\s+198\\.18\\.1\\.100:80\\s+198\\.18\\.2\\.12:80$`, 'm'));
    // The client resolved the VIP to the director, never to the real server that also holds it.
    const neigh = await lab().exec(lab().cli, 'ip', ['neigh', 'show', VIP]);
    expect(neigh.stdout).toContain(`lladdr ${DIRECTOR_MAC}`);
  });

  it('UDP over DR', async () => {
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9000`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', `${RS2}:9000`, '-g']);
    const res = await lab().client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '3']);
    expect(servers(res)).toEqual(['rs2', 'rs2', 'rs2']);
    for (const r of res) {
      expect(r.from).toBe(`${VIP}:9000`);
      expect(r.peer).toBe(LAB_CLIENT);
    }
  });

  it('one service with a NAT and a DR real server: both serve, only NAT replies pass the director', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '-g']);
    const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '4']);
    expect(servers(res)).toEqual(['rs2', 'rs1', 'rs2', 'rs1']);
    for (const r of res) expect(r.from).toBe(`${VIP}:80`);
    const stats = await tapvsOk(lab(), ['-L', '-n', '--stats', '--exact']);
    expect(statsOf(stats, `  -> ${RS1}:80`)[2]).toBeGreaterThan(0); // NAT: replies counted
    expect(statsOf(stats, `  -> ${RS2}:80`)[2]).toBe(0); // DR: never seen
  });
});
