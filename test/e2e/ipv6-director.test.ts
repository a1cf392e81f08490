/**
 * A director with IPv6 addresses only (tapvsd --address fd00:...), and its IPv6 default gateway: the IPv6
 * lab's namespaces, real kernel TCP. A client outside the director's prefixes (fd00:9::2, on the client
 * namespace's loopback) is reached through --gateway fd00:1::2 (the client namespace itself).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { LAB_CLIENT6, LAB_DIRECTOR_FRONT6, LAB_VIP6, labRealServer6 } from '../../src/lab/topology.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const OFF_LINK_CLIENT = 'fd00:9::2';

describe.skipIf(SKIP_REASON !== null)('an IPv6-only director', () => {
  const { lab } = useLab({ ipv6: true, directorAddresses: [`${LAB_DIRECTOR_FRONT6}/64`, 'fd00:2::1/64'], directorArgs: ['--gateway', LAB_CLIENT6] });

  beforeAll(async () => {
    const r = await lab().exec(lab().cli, 'ip', ['-6', 'addr', 'add', `${OFF_LINK_CLIENT}/128`, 'dev', 'lo']);
    expect(r.code, r.stderr).toBe(0);
    await tapvsOk(lab(), ['-A', '-t', `[${LAB_VIP6}]:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `[${LAB_VIP6}]:80`, '-r', `[${labRealServer6(0)}]:80`, '-m']);
    await tapvsOk(lab(), ['-a', '-t', `[${LAB_VIP6}]:80`, '-r', `[${labRealServer6(1)}]:80`, '-m']);
  });

  it('serves IPv6 NAT and answers ping for its own address, with no IPv4 address at all', async () => {
    const res = await lab().client<Served[]>(['http', `[${LAB_VIP6}]:80`, '--count', '4']);
    expect(servers(res).sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
    expect(new Set(res.map((r) => r.peer))).toEqual(new Set([LAB_CLIENT6]));
    expect((await lab().exec(lab().cli, 'ping', ['-6', '-c', '1', '-W', '2', LAB_DIRECTOR_FRONT6])).code).toBe(0);
    // The lab's IPv4 director address is not the director's here: nothing answers it.
    expect((await lab().exec(lab().cli, 'ping', ['-c', '1', '-W', '1', '198.18.1.1'])).code).not.toBe(0);
  });

  it('reaches a client outside its prefixes through its IPv6 gateway', async () => {
    const res = await lab().client<Served[]>(['http', `[${LAB_VIP6}]:80`, '--count', '4', '--source', OFF_LINK_CLIENT]);
    expect(res.filter((r) => r.error)).toEqual([]);
    // NAT keeps the client's address: the real servers saw the off-link client.
    expect(new Set(res.map((r) => r.peer))).toEqual(new Set([OFF_LINK_CLIENT]));
  });
});
