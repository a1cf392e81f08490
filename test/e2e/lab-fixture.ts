/**
 * Shared setup for end-to-end tests: one lab (client, director running tapvsd, real servers) per test
 * file, torn down in afterAll even when a test fails. Skips the file with a clear message when the
 * machine cannot build namespaces (not root, no /dev/net/tun, not built).
 */
import { afterAll, beforeAll } from 'vitest';
import { labUnavailableReason, LabTopology } from '../../src/lab/topology.js';

export const SKIP_REASON = labUnavailableReason();
if (SKIP_REASON) console.warn(`end-to-end tests skipped: ${SKIP_REASON}`);

export interface Served {
  server?: string;
  peer?: string;
  peerPort?: number;
  from?: string;
  error?: string;
}

export function useLab(opts: { realServers?: number; directorArgs?: string[]; ipv6?: boolean } = {}): { lab: () => LabTopology } {
  let lab: LabTopology | null = null;
  beforeAll(async () => {
    if (SKIP_REASON) return;
    // Namespaces of end-to-end tests are tvt-<pid>-<random>-<role> (global-setup removes those of dead runs).
    lab = new LabTopology({ id: `tvt-${process.pid}-${Math.random().toString(36).slice(2, 6)}`, realServers: opts.realServers ?? 2, ipv6: opts.ipv6 });
    try {
      await lab.up();
      for (let i = 0; i < (opts.realServers ?? 2); i++) await lab.startRealServer(i);
      await lab.startDirector(opts.directorArgs ?? []);
    } catch (e) {
      await lab.down();
      throw e;
    }
  }, 60_000);
  afterAll(async () => {
    await lab?.down();
  }, 60_000);
  return {
    lab: () => {
      if (!lab) throw new Error('lab not started');
      return lab;
    },
  };
}

/** Run tapvs and fail the test with its stderr when it does not exit 0. */
export async function tapvsOk(lab: LabTopology, args: string[], input?: string): Promise<string> {
  const r = await lab.tapvs(args, input);
  if (r.code !== 0) throw new Error(`tapvs ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export function servers(results: Served[]): string[] {
  return results.map((r) => r.server ?? `error:${r.error}`);
}
