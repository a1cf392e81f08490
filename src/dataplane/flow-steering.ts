/**
 * Steering a multiqueue TAP's frames by the connection's client end (TUNSETSTEERINGEBPF with the BPF
 * program of native/flow_steering.cc), so that both directions of a NAT connection reach the same queue:
 * the kernel's own steering (a symmetric flow hash plus what it learns from our writes) brings only about
 * three replies in four back to the queue that wrote the request (`npm run bench:mq-steering`).
 *
 * The program needs to know which addresses are the service side (VIPs, real servers, local addresses):
 * setServiceAddresses() keeps its BPF map equal to a given set. With `addressOnly` a client's port is
 * left out of the hash (a local address's port never is). IPv6 addresses are folded to 32 bits (the
 * xor of their words, IPVS's fold), so a client whose fold equals a service address's would be taken for
 * the service side - only its own connections would then be steered by the other end. An ICMP or ICMPv6
 * error is steered by the packet it quotes (its ends swapped: that packet was one of ours), so it reaches
 * the queue that holds the connection. Other frames that are not TCP/UDP go to queue 0. FULLNAT replies are addressed to a local address, so their client end is not in
 * the frame: the local address and port stand for it, and each queue allocates only local ports that
 * steer to itself (steeringQueue, used by src/modes/fullnat.ts).
 */
import { requireNativeAddon } from './native-addon.js';
import type { Tap } from './tap.js';

/** The kinds of service-side addresses in the program's map. */
export const STEER_SERVICE_ADDRESS = 1;
export const STEER_LOCAL_ADDRESS = 2;

export class FlowSteering {
  private readonly mapFd: number;
  private readonly progFd: number;
  /** Key -> kind, as the map holds it. */
  private addresses = new Map<number, number>();

  /**
   * `addressOnly`: a client's end is hashed by its address alone, so that all of a client's connections
   * reach one queue (tapvsd --steer-by address, what persistence needs); else by address and port.
   */
  constructor(maxAddresses = 4096, readonly addressOnly = false) {
    const a = requireNativeAddon();
    this.mapFd = a.createSteeringMap(maxAddresses);
    try {
      this.progFd = a.loadSteeringProgram(this.mapFd, addressOnly);
    } catch (e) {
      a.closeFd(this.mapFd);
      throw e;
    }
  }

  /**
   * Make the program's service-side addresses exactly these: VIPs and real servers, then FULLNAT local
   * addresses, each IPv4 (host order) or IPv6 (16 bytes). An address that is both counts as local.
   */
  setServiceAddresses(addresses: Iterable<number>, addresses6: Iterable<Uint8Array> = [], locals: Iterable<number> = [], locals6: Iterable<Uint8Array> = []): void {
    const a = requireNativeAddon();
    const next = new Map<number, number>();
    for (const x of addresses) next.set(x >>> 0, STEER_SERVICE_ADDRESS);
    for (const b of addresses6) next.set(fold6(b), STEER_SERVICE_ADDRESS);
    for (const x of locals) next.set(x >>> 0, STEER_LOCAL_ADDRESS);
    for (const b of locals6) next.set(fold6(b), STEER_LOCAL_ADDRESS);
    for (const [x, kind] of next) if (this.addresses.get(x) !== kind) a.steeringMapSet(this.mapFd, x, kind);
    for (const x of this.addresses.keys()) if (!next.has(x)) a.steeringMapSet(this.mapFd, x, 0);
    this.addresses = next;
  }

  /** Attach to a multiqueue TAP (any of its queues: the program is the device's). */
  attach(tap: Tap): void {
    tap.device.setSteering(this.progFd);
  }

  close(): void {
    const a = requireNativeAddon();
    a.closeFd(this.progFd);
    a.closeFd(this.mapFd);
  }
}

/**
 * The queue the program picks for a frame whose client end is `key`:`port` (key: an IPv4 address, or an
 * IPv6 address's fold), as tun.c takes it: the program's 16-bit result modulo the number of queues.
 */
export function steeringQueue(key: number, port: number, queues: number): number {
  return (Math.imul(key ^ port, 0x9e3779b1) >>> 16) % queues;
}

/** The program's key for an IPv6 address: the xor of its four words (host order). */
export function fold6(b: Uint8Array): number {
  let f = 0;
  for (let w = 0; w < 4; w++) f ^= (b[4 * w] << 24) | (b[4 * w + 1] << 16) | (b[4 * w + 2] << 8) | b[4 * w + 3];
  return f >>> 0;
}
