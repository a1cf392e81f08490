/**
 * IPVS behaviour switches that the kernel exposes as sysctls (/proc/sys/net/ipv4/vs/*), set on tapvsd's
 * command line with `--sysctl NAME=VALUE`. Defaults are the kernel's.
 */
export const SYSCTL_NAMES = ['expire_nodest_conn', 'expire_quiescent_template', 'conn_reuse_mode'] as const;
export type SysctlName = (typeof SYSCTL_NAMES)[number];

export class IpvsSysctls {
  /** 1: a packet of a connection whose real server was deleted expires it and is scheduled anew; 0: dropped. */
  expireNodestConn = 0;
  /** 1: a persistence template pointing to a quiesced (weight 0) real server no longer holds its clients. */
  expireQuiescentTemplate = 0;
  /** 1 (default): a SYN that hits an old TIME_WAIT/CLOSE connection is scheduled anew; 0: reuses it. */
  connReuseMode = 1;

  /** Set from "name=value"; returns an error text or null. */
  set(assignment: string): string | null {
    const m = /^([a-z_]+)=(\d+)$/.exec(assignment);
    if (!m) return `expected NAME=VALUE, got '${assignment}'`;
    const [, name, text] = m;
    const v = Number(text);
    switch (name) {
      case 'expire_nodest_conn':
      case 'expire_quiescent_template':
        if (v > 1) return `${name} must be 0 or 1`;
        if (name === 'expire_nodest_conn') this.expireNodestConn = v;
        else this.expireQuiescentTemplate = v;
        return null;
      case 'conn_reuse_mode':
        if (v > 3) return 'conn_reuse_mode must be 0..3';
        this.connReuseMode = v;
        return null;
      default:
        return `unknown sysctl '${name}' (known: ${SYSCTL_NAMES.join(', ')})`;
    }
  }

  /** The settings as `set` takes them (to hand them to another thread). */
  assignments(): string[] {
    return [
      `expire_nodest_conn=${this.expireNodestConn}`,
      `expire_quiescent_template=${this.expireQuiescentTemplate}`,
      `conn_reuse_mode=${this.connReuseMode}`,
    ];
  }
}
