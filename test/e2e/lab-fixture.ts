/**
 * Shared setup for end-to-end tests: one lab (client, director running tapvsd, real servers) per test
 * file, torn down in afterAll even when a test fails. Skips the file with a clear message when the
 * machine cannot build namespaces (not root, no /dev/net/tun, not built).
 */
import { afterAll, beforeAll } from 'vitest';
import type { Background } from '../../src/lab/processes.js';
import { labUnavailableReason, LabTopology } from '../../src/lab/topology.js';

export const SKIP_REASON = labUnavailableReason();
if (SKIP_REASON) console.warn(`end-to-end tests skipped: ${SKIP_REASON}`);

export interface Served {
  server?: string;
  peer?: string;
  peerPort?: number;
  from?: string;
  error?: string;
  /** With the client's --again: the second request on the same connection. */
  second?: Served;
}

/** A lab id for this test run: tvt-<pid>-<random> (global-setup removes the namespaces of dead runs). */
export function testLabId(): string {
  return `tvt-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * One lab for the enclosing describe: built in beforeAll, torn down in afterAll (also when building it
 * fails half way). `startRealServers` replaces the default (the lab's real server on every RS) for tests
 * that prepare the real servers themselves. Hooks registered before this call run before the lab is built.
 */
export function useLab(
  opts: {
    realServers?: number;
    directorArgs?: string[];
    /** The director's addresses instead of the lab's (LabTopology.startDirector). */
    directorAddresses?: string[];
    ipv6?: boolean;
    startRealServers?: (lab: LabTopology) => Promise<void>;
  } = {},
): { lab: () => LabTopology; daemon: () => Background } {
  let lab: LabTopology | null = null;
  let daemon: Background | null = null;
  beforeAll(async () => {
    if (SKIP_REASON) return;
    lab = new LabTopology({ id: testLabId(), realServers: opts.realServers ?? 2, ipv6: opts.ipv6 });
    try {
      await lab.up();
      if (opts.startRealServers) await opts.startRealServers(lab);
      else for (let i = 0; i < (opts.realServers ?? 2); i++) await lab.startRealServer(i);
      daemon = await lab.startDirector(opts.directorArgs ?? [], opts.directorAddresses);
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
    daemon: () => {
      if (!daemon) throw new Error('tapvsd not started');
      return daemon;
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
