#!/usr/bin/env bash
# The network namespaces of the demo, the end-to-end tests and the end-to-end benchmark:
# one piece of code for all three (the Rust harness in tests/src/netns.rs calls it).
#
#   topology.sh up TAG MODE     build it; MODE is nat, dr, tun, fullnat (the tap
#                               director) or kernel (Linux itself: nftables DNAT, round
#                               robin, in place of the tap director; NAT only)
#   topology.sh down TAG        stop every process in TAG's namespaces, delete them
#   topology.sh director TAG    (re)start the tap director of an `up` topology
#
# One L2 segment (a bridge in the director's namespace), two subnets on it, a one-arm
# director. Every namespace is named lvs-TAG-*, so topologies with different TAGs (the
# tests put their PID in it) live side by side. Nothing is done outside them: the root
# namespace's network is never touched.
#
#   lvs-TAG-c  client   eth0 10.0.0.2/24 fd00::2/64, default via 10.0.0.1 / fd00::1
#   lvs-TAG-d  director br0 (no addresses) with the veths' other ends and the tap lvs0,
#                       which lvs-director opens; its addresses live in its own stack:
#                       10.0.0.1/24 10.0.1.1/24 fd00::1/64 fd00:1::1/64, MAC 02:00:00:00:00:01
#                       VIP 10.0.0.100 / fd00::100 port 80; FULLNAT laddr 10.0.1.200 / fd00:1::200
#   lvs-TAG-rN real servers N=1..3, eth0 10.0.1.1N/24 fd00:1::1N/64, HTTP on [::]:80
#                       (scripts/realserver-httpd.py); per mode:
#                       nat, fullnat: default via 10.0.1.1 / fd00:1::1
#                       dr:  VIPs on lo, arp_ignore=1 arp_announce=2, client subnet on-link
#                       tun: VIPs in lvs-realserver's TUN device, client subnet on-link
#
# Environment (all optional):
#   STATE_DIR   where logs, the rules file and the control socket go
#               (default /tmp/lvs-topology-TAG); `up` prints it as state=...
#   LVS_BIN     directory holding lvs-director, lvsadm, lvs-realserver (target/release)
#   SCHED       the virtual services' scheduler (rr)
#   WEIGHTS     the three real servers' weights, comma-separated (1,1,1)
#   SERVE_FILES files each real server also serves, as /BASENAME (space-separated;
#               symlinked, not copied: the tests compare downloads with the originals)
#   DIRECTOR_ARGS  more arguments for lvs-director
#   HTTPD_ARGS  more arguments for realserver-httpd.py (e.g. --log)
#   HTTPD       python (default: scripts/realserver-httpd.py) or nginx (the benchmark's:
#               one nginx worker per real server, the same files, header and /peer)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

VIP4=10.0.0.100
VIP6=fd00::100
CLIENT4=10.0.0.2
CLIENT6=fd00::2
DIR4=(10.0.0.1/24 10.0.1.1/24)
DIR6=(fd00::1/64 fd00:1::1/64)
DIR_MAC=02:00:00:00:00:01
CLIENT_MAC=02:00:00:00:00:02
LADDR4=10.0.1.200
LADDR6=fd00:1::200
RS_COUNT=3
rs4() { echo "10.0.1.1$1"; }
rs6() { echo "fd00:1::1$1"; }
rs_mac() { echo "02:00:00:00:01:1$1"; }

# fd 3: the script's stderr, which a check inside wait_for (whose output is silenced)
# still reaches.
exec 3>&2
die() {
    echo "topology.sh: $*" >&3
    exit 1
}

# wait_for SECONDS WHAT CMD...: runs CMD until it succeeds, or fails after SECONDS.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "timed out after ${secs}s waiting for $what"
        fi
        sleep 0.05
    done
}

sysctl_ns() { # NS KEY VALUE (KEY as a path under /proc/sys)
    ip netns exec "$1" sh -c "echo $3 > /proc/sys/$2"
}

new_ns() {
    local ns=$1
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    sysctl_ns "$ns" net/ipv4/conf/all/rp_filter 0
    sysctl_ns "$ns" net/ipv4/conf/default/rp_filter 0
    # Addresses usable at once: no duplicate address detection (link-local ones too).
    sysctl_ns "$ns" net/ipv6/conf/all/accept_dad 0
    sysctl_ns "$ns" net/ipv6/conf/default/accept_dad 0
    # A one-arm director forwards out of the interface a packet came in on, which makes
    # Linux send redirects (IPv6 has no switch for that): the hosts must not follow them,
    # or replies would bypass the director's NAT.
    sysctl_ns "$ns" net/ipv4/conf/all/accept_redirects 0
    sysctl_ns "$ns" net/ipv4/conf/default/accept_redirects 0
    sysctl_ns "$ns" net/ipv6/conf/all/accept_redirects 0
    sysctl_ns "$ns" net/ipv6/conf/default/accept_redirects 0
}

# Offloads off on a veth end: the kernel then hands AF_PACKET readers (lvs-realserver)
# complete checksums and unmerged packets, as a real NIC without offloads would.
no_offloads() { # NS DEV
    local f
    for f in rx tx tso gso gro lro; do
        ip netns exec "$1" ethtool -K "$2" "$f" off >/dev/null 2>&1 || true
    done
}

# A veth from namespace NS (named eth0 there, with MAC) to the bridge in D (named PORT).
link_to_bridge() { # NS MAC PORT
    ip link add eth0 netns "$1" address "$2" type veth peer name "$3" netns "$D"
    ip -n "$D" link set "$3" master br0 up
    ip -n "$1" link set eth0 up
    no_offloads "$1" eth0
    no_offloads "$D" "$3"
}

names() {
    TAG=$1
    [[ $TAG =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad TAG '$TAG'"
    D=lvs-$TAG-d
    C=lvs-$TAG-c
    R=()
    local i
    for ((i = 1; i <= RS_COUNT; i++)); do R+=("lvs-$TAG-r$i"); done
    STATE=${STATE_DIR:-/tmp/lvs-topology-$TAG}
    BIN=${LVS_BIN:-$root/target/release}
}

rules_file() { # MODE -> the ipvsadm-save lines of the two virtual services
    local flag
    case $1 in
        nat) flag=-m ;; dr) flag=-g ;; tun) flag=-i ;; fullnat) flag=-b ;;
    esac
    local sched=${SCHED:-rr} i w
    IFS=, read -r -a w <<<"${WEIGHTS:-1,1,1}"
    echo "-A -t $VIP4:80 -s $sched"
    for ((i = 1; i <= RS_COUNT; i++)); do
        echo "-a -t $VIP4:80 -r $(rs4 "$i"):80 $flag -w ${w[i - 1]:-1}"
    done
    echo "-A -t [$VIP6]:80 -s $sched"
    for ((i = 1; i <= RS_COUNT; i++)); do
        echo "-a -t [$VIP6]:80 -r [$(rs6 "$i")]:80 $flag -w ${w[i - 1]:-1}"
    done
}

# Starts CMD... in the background inside NS, detached from our stdio (a caller reading our
# output must not wait for it), its output in LOG; prints nothing.
spawn_in() { # NS LOG CMD...
    local ns=$1 log=$2
    shift 2
    setsid ip netns exec "$ns" "$@" </dev/null >"$log" 2>&1 3>&- &
}

# Whether the tap is there; exits the script if the director (PID) has died.
director_has_tap() { # PID
    if ! kill -0 "$1" 2>/dev/null; then
        die "lvs-director exited: $(cat "$STATE/director.log")"
    fi
    ip -n "$D" link show lvs0
}

start_director() {
    local mode
    mode=$(cat "$STATE/mode")
    [[ -x $BIN/lvs-director ]] || die "$BIN/lvs-director missing: cargo build --release --bins"
    local ips="" a
    for a in "${DIR4[@]}" "${DIR6[@]}"; do ips+=",ip=$a"; done
    local args=(--iface "lvs0$ips,mac=$DIR_MAC" --rules "$STATE/rules" --control "$STATE/ctl.sock")
    if [[ $mode == fullnat ]]; then
        args+=(--laddr "$LADDR4" --laddr "$LADDR6")
    fi
    # shellcheck disable=SC2206
    args+=(${DIRECTOR_ARGS:-})
    rm -f "$STATE/ctl.sock"
    echo "lvs-director ${args[*]}" >"$STATE/director.cmd"
    spawn_in "$D" "$STATE/director.log" "$BIN/lvs-director" "${args[@]}"
    local pid=$!
    # The director creates the tap; we put it on the bridge.
    wait_for 20 "lvs-director to open tap lvs0 (see $STATE/director.log)" \
        director_has_tap "$pid"
    ip -n "$D" link set lvs0 master br0 up
    wait_for 20 "the control socket $STATE/ctl.sock" \
        env LVS_CONTROL="$STATE/ctl.sock" "$BIN/lvsadm" -L -n
}

kernel_director() {
    # Linux routes and NATs on br0 itself: the director's addresses and the VIPs are the
    # bridge's, nftables DNATs new connections to the real servers in turn.
    local a
    for a in "${DIR4[@]}" "$VIP4/24"; do ip -n "$D" addr add "$a" dev br0; done
    for a in "${DIR6[@]}" "$VIP6/64"; do ip -n "$D" addr add "$a" dev br0 nodad; done
    sysctl_ns "$D" net/ipv4/ip_forward 1
    sysctl_ns "$D" net/ipv6/conf/all/forwarding 1
    # One-arm: replies leave by the interface they came in on; no redirects.
    sysctl_ns "$D" net/ipv4/conf/all/send_redirects 0
    sysctl_ns "$D" net/ipv4/conf/br0/send_redirects 0
    cat >"$STATE/nft.rules" <<EOF
table ip lvs {
    chain prerouting {
        type nat hook prerouting priority dstnat;
        ip daddr $VIP4 tcp dport 80 dnat to numgen inc mod 3 map { 0 : $(rs4 1), 1 : $(rs4 2), 2 : $(rs4 3) }
    }
}
table ip6 lvs {
    chain prerouting {
        type nat hook prerouting priority dstnat;
        ip6 daddr $VIP6 tcp dport 80 dnat to numgen inc mod 3 map { 0 : $(rs6 1), 1 : $(rs6 2), 2 : $(rs6 3) }
    }
}
EOF
    ip netns exec "$D" nft -f "$STATE/nft.rules"
}

# An nginx configuration for real server N serving WWW like realserver-httpd.py: one
# process in the foreground, dual-stack [::]:80, X-Real-Server on every answer, /peer.
nginx_conf() { # N WWW
    local t=$STATE/nginx$1
    mkdir -p "$t"
    cat <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $t/nginx.pid;
error_log stderr warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $t/body;
    proxy_temp_path $t/proxy;
    fastcgi_temp_path $t/fastcgi;
    uwsgi_temp_path $t/uwsgi;
    scgi_temp_path $t/scgi;
    sendfile on;
    keepalive_requests 1000000;
    server {
        listen [::]:80 ipv6only=off backlog=4096;
        root $2;
        add_header X-Real-Server rs$1 always;
        location = /peer { default_type text/plain; return 200 "rs$1 \$remote_addr\n"; }
    }
}
EOF
}

up() {
    names "$1"
    local mode=$2 i
    case $mode in nat | dr | tun | fullnat | kernel) ;; *) die "unknown mode '$mode'" ;; esac
    if [[ -n $(our_netns) ]]; then
        die "namespaces lvs-$TAG-* exist already (topology.sh down $TAG)"
    fi
    command -v ethtool >/dev/null || die "ethtool missing (apt-get install ethtool)"
    [[ $mode != kernel ]] || command -v nft >/dev/null || die "nft missing (apt-get install nftables)"
    mkdir -p "$STATE"
    echo "$mode" >"$STATE/mode"

    for ns in "$D" "$C" "${R[@]}"; do new_ns "$ns"; done

    # The director's namespace: a plain bridge. For the tap director no kernel address at
    # all (IPv6 off, so not even a link-local one); the director's stack has the addresses.
    if [[ $mode != kernel ]]; then
        sysctl_ns "$D" net/ipv6/conf/all/disable_ipv6 1
        sysctl_ns "$D" net/ipv6/conf/default/disable_ipv6 1
    fi
    # Bridged frames do not go through ip(6)tables/nftables (br_netfilter, when loaded).
    for f in bridge-nf-call-iptables bridge-nf-call-ip6tables bridge-nf-call-arptables; do
        if ip netns exec "$D" test -e "/proc/sys/net/bridge/$f"; then
            sysctl_ns "$D" "net/bridge/$f" 0
        fi
    done
    # No STP (ports forward at once), no multicast snooping (NDP's multicast floods).
    ip -n "$D" link add br0 type bridge stp_state 0 mcast_snooping 0
    ip -n "$D" link set br0 up

    link_to_bridge "$C" "$CLIENT_MAC" c
    ip -n "$C" addr add "$CLIENT4/24" dev eth0
    ip -n "$C" addr add "$CLIENT6/64" dev eth0 nodad
    ip -n "$C" route add default via 10.0.0.1
    ip -n "$C" -6 route add default via fd00::1

    mkdir -p "$STATE/www"
    for ((i = 1; i <= RS_COUNT; i++)); do
        local ns=${R[i - 1]}
        link_to_bridge "$ns" "$(rs_mac "$i")" "r$i"
        ip -n "$ns" addr add "$(rs4 "$i")/24" dev eth0
        ip -n "$ns" addr add "$(rs6 "$i")/64" dev eth0 nodad
        case $mode in
            nat | fullnat | kernel)
                ip -n "$ns" route add default via 10.0.1.1
                ip -n "$ns" -6 route add default via fd00:1::1
                ;;
            dr | tun)
                # Replies go straight to the client, not through the director.
                ip -n "$ns" route add 10.0.0.0/24 dev eth0
                ip -n "$ns" -6 route add fd00::/64 dev eth0
                # The VIP is local but must not be announced or answered for on the LAN.
                sysctl_ns "$ns" net/ipv4/conf/all/arp_ignore 1
                sysctl_ns "$ns" net/ipv4/conf/all/arp_announce 2
                sysctl_ns "$ns" net/ipv4/conf/eth0/arp_ignore 1
                sysctl_ns "$ns" net/ipv4/conf/eth0/arp_announce 2
                ;;
        esac
        if [[ $mode == dr ]]; then
            ip -n "$ns" addr add "$VIP4/32" dev lo
            ip -n "$ns" addr add "$VIP6/128" dev lo nodad
        fi
        if [[ $mode == tun ]]; then
            [[ -x $BIN/lvs-realserver ]] || die "$BIN/lvs-realserver missing: cargo build --release --bins"
            spawn_in "$ns" "$STATE/realserver$i.log" "$BIN/lvs-realserver" \
                --iface eth0 --tun lvstun0 --vip "$VIP4" --vip "$VIP6"
        fi
        local www=$STATE/www/rs$i
        mkdir -p "$www"
        printf 'rs%s\n' "$i" >"$www/index.html"
        local f
        for f in ${SERVE_FILES:-}; do
            ln -sf "$(realpath "$f")" "$www/$(basename "$f")"
        done
        if [[ ${HTTPD:-python} == nginx ]]; then
            nginx_conf "$i" "$www" >"$STATE/nginx$i.conf"
            spawn_in "$ns" "$STATE/httpd$i.log" nginx -c "$STATE/nginx$i.conf"
        else
            # shellcheck disable=SC2086
            spawn_in "$ns" "$STATE/httpd$i.log" python3 "$here/realserver-httpd.py" \
                --name "rs$i" --dir "$www" --port 80 ${HTTPD_ARGS:-}
        fi
    done

    for ((i = 1; i <= RS_COUNT; i++)); do
        wait_for 20 "rs$i's HTTP server (see $STATE/httpd$i.log)" \
            ip netns exec "${R[i - 1]}" curl -sf -o /dev/null "http://$(rs4 "$i")/"
        if [[ $mode == tun ]]; then
            wait_for 20 "rs$i's lvs-realserver (see $STATE/realserver$i.log)" \
                ip netns exec "${R[i - 1]}" ip addr show dev lvstun0 to "$VIP4"
            wait_for 20 "rs$i's lvs-realserver" grep -q ready "$STATE/realserver$i.log"
        fi
    done

    if [[ $mode == kernel ]]; then
        kernel_director
    else
        rules_file "$mode" >"$STATE/rules"
        start_director
    fi
    echo "state=$STATE"
}

# Which of TAG's namespaces exist. From /run/netns, not `ip netns list`, which also asks the kernel for
# each namespace's id and complains when another program deletes one meanwhile.
our_netns() {
    local ns
    for ns in "$D" "$C" "${R[@]}"; do
        [[ ! -e /run/netns/$ns ]] || echo "$ns"
    done
}

down() {
    names "$1"
    local nss ns pids deadline
    nss=$(our_netns)
    for ns in $nss; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086 # one PID a word
        [[ -z $pids ]] || kill -TERM $pids 2>/dev/null || true
    done
    # Give them 5 s to print their counters and close their devices, then SIGKILL.
    deadline=$((SECONDS + 5))
    for ns in $nss; do
        while pids=$(ip netns pids "$ns" 2>/dev/null) && [[ -n $pids ]]; do
            if ((SECONDS >= deadline)); then
                # shellcheck disable=SC2086 # one PID a word
                kill -KILL $pids 2>/dev/null || true
                break
            fi
            sleep 0.05
        done
    done
    for ns in $nss; do ip netns del "$ns" 2>/dev/null || true; done
}

case ${1:-} in
    up) [[ $# -eq 3 ]] || die "usage: topology.sh up TAG MODE"; up "$2" "$3" ;;
    down) [[ $# -eq 2 ]] || die "usage: topology.sh down TAG"; down "$2" ;;
    director)
        [[ $# -eq 2 ]] || die "usage: topology.sh director TAG"
        names "$2"
        start_director
        ;;
    *) die "usage: topology.sh up TAG MODE | down TAG | director TAG" ;;
esac
