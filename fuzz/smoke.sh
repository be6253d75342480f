#!/usr/bin/env bash
# Runs every fuzz target for a short time (default 20 s) from its committed seeds.
# A long campaign is the same command with more seconds, or see the README.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
targets=$(cargo +nightly fuzz list)
# Build once for all targets (the slow part), then run each.
cargo +nightly fuzz build -O
for t in $targets; do
    case $t in
        wire_ethernet|wire_frame_info) seeds=seeds/frame_bare ;;
        fwd_*) seeds=seeds/frame ;;
        wire_ipv4|wire_ipv6|wire_quote) seeds=seeds/ip ;;
        director) seeds=seeds/director ;;
        *) seeds=seeds/l4 ;;
    esac
    mkdir -p "corpus/$t"
    cp -n "$seeds"/* "corpus/$t"/ 2>/dev/null || true
    echo "fuzz $t: ${secs}s"
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=2048 \
        -print_final_stats=1 2>&1 | grep -E '^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|thread)' || true
    # A crash leaves an artifact and a non-zero status; grep above must not hide it.
    if compgen -G "artifacts/$t/*-*" >/dev/null; then
        echo "fuzz $t found a failure:" >&2
        ls "artifacts/$t" >&2
        exit 1
    fi
done
echo "fuzz smoke: all targets clean"
