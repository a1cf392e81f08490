/** The --rules reload by difference: only what changed becomes a command. */
import { describe, expect, it } from 'vitest';
import { rulesReloadCommands } from '../../src/control/table-diff.js';
import { parseRestoreText } from '../../src/cli/restore-input.js';
import { ServiceTable } from '../../src/control/service-table.js';
import { applyCommand } from '../../src/control/commands.js';
import { ProtocolTimeouts } from '../../src/conntrack/timeouts.js';
import type { Command } from '../../src/control/protocol.js';
import type { TableSnapshot } from '../../src/control/model.js';

function commands(text: string): Command[] {
  const r = parseRestoreText(text);
  if ('error' in r) throw new Error(r.error);
  return r.commands;
}

/** The configuration part of a table snapshot, as the daemon would report it after these rules. */
function tableAfter(text: string): TableSnapshot {
  const t = new ServiceTable();
  for (const c of commands(text)) expect(applyCommand(t, new ProtocolTimeouts(), c)).toBeNull();
  const zero = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
  const rate = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
  return {
    connTabSize: 4096,
    timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
    marks: t.markRules,
    services: t.services.map((s) => ({
      ...s.config,
      stats: zero,
      rate,
      laddrs: s.laddrs.map((a) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`),
      dests: s.dests.map((id) => ({ ...s.destConfigs.get(id)!, activeConns: 0, inactConns: 0, persistConns: 0, stats: zero, rate })),
    })),
  };
}

const BEFORE = `--add-mark -d 198.18.1.100 -p tcp --dport 443 --set-mark 3
-A -t 198.18.1.100:80 -s rr
-a -t 198.18.1.100:80 -r 198.18.2.11:80 -m -w 1
-a -t 198.18.1.100:80 -r 198.18.2.12:80 -m -w 1
-A -u 198.18.1.100:53 -s wrr
-a -u 198.18.1.100:53 -r 198.18.2.11:53 -m -w 1
`;

describe('rulesReloadCommands', () => {
  it('turns the live table into the file with the fewest changes', () => {
    const after = `--add-mark -d 198.18.1.100 -p tcp --dport 8443 --set-mark 3
-A -t 198.18.1.100:80 -s wlc
-a -t 198.18.1.100:80 -r 198.18.2.12:80 -m -w 5
-A -t 198.18.1.100:81 -s rr --proxy-protocol
-P -t 198.18.1.100:81 -z 198.18.2.200
-a -t 198.18.1.100:81 -r 198.18.2.13:80 --fullnat -w 1
`;
    const r = rulesReloadCommands(tableAfter(BEFORE), commands(after));
    if ('failedIndex' in r) throw new Error(String(r.message));
    expect(r.commands.map((c) => [c.op, 'dest' in c ? c.dest.addr : 'rule' in c ? c.rule.ports[0][0] : 'laddr' in c ? c.laddr : 'service' in c ? c.service?.port : ''])).toEqual([
      ['delete-mark', 443],
      ['add-mark', 8443],
      ['delete-server', '198.18.2.11'],
      ['delete-service', 53],
      ['edit-service', 80],
      ['edit-server', '198.18.2.12'],
      ['add-service', 81],
      ['add-laddr', '198.18.2.200'],
      ['add-server', '198.18.2.13'],
    ]);
  });

  it('an unchanged file changes nothing', () => {
    const r = rulesReloadCommands(tableAfter(BEFORE), commands(BEFORE));
    expect(r).toEqual({ commands: [] });
  });

  it('a line the daemon would refuse is named by its index and nothing is planned', () => {
    const r = rulesReloadCommands(tableAfter(BEFORE), commands('-A -t 198.18.1.100:80 -s rr\n-A -t 198.18.1.100:80 -s rr\n'));
    expect(r).toMatchObject({ failedIndex: 1, errno: 'EEXIST' });
  });
});
