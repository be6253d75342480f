#!/usr/bin/env bash
# Per-packet cost of every forwarding rewrite (tests/benches/fwd.rs), beside the baseline
# measured in the same run (copy one 64-byte header + one full IPv4 header checksum),
# both through the ring harness every `*/rewrite` case uses (the like-for-like one, which
# the ratios use) and bare (no harness: a second ns ratio, for transparency):
#
#  1. criterion: ns per packet (median), ~2 minutes;
#  2. callgrind: instructions per packet, which do not depend on the machine's load. The
#     bench binary runs every case N times in `lvs_bench_measure` (LVS_BENCH_COUNT=N);
#     callgrind counts only inside that function and dumps once per call, so dump k is
#     case k: its total / N is the case's instructions per packet;
#  3. a table (case, ns/packet, ratio to the ring baseline and to the bare one,
#     instructions/packet, ratio to the ring baseline), baselines and harness first, and
#     callgrind's line-by-line annotation of a few hot cases.
#
# Usage: scripts/bench.sh [--count-only] [criterion filter...]
#   --count-only   skip criterion (instructions only, ~1 minute with the build)
#   env LVS_BENCH_COUNT     iterations per case under callgrind (default 10000)
#   env LVS_BENCH_ANNOTATE  case names to annotate (default: NAT inbound v4/v6, parse v4)
# Output: target/lvs-bench/ (table.md, criterion.txt, callgrind/, annotate-*.txt).
# Results and how to read them: BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

COUNT=${LVS_BENCH_COUNT:-10000}
ANNOTATE=${LVS_BENCH_ANNOTATE:-"nat-inbound/v4-tcp1500/rewrite nat-inbound/v6-tcp1500/rewrite parse/v4-tcp1500 baseline/ring/copy64+ipv4_csum baseline/copy64+ipv4_csum"}
# The like-for-like baseline: the issue's work (copy a 64-byte header, checksum the
# IPv4 header) through the same ring harness as every `*/rewrite` case.
BASELINE="baseline/ring/copy64+ipv4_csum"
# The same work bare, without the harness's ~2.2 ns (`harness/ring-noop`).
BARE="baseline/copy64+ipv4_csum"
OUT=target/lvs-bench
CG=$OUT/callgrind

CRITERION=1
if [[ ${1:-} == --count-only ]]; then
    CRITERION=0
    shift
fi

step() { printf '\n==> %s\n' "$*"; }

missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v jq >/dev/null || missing+=(jq)
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        step "installing ${missing[*]}"
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "error: scripts/bench.sh needs: ${missing[*]}" >&2
        exit 1
    fi
fi

rm -rf "$OUT"
mkdir -p "$CG"
# Criterion's data of this run only: every ratio is against the baseline of the same run.
export CRITERION_HOME="$PWD/$OUT/criterion"

step "machine"
{
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "cpus: $(nproc) ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core)"
    echo "hypervisor: $(lscpu | sed -n 's/^Hypervisor vendor: *//p')"
    echo "kernel: $(uname -sr)"
    echo "rustc: $(rustc -V)"
    echo "valgrind: $(valgrind --version)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "load average (1, 5, 15 min) before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

step "build"
cargo bench -p lvs-tests --bench fwd --no-run
BIN=$(cargo bench -p lvs-tests --bench fwd --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "fwd" and .executable != null) | .executable')
echo "bench binary: $BIN"

if ((CRITERION)); then
    step "criterion: cargo bench -p lvs-tests --bench fwd -- $*"
    cargo bench -p lvs-tests --bench fwd -- "$@" | tee "$OUT/criterion.txt"
    # Criterion's ns are only as quiet as the machine: other work shows here.
    echo "load average (1, 5, 15 min) after criterion: $(cut -d' ' -f1-3 /proc/loadavg)" |
        tee -a "$OUT/machine.txt"
fi

step "callgrind: $COUNT packets per case"
LVS_BENCH_COUNT=$COUNT valgrind --tool=callgrind \
    --callgrind-out-file="$CG/cg.out" \
    --collect-atstart=no \
    --toggle-collect=fwd::lvs_bench_measure \
    --dump-after=fwd::lvs_bench_measure \
    "$BIN" >"$CG/cases.txt" 2>"$CG/valgrind.log"
echo "$(wc -l <"$CG/cases.txt") cases; dumps in $CG"

# name → median ns, from criterion's files of this run.
: >"$OUT/ns.txt"
if [[ -d $CRITERION_HOME ]]; then
    find "$CRITERION_HOME" -path '*/new/benchmark.json' | while read -r f; do
        printf '%s %s\n' "$(jq -r .full_id "$f")" \
            "$(jq .median.point_estimate "${f%benchmark.json}estimates.json")"
    done >"$OUT/ns.txt"
fi
# name → instructions per packet: case k is in dump k+1.
while read -r _ k name; do
    ir=$(awk '/^totals:/ { print $2 }' "$CG/cg.out.$((k + 1))")
    printf '%s %s\n' "$name" "$ir"
done <"$CG/cases.txt" >"$OUT/ir.txt"

step "table"
# Rows: the ring baseline, the bare one, the other baseline parts and the harness, then
# every other case in the bench's order.
awk -v base="$BASELINE" -v bare="$BARE" -v n="$COUNT" -v nsfile="$OUT/ns.txt" '
    FILENAME == nsfile { ns[$1] = $2; next }
    { order[++m] = $1; ir[$1] = $2 / n }
    function row(c,    t, r, rb) {
        t = (c in ns) ? sprintf("%.1f", ns[c]) : "–"
        r = (c in ns && bns > 0) ? sprintf("%.2f", ns[c] / bns) : "–"
        rb = (c in ns && brns > 0) ? sprintf("%.2f", ns[c] / brns) : "–"
        printf "| `%s` | %s | %s | %s | %.0f | %.2f |\n", c, t, r, rb, ir[c], ir[c] / bir
    }
    END {
        bns = (base in ns) ? ns[base] : 0; brns = (bare in ns) ? ns[bare] : 0; bir = ir[base]
        printf "| case | ns/packet | × ring baseline (ns) | × bare baseline (ns) | instructions/packet | × ring baseline (instr.) |\n"
        printf "|---|---:|---:|---:|---:|---:|\n"
        row(base)
        if (bare in ir) row(bare)
        for (i = 1; i <= m; i++) {
            c = order[i]
            if (c != base && c != bare && c ~ /^(baseline|harness)\//) row(c)
        }
        for (i = 1; i <= m; i++) {
            c = order[i]
            if (c !~ /^(baseline|harness)\//) row(c)
        }
    }' "$OUT/ns.txt" "$OUT/ir.txt" | tee "$OUT/table.md"

step "callgrind annotations"
for name in $ANNOTATE; do
    k=$(awk -v c="$name" '$3 == c { print $2 }' "$CG/cases.txt")
    if [[ -z $k ]]; then
        echo "no case $name" >&2
        continue
    fi
    file="$OUT/annotate-${name//[^A-Za-z0-9+.-]/_}.txt"
    # Costs are for $COUNT packets; --threshold=100 lists every function and line.
    callgrind_annotate --threshold=100 --auto=yes --context=1 "$CG/cg.out.$((k + 1))" >"$file" 2>&1
    echo "$name: $file"
done
