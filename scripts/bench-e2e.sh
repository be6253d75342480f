#!/usr/bin/env bash
# The tap director against the Linux kernel's own NAT, side by side in one run, on the
# demo's topology (scripts/topology.sh): a client, a director, three real servers (nginx,
# one worker each). Documented in BENCHMARKS.md ("Tap director vs nftables"); not run in CI.
#
#   bash scripts/bench-e2e.sh [SECONDS] [ROUNDS]      (defaults: 10 s, 3 rounds; as root)
#
# Two topologies up at once, identical but for the director:
#   tap     lvs-director on its TAP device, NAT (-m), rr over the three real servers
#   kernel  a routing namespace with nftables `dnat to numgen inc mod 3 map {...}`
# Each round measures both, alternating, so drift in the machine's load hits both alike:
#   keep-alive  wrk -t2 -c32: HTTP requests/s on long connections (packets/s bound)
#   new conns   wrk -t2 -c32 with "Connection: close": one TCP connection per request
#               (connection setup and teardown through the director)
#   bulk        curl of a 100 MiB file: MB/s (full-size frames)
# Packets/s is what crossed the director: the client's eth0 rx+tx packets over the run
# (in NAT every client packet crosses the director once). The medians of the rounds are
# printed as a Markdown table with the median of each round's tap/kernel ratio. Then, for
# the tap director alone: its CPU time per packet (/proc/PID/stat, user and kernel), its
# system calls per packet (strace -c -f, during a keep-alive run) and a perf profile.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

secs=${1:-10}
rounds=${2:-3}

step() { printf '\n==> %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root (network namespaces, veth, TAP)" >&2
    exit 1
fi
need=()
for pair in ip:iproute2 ethtool:ethtool curl:curl python3:python3 nft:nftables \
    wrk:wrk nginx:nginx-light strace:strace; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
    step "installing ${need[*]} (apt-get)"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
    # Debian starts the nginx service on install; the benchmark runs its own, in the
    # namespaces only.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx 2>/dev/null || true; fi
fi

step "building lvs-director (cargo build --release --bins)"
cargo build --release --bins -p lvs-director
LVS_BIN=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
export LVS_BIN

tmp=$(mktemp -d /tmp/lvs-bench-e2e.XXXXXX)
tap=bt$$
kern=bk$$
trap 'bash scripts/topology.sh down "$tap"; bash scripts/topology.sh down "$kern"; rm -rf "$tmp"' EXIT
head -c $((100 << 20)) /dev/urandom >"$tmp/big.bin"

step "topologies: $tap (lvs-director, NAT rr) and $kern (nftables DNAT numgen round robin), nginx real servers"
export HTTPD=nginx SERVE_FILES=$tmp/big.bin
STATE_DIR=$tmp/$tap bash scripts/topology.sh up "$tap" nat >/dev/null
STATE_DIR=$tmp/$kern bash scripts/topology.sh up "$kern" kernel >/dev/null
director_pid=$(ip netns pids "lvs-$tap-d")
echo "lvs-director pid $director_pid: $(cat "$tmp/$tap/director.cmd")" >&2

packets() { # TAG: the client's eth0 rx+tx packets
    # shellcheck disable=SC2016 # expanded by the inner sh, inside the namespace
    ip netns exec "lvs-$1-c" sh -c \
        'echo $(( $(cat /sys/class/net/eth0/statistics/rx_packets) + $(cat /sys/class/net/eth0/statistics/tx_packets) ))'
}
cpu_ticks() { # PID: "utime stime" in clock ticks
    awk '{ print $14, $15 }' "/proc/$1/stat"
}
now() { date +%s.%N; }

# run TAG KIND: one measurement; prints "value pps"
run() {
    local tag=$1 kind=$2 p0 p1 t0 t1 out v
    p0=$(packets "$tag")
    t0=$(now)
    case $kind in
        keepalive)
            out=$(ip netns exec "lvs-$tag-c" wrk -t2 -c32 -d"${secs}s" http://10.0.0.100/)
            v=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
            ;;
        close)
            out=$(ip netns exec "lvs-$tag-c" wrk -t2 -c32 -d"${secs}s" -H 'Connection: close' http://10.0.0.100/)
            v=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
            ;;
        bulk)
            # Bytes per second of one 100 MiB download, as MB/s.
            v=$(ip netns exec "lvs-$tag-c" curl -sS -o /dev/null -w '%{speed_download}' \
                http://10.0.0.100/big.bin | awk '{ printf "%.1f", $1 / 1e6 }')
            ;;
    esac
    t1=$(now)
    p1=$(packets "$tag")
    awk -v v="$v" -v p="$((p1 - p0))" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "%s %.0f\n", v, p / (t1 - t0) }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A val pps rat last
for ((r = 1; r <= rounds; r++)); do
    for kind in keepalive close bulk; do
        for which in tap kernel; do
            tag=$tap
            [[ $which == kernel ]] && tag=$kern
            read -r v p < <(run "$tag" "$kind")
            val[$which.$kind]+="$v "
            pps[$which.$kind]+="$p "
            last[$which]=$v
            echo "round $r $which $kind: $v ($p packets/s)" >&2
        done
        # The ratio of two neighbouring measurements: the machine's drift cancels out.
        rat[$kind]+="$(awk -v a="${last[tap]}" -v b="${last[kernel]}" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }') "
    done
done

m() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }

step "medians of $rounds rounds, ${secs} s each (tap = lvs-director, kernel = nftables DNAT)"
echo
echo "| load | tap director | kernel nftables | tap / kernel (median of the rounds' ratios) | tap packets/s | kernel packets/s |"
echo "|---|---:|---:|---:|---:|---:|"
for kind in keepalive close bulk; do
    case $kind in
        keepalive) label="HTTP keep-alive (requests/s)" ;;
        close) label="new connection per request (conns/s)" ;;
        bulk) label="100 MiB download (MB/s)" ;;
    esac
    vt=$(m "${val[tap.$kind]}")
    vk=$(m "${val[kernel.$kind]}")
    pt=$(m "${pps[tap.$kind]}")
    pk=$(m "${pps[kernel.$kind]}")
    echo "| $label | $vt | $vk | $(m "${rat[$kind]}") | $pt | $pk |"
done

step "where the tap director's time goes (keep-alive load, ${secs} s)"
hz=$(getconf CLK_TCK)
read -r u0 s0 < <(cpu_ticks "$director_pid")
p0=$(packets "$tap")
ip netns exec "lvs-$tap-c" wrk -t2 -c32 -d"${secs}s" http://10.0.0.100/ >/dev/null
read -r u1 s1 < <(cpu_ticks "$director_pid")
p1=$(packets "$tap")
awk -v u="$((u1 - u0))" -v k="$((s1 - s0))" -v hz="$hz" -v p="$((p1 - p0))" -v s="$secs" 'BEGIN {
    c = u + k
    printf "director CPU: %.2f s of %d s (%.0f%% of a core) for %d packets: %.2f us per packet, %.2f in user space, %.2f in the kernel\n",
        c / hz, s, 100 * c / hz / s, p, 1e6 * c / hz / p, 1e6 * u / hz / p, 1e6 * k / hz / p }'

# System calls per packet: strace counts while a wrk run goes (strace slows the director
# down, so the packet rate here is not the benchmark's; the ratio is what counts).
p0=$(packets "$tap")
strace -c -f -p "$director_pid" -o "$tmp/strace.txt" &
strace_pid=$!
# strace attaches asynchronously: wait until it has (the tracer shows in /proc status).
deadline=$((SECONDS + 10))
until grep -q "^TracerPid:[[:space:]]*[1-9]" "/proc/$director_pid/status"; do
    ((SECONDS < deadline)) || { echo "strace did not attach" >&2; break; }
    sleep 0.05
done
ip netns exec "lvs-$tap-c" wrk -t2 -c32 -d"${secs}s" http://10.0.0.100/ >/dev/null
kill -INT "$strace_pid"
wait "$strace_pid" || true
p1=$(packets "$tap")
cat "$tmp/strace.txt"
awk -v p="$((p1 - p0))" '$NF == "total" { printf "\n%d system calls for %d packets: %.2f per packet\n", $4, p, $4 / p }
    $NF ~ /^(read|write|poll|ppoll|recvfrom|sendto|epoll_wait)$/ { printf "  %s: %.2f per packet\n", $NF, $4 / p }' "$tmp/strace.txt"

# Where the CPU time of the director goes, by symbol (perf's software clock: this machine
# may have no hardware counters). Optional: only where perf is installed.
if command -v perf >/dev/null 2>&1; then
    step "perf: the director's CPU samples under keep-alive load (${secs} s)"
    ip netns exec "lvs-$tap-c" wrk -t2 -c32 -d"$((secs + 2))s" http://10.0.0.100/ >/dev/null &
    wrk_pid=$!
    if perf record -q -e cpu-clock -F 999 -g -p "$director_pid" -o "$tmp/perf.data" -- sleep "$secs" 2>/dev/null; then
        echo "by binary (kernel = the system calls and the kernel network path they run):"
        perf report -i "$tmp/perf.data" --no-children --sort dso -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -5
        echo "top symbols:"
        perf report -i "$tmp/perf.data" --no-children --sort dso,sym -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -25
    else
        echo "perf record failed (perf_event_paranoid, or no perf events here)"
    fi
    wait "$wrk_pid" || true
fi
