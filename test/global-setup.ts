/**
 * Runs once around the whole suite: builds nothing (npm test's pretest compiled dist/), and after the
 * run checks that no namespace created by the end-to-end tests is left behind — deleting leftovers of
 * a crashed test and failing loudly, so a leak never goes unnoticed.
 */
import { execFileSync } from 'node:child_process';

export const E2E_PREFIX = 'tvt';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * End-to-end namespaces are named tvt-<pid of the test worker>-<random>-<role>. Leftovers are those
 * whose worker is gone; a namespace of a live run (another vitest on this machine) is never touched.
 */
function leftovers(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => {
        const m = new RegExp(`^${E2E_PREFIX}-(\\d+)-`).exec(n);
        return m !== null && !alive(Number(m[1]));
      });
  } catch {
    return [];
  }
}

export function setup(): void {
  for (const n of leftovers()) execFileSync('ip', ['netns', 'del', n]);
}

export function teardown(): void {
  const left = leftovers();
  for (const n of left) execFileSync('ip', ['netns', 'del', n]);
  if (left.length > 0) throw new Error(`end-to-end tests left network namespaces behind: ${left.join(' ')}`);
}
