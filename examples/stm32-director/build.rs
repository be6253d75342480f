//! Picks the board's memory.x, links with cortex-m-rt's link.x and defmt's defmt.x.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let f429 = env::var_os("CARGO_FEATURE_F429ZI").is_some();
    let h743 = env::var_os("CARGO_FEATURE_H743ZI").is_some();
    let memory = match (f429, h743) {
        (true, false) => "memory-f429zi.x",
        (false, true) => "memory-h743zi.x",
        _ => panic!("build with exactly one board feature: --features f429zi or --features h743zi"),
    };
    fs::copy(memory, out.join("memory.x")).expect("memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory-f429zi.x");
    println!("cargo:rerun-if-changed=memory-h743zi.x");
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rustc-link-arg=-Tdefmt.x");
    println!("cargo:rustc-link-arg=--nmagic");
}
