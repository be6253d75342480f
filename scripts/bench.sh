#!/usr/bin/env bash
# The benchmarks, each case beside a baseline measured in the same run:
#
#  - fwd (tests/benches/fwd.rs): every forwarding rewrite beside copying one 64-byte
#    header + one full IPv4 header checksum, both through the ring harness every
#    `*/rewrite` case uses (the like-for-like one, which the ratios use) and bare;
#  - director (tests/benches/director.rs): `Director::process` on established flows of
#    each method at 1K, 64K and 1M connections, and on new connections, beside the limit:
#    the same SipHash + one read of an array of the table's size + the same rewrite;
#  - sched (tests/benches/sched.rs): each scheduler's decision at 4, 64 and 1024 real
#    servers beside one hash32 + one table read.
#
# For each bench:
#  1. criterion: ns per packet (median);
#  2. callgrind: instructions per packet, which do not depend on the machine's load. The
#     bench binary runs every case in `lvs_bench_measure` (LVS_BENCH_COUNT=N); callgrind
#     counts only inside that function and dumps once per call, so dump k is case k: its
#     total / its packets (N, or the count the case prints) is the case's instructions
#     per packet;
#  3. a table per bench, and callgrind's line-by-line annotations of a few hot cases;
#     for the director, where `process`'s instructions go (parse, hash, lookup, state,
#     stats, rewrite, sweep, dispatch) for a few cases (needs python3).
#
# Usage: scripts/bench.sh [--count-only] [criterion filter...]
#   --count-only   skip criterion (instructions only)
#   env LVS_BENCHES         which benches (default "fwd director sched")
#   env LVS_BENCH_COUNT     packets per case under callgrind (default 10000)
#   env LVS_BENCH_REPEAT    criterion runs per bench (default 1); the tables give the
#                           median, the director's also every run's range and the median
#                           of the per-run ratios (a case and its baseline run back to back)
#   env LVS_BENCH_COUNT_SIZES  director table sizes under callgrind (default "1K,64K":
#                           setting up 1M connections under valgrind takes ~3 minutes more,
#                           and the counts do not depend on the size; "1K,64K,1M" for all)
#   env LVS_BENCH_HUGEPAGES=1  the director bench asks for 2 MiB pages (MADV_HUGEPAGE)
#                           under its tables and frames (default: ordinary 4 KiB pages)
#   env LVS_BENCH_ANNOTATE  fwd case names to annotate (default: NAT inbound v4/v6, parse v4)
#   env LVS_BENCH_ANNOTATE_DIRECTOR  director cases to annotate and break down
# Output: target/lvs-bench/: machine.txt; fwd: table.md, criterion.txt, callgrind/,
# annotate-*.txt; director and sched: table-<bench>.md, criterion-<bench>.txt,
# callgrind-<bench>/, annotate-<bench>-*.txt, breakdown-*.txt.
# Results and how to read them: BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

COUNT=${LVS_BENCH_COUNT:-10000}
BENCHES=${LVS_BENCHES:-"fwd director sched"}
COUNT_SIZES=${LVS_BENCH_COUNT_SIZES:-"1K,64K"}
REPEAT=${LVS_BENCH_REPEAT:-1}
ANNOTATE=${LVS_BENCH_ANNOTATE:-"nat-inbound/v4-tcp1500/rewrite nat-inbound/v6-tcp1500/rewrite parse/v4-tcp1500 baseline/ring/copy64+ipv4_csum baseline/copy64+ipv4_csum"}
ANNOTATE_DIRECTOR=${LVS_BENCH_ANNOTATE_DIRECTOR:-"established/nat/in/1K established/nat/out/1K established/fullnat/in/1K established/dr/in/1K established/tun/in/1K baseline/established/nat/in/1K new-conn/nat/room"}
# fwd: the like-for-like baseline, the issue's work (copy a 64-byte header, checksum the
# IPv4 header) through the same ring harness as every `*/rewrite` case.
BASELINE="baseline/ring/copy64+ipv4_csum"
# The same work bare, without the harness's ~2.2 ns (`harness/ring-noop`).
BARE="baseline/copy64+ipv4_csum"
# sched: the one baseline every decision is compared with.
SCHED_BASELINE="baseline/sched/hash32+read"
OUT=target/lvs-bench

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
mkdir -p "$OUT"
# Criterion's data of this run only: every ratio is against the baseline of the same run.
export CRITERION_HOME="$PWD/$OUT/criterion"

step "machine"
{
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "cpus: $(nproc) ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core)"
    echo "hypervisor: $(lscpu | sed -n 's/^Hypervisor vendor: *//p')"
    echo "caches: $(lscpu | sed -n 's/^\(L[123][di]* cache\): *\(.*\)/\1 \2/p' | paste -sd ';' -)"
    echo "memory: $(free -g | awk '/^Mem:/ { print $2 " GiB" }')"
    echo "kernel: $(uname -sr)"
    echo "rustc: $(rustc -V)"
    echo "valgrind: $(valgrind --version)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "benches: $BENCHES"
    echo "load average (1, 5, 15 min) before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

step "build"
declare -A BIN
for b in $BENCHES; do
    cargo bench -p lvs-tests --bench "$b" --no-run
    BIN[$b]=$(cargo bench -p lvs-tests --bench "$b" --no-run --message-format=json 2>/dev/null |
        jq -r --arg b "$b" 'select(.reason == "compiler-artifact" and .target.name == $b and .executable != null) | .executable')
    echo "$b: ${BIN[$b]}"
done

if ((CRITERION)); then
    for b in $BENCHES; do
        for ((r = 1; r <= REPEAT; r++)); do
            log="$OUT/criterion-$b.txt"
            [[ $b == fwd ]] && log="$OUT/criterion.txt"
            ((r > 1)) && log="${log%.txt}-run$r.txt"
            step "criterion (run $r of $REPEAT): cargo bench -p lvs-tests --bench $b -- $*"
            CRITERION_HOME="$PWD/$OUT/criterion/run$r" cargo bench -p lvs-tests --bench "$b" -- "$@" 2>&1 |
                tee "$log"
            # Criterion's ns are only as quiet as the machine: other work shows here.
            echo "load average (1, 5, 15 min) after criterion $b run $r: $(cut -d' ' -f1-3 /proc/loadavg)" |
                tee -a "$OUT/machine.txt"
        done
    done
fi

# name → median ns, from criterion's files of this run: ns-run<r>.txt for each run, and
# ns.txt with the median over the runs.
: >"$OUT/ns.txt"
for ((r = 1; r <= REPEAT; r++)); do
    : >"$OUT/ns-run$r.txt"
    if [[ -d $CRITERION_HOME/run$r ]]; then
        find "$CRITERION_HOME/run$r" -path '*/new/benchmark.json' | while read -r f; do
            printf '%s %s\n' "$(jq -r .full_id "$f")" \
                "$(jq .median.point_estimate "${f%benchmark.json}estimates.json")"
        done >"$OUT/ns-run$r.txt"
    fi
done
awk '{ v[$1] = v[$1] " " $2 }
    END {
        for (c in v) {
            n = split(substr(v[c], 2), x, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
            print c, (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
        }
    }' "$OUT"/ns-run*.txt >"$OUT/ns.txt"

for b in $BENCHES; do
    cg="$OUT/callgrind-$b"
    [[ $b == fwd ]] && cg="$OUT/callgrind"
    mkdir -p "$cg"
    step "callgrind $b: up to $COUNT packets per case"
    LVS_BENCH_COUNT=$COUNT LVS_BENCH_SIZES=$COUNT_SIZES valgrind --tool=callgrind \
        --callgrind-out-file="$cg/cg.out" \
        --collect-atstart=no \
        --toggle-collect="$b::lvs_bench_measure" \
        --dump-after="$b::lvs_bench_measure" \
        "${BIN[$b]}" >"$cg/cases.txt" 2>"$cg/valgrind.log"
    echo "$(grep -c '^case ' "$cg/cases.txt") cases; dumps in $cg"
    # name → instructions per packet: case k is in dump k+1; a fourth field is the
    # number of packets it ran (else COUNT).
    grep '^case ' "$cg/cases.txt" | while read -r _ k name n; do
        ir=$(awk '/^totals:/ { print $2 }' "$cg/cg.out.$((k + 1))")
        printf '%s %s\n' "$name" "$(awk -v ir="$ir" -v n="${n:-$COUNT}" 'BEGIN { printf "%.1f", ir / n }')"
    done >"$OUT/ir-$b.txt"
done

table_fwd() {
    # Rows: the ring baseline, the bare one, the other baseline parts and the harness,
    # then every other case in the bench's order.
    awk -v base="$BASELINE" -v bare="$BARE" -v nsfile="$OUT/ns.txt" '
        FILENAME == nsfile { ns[$1] = $2; next }
        { order[++m] = $1; ir[$1] = $2 }
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
        }' "$OUT/ns.txt" "$OUT/ir-fwd.txt"
}

table_director() {
    # One row per case in the bench's order, its baseline (`baseline/<case>`, or
    # `baseline-burst/<case>` for a burst case) beside it; established flows, then the
    # same in bursts, then new connections, then the rest. Over several criterion runs:
    # the median ns, the runs' range, and the median of the per-run ratios.
    local cg="$OUT/callgrind-director"
    {
        sed -n 's/^Benchmarking \([^: ]*\).*/\1/p' "$OUT"/criterion-director*.txt 2>/dev/null || true
        awk '$1 == "case" { print $3 }' "$cg/cases.txt"
    } | awk '!seen[$0]++' >"$OUT/order-director.txt"
    awk -v order="$OUT/order-director.txt" -v irfile="$OUT/ir-director.txt" -v runs="$REPEAT" '
        FILENAME == order { o[++m] = $1; next }
        FILENAME == irfile { ir[$1] = $2; next }
        FNR == 1 { r++ }
        { ns[r, $1] = $2; has[$1] = 1 }
        function med(a, n,    i, j, t) {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function f(x, fmt) { return x == "" ? "–" : sprintf(fmt, x) }
        function row(c,    b, k, n, nb, nr, t, bt, rt, lo, hi, ts, i, bi, ri, range) {
            if (c ~ /^baseline[-\/]/) return
            # The baseline of a burst case is the baseline staged alike: baseline-burst/<case>.
            b = (c ~ /^burst\//) ? "baseline-" c : "baseline/" c
            split("", ts); split("", bts); split("", rts); n = nb = nr = 0
            for (k = 1; k <= runs; k++) {
                if ((k, c) in ns) { ts[++n] = ns[k, c]; lo = (n == 1 || ns[k, c] < lo) ? ns[k, c] : lo; hi = (n == 1 || ns[k, c] > hi) ? ns[k, c] : hi }
                if ((k, b) in ns) bts[++nb] = ns[k, b]
                if ((k, c) in ns && (k, b) in ns) rts[++nr] = ns[k, c] / ns[k, b]
            }
            t = n ? med(ts, n) : ""; bt = nb ? med(bts, nb) : ""; rt = nr ? med(rts, nr) : ""
            range = (n > 1) ? sprintf(t < 100 ? " (%.1f–%.1f)" : " (%.0f–%.0f)", lo, hi) : ""
            i = (c in ir) ? ir[c] : ""; bi = (b in ir) ? ir[b] : ""
            ri = (i != "" && bi != "") ? i / bi : ""
            printf "| `%s` | %s%s | %s | %s | %s | %s | %s | %s |\n", c, f(t, "%.1f"), range,
                f(t == "" ? "" : 1000 / t, "%.1f"), f(bt, "%.1f"), f(rt, "%.2f"),
                f(i, "%.0f"), f(bi, "%.0f"), f(ri, "%.2f")
        }
        END {
            printf "| case | ns/packet%s | M packets/s | baseline ns | × baseline (ns) | instructions/packet | baseline instr. | × baseline (instr.) |\n", (runs > 1) ? " (runs: min–max)" : ""
            printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
            for (k = 1; k <= m; k++) if (o[k] ~ /^established\//) row(o[k])
            for (k = 1; k <= m; k++) if (o[k] ~ /^burst\//) row(o[k])
            for (k = 1; k <= m; k++) if (o[k] ~ /^new-conn\//) row(o[k])
            for (k = 1; k <= m; k++) if (o[k] !~ /^(established|burst|new-conn)\//) row(o[k])
        }' "$OUT/order-director.txt" "$OUT/ir-director.txt" "$OUT"/ns-run*.txt
}

table_sched() {
    # Schedulers as rows, 4 / 64 / 1024 real servers as columns; the baseline first.
    awk -v nsfile="$OUT/ns.txt" -v base="$SCHED_BASELINE" '
        FILENAME == nsfile { ns[$1] = $2; next }
        { ir[$1] = $2; split($1, p, "/"); if (p[1] == "sched" && !(p[2] in seen)) { seen[p[2]] = 1; order[++m] = p[2] } }
        function t(c) { return (c in ns) ? sprintf("%.1f", ns[c]) : "–" }
        function i(c) { return (c in ir) ? sprintf("%.0f", ir[c]) : "–" }
        function r(c) { return (c in ns && bns > 0) ? sprintf("%.1f", ns[c] / bns) : "–" }
        END {
            bns = (base in ns) ? ns[base] : 0
            printf "| scheduler | ns @4 | ns @64 | ns @1024 | × baseline @4 / 64 / 1024 (ns) | instr. @4 | instr. @64 | instr. @1024 |\n"
            printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
            printf "| baseline: hash32 + read | %s | | | 1.0 | %s | | |\n", t(base), i(base)
            for (k = 1; k <= m; k++) {
                s = "sched/" order[k] "/"
                printf "| %s | %s | %s | %s | %s / %s / %s | %s | %s | %s |\n", order[k],
                    t(s 4), t(s 64), t(s 1024), r(s 4), r(s 64), r(s 1024), i(s 4), i(s 64), i(s 1024)
            }
        }' "$OUT/ns.txt" "$OUT/ir-sched.txt"
}

for b in $BENCHES; do
    step "table: $b"
    t="$OUT/table-$b.md"
    [[ $b == fwd ]] && t="$OUT/table.md"
    "table_$b" | tee "$t"
done

# Where one case's instructions go, by part of the packet path: every cost line of the
# dump (with its source file, line and function, inlined code included) goes to one part.
breakdown() {
    python3 - "$1" "$2" lvs-core/src/director.rs <<'PY'
import collections, re, sys

dump, n, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def self_costs(path):
    """(function, source file, line) → self Ir, from a callgrind dump."""
    names = {"fl": {}, "fn": {}}
    cost = collections.Counter()
    fl = fi = fn = None
    last = 0
    call_cost = False

    def name(kind, rest):
        m = re.match(r"\((\d+)\)(?: (.*))?", rest)
        if not m:
            return rest
        tab = names[kind]
        if m.group(2) is not None:
            tab[m.group(1)] = m.group(2)
        return tab.get(m.group(1), "?")

    for line in open(path):
        line = line.rstrip("\n")
        if not line:
            continue
        head = line[0]
        if not (head.isdigit() or head in "+-*"):
            key, _, rest = line.partition("=")
            if key == "fl":
                fl = fi = name("fl", rest)
            elif key in ("fi", "fe"):
                fi = name("fl", rest)
            elif key == "fn":
                fn = name("fn", rest)
                fi = fl
            elif key in ("cfi", "cfl"):
                name("fl", rest)
            elif key == "cfn":
                name("fn", rest)
            elif key == "calls":
                call_cost = True  # the next cost line is the call's inclusive cost
            continue
        parts = line.split()
        p = parts[0]
        ln = last if p == "*" else last + int(p) if p[0] in "+-" else int(p)
        last = ln
        if call_cost:
            call_cost = False
            continue
        cost[(fn or "", fi or "", ln)] += int(parts[1]) if len(parts) > 1 else 0
    return cost

# director.rs: the function each line belongs to.
starts = [(i, m.group(1)) for i, l in enumerate(open(src), 1)
          if (m := re.match(r"\s*(?:pub(?:\(crate\))? )?(?:const )?fn (\w+)", l))]

def enclosing(line):
    name = None
    for s, nm in starts:
        if s > line:
            break
        name = nm
    return name

STATE = "state: TCP transition, active/inactive counts, expiry (advance)"
LOOKUP = "lookup: index probe and key compare (hash excluded)"
REWRITE = "rewrite: fwd (addresses, ports, checksums)"

def part(fn, fi, ln):
    if "lvs_bench_measure" in fn or "/benches/" in fi:
        return "bench loop (the walk over the flows)"
    if "wire::ipip" in fn or "::set_" in fn or "::emit" in fn:
        return REWRITE  # the wire views' writers: TUN's outer header
    if "FrameInfo::parse" in fn or "lvs_core::wire::" in fn:
        return "parse: FrameInfo::parse"
    if "Key<A>::hash" in fn or "siphasher" in fn:
        return "hash: SipHash-1-3 of a key (siphasher)"
    if "::maintain" in fn or "::sweep" in fn or "expire_one" in fn:
        return "sweep: maintain (expiry scan of sweep_budget entries, estimator clock)"
    if "conn::table::probe" in fn or "find_slot" in fn or "delete_slot" in fn:
        return LOOKUP if "probe" in fn else "table: remove (find_slot, backward shift)"
    if "::advance" in fn or "account_state" in fn:
        return STATE
    if "ConnTable<A>::insert" in fn:
        return "table: insert"
    if "ConnTable<A>::remove" in fn:
        return "table: remove (find_slot, backward shift)"
    if "find_victim" in fn:
        return "table: find_victim"
    if "::schedule" in fn or "::sched::" in fn:
        return "schedule (wlc)"
    if "/fwd/" in fi or fi.endswith("/checksum.rs") or "::fwd::" in fn:
        return REWRITE
    if fi.endswith("/stats.rs"):
        return "stats: counters (count)"
    if fi.endswith("/conn/state.rs"):
        return STATE
    if fi.endswith("/conn/table.rs"):
        return "connection entry: get, copy, update" if "forward" in fn or "new_conn" in fn else LOOKUP
    if fi.endswith("lvs-core/src/director.rs") and ln:
        e = enclosing(ln)
        if e == "count":
            return "stats: counters (count)"
        if e == "existing_in":
            return "checks: expiry, real server gone, connection reuse (existing_in)"
        if e == "tunnel":
            return REWRITE
        return "dispatch: director.rs, fn %s" % e
    return "dispatch: inlined core library code (bounds checks, byte order, moves)"

costs = collections.Counter()
for (fn, fi, ln), v in self_costs(dump).items():
    costs[part(fn, fi, ln)] += v
total = sum(costs.values())
print("instr./packet  share  part")
for k, v in sorted(costs.items(), key=lambda x: -x[1]):
    print(f"{v / n:13.1f} {100 * v / total:5.1f}%  {k}")
print(f"{total / n:13.1f} 100.0%  total")
PY
}

annotate() { # bench, case name
    local b=$1 name=$2 cg k n file
    cg="$OUT/callgrind-$b"
    [[ $b == fwd ]] && cg="$OUT/callgrind"
    read -r k n < <(awk -v c="$name" '$1 == "case" && $3 == c { print $2, $4 }' "$cg/cases.txt") || true
    if [[ -z ${k:-} ]]; then
        echo "no case $name" >&2
        return
    fi
    file="$OUT/annotate-${name//[^A-Za-z0-9+.-]/_}.txt"
    [[ $b != fwd ]] && file="$OUT/annotate-$b-${name//[^A-Za-z0-9+.-]/_}.txt"
    # Costs are for the case's packets; --threshold=100 lists every function and line.
    callgrind_annotate --threshold=100 --auto=yes --context=1 "$cg/cg.out.$((k + 1))" >"$file" 2>&1
    echo "$name: $file"
    if [[ $b == director ]] && command -v python3 >/dev/null; then
        file="$OUT/breakdown-${name//[^A-Za-z0-9+.-]/_}.txt"
        breakdown "$cg/cg.out.$((k + 1))" "${n:-$COUNT}" >"$file"
        echo "$name: $file"
        cat "$file"
    fi
}

step "callgrind annotations"
for b in $BENCHES; do
    case $b in
        fwd) for name in $ANNOTATE; do annotate fwd "$name"; done ;;
        director) for name in $ANNOTATE_DIRECTOR; do annotate director "$name"; done ;;
    esac
done
