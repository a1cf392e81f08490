/**
 * The lab's addresses for one IP family, as the seed articles name them (CIP, VIP, DIP, RIP, LIP). An IPv4
 * lab uses the IPv4 set; a lab built with `ipv6: true` (`npm run lab -- --ipv6`) runs its service, its
 * requests and its packet walk on the IPv6 set. The namespaces carry IPv4 in both cases.
 */
import {
  LAB_CLIENT,
  LAB_CLIENT6,
  LAB_CLIENT_SUBNET,
  LAB_CLIENT_SUBNET6,
  LAB_DIP,
  LAB_DIP6,
  LAB_DIRECTOR_FRONT,
  LAB_DIRECTOR_FRONT6,
  LAB_VIP,
  LAB_VIP6,
  labRealServer,
  labRealServer6,
  type LabTopology,
} from './topology.js';

/** FULLNAT's local address (LIP), on the real servers' subnet. */
export const LAB_LIP = '198.18.2.200';
export const LAB_LIP6 = 'fd00:2::200';

export interface LabAddresses {
  ipv6: boolean;
  /** The service address. */
  vip: string;
  /** The client (CIP). */
  client: string;
  clientSubnet: string;
  /** The director's address on the client side. */
  directorFront: string;
  /** The director's address on the real servers' side, their gateway. */
  dip: string;
  /** FULLNAT's local address. */
  lip: string;
  /** Prefix length of the lab's two subnets. */
  prefixLength: number;
  /** Real server i (0-based). */
  realServer(i: number): string;
}

export const LAB_ADDRESSES4: LabAddresses = {
  ipv6: false,
  vip: LAB_VIP,
  client: LAB_CLIENT,
  clientSubnet: LAB_CLIENT_SUBNET,
  directorFront: LAB_DIRECTOR_FRONT,
  dip: LAB_DIP,
  lip: LAB_LIP,
  prefixLength: 24,
  realServer: labRealServer,
};

export const LAB_ADDRESSES6: LabAddresses = {
  ipv6: true,
  vip: LAB_VIP6,
  client: LAB_CLIENT6,
  clientSubnet: LAB_CLIENT_SUBNET6,
  directorFront: LAB_DIRECTOR_FRONT6,
  dip: LAB_DIP6,
  lip: LAB_LIP6,
  prefixLength: 64,
  realServer: labRealServer6,
};

/** The addresses a lab runs its service on: IPv6 when it was built with `ipv6: true`. */
export function labAddresses(lab: LabTopology): LabAddresses {
  return lab.ipv6 ? LAB_ADDRESSES6 : LAB_ADDRESSES4;
}

/** An endpoint as tapvs and ipvsadm write it: 198.18.1.100:80, or [fd00:1::100]:80 for IPv6. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
