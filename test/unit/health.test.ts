/** Health of real servers from the checkers' status, as tapvs top and tapvs_backend_healthy show it. */
import { describe, expect, it } from 'vitest';
import { backendHealthFrom } from '../../src/control/health.js';
import type { RealServerCheckStatus } from '../../src/control/protocol.js';

function status(virtualServer: string, realServer: string, alive: boolean): RealServerCheckStatus {
  return { virtualServer, realServer, alive, weight: 1, inhibitOnFailure: false, checkers: [] } as unknown as RealServerCheckStatus;
}

const svc = (port: number, fwmark = 0) => ({ af: 4 as const, protocol: 6, addr: fwmark ? '0.0.0.0' : '198.18.1.100', port: fwmark ? 0 : port, fwmark });
const rs = (addr: string, port: number) => ({ af: 4 as const, addr, port });

describe('backendHealthFrom', () => {
  it('matches keepalived virtual/real server names to table services and destinations', () => {
    const health = backendHealthFrom([
      status('TCP 198.18.1.100:80', '198.18.2.11:80', true),
      status('TCP 198.18.1.100:80', '198.18.2.12:80', false),
      status('FWM 3', '198.18.2.11:0', false),
      status('group web TCP', '198.18.2.13:8080', false),
    ]);
    expect(health(svc(80), rs('198.18.2.11', 80))).toBe(true);
    expect(health(svc(80), rs('198.18.2.12', 80))).toBe(false);
    expect(health(svc(3, 3), rs('198.18.2.11', 0))).toBe(false);
    expect(health(svc(81), rs('198.18.2.13', 8080))).toBe(false); // a group's real server, by address
    expect(health(svc(81), rs('198.18.2.11', 80))).toBeNull(); // not checked for that service
    expect(health({ ...svc(80), protocol: 17 }, rs('198.18.2.11', 80))).toBeNull(); // UDP is another virtual server
  });
});
