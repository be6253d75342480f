#!/usr/bin/env bash
# The project's whole test run: what a newcomer runs, and exactly what CI runs.
# Installs what it needs itself (rustup target and components, cargo-fuzz), then:
# format, lints, the no_std build for Cortex-M, fuzz smoke runs, benchmark builds,
# and every test (unit, property, differential). Exit status is the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

FUZZ_SECONDS=${FUZZ_SECONDS:-20}

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: thumbv7em-none-eabihf target, clippy, rustfmt, nightly, cargo-fuzz"
rustup target add thumbv7em-none-eabihf
rustup component add clippy rustfmt
if ! rustc +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

step "system packages the namespace tests use (iproute2; the e2e tests: ethtool, curl, python3, nftables)"
# Each tool named by the command it provides; the packages of the missing ones installed.
need=()
for pair in ip:iproute2 ethtool:ethtool curl:curl python3:python3 nft:nftables; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
ip -V

step "format"
cargo fmt --all --check
(cd fuzz && cargo fmt --check)

step "clippy (-D warnings), every target and feature set"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p lvs-core --all-targets --features log -- -D warnings
cargo clippy -p lvs-core --lib --target thumbv7em-none-eabihf --features defmt -- -D warnings
cargo clippy -p lvs-smoltcp --lib --target thumbv7em-none-eabihf --features defmt -- -D warnings

step "no_std: lvs-core and lvs-smoltcp for thumbv7em-none-eabihf (release)"
cargo build -p lvs-core --target thumbv7em-none-eabihf --release
cargo build -p lvs-core --target thumbv7em-none-eabihf --release --features defmt
cargo build -p lvs-smoltcp --target thumbv7em-none-eabihf --release
if cargo build -p lvs-core --features log,defmt >/dev/null 2>&1; then
    echo "error: log and defmt together must not compile" >&2
    exit 1
fi
echo "log + defmt together is a compile error, as it must be"

step "public API documented"
RUSTDOCFLAGS="-D warnings" cargo doc -p lvs-core -p lvs-smoltcp --no-deps

step "fuzz smoke: every target for ${FUZZ_SECONDS}s from its seed corpus"
bash fuzz/smoke.sh "$FUZZ_SECONDS"

step "benchmarks build"
cargo bench --workspace --no-run

step "release binaries (lvs-director, lvsadm, lvs-realserver: the e2e tests run them)"
cargo build --release --bins

step "tests"
cargo test --workspace

# ---------------------------------------------------------------------------------------
# Embedded director (issue 5): the firmware crates are their own workspaces (thumbv7em
# only). Both STM32 boards built in release with their sizes, the QEMU firmware built and
# run end to end (examples/qemu-director/e2e.sh: real TCP through the emulated board).
step "embedded: qemu-system-arm, ping, curl, llvm-tools"
if ! command -v qemu-system-arm >/dev/null 2>&1 || ! command -v ping >/dev/null 2>&1 \
    || ! command -v curl >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        qemu-system-arm iputils-ping curl
fi
rustup component add llvm-tools
qemu-system-arm --version | head -1
EMBEDDED_TARGET=${CARGO_TARGET_DIR:-$PWD/target}/embedded
EMBEDDED_ELF=$EMBEDDED_TARGET/thumbv7em-none-eabihf/release

step "embedded: format and clippy (-D warnings) of the firmware crates"
(cd examples/qemu-director && cargo fmt --check)
(cd examples/stm32-director && cargo fmt --check)
(cd examples/qemu-director && CARGO_TARGET_DIR=$EMBEDDED_TARGET \
    cargo clippy --release --target thumbv7em-none-eabihf -- -D warnings)
cargo clippy -p lvs-firmware --target thumbv7em-none-eabihf --features cortex-m,defmt -- -D warnings

step "embedded: STM32 firmware for both boards (release), and the QEMU firmware"
sizes=()
for board in f429zi h743zi; do
    (cd examples/stm32-director && CARGO_TARGET_DIR=$EMBEDDED_TARGET \
        cargo clippy --release --target thumbv7em-none-eabihf --features $board -- -D warnings)
    (cd examples/stm32-director && CARGO_TARGET_DIR=$EMBEDDED_TARGET \
        cargo build --release --target thumbv7em-none-eabihf --features $board)
    cp "$EMBEDDED_ELF/stm32-director" "$EMBEDDED_ELF/stm32-director-$board"
    sizes+=("stm32-$board=$EMBEDDED_ELF/stm32-director-$board")
done
(cd examples/qemu-director && CARGO_TARGET_DIR=$EMBEDDED_TARGET \
    cargo build --release --target thumbv7em-none-eabihf)
sizes+=("qemu-an386=$EMBEDDED_ELF/qemu-director")
# The embedded goal: lvs-core and lvs-smoltcp in under 64 KiB of flash.
LVS_CORE_FLASH_LIMIT_KIB=64 bash examples/qemu-director/sizes.sh "${sizes[@]}"

step "embedded: the QEMU firmware director end to end (NAT, DR, fuzz seeds, SYN flood)"
QEMU_DIRECTOR_ELF=$EMBEDDED_ELF/qemu-director bash examples/qemu-director/e2e.sh
# --------------------------------------------------------------------- end of embedded
