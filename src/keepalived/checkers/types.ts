/**
 * The interface every checker type implements: run one check, resolve with the outcome. A check never
 * throws and never outlives its signal (aborted on shutdown, reload of that checker, or timeout).
 */
import type { Checker } from '../config.js';

export interface CheckOutcome {
  ok: boolean;
  /** Why: "connected", "HTTP status 500 not in 200-299", "timeout after 3 s", ... */
  reason: string;
  /** MISC_CHECK misc_dynamic only: the real server weight the script asked for (exit status - 2). */
  weight?: number;
}

export type CheckFn<C extends Checker = Checker> = (checker: C, signal: AbortSignal) => Promise<CheckOutcome>;

export const ok = (reason: string, weight?: number): CheckOutcome => (weight === undefined ? { ok: true, reason } : { ok: true, reason, weight });
export const fail = (reason: string): CheckOutcome => ({ ok: false, reason });

/** "3 s", "0.5 s". */
export function seconds(s: number): string {
  return `${Number(s.toFixed(3))} s`;
}

/** The message of an error (errno code first when it has one). */
export function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && err.code) return `${err.code}${err.message && !err.message.includes(err.code) ? ` (${err.message})` : ''}`;
  return err instanceof Error ? err.message : String(e);
}

/**
 * Settle a socket check exactly once: on the first outcome, on timeout (`onTimeout()`), or on abort. Clears
 * the timer, detaches the abort handler, closes the socket, then resolves. Returns `finish`.
 */
export function settleOnce(
  sock: { close(): unknown },
  timeoutMs: number,
  onTimeout: () => CheckOutcome,
  signal: AbortSignal,
  resolve: (o: CheckOutcome) => void,
): (o: CheckOutcome) => void {
  let done = false;
  const finish = (o: CheckOutcome): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    try {
      sock.close();
    } catch {
      // already closed
    }
    resolve(o);
  };
  const timer = setTimeout(() => finish(onTimeout()), timeoutMs);
  const onAbort = (): void => finish(fail('aborted'));
  signal.addEventListener('abort', onAbort);
  return finish;
}
