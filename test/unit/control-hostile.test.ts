/**
 * Hostile input on the control socket: garbage, malformed commands and half-valid batches get error
 * replies, never a crash, a hang or a half-applied change.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Director } from '../../src/director.js';
import { ControlServer } from '../../src/control/server.js';
import { Logger } from '../../src/logger.js';
import { parseIpv4 } from '../../src/dataplane/wire/ipv4.js';
import type { Reply } from '../../src/control/protocol.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-hostile-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function exchange(sock: string, lines: string[]): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let buf = '';
    const replies: Reply[] = [];
    c.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        replies.push(JSON.parse(buf.slice(0, nl)) as Reply);
        buf = buf.slice(nl + 1);
        if (replies.length === lines.length) {
          c.end();
          resolve(replies);
        }
      }
    });
    c.on('error', reject);
    c.write(lines.join('\n') + '\n');
  });
}

describe('control socket under hostile input', () => {
  it('answers every bad request with an error and changes nothing', async () => {
    const director = new Director({
      tap: 'unused0',
      addresses: [{ addr: parseIpv4('198.18.1.1'), prefix: 24 }],
      socketPath: path.join(dir, 'c.sock'),
      connMax: 100,
      logger: new Logger('text', 'error', () => {}),
    });
    const server = new ControlServer(path.join(dir, 'c.sock'), (r) => director.handle(r), () => {});
    await server.listen();
    try {
      expect(fs.statSync(path.join(dir, 'c.sock')).mode & 0o777).toBe(0o600);
      const good = { af: 4, protocol: 6, addr: '198.18.1.100', port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
      const replies = await exchange(path.join(dir, 'c.sock'), [
        'this is not json',
        '[1,2,3]',
        '{"op":"no-such-op"}',
        '{"op":"add-service"}',
        '{"op":"add-service","service":{"af":4,"addr":12345}}',
        JSON.stringify({ op: 'add-server', service: good, dest: { af: 4, addr: '198.18.2.11' } }),
        JSON.stringify({ op: 'batch', commands: [{ op: 'add-service', service: good }, { op: 'add-server', service: good, dest: null }] }),
        JSON.stringify({ op: 'batch', commands: 'nope' }),
        JSON.stringify({ op: 'add-mark', rule: { af: 4, addr: '198.18.1.100', protocol: 6, ports: [[90, 80]], mark: 3 } }),
        JSON.stringify({ op: 'get-table' }),
      ]);
      for (const r of replies.slice(0, -1)) expect(r.ok, JSON.stringify(r)).toBe(false);
      const table = replies.at(-1)!;
      expect(table.ok).toBe(true);
      expect(table.ok && table.table!.services).toEqual([]); // the half-valid batch left nothing behind
      expect(table.ok && table.table!.marks).toEqual([]);
      // Still serving: a valid command works afterwards.
      const [ok] = await exchange(path.join(dir, 'c.sock'), [JSON.stringify({ op: 'add-service', service: good })]);
      expect(ok.ok).toBe(true);
    } finally {
      await server.close();
    }
  });
});
