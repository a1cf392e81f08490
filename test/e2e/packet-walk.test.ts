/**
 * The packet walk end to end, per forwarding method: a lab built by the same library functions as
 * `npm run lab -- --mode M --walk`, one captured HTTP connection (client eth0, the director's TAP, every
 * real server's eth0), and the hop table's rows for the SYN and the SYN-ACK as the seed articles list
 * them: NAT rewrites CIP→VIP to CIP→RIP and RIP→CIP to VIP→CIP; DR only changes the destination MAC and
 * the reply bypasses the director; TUN carries CIP→VIP inside DIP→RIP; FULLNAT rewrites to LIP→RIP. And
 * one method over IPv6 (`npm run lab -- --ipv6 --mode tun --walk`): TUN as IPv6-in-IPv6.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyCommands, LAB_LIP, labMode, labRoles, labServiceCommands, startLab } from '../../src/lab/modes.js';
import { run } from '../../src/lab/processes.js';
import { readPcap } from '../../src/lab/pcap.js';
import { labAddresses } from '../../src/lab/family.js';
import { LAB_CLIENT, LAB_CLIENT6, LAB_DIP, LAB_DIP6, LAB_VIP, LAB_VIP6, LabTopology } from '../../src/lab/topology.js';
import { chooseBackend, packetWalk, type WalkResult, type WalkRow } from '../../src/lab/walk.js';
import { SKIP_REASON, testLabId } from './lab-fixture.js';

const CAPTURE = SKIP_REASON ? null : await chooseBackend().catch((e: Error) => (console.warn(`packet walk tests skipped: ${e.message}`), null));

interface Walked {
  walk: WalkResult;
  /** The real server that served the connection (rs1, rs2) and its address and MAC. */
  rs: string;
  rip: string;
  rsMac: string;
}

/** Build the lab for `modeName`, configure the service, walk one connection, tear everything down. */
async function walkMode(modeName: string, ipv6 = false): Promise<Walked> {
  const mode = labMode(modeName);
  const lab = new LabTopology({ id: testLabId(), ipv6 });
  const pcapDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-walk-test-'));
  try {
    await startLab(lab, mode);
    await applyCommands(lab, labServiceCommands(lab, mode));
    const walk = await packetWalk(lab, { pcapDir, roles: labRoles(lab, mode), title: mode.title, captureSeconds: 20 });
    // One pcap file per capture point, readable, the client's holding the connection.
    expect(Object.keys(walk.files).sort()).toEqual(['client', 'director', 'rs1', 'rs2']);
    for (const f of Object.values(walk.files)) expect(() => readPcap(fs.readFileSync(f))).not.toThrow();
    expect(readPcap(fs.readFileSync(walk.files.client)).records.length).toBeGreaterThanOrEqual(6);
    expect(walk.servedBy).toHaveLength(1);
    const rs = walk.servedBy[0];
    const i = Number(rs.slice(2)) - 1;
    const link = await run('ip', ['-n', lab.rs[i], '-j', 'link', 'show', 'eth0']);
    const rsMac = (JSON.parse(link.stdout) as { address: string }[])[0].address;
    return { walk, rs, rip: labAddresses(lab).realServer(i), rsMac };
  } finally {
    await lab.down();
    fs.rmSync(pcapDir, { recursive: true, force: true });
  }
}

const packet = (w: WalkResult, label: string): WalkRow[] => {
  const first = w.rows.find((r) => r.label === label);
  if (!first) throw new Error(`no ${label} in the walk:\n${w.text}`);
  return w.rows.filter((r) => r.packet === first.packet);
};
const hops = (rows: WalkRow[]): string[] => rows.map((r) => r.hop);

describe.skipIf(SKIP_REASON !== null || CAPTURE === null)('packet walk end to end', () => {
  it('LVS-NAT: CIP→VIP becomes CIP→RIP at the director; RIP→CIP comes back as VIP→CIP', async () => {
    const { walk, rs, rip, rsMac } = await walkMode('nat');
    expect(walk.client).toMatchObject({ dst: `${LAB_VIP}:80` });
    expect(walk.client.src.startsWith(`${LAB_CLIENT}:`)).toBe(true);
    const syn = packet(walk, 'SYN');
    expect(hops(syn)).toEqual(['client', 'director in', 'director out', rs]);
    expect(syn.map((r) => r.roles)).toEqual(['CIP → VIP', 'CIP → VIP', 'CIP → RIP', 'CIP → RIP']);
    expect(syn[2]).toMatchObject({ src: walk.client.src, dst: `${rip}:80`, dstMac: rsMac, macText: `director → ${rs}` });
    expect(syn[1].macText).toBe('client → director');
    const synAck = packet(walk, 'SYN-ACK');
    expect(hops(synAck)).toEqual([rs, 'director in', 'director out', 'client']);
    expect(synAck.map((r) => r.roles)).toEqual(['RIP → CIP', 'RIP → CIP', 'VIP → CIP', 'VIP → CIP']);
    expect(synAck[3]).toMatchObject({ src: `${LAB_VIP}:80`, dst: walk.client.src, macText: 'director → client' });
    // The request and the response are in the table too, and every reply passed the director.
    expect(walk.rows.some((r) => r.label.startsWith('request'))).toBe(true);
    const response = walk.rows.filter((r) => r.label.startsWith('response'));
    expect(hops(response)).toEqual([rs, 'director in', 'director out', 'client']);
    expect(walk.text).toContain('CIP → RIP');
  });

  it('LVS-DR: the director keeps CIP→VIP and changes only the MAC; the reply never reaches it', async () => {
    const { walk, rs, rsMac } = await walkMode('dr');
    const syn = packet(walk, 'SYN');
    expect(hops(syn)).toEqual(['client', 'director in', 'director out', rs]);
    expect(syn.map((r) => r.roles)).toEqual(['CIP → VIP', 'CIP → VIP', 'CIP → VIP', 'CIP → VIP']);
    expect(syn[2]).toMatchObject({ src: walk.client.src, dst: `${LAB_VIP}:80`, dstMac: rsMac, macText: `director → ${rs}` });
    expect(syn[1].dstMac).toBe(syn[2].srcMac); // in to the director's MAC, out from it
    const synAck = packet(walk, 'SYN-ACK');
    expect(hops(synAck)).toEqual([rs, 'client']);
    expect(synAck.map((r) => r.roles)).toEqual(['VIP → CIP', 'VIP → CIP']);
    expect(synAck[0]).toMatchObject({ srcMac: rsMac, macText: `${rs} → client` });
    const replies = walk.rows.filter((r) => !r.toServer);
    expect(replies.length).toBeGreaterThanOrEqual(4);
    expect(replies.filter((r) => r.hop.startsWith('director'))).toEqual([]);
  });

  it('LVS-TUN: the director sends DIP→RIP with CIP→VIP inside; the reply goes straight to the client', async () => {
    const { walk, rs, rip, rsMac } = await walkMode('tun');
    const syn = packet(walk, 'SYN');
    expect(hops(syn)).toEqual(['client', 'director in', 'director out', rs]);
    expect(syn[1].roles).toBe('CIP → VIP');
    expect(syn[1].inner).toBeUndefined();
    for (const r of syn.slice(2)) {
      expect(r).toMatchObject({ src: LAB_DIP, dst: rip, roles: 'DIP → RIP' });
      expect(r.inner).toEqual({ src: walk.client.src, dst: `${LAB_VIP}:80`, roles: 'CIP → VIP' });
    }
    expect(syn[2].dstMac).toBe(rsMac);
    const synAck = packet(walk, 'SYN-ACK');
    expect(hops(synAck)).toEqual([rs, 'client']);
    expect(synAck.map((r) => r.roles)).toEqual(['VIP → CIP', 'VIP → CIP']);
    expect(walk.rows.filter((r) => !r.toServer && r.hop.startsWith('director'))).toEqual([]);
    expect(walk.text).toContain('DIP → RIP [CIP → VIP]');
  });

  it('FULLNAT: CIP→VIP becomes LIP→RIP (another port too); RIP→LIP comes back as VIP→CIP', async () => {
    const { walk, rs, rip } = await walkMode('fullnat');
    const syn = packet(walk, 'SYN');
    expect(hops(syn)).toEqual(['client', 'director in', 'director out', rs]);
    expect(syn.map((r) => r.roles)).toEqual(['CIP → VIP', 'CIP → VIP', 'LIP → RIP', 'LIP → RIP']);
    expect(syn[2].src.startsWith(`${LAB_LIP}:`)).toBe(true);
    expect(syn[2].dst).toBe(`${rip}:80`);
    const synAck = packet(walk, 'SYN-ACK');
    expect(hops(synAck)).toEqual([rs, 'director in', 'director out', 'client']);
    expect(synAck.map((r) => r.roles)).toEqual(['RIP → LIP', 'RIP → LIP', 'VIP → CIP', 'VIP → CIP']);
    expect(synAck[3].dst).toBe(walk.client.src);
  });

  it('LVS-TUN over IPv6: the director sends DIP→RIP (IPv6 in IPv6) with [CIP]→[VIP] inside; the reply goes straight to the client', async () => {
    const { walk, rs, rip, rsMac } = await walkMode('tun', true);
    expect(walk.client).toMatchObject({ dst: `[${LAB_VIP6}]:80` });
    expect(walk.client.src.startsWith(`[${LAB_CLIENT6}]:`)).toBe(true);
    const syn = packet(walk, 'SYN');
    expect(hops(syn)).toEqual(['client', 'director in', 'director out', rs]);
    expect(syn.slice(0, 2).map((r) => r.roles)).toEqual(['CIP → VIP', 'CIP → VIP']);
    expect(syn[1]).toMatchObject({ src: walk.client.src, dst: `[${LAB_VIP6}]:80` });
    expect(syn[1].inner).toBeUndefined();
    for (const r of syn.slice(2)) {
      expect(r).toMatchObject({ src: LAB_DIP6, dst: rip, roles: 'DIP → RIP' });
      expect(r.inner).toEqual({ src: walk.client.src, dst: `[${LAB_VIP6}]:80`, roles: 'CIP → VIP' });
    }
    expect(syn[2].dstMac).toBe(rsMac);
    const synAck = packet(walk, 'SYN-ACK');
    expect(hops(synAck)).toEqual([rs, 'client']);
    expect(synAck.map((r) => r.roles)).toEqual(['VIP → CIP', 'VIP → CIP']);
    expect(synAck[1]).toMatchObject({ src: `[${LAB_VIP6}]:80`, dst: walk.client.src });
    expect(walk.rows.filter((r) => !r.toServer && r.hop.startsWith('director'))).toEqual([]);
    expect(walk.text).toContain('DIP → RIP [CIP → VIP]');
    expect(walk.text).toContain('inside IPv6-in-IPv6');
  });
});
