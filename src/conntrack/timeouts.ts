/**
 * Per-protocol connection timeouts (kernel pd->timeout_table), adjustable with `ipvsadm --set`
 * (kernel ip_vs_set_timeout / __ip_vs_get_timeouts). Values in seconds.
 */
import { TCP_DEFAULT_TIMEOUTS, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, UDP_DEFAULT_TIMEOUT } from './tcp-state.js';

/** Kernel limit INT_MAX / HZ, with HZ = 1000 (the limit depends on the kernel's HZ). */
export const TIMEOUT_MAX_SECONDS = Math.floor(0x7fffffff / 1000);

export interface TimeoutSettings {
  /** ESTABLISHED timeout. */
  tcp: number;
  /** FIN_WAIT timeout. */
  tcpfin: number;
  /** UDP timeout. */
  udp: number;
}

export class ProtocolTimeouts {
  /** Seconds per TCP state, indexed by TCP_S_*. Connections read it when a packet moves them. */
  readonly tcp: Uint32Array = Uint32Array.from(TCP_DEFAULT_TIMEOUTS);
  /** Seconds for the single UDP state. */
  udp = UDP_DEFAULT_TIMEOUT;

  /**
   * `ipvsadm --set tcp tcpfin udp`: 0 leaves that value unchanged. All three are validated first
   * (integer in 0..TIMEOUT_MAX_SECONDS); on a bad value nothing changes and false is returned (the
   * kernel's EINVAL).
   */
  set(tcp: number, tcpfin: number, udp: number): boolean {
    if (!validTimeout(tcp) || !validTimeout(tcpfin) || !validTimeout(udp)) return false;
    if (tcp !== 0) this.tcp[TCP_S_ESTABLISHED] = tcp;
    if (tcpfin !== 0) this.tcp[TCP_S_FIN_WAIT] = tcpfin;
    if (udp !== 0) this.udp = udp;
    return true;
  }

  /** The three values `ipvsadm -L --timeout` shows. */
  get(): TimeoutSettings {
    return { tcp: this.tcp[TCP_S_ESTABLISHED], tcpfin: this.tcp[TCP_S_FIN_WAIT], udp: this.udp };
  }

  /** Back to the kernel defaults. */
  reset(): void {
    this.tcp.set(TCP_DEFAULT_TIMEOUTS);
    this.udp = UDP_DEFAULT_TIMEOUT;
  }
}

function validTimeout(seconds: number): boolean {
  return Number.isInteger(seconds) && seconds >= 0 && seconds <= TIMEOUT_MAX_SECONDS;
}
