/**
 * The kernel balancers' side of the lab: the director namespace's own kernel stack (198.18.2.254 on
 * br0, beside tapvsd's TAP) gets two more VIPs, one for nftables DNAT and one for HAProxy, and the
 * real servers get a second backend address whose replies are routed back through that kernel.
 *
 *   tapvs NAT   client -> 198.18.1.100 (tapvsd)  -> rs 198.18.2.1x; replies from 2.1x via the DIP 198.18.2.1
 *   nft DNAT    client -> 198.18.1.101 (kernel)  -> rs 198.18.2.2x; replies from 2.2x via 198.18.2.254
 *                                                   (source-based routing, `ip rule from 198.18.2.2x table 101`)
 *   HAProxy     client -> 198.18.1.102 (kernel, haproxy) -> connects from 198.18.2.254 to rs 198.18.2.1x
 *                                                   (replies on-link to 198.18.2.254)
 *
 * The tapvs and nft paths do not meet: distinct VIPs, distinct backend addresses, distinct reply
 * gateways. Bridged frames do not enter the director kernel's netfilter (bridge-nf-call-iptables=0),
 * conntrack only sees the nft VIP's traffic (HAProxy's sockets are notracked, as in perf.md §2), and
 * the kernel sends no ICMP redirects (it forwards out of the interface it received on).
 */
import { must, run } from '../src/lab/processes.js';
import { LAB_BRIDGE, LAB_DIRECTOR_HOST, type LabTopology } from '../src/lab/topology.js';

export const NFT_VIP = '198.18.1.101';
export const HAPROXY_VIP = '198.18.1.102';
/** Real server i's backend address for the nft path. */
export const nftBackend = (i: number): string => `198.18.2.${21 + i}`;
const NFT_TABLE = '101';
const NFT_RULE_PRIORITY = '101';

const sysctl = (lab: LabTopology, ns: string, settings: string[]) => run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...settings]);

async function nftLoad(lab: LabTopology, ruleset: string): Promise<void> {
  const r = await run('ip', ['netns', 'exec', lab.dir, 'nft', '-f', '-'], { input: ruleset });
  if (r.code !== 0) throw new Error(`nft -f failed: ${r.stderr.trim()}\n${ruleset}`);
}

/**
 * nftables DNAT as users build it without ip_vs: `numgen inc mod N` over the real servers for `rrPorts`
 * (HTTP), the first real server for everything else sent to the VIP; conntrack does the reverse NAT.
 */
function nftRuleset(realServers: number, rrPorts: number[]): string {
  const map = Array.from({ length: realServers }, (_, i) => `${i} : ${nftBackend(i)}`).join(', ');
  return `
table ip tapvs_bench_nat {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${NFT_VIP} tcp dport { ${rrPorts.join(', ')} } counter dnat to numgen inc mod ${realServers} map { ${map} }
    ip daddr ${NFT_VIP} counter dnat to ${nftBackend(0)}
  }
}
table ip tapvs_bench_raw {
  chain prerouting {
    type filter hook prerouting priority raw; policy accept;
    ip daddr { ${HAPROXY_VIP}, ${LAB_DIRECTOR_HOST} } notrack
  }
  chain output {
    type filter hook output priority raw; policy accept;
    ip saddr { ${HAPROXY_VIP}, ${LAB_DIRECTOR_HOST} } notrack
  }
}
`;
}

/** Set up both kernel balancers' addresses, routing and the nft ruleset. */
export async function setupKernelDirector(lab: LabTopology, rrPorts: number[]): Promise<void> {
  await must('ip', ['-n', lab.dir, 'addr', 'add', `${NFT_VIP}/24`, 'dev', LAB_BRIDGE]);
  await must('ip', ['-n', lab.dir, 'addr', 'add', `${HAPROXY_VIP}/32`, 'dev', LAB_BRIDGE]);
  await sysctl(lab, lab.dir, ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', `net.ipv4.conf.${LAB_BRIDGE}.send_redirects=0`]);
  // Only exists with br_netfilter; per namespace. 0: bridged frames (tapvs, direct) skip netfilter.
  await sysctl(lab, lab.dir, ['net.bridge.bridge-nf-call-iptables=0']);
  for (let i = 0; i < lab.rs.length; i++) {
    const ns = lab.rs[i];
    const addr = nftBackend(i);
    await must('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    await must('ip', ['-n', ns, 'route', 'add', '198.18.2.0/24', 'dev', 'eth0', 'src', addr, 'table', NFT_TABLE]);
    await must('ip', ['-n', ns, 'route', 'add', 'default', 'via', LAB_DIRECTOR_HOST, 'dev', 'eth0', 'table', NFT_TABLE]);
    await must('ip', ['-n', ns, 'rule', 'add', 'from', addr, 'lookup', NFT_TABLE, 'priority', NFT_RULE_PRIORITY]);
    await sysctl(lab, ns, ['net.ipv4.conf.all.accept_redirects=0', 'net.ipv4.conf.eth0.accept_redirects=0']);
  }
  await nftLoad(lab, nftRuleset(lab.rs.length, rrPorts));
}

/** Connections the nft DNAT rules translated so far (the nat chain sees each connection's first packet). */
export async function nftDnatCount(lab: LabTopology): Promise<number> {
  const r = await run('ip', ['netns', 'exec', lab.dir, 'nft', 'list', 'table', 'ip', 'tapvs_bench_nat']);
  return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
}
