#!/usr/bin/env bash
# The offline demo (`scripts/demo.sh pcap`): no namespaces, no root needed but for apt.
# Installs tcpdump if it is missing, builds and runs `lvs-demo` (every lvs-core
# forwarding method applied to a small realistic scenario, each output frame's checksums
# verified), writes the frames to a pcap file, and decodes that file with tcpdump, which
# checks every IP/TCP/UDP checksum again on its own. Exit status is the verdict.
# Works from any directory; the pcap file lives in a temporary directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

if ! command -v tcpdump >/dev/null 2>&1; then
    step "installing tcpdump (apt-get)"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y tcpdump
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install the Rust toolchain (rustup, Rust 1.91 or newer) first" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out="$tmp/lvs-demo.pcap"

step "lvs-demo: every forwarding method over one scenario (cargo run --release -p lvs-demo)"
cargo run --release -p lvs-demo -- --write "$out"

step "tcpdump -nn -vv -e -r $out"
# With -vv tcpdump recomputes every checksum: TCP "cksum 0x.... (correct)", UDP and
# ICMPv6 "[... sum ok]"; an IPv4 header or ICMPv4 checksum is printed only when wrong.
tcpdump -nn -vv -e -r "$out" >"$tmp/tcpdump.txt"
cat "$tmp/tcpdump.txt"

step "tcpdump's checksum verdicts"
correct=$(grep -c '(correct)' "$tmp/tcpdump.txt" || true)
sum_ok=$(grep -Ec '\[(udp|icmp6) sum ok\]' "$tmp/tcpdump.txt" || true)
bad_re='incorrect|bad cksum|bad udp cksum|bad icmp6 cksum|wrong icmp cksum'
echo "TCP checksums (correct): $correct; UDP/ICMPv6 sum ok: $sum_ok; wrong: $(grep -Ec "$bad_re" "$tmp/tcpdump.txt" || true)"
if grep -En "$bad_re" "$tmp/tcpdump.txt"; then
    echo "error: tcpdump found bad checksums (line numbers above are in its output)" >&2
    exit 1
fi

step "what you saw"
echo "Each frame of a small client/VIP/real-server scenario went through lvs-core's NAT, FULLNAT, DR and TUN rewrites (with ICMP errors and the too-big answer); lvs-demo, then tcpdump, found every checksum correct."
echo 'This replays frames offline; "bash scripts/demo.sh" runs the tap director on real traffic between network namespaces.'
