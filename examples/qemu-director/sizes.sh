#!/usr/bin/env bash
# Flash and RAM of firmware ELFs (llvm-size and llvm-nm from rustup's llvm-tools), and
# the flash each crate's code takes (symbols by crate path; LTO inlines across crates,
# so code inlined into a caller counts for the caller's crate: an indication).
#   bash examples/qemu-director/sizes.sh NAME=ELF...
# With LVS_CORE_FLASH_LIMIT_KIB=N it fails (exit 1) when some firmware's lvs_core +
# lvs_smoltcp code is above N KiB: the embedded goal (64 KiB) as a check, not a reading.
set -euo pipefail
limit=${LVS_CORE_FLASH_LIMIT_KIB:-}
over=0
BIN=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin
for arg in "$@"; do
    name=${arg%%=*}
    elf=${arg#*=}
    "$BIN/llvm-size" -A "$elf" | awk -v name="$name" '
        $1 ~ /^\.(vector_table|text|rodata)$/ { flash += $2 }
        $1 == ".data" { flash += $2; ram += $2 }
        $1 ~ /^\.(bss|uninit)$/ { ram += $2 }
        END { printf "%-16s flash %7d B (%6.1f KiB)   RAM %7d B (%6.1f KiB)\n", name, flash, flash / 1024, ram, ram / 1024 }'
    # The per-crate line, then (for the limit) the core's bytes on a line of its own.
    out=$("$BIN/llvm-nm" --print-size --size-sort --demangle --radix=d "$elf" | awk -v name="$name" '
        $3 ~ /^[tTrR]$/ {
            n = $4; for (i = 5; i <= NF; i++) n = n " " $i
            c = "other"
            if (n ~ /lvs_core::/) c = "lvs_core"
            else if (n ~ /lvs_smoltcp::/) c = "lvs_smoltcp"
            else if (n ~ /smoltcp::/) c = "smoltcp"
            else if (n ~ /lvs_firmware::/) c = "lvs_firmware"
            else if (n ~ /lan9118::/) c = "lan9118"
            else if (n ~ /embassy_stm32::/) c = "embassy_stm32"
            s[c] += $2
        }
        END {
            printf "%-16s   code by crate:", ""
            for (k in s) printf " %s %.1fK", k, s[k] / 1024
            printf "   (lvs_core + lvs_smoltcp: %.1f KiB)\n", (s["lvs_core"] + s["lvs_smoltcp"]) / 1024
            print s["lvs_core"] + s["lvs_smoltcp"]
        }')
    echo "${out%$'\n'*}"
    core=${out##*$'\n'}
    if [[ -n $limit ]] && ((core > limit * 1024)); then
        echo "$name: lvs_core + lvs_smoltcp code is $core B, above the $limit KiB limit" >&2
        over=1
    fi
done
exit $over
