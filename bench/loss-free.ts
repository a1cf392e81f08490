/**
 * The highest offered small-UDP rate with loss <= a threshold, by bisection over offered rates (as the
 * "UDP 64 B no-loss" test of perf.md, with fewer and shorter steps).
 */
import { type UdpResult } from './iperf.js';

export interface LossFreeResult {
  /** Received packets/s of the best run within the loss limit (0 when no step was within it). */
  pps: number;
  /** No loss even at the maximum offered rate: the figure is the generator's limit, not the path's. */
  generatorLimited: boolean;
  steps: { offeredPps: number; receivedPps: number; lostPercent: number }[];
}

/**
 * `max` is the run at the maximum offered rate (`-b 0`). When it stayed within `maxLossPercent` no
 * bisection is needed. Otherwise bisect the offered rate over (0, max's received rate] in `steps` runs
 * of `measure(pps)`.
 */
export async function lossFreeRate(
  max: UdpResult,
  measure: (pps: number) => Promise<UdpResult>,
  steps: number,
  maxLossPercent: number,
): Promise<LossFreeResult> {
  if (max.lostPercent <= maxLossPercent) return { pps: max.receivedPps, generatorLimited: true, steps: [] };
  let lo = 0;
  let hi = max.receivedPps;
  let best = 0;
  const trace: LossFreeResult['steps'] = [];
  for (let i = 0; i < steps; i++) {
    const offered = (lo + hi) / 2;
    const r = await measure(offered);
    trace.push({ offeredPps: offered, receivedPps: r.receivedPps, lostPercent: r.lostPercent });
    if (r.lostPercent <= maxLossPercent) {
      lo = offered;
      best = Math.max(best, r.receivedPps);
    } else {
      hi = offered;
    }
  }
  return { pps: best, generatorLimited: false, steps: trace };
}
