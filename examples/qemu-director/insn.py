#!/usr/bin/env python3
"""Instructions per main-loop round of the QEMU firmware, from a QEMU trace.

    qemu-system-arm ... -d in_asm,exec,nochain -D trace.log
    python3 insn.py trace.log qemu-director.elf

Every round of the firmware's main loop ends in one of round_idle, round_one_forwarded,
round_one_frame, round_frames (src/main.rs). `in_asm` gives each translated block's instructions, `exec`
each block executed, in order: so each round's instructions are counted, by crate of the
function they run in (symbols from llvm-nm). Printed: the median round with no frame
(SysTick, the idle poll) and with exactly one frame, forwarded (read from the LAN9118's
FIFO, copied into the adapter's buffer, run through lvs-core, written into the TX FIFO),
and the difference: the instructions one forwarded frame costs, by crate.
"""
import re
import statistics
import subprocess
import sys
from bisect import bisect_right
from collections import Counter, defaultdict


def symbols(elf):
    nm = subprocess.run(
        [sys.argv[3] if len(sys.argv) > 3 else "llvm-nm", "--demangle", "--numeric-sort", elf],
        check=True, capture_output=True, text=True).stdout
    addrs, names = [], []
    for line in nm.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            addrs.append(int(parts[0], 16) & ~1)
            names.append(parts[2])
    return addrs, names


def crate(name):
    for c in ("lvs_core", "lvs_smoltcp", "lvs_firmware", "lan9118", "smoltcp", "compiler_builtins",
              "siphasher", "cortex_m"):
        if re.search(r"(^|[<\s&(])" + c + "::", name):
            return c
    if name.startswith("qemu_director"):
        return "main"
    if re.match(r"(core|<core)", name):
        return "core"
    return "other"


def main():
    trace, elf = sys.argv[1], sys.argv[2]
    addrs, names = symbols(elf)

    def sym(pc):
        i = bisect_right(addrs, pc) - 1
        return names[i] if i >= 0 else "?"

    marks = {}
    for a, n in zip(addrs, names):
        for m in ("round_idle", "round_one_forwarded", "round_one_frame", "round_frames"):
            if f"qemu_director::{m}" in n:
                marks[a] = m
    # Block start -> instruction count (the last translation wins).
    size = {}
    exec_re = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")
    cur, count = None, 0
    rounds = defaultdict(list)
    acc = Counter()
    with open(trace, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                if cur is not None:
                    size[cur] = count
                cur, count = None, 0
                continue
            if line.startswith("0x") and ":" in line[:12]:
                if cur is None:
                    cur = int(line[:10], 16)
                count += 1
                continue
            m = exec_re.match(line)
            if m:
                if cur is not None:
                    size[cur] = count
                    cur, count = None, 0
                pc = int(m.group(1), 16)
                acc[crate(sym(pc))] += size.get(pc, 0)
                if pc in marks:
                    rounds[marks[pc]].append(acc)
                    acc = Counter()
    idle = rounds["round_idle"][1:]  # the first idle round includes the boot
    one = rounds["round_one_forwarded"]
    if not idle or not one:
        sys.exit(f"rounds found: idle {len(idle)}, one frame forwarded {len(one)}")

    def med(rs, key=None):
        return statistics.median(sum(r.values()) if key is None else r[key] for r in rs)

    crates = sorted({c for r in one for c in r})
    print(f"rounds: {len(idle)} idle, {len(one)} forwarding one frame, "
          f"{len(rounds['round_one_frame'])} with one local frame, {len(rounds['round_frames'])} with more")
    print(f"{'':22} {'idle':>8} {'forwarded':>10} {'difference':>11}")
    for c in crates:
        i, o = med(idle, c), med(one, c)
        print(f"{c:22} {i:8.0f} {o:10.0f} {o - i:11.0f}")
    i, o = med(idle), med(one)
    print(f"{'total (medians)':22} {i:8.0f} {o:10.0f} {o - i:11.0f}")
    core = [r["lvs_core"] + r["lvs_smoltcp"] for r in one]
    core_idle = [r["lvs_core"] + r["lvs_smoltcp"] for r in idle]
    print(f"lvs_core + lvs_smoltcp per forwarded frame (median of those rounds minus idle): "
          f"{statistics.median(core) - statistics.median(core_idle):.0f}")


if __name__ == "__main__":
    main()
