/**
 * The optional `cap` package (libpcap bindings), loaded lazily: it is an optionalDependency that `npm ci`
 * skips on a machine without libpcap-dev, and the packet walk then falls back to tcpdump.
 */
import { createRequire } from 'node:module';

/** The parts of `cap` used by the lab (it ships no type declarations). */
export interface CapInstance {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
  close(): void;
  on(event: 'packet', fn: (nbytes: number, truncated: boolean) => void): void;
}
export interface CapModule {
  Cap: new () => CapInstance;
}

/** Load `cap`; null with the reason when it is not installed or its addon does not load. */
export function loadCap(): { cap: CapModule | null; error?: string } {
  try {
    return { cap: createRequire(import.meta.url)('cap') as CapModule };
  } catch (e) {
    return { cap: null, error: (e as Error).message.split('\n')[0] };
  }
}
