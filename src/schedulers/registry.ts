/**
 * Scheduler registry (kernel register_ip_vs_scheduler / ip_vs_scheduler_get): `-s NAME` resolves
 * here. One file per scheduler; each is registered below under its kernel name.
 */
import type { Scheduler, SchedulerFactory } from './scheduler.js';
import { RrScheduler } from './rr.js';
import { WrrScheduler } from './wrr.js';
import { LcScheduler } from './lc.js';
import { WlcScheduler } from './wlc.js';

const factories = new Map<string, SchedulerFactory>();

/** Register (or replace) the factory for a scheduler name. */
export function registerScheduler(name: string, factory: SchedulerFactory): void {
  factories.set(name, factory);
}

/** A fresh scheduler instance for one service, or undefined for an unknown name. */
export function createScheduler(name: string): Scheduler | undefined {
  const factory = factories.get(name);
  return factory === undefined ? undefined : factory();
}

/** Registered names, in registration order. */
export function schedulerNames(): string[] {
  return [...factories.keys()];
}

registerScheduler('rr', () => new RrScheduler());
registerScheduler('wrr', () => new WrrScheduler());
registerScheduler('lc', () => new LcScheduler());
registerScheduler('wlc', () => new WlcScheduler());
