/**
 * Loading tapvs's native addon (native/tap_device.cc and flow_steering.cc, built by npm ci into
 * build/Release): the TAP device class, the huge-page buffer allocator, and BPF flow steering.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface NativeAddon {
  TapDevice: new (name: string, opts?: { vnetHdr?: boolean; multiQueue?: boolean; tun?: boolean }) => unknown;
  hugePageBuffer(bytes: number): ArrayBuffer | null;
  /** Flow steering for multiqueue TAPs (native/flow_steering.cc). */
  createSteeringMap(maxEntries: number): number;
  /** value: 0 removes the address, 1 a service address (VIP, real server), 2 a FULLNAT local address. */
  steeringMapSet(mapFd: number, address: number, value: number | boolean): void;
  loadSteeringProgram(mapFd: number, addressOnly?: boolean): number;
  closeFd(fd: number): void;
}

let cached: NativeAddon | null | undefined;

/** The addon, or null when it is not built (unit tests of pure modules can run without it). */
export function nativeAddon(): NativeAddon | null {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  // src/dataplane/*.ts and dist/src/dataplane/*.js sit two or three levels below the package root.
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const c of [path.resolve(here, '../../build/Release/tapvs_tap.node'), path.resolve(here, '../../../build/Release/tapvs_tap.node')]) {
    try {
      cached = require(c) as NativeAddon;
      return cached;
    } catch {
      /* try the next location */
    }
  }
  cached = null;
  return cached;
}

/** The addon or an error saying how to build it. */
export function requireNativeAddon(): NativeAddon {
  const a = nativeAddon();
  if (!a) throw new Error('tapvs native addon not found (build/Release/tapvs_tap.node): run npm ci or npm run build');
  return a;
}

/**
 * Memory for a large table: huge-page backed when the addon is there and the table is big enough to
 * benefit (fewer TLB misses on random access), an ordinary ArrayBuffer otherwise.
 */
export function tableBuffer(bytes: number): ArrayBuffer {
  if (bytes >= 1 << 21) {
    const b = nativeAddon()?.hugePageBuffer(bytes);
    if (b) return b;
  }
  return new ArrayBuffer(bytes);
}
