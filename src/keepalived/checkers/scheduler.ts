/**
 * When checks run and what their results mean, as keepalived's checkers do (check_api.c, check_tcp.c
 * tcp_epilog and its siblings):
 *
 *  - first check at BOOTSTRAP_DELAY (1 s) + random(0..warmup) (warmup defaults to delay_loop);
 *  - a non-alpha checker starts UP with its retry counter pre-loaded, so a failure before any success
 *    marks it down at once; an alpha checker starts DOWN;
 *  - up + success: next check after delay_loop (retry counter reset);
 *  - up + failure with retries left: retry after delay_before_retry (counter + 1);
 *  - up + failure with no retry left: DOWN (so down after retry + 1 consecutive failures), next check
 *    after delay_loop;
 *  - down + success: UP at once (one success); down + failure: next check after delay_loop.
 *
 * `step` is the pure state machine; `CheckerRunner` drives it with a Clock (injectable for tests), runs
 * one check at a time, and stops everything (timer and in-flight check) on stop().
 */
import type { CheckerTiming } from '../config.js';
import { KEEPALIVED_DEFAULTS } from '../config.js';
import type { CheckOutcome } from './types.js';

export interface CheckerState {
  up: boolean;
  /** Retries done since the last success (keepalived retry_it). */
  retryIt: number;
  hasRun: boolean;
}

export type Transition = 'up' | 'down' | null;

export function initialState(t: Pick<CheckerTiming, 'alpha' | 'retry'>): CheckerState {
  return t.alpha ? { up: false, retryIt: 0, hasRun: false } : { up: true, retryIt: t.retry, hasRun: false };
}

/** One result: the next state, the transition (if any) and the delay (seconds) until the next check. */
export function step(s: CheckerState, success: boolean, t: Pick<CheckerTiming, 'retry' | 'delayLoop' | 'delayBeforeRetry'>): { state: CheckerState; transition: Transition; delay: number } {
  if (success) return { state: { up: true, retryIt: 0, hasRun: true }, transition: s.up ? null : 'up', delay: t.delayLoop };
  if (!s.up) return { state: { up: false, retryIt: 0, hasRun: true }, transition: null, delay: t.delayLoop };
  if (s.retryIt < t.retry) return { state: { up: true, retryIt: s.retryIt + 1, hasRun: true }, transition: null, delay: t.delayBeforeRetry };
  return { state: { up: false, retryIt: 0, hasRun: true }, transition: 'down', delay: t.delayLoop };
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  random: () => Math.random(),
};

export interface CheckResult extends CheckOutcome {
  /** Clock time (ms) the check finished. */
  at: number;
}

export class CheckerRunner {
  state: CheckerState;
  last: CheckResult | null = null;
  /** Clock time (ms) of the next check (null while one runs or when stopped). */
  nextAt: number | null = null;
  private timer: unknown = null;
  private inflight: AbortController | null = null;
  private stopped = true;

  constructor(
    readonly timing: CheckerTiming,
    private readonly check: (signal: AbortSignal) => Promise<CheckOutcome>,
    private readonly clock: Clock,
    /** Called after every result, with the transition it caused (null = none). */
    private readonly onResult: (runner: CheckerRunner, result: CheckResult, transition: Transition) => void,
    initial?: CheckerState,
  ) {
    this.state = initial ?? initialState(timing);
  }

  get running(): boolean {
    return !this.stopped;
  }

  /** Schedule the first check at 1 s + random(0..warmup). */
  start(firstDelay = KEEPALIVED_DEFAULTS.bootstrapDelay + this.clock.random() * this.timing.warmup): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(firstDelay);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.nextAt = null;
    this.inflight?.abort();
    this.inflight = null;
  }

  private schedule(seconds: number): void {
    if (this.stopped) return;
    const ms = Math.max(0, seconds * 1000);
    this.nextAt = this.clock.now() + ms;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.nextAt = null;
      void this.run();
    }, ms);
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    const ac = new AbortController();
    this.inflight = ac;
    let outcome: CheckOutcome;
    try {
      outcome = await this.check(ac.signal);
    } catch (e) {
      outcome = { ok: false, reason: `checker error: ${(e as Error).message}` };
    }
    if (this.stopped || ac.signal.aborted) return;
    this.inflight = null;
    const r = step(this.state, outcome.ok, this.timing);
    this.state = r.state;
    this.last = { ...outcome, at: this.clock.now() };
    this.schedule(r.delay);
    this.onResult(this, this.last, r.transition);
  }
}
