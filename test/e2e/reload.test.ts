/**
 * `tapvs reload` (and SIGHUP) on a daemon started with --rules: only the difference is applied, so a
 * connection held open across the reload keeps working; a bad file changes nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LAB_VIP, labRealServer } from '../../src/lab/topology.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-reload-'));
const rulesFile = path.join(dir, 'rules');
fs.writeFileSync(rulesFile, `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${RS1}:80 -m -w 1\n`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.skipIf(SKIP_REASON !== null)('tapvs reload', () => {
  const { lab } = useLab({ directorArgs: ['--rules', rulesFile] });

  it('applies the difference while a connection stays open, and refuses a bad file without changes', async () => {
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe(`-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${RS1}:80 -m -w 1\n`);
    const holder = lab().spawnIn(lab().cli, process.execPath, [
      new URL('../../dist/src/lab/client.js', import.meta.url).pathname, 'hold', `${VIP}:80`, '--count', '1', '--ms', '2500', '--again',
    ]);
    await new Promise((r) => setTimeout(r, 800));
    fs.writeFileSync(rulesFile, `-A -t ${VIP}:80 -s wrr\n-a -t ${VIP}:80 -r ${RS1}:80 -m -w 3\n-a -t ${VIP}:80 -r ${RS2}:80 -m -w 1\n`);
    const r = await lab().tapvs(['reload']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('reloaded');
    const listing = await tapvsOk(lab(), ['-L', '-n']);
    expect(listing).toContain(`  -> ${`${RS1}:80`.padEnd(28)} Masq    3      1          0`); // edited in place: its connection is still counted
    expect(listing).toContain(`  -> ${`${RS2}:80`.padEnd(28)} Masq    1      0          0`);
    await holder.exited;
    const held = JSON.parse(holder.output()) as Served[];
    expect(held[0].server).toBe('rs1');
    expect(held[0].second?.server).toBe('rs1'); // the open connection survived the reload
    expect(listing).toContain(`TCP  ${VIP}:80 wrr\n`);
    expect(servers(await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '4'])).sort()).toEqual(['rs1', 'rs1', 'rs1', 'rs2']);

    const before = await tapvsOk(lab(), ['-S', '-n']);
    fs.writeFileSync(rulesFile, `-A -t ${VIP}:80 -s wrr\n-a -t ${VIP}:80 -r ${RS1}:80 -m -w 3\n-a -t ${VIP}:80 -r ${RS1}:80 -m\n`);
    const bad = await lab().tapvs(['reload']);
    expect(bad.code).toBe(255);
    expect(bad.stderr).toContain(`${rulesFile}:3:`);
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe(before);
  });
});
