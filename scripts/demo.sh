#!/usr/bin/env bash
# The project's demo: what a newcomer runs first (as root, on a fresh Debian machine).
#
#   bash scripts/demo.sh [nat|dr|tun|fullnat|pcap]      (default: nat)
#
# Installs what it needs (apt: iproute2 ethtool curl python3; cargo build --release
# --bins), then builds network namespaces (scripts/topology.sh, the same topology the
# end-to-end tests use): a client, the tap director `lvs-director` (userspace IPVS on a
# TAP device, smoltcp stack) with a wrr service on VIP 10.0.0.100:80 and [fd00::100]:80,
# and three real servers running a real HTTP server (Python's http.server). It sends
# requests through the VIP and shows which real server answered each, the director's
# tables and counters through `lvsadm` (ipvsadm's flags and layouts), a weight change
# taking effect, and removes everything on exit, whatever happens. Exit status is the
# verdict: non-zero if a request fails or the balance is not what wrr 3:2:1 gives.
#
# `pcap` runs the offline demo instead (scripts/demo-pcap.sh: every forwarding method on
# frames written to a pcap file and decoded by tcpdump, no namespaces).
# DEMO_KEEP=1 keeps the namespaces until you press Enter, to try lvsadm and curl yourself.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

mode=${1:-nat}
case $mode in
    pcap) exec bash scripts/demo-pcap.sh ;;
    nat | dr | tun | fullnat) ;;
    *)
        echo "usage: bash scripts/demo.sh [nat|dr|tun|fullnat|pcap]" >&2
        exit 2
        ;;
esac

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "error: the demo builds network namespaces, veths and a TAP device: run it as root" >&2
    echo "       (or 'bash scripts/demo.sh pcap' for the offline demo)" >&2
    exit 1
fi

need=()
for pair in ip:iproute2 ethtool:ethtool curl:curl python3:python3; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
    step "installing ${need[*]} (apt-get)"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install the Rust toolchain (rustup, Rust 1.91 or newer) first" >&2
    exit 1
fi

step "building lvs-director, lvsadm, lvs-realserver (cargo build --release --bins)"
cargo build --release --bins -p lvs-director
bin=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
export LVS_BIN=$bin

tag=demo$$
state=$(mktemp -d /tmp/lvs-demo.XXXXXX)
trap 'bash scripts/topology.sh down "$tag"; rm -rf "$state"' EXIT
export LVS_CONTROL=$state/ctl.sock
lvsadm() { "$bin/lvsadm" "$@"; }
client() { ip netns exec "lvs-$tag-c" "$@"; }

case $mode in
    nat) flag=-m ;; dr) flag=-g ;; tun) flag=-i ;; fullnat) flag=-b ;;
esac
case $mode in
    nat) what="NAT (-m): the director rewrites the VIP to the real server and back" ;;
    dr) what="DR (-g): the director rewrites only the MAC; replies go straight to the client" ;;
    tun) what="TUN (-i): the director wraps packets in IP-in-IP; lvs-realserver unwraps them; replies go straight to the client" ;;
    fullnat) what="FULLNAT (-b): the director rewrites both ends; real servers see its local address 10.0.1.200 / fd00:1::200" ;;
esac

step "namespaces: client, director (lvs-director on tap lvs0), three real servers; $what"
STATE_DIR=$state SCHED=wrr WEIGHTS=3,2,1 bash scripts/topology.sh up "$tag" "$mode" >/dev/null
cat <<EOF
  lvs-$tag-c   client       10.0.0.2  fd00::2          (curl)
  lvs-$tag-d   director     $(cat "$state/director.cmd")
  lvs-$tag-r1  real server  10.0.1.11 fd00:1::11       (python3 http.server, weight 3)
  lvs-$tag-r2  real server  10.0.1.12 fd00:1::12       (weight 2)
  lvs-$tag-r3  real server  10.0.1.13 fd00:1::13       (weight 1)
EOF

step "lvsadm -L -n   (the rules the director loaded: $state/rules)"
lvsadm -L -n

# requests FAMILY URL_HOST N: N requests through the VIP; prints each answer, counts
# them per real server in $count1..3.
requests() {
    local host=$1 n=$2 i line
    count=(0 0 0 0)
    for ((i = 1; i <= n; i++)); do
        line=$(client curl -sS -g --max-time 10 "http://$host/peer")
        printf '  GET http://%s/peer  ->  %s\n' "$host" "$line"
        case $line in rs[123]\ *) ((count[${line:2:1}] += 1)) ;; *)
            echo "error: unexpected answer" >&2
            exit 1
            ;;
        esac
    done
    echo "  answered: rs1 ${count[1]}, rs2 ${count[2]}, rs3 ${count[3]}"
}
expect() { # the counts wanted for rs1..rs3
    if [[ "${count[1]} ${count[2]} ${count[3]}" != "$*" ]]; then
        echo "error: expected rs1..rs3 to answer $*" >&2
        exit 1
    fi
}

step "12 requests to http://10.0.0.100/ through the director (wrr, weights 3:2:1); each real server names itself and the peer address it saw"
requests 10.0.0.100 12
expect 6 4 2
step "6 requests to http://[fd00::100]/ (IPv6)"
requests "[fd00::100]" 6
expect 3 2 1

step "lvsadm -L -n --stats"
lvsadm -L -n --stats
case $mode in
    dr | tun) echo "  (OutPkts 0: the replies went from the real servers straight to the client)" ;;
    *) echo "  (OutPkts: the replies came back through the director)" ;;
esac

step "lvsadm -e -t 10.0.0.100:80 -r 10.0.1.11:80 $flag -w 0   (weight 0: rs1 drains), then 6 requests"
lvsadm -e -t 10.0.0.100:80 -r 10.0.1.11:80 "$flag" -w 0
requests 10.0.0.100 6
expect 0 4 2

step "lvsadm -L -n -c   (the connection table)"
lvsadm -L -n -c

step "what you saw"
echo "Real Linux TCP clients reached three real HTTP servers through lvs-director, the userspace"
echo "IPVS director on a TAP device, in $mode mode, balanced by wrr 3:2:1 in IPv4 and IPv6."
echo "The other modes:   bash scripts/demo.sh dr | tun | fullnat"
echo "The offline demo:  bash scripts/demo.sh pcap"
echo "The tests:         bash scripts/check.sh   (the e2e suite: cargo test -p lvs-tests --test e2e)"
if [[ ${DEMO_KEEP:-} == 1 ]]; then
    echo
    echo "Kept running. Try, in another shell:"
    echo "  ip netns exec lvs-$tag-c curl http://10.0.0.100/"
    echo "  LVS_CONTROL=$LVS_CONTROL $bin/lvsadm -L -n --stats"
    read -r -p "Press Enter to remove the namespaces. " _
fi
