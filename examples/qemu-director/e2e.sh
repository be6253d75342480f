#!/usr/bin/env bash
# End to end: the embedded director firmware, running in QEMU (mps2-an386, LAN9118 on a
# tap), balances real TCP connections between real HTTP servers in network namespaces.
# Run as root:  bash examples/qemu-director/e2e.sh
#
#   lvsq-TAG-lan  bridge br0: the tap QEMU's LAN9118 uses, and the veths below
#   lvsq-TAG-c    client   eth0 192.0.2.100/24, default via 192.0.2.1 (the firmware)
#   lvsq-TAG-rN   real servers N=1..3, eth0 198.51.100.1N/24, default via 198.51.100.1;
#                 HTTP on :80 (DR) and :8080 (NAT) (scripts/realserver-httpd.py);
#                 the DR VIP 192.0.2.20 on lo (arp_ignore=1, arp_announce=2), and
#                 replies from it go straight to the client subnet (policy route)
#
# The firmware's rules (examples/lvs-firmware/src/rules.rs): NAT 192.0.2.10:80 -> :8080,
# DR 192.0.2.20:80 -> :80, both rr over the three servers. Checks: ping; NAT and DR
# spread 30 requests 10/10/10 and return a 1 MiB file byte for byte; the firmware's own
# counters (UDP stats port) agree; the fuzz seeds replayed as frames are all received
# and survived; a SYN flood that fills the connection table leaves an established
# connection working. Prints packets per second through the emulated board.
#
# Environment: QEMU_DIRECTOR_ELF (the firmware; built if unset), TAG (default: PID),
# KEEP=1 (leave the namespaces up on exit, for a look around), QEMU_EXTRA (more QEMU
# arguments, e.g. an instruction trace for insn.py), E2E_ONLY=nat (stop after the NAT
# checks).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TAG=${TAG:-$$}
P=lvsq-$TAG
TOOL="python3 $HERE/e2e_tool.py"
FW_MAC=02:4c:56:53:00:01
DIRECTOR=192.0.2.1
NAT_VIP=192.0.2.10
DR_VIP=192.0.2.20
WORK=$(mktemp -d /tmp/lvsq-e2e.XXXXXX)
QPID=
failures=0
passes=0

log() { printf '[e2e %s] %s\n' "$(date +%T)" "$*"; }
pass() { passes=$((passes + 1)); log "ok: $*"; }
fail() { failures=$((failures + 1)); log "FAIL: $*"; }
in_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

cleanup() {
    set +e
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then kill "$QPID"; wait "$QPID" 2>/dev/null; fi
    if [ "${KEEP:-0}" != 1 ]; then
        for ns in c r1 r2 r3 lan; do
            for pid in $(ip netns pids "$P-$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
            ip netns del "$P-$ns" 2>/dev/null
        done
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'echo "[e2e] aborted at line $LINENO: $BASH_COMMAND" >&2; tail -5 "$WORK/qemu.log" >&2 2>/dev/null' ERR

# Waits until "$@" succeeds, at most $1 seconds.
wait_for() {
    local secs=$1; shift
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.2
    done
}

# ---------------------------------------------------------------- the firmware
ELF=${QEMU_DIRECTOR_ELF:-}
if [ -z "$ELF" ]; then
    log "building the firmware"
    (cd "$HERE" && cargo build --release --target thumbv7em-none-eabihf)
    TD=${CARGO_TARGET_DIR:-$HERE/target}
    ELF=$TD/thumbv7em-none-eabihf/release/qemu-director
fi
[ -f "$ELF" ] || { echo "no firmware at $ELF" >&2; exit 1; }

# ---------------------------------------------------------------- the namespaces
log "namespaces $P-*"
for ns in lan c r1 r2 r3; do
    ip netns add "$P-$ns"
    ip -n "$P-$ns" link set lo up
done
ip -n "$P-lan" link add br0 type bridge
ip -n "$P-lan" link set br0 up
for ns in c r1 r2 r3; do
    ip link add "v$ns" netns "$P-lan" type veth peer name eth0 netns "$P-$ns"
    ip -n "$P-lan" link set "v$ns" master br0 up
    ip -n "$P-$ns" link set eth0 up
done
ip -n "$P-lan" tuntap add dev tap0 mode tap
ip -n "$P-lan" link set tap0 master br0 up

ip -n "$P-c" addr add 192.0.2.100/24 dev eth0
ip -n "$P-c" route add default via $DIRECTOR

mkdir -p "$WORK/www"
python3 -c "import os,sys; sys.stdout.buffer.write(os.urandom(1<<20))" > "$WORK/www/blob"
python3 -c "import os,sys; sys.stdout.buffer.write(os.urandom(8<<20))" > "$WORK/www/big"
BLOB_SHA=$(sha256sum < "$WORK/www/blob" | cut -d' ' -f1)
for n in 1 2 3; do
    ns=r$n
    ip -n "$P-$ns" addr add "198.51.100.1$n/24" dev eth0
    ip -n "$P-$ns" route add default via 198.51.100.1
    ip -n "$P-$ns" addr add "$DR_VIP/32" dev lo
    in_ns "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
        net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
    # DR replies (from the VIP) go to the client directly; NAT replies via the director.
    ip -n "$P-$ns" rule add from "$DR_VIP" lookup 100
    ip -n "$P-$ns" route add 192.0.2.0/24 dev eth0 table 100
    mkdir -p "$WORK/www-$ns"
    echo "$ns" > "$WORK/www-$ns/id"
    ln -s "$WORK/www/blob" "$WORK/www-$ns/blob"
    ln -s "$WORK/www/big" "$WORK/www-$ns/big"
    for port in 80 8080; do
        in_ns "$ns" python3 "$ROOT/scripts/realserver-httpd.py" --name "$ns" \
            --dir "$WORK/www-$ns" --port $port >"$WORK/http-$ns-$port.log" 2>&1 &
    done
done
for n in 1 2 3; do
    for port in 80 8080; do
        wait_for 30 in_ns "r$n" curl -sf "http://127.0.0.1:$port/id" \
            || { echo "real server r$n:$port did not start" >&2; exit 1; }
    done
done

# ---------------------------------------------------------------- QEMU
log "QEMU: $ELF"
in_ns lan qemu-system-arm -M mps2-an386 -display none -serial null -monitor none \
    -semihosting-config enable=on,target=native \
    -nic "tap,ifname=tap0,script=no,downscript=no,model=lan9118,mac=$FW_MAC" \
    ${QEMU_EXTRA:-} -kernel "$ELF" >"$WORK/qemu.log" 2>&1 &
QPID=$!
if ! in_ns c $TOOL stats $DIRECTOR --wait 60 >"$WORK/stats0.txt"; then
    cat "$WORK/qemu.log"
    echo "the firmware did not answer on its stats port" >&2
    exit 1
fi
log "firmware: $(head -1 "$WORK/qemu.log")"

stat() { in_ns c $TOOL stats $DIRECTOR --wait 10 --json; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
alive() { kill -0 "$QPID" 2>/dev/null && ! grep -qE "HARD FAULT|PANIC" "$WORK/qemu.log"; }

# ---------------------------------------------------------------- checks
if in_ns c ping -c 3 -i 0.2 -W 2 $DIRECTOR >/dev/null; then pass "ping $DIRECTOR"; else fail "ping $DIRECTOR"; fi

# Spreads 30 requests over VIP; expects 10 per real server and a byte-exact blob.
balance() {
    local mode=$1 vip=$2
    : >"$WORK/ids-$mode"
    for _ in $(seq 30); do
        in_ns c curl -sf --max-time 10 "http://$vip/id" >>"$WORK/ids-$mode" || echo "error" >>"$WORK/ids-$mode"
    done
    local counts
    counts=$(sort "$WORK/ids-$mode" | uniq -c | awk '{printf "%s=%s ", $2, $1}')
    if [ "$counts" = "r1=10 r2=10 r3=10 " ]; then
        pass "$mode $vip: 30 requests spread $counts"
    else
        fail "$mode $vip: 30 requests spread $counts (want r1=10 r2=10 r3=10)"
    fi
    local good=0
    for _ in 1 2 3; do
        sha=$(in_ns c curl -sf --max-time 30 "http://$vip/blob" | sha256sum | cut -d' ' -f1)
        [ "$sha" = "$BLOB_SHA" ] && good=$((good + 1))
    done
    if [ $good = 3 ]; then pass "$mode $vip: 1 MiB blob byte-exact 3/3"; else fail "$mode $vip: blob byte-exact $good/3"; fi
}
balance NAT $NAT_VIP
# NAT keeps the client's address: the real server sees 192.0.2.100.
peer=$(in_ns c curl -sf --max-time 10 "http://$NAT_VIP/peer" || true)
case "$peer" in *" 192.0.2.100") pass "NAT: the real server sees the client ($peer)";; *) fail "NAT /peer: '$peer'";; esac
if [ "${E2E_ONLY:-}" = nat ]; then
    echo
    echo "qemu-director e2e (NAT only): $passes passed, $failures failed"
    [ "$failures" = 0 ]
    exit
fi
balance DR $DR_VIP

# The firmware's own view: 34 connections per real server of each service... NAT had
# 30 + 3 + 1 (/peer), DR 30 + 3.
stat >"$WORK/stats1.json"
nat_conns=$(field "' '.join(str(d['rs']['198.51.100.1%d:8080' % n]['conns']) for n in (1,2,3))" <"$WORK/stats1.json")
dr_conns=$(field "' '.join(str(d['rs']['198.51.100.1%d:80' % n]['conns']) for n in (1,2,3))" <"$WORK/stats1.json")
[ "$nat_conns" = "12 11 11" ] || [ "$nat_conns" = "11 12 11" ] || [ "$nat_conns" = "11 11 12" ] \
    && pass "firmware counts NAT connections per real server: $nat_conns" \
    || fail "firmware NAT connections per real server: $nat_conns (want 11/11/12 in some order)"
[ "$dr_conns" = "11 11 11" ] && pass "firmware counts DR connections per real server: $dr_conns" \
    || fail "firmware DR connections per real server: $dr_conns (want 11 11 11)"
outpkts=$(field "d['total_outpkts']" <"$WORK/stats1.json")
[ "$outpkts" -gt 0 ] && pass "NAT replies went back through the firmware ($outpkts packets)" || fail "no NAT reply packets"

# Rules at run time, over the control port: a new NAT service with one real server.
reply=$(in_ns c $TOOL control $DIRECTOR "-A -t 192.0.2.30:80 -s rr" "-a -t 192.0.2.30:80 -r 198.51.100.12:8080 -m" || true)
ids=$(for _ in 1 2 3; do in_ns c curl -sf --max-time 10 "http://192.0.2.30/id" || echo error; done | tr '\n' ' ')
reply2=$(in_ns c $TOOL control $DIRECTOR "-D -t 192.0.2.30:80" || true)
gone=$(in_ns c curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://192.0.2.30/id" || true)
if [ "$reply" = $'ok\nok' ] && [ "$ids" = "r2 r2 r2 " ] && [ "$reply2" = ok ] && [ "$gone" = 000 ]; then
    pass "control port: service added ($ids), then deleted (no answer after)"
else
    fail "control port: replies '$reply' / '$reply2', answers '$ids', after delete HTTP '$gone'"
fi

# Packets per second through the emulated board (an indication: QEMU is no cycle model).
before=$(stat)
t0=$(date +%s.%N)
sha_ok=$(in_ns c curl -sf --max-time 120 "http://$NAT_VIP/big" | sha256sum | cut -d' ' -f1)
t1=$(date +%s.%N)
after=$(stat)
pk0=$(echo "$before" | field "d['total_inpkts'] + d['total_outpkts']")
pk1=$(echo "$after" | field "d['total_inpkts'] + d['total_outpkts']")
by0=$(echo "$before" | field "d['total_inbytes'] + d['total_outbytes']")
by1=$(echo "$after" | field "d['total_inbytes'] + d['total_outbytes']")
python3 -c "
dt = $t1 - $t0; pk = $pk1 - $pk0; by = $by1 - $by0
print(f'[e2e] throughput: 8 MiB through NAT in {dt:.2f} s: {pk} packets, {pk/dt:.0f} packets/s, {by*8/dt/1e6:.1f} Mbit/s')
" | tee "$WORK/throughput.txt"
[ "$sha_ok" = "$(sha256sum < "$WORK/www/big" | cut -d' ' -f1)" ] && pass "8 MiB through NAT byte-exact" || fail "8 MiB through NAT corrupted"

# The fuzz seeds, replayed over the wire.
tap_tx() { ip -n "$P-lan" -s -j link show tap0 | field "d[0]['stats64']['tx']['packets']"; }
tap0=$(tap_tx)
before=$(stat)
seeds=()
for d in "$ROOT"/fuzz/seeds/frame "$ROOT"/fuzz/seeds/frame_bare "$ROOT"/fuzz/seeds/ip "$ROOT"/fuzz/seeds/l4 "$ROOT"/fuzz/seeds/director; do
    [ -d "$d" ] && seeds+=("$d")
done
sent=$(in_ns c $TOOL replay eth0 $FW_MAC "${seeds[@]}") || sent=999999
after=$(stat)
tap1=$(tap_tx)
rx0=$(echo "$before" | field "d['nic_rx_frames']")
rx1=$(echo "$after" | field "d['nic_rx_frames']")
got=$((rx1 - rx0))
# Into the tap (to QEMU) meanwhile, less the two stats requests: what the bridge let by.
log "fuzz seeds: $sent sent, $((tap1 - tap0 - 2)) passed the bridge into the tap, $got received by the firmware"
# The Linux bridge in between filters a corpus frame or two before the board sees them
# (1 of 273 today), so: at least 95 % arrive, and the firmware is still standing.
if alive && [ $((got * 100)) -ge $((sent * 95)) ]; then
    pass "fuzz seeds over the wire: $sent sent, $got frames received, no fault"
else
    fail "fuzz seeds over the wire: $sent sent, $got frames received, alive=$(alive && echo yes || echo no)"
fi

# A SYN flood from spoofed clients fills the table; an established connection lives on.
verdict=$(in_ns c $TOOL flood eth0 $FW_MAC $DIRECTOR $NAT_VIP 80) \
    || verdict='{"error": "the flood tool failed", "first": [0, null], "second": [], "conns_at_peak": 0, "capacity": 1}'
echo "$verdict" | field "'\n'.join(f'[e2e]   {k}: {v}' for k, v in d.items() if k != 'stats_after')"
ok=$(echo "$verdict" | field "d['first'][0] == 200 and d['second'] == d['first'] and d['conns_at_peak'] >= d['capacity']")
if [ "$ok" = True ] && alive; then
    pass "SYN flood filled the table ($(echo "$verdict" | field "d['conns_at_peak']") conns); the established connection still answers"
else
    fail "SYN flood: $verdict"
fi
fresh=$(in_ns c curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://$DR_VIP/id" || true)
log "a new DR connection while the table is full: HTTP ${fresh:-none} (embryonic entries may hold every slot)"

alive && pass "firmware alive, no hard fault or panic" || { fail "firmware died"; cat "$WORK/qemu.log"; }
log "final stats:"
in_ns c $TOOL stats $DIRECTOR --wait 10 | sed 's/^/    /'

echo
echo "qemu-director e2e: $passes passed, $failures failed"
[ "$failures" = 0 ]
