#!/bin/sh
# tapvs as a sidecar: plumb a TAP into the network namespace tapvs shares with the application
# (docker compose `network_mode: service:app`), then exec tapvsd on it. The application connects to
# a VIP; tapvsd balances (LVS-NAT) to the application's peers on the uplink network.
#
#   app --> VIP 198.18.30.100 (on tapvs0) --> tapvsd: DNAT to a peer --> kernel --> masquerade --> uplink
#   app <-- SNAT VIP <-- tapvsd <-- tapvs0 <-- policy route <-- de-masquerade <-- peer's reply on uplink
#
# Until tapvs has FULLNAT, the kernel of the namespace does the source NAT (nftables masquerade) so the
# peers need no route back, and a policy rule hands their replies to tapvsd instead of delivering them
# straight to the application. Needs CAP_NET_ADMIN, /dev/net/tun, iproute2 and nft, and these sysctls
# in the namespace (compose: `sysctls:` of the service that owns it): net.ipv4.ip_forward=1,
# net.ipv4.conf.all.rp_filter=0, net.ipv4.conf.default.rp_filter=0, net.ipv4.conf.default.accept_local=1.
# Safe to run again (a restarted sidecar finds the namespace as it left it). Arguments go to tapvsd.
set -eu

TAP=${TAPVS_TAP:-tapvs0}
LINK_NET=${TAPVS_LINK_NET:-198.18.30}          # the /24 between the kernel and tapvsd on the TAP
HOST_ADDR=${LINK_NET}.2                        # the namespace's own address on the TAP (the app's source)
DIRECTOR_ADDR=${LINK_NET}.1                    # tapvsd's address (its DIP); VIPs are other ${LINK_NET}.x
UPLINK=${TAPVS_UPLINK:-$(ip -o route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')}
TABLE=${TAPVS_ROUTE_TABLE:-100}
TAPVSD=${TAPVSD:-node /opt/tapvs/dist/src/cli/tapvsd.js}

[ -n "$UPLINK" ] || { echo "sidecar-net: no uplink interface (set TAPVS_UPLINK)" >&2; exit 1; }

# The TAP, persistent, so that tapvsd attaches to it and a restart keeps the namespace's routes.
ip link show "$TAP" >/dev/null 2>&1 || ip tuntap add dev "$TAP" mode tap
ip addr replace "$HOST_ADDR/24" dev "$TAP"
ip link set "$TAP" up

# Source NAT towards the peers (what FULLNAT will do inside tapvsd).
nft delete table ip tapvs_sidecar 2>/dev/null || true
nft -f - <<NFT
table ip tapvs_sidecar {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${LINK_NET}.0/24 oifname "${UPLINK}" masquerade
  }
}
NFT

# Replies from the peers, once de-masqueraded, are addressed to ${HOST_ADDR}, a local address: route
# them to tapvsd (which rewrites them back to VIP:port) before the local table would deliver them.
ip route replace default via "$DIRECTOR_ADDR" dev "$TAP" table "$TABLE"
if ! ip rule show pref 100 | grep -q 'lookup local'; then ip rule add pref 100 lookup local; fi
if ip rule show pref 0 | grep -q 'lookup local'; then ip rule del pref 0 lookup local; fi
if ! ip rule show pref 10 | grep -q "lookup $TABLE"; then ip rule add pref 10 iif "$UPLINK" to "$HOST_ADDR" lookup "$TABLE"; fi

# shellcheck disable=SC2086 # TAPVSD is a command line
exec $TAPVSD --tap "$TAP" --address "$DIRECTOR_ADDR/24" --gateway "$HOST_ADDR" "$@"
