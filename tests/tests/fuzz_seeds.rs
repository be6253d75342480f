//! The fuzz seed corpora in `fuzz/seeds/`: what `gen_fuzz_seeds` writes (so they are
//! neither stale nor hand-edited), and what they claim to be by their names (the valid
//! ones parse, the malformed ones do not).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use lvs_core::wire::{Fragment, FrameInfo, IcmpQuote, L4Info};

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds")
}

fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["frame", "frame_bare", "ip", "l4", "director"] {
        let dir = root.join(sub);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let name = format!("{sub}/{}", e.file_name().to_string_lossy());
            out.insert(name, fs::read(e.path()).unwrap());
        }
    }
    out
}

fn malformed(name: &str) -> bool {
    name.starts_with("truncated_") || name.starts_with("lying_")
}

#[test]
fn committed_seeds_are_what_the_generator_writes() {
    let tmp = std::env::temp_dir().join(format!("lvs-fuzz-seeds-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_gen_fuzz_seeds"))
        .arg(&tmp)
        .output()
        .expect("runs gen_fuzz_seeds");
    assert!(status.status.success(), "{status:?}");
    let fresh = read_tree(&tmp);
    let _ = fs::remove_dir_all(&tmp);
    let committed = read_tree(&seeds_dir());
    assert!(!fresh.is_empty());
    let stale: Vec<_> = fresh
        .iter()
        .filter(|(k, v)| committed.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(
            committed
                .keys()
                .filter(|k| !fresh.contains_key(*k))
                .cloned(),
        )
        .collect();
    assert!(
        stale.is_empty(),
        "fuzz/seeds is stale (run `cargo run -p lvs-tests --bin gen_fuzz_seeds`): {stale:?}"
    );
}

#[test]
fn frame_seeds_parse_as_named() {
    let seeds = read_tree(&seeds_dir());
    let mut checked = 0;
    for (name, bytes) in seeds.iter().filter(|(k, _)| k.starts_with("frame/")) {
        let base = name.trim_start_matches("frame/");
        assert!(bytes.len() > 64, "{name}: no frame behind the parameters");
        let r = FrameInfo::parse(&bytes[64..]);
        if malformed(base) {
            assert!(r.is_err(), "{name}: malformed seed parses: {r:?}");
            continue;
        }
        let info = r.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        checked += 1;
        assert_eq!(info.vlan.is_some(), base.starts_with("vlan_"), "{name}");
        if base.contains("ipip") {
            assert!(matches!(info.l4, L4Info::IpIp(_)), "{name}: {:?}", info.l4);
        }
        if base.contains("frag_later") {
            assert_eq!(info.ip.fragment, Fragment::Later, "{name}");
        }
        if base.contains("frag_first") {
            assert_eq!(info.ip.fragment, Fragment::First, "{name}");
        }
        if base.starts_with("icmp") || base.starts_with("vlan_icmp") {
            let L4Info::Icmp(i) = info.l4 else {
                panic!("{name}: {:?}", info.l4)
            };
            assert_eq!(i.inner.is_some(), !base.contains("echo"), "{name}");
        }
        if base.starts_with("tcp_") || base.contains("_tcp_syn") {
            assert!(matches!(info.l4, L4Info::Tcp { .. }), "{name}");
        }
        if base.starts_with("ipv6_hbh") {
            assert_eq!(info.ip.header_len, 40 + 8 + 8, "{name}");
        }
        if base.starts_with("ipv4_options") {
            assert!(info.ip.header_len > 20, "{name}");
        }
    }
    assert!(checked >= 100, "only {checked} frame seeds checked");
    // frame_bare/ holds the same frames without the prefix.
    let bare: Vec<_> = seeds
        .keys()
        .filter(|k| k.starts_with("frame_bare/"))
        .collect();
    assert_eq!(bare.len() * 3, count_under(&seeds, "frame/"));
    for name in bare {
        let prefixed = format!("frame/{}-m00", name.trim_start_matches("frame_bare/"));
        assert_eq!(
            seeds.get(&prefixed).map(|p| &p[64..]),
            Some(&seeds[name][..]),
            "{name}"
        );
    }
}

fn count_under(seeds: &BTreeMap<String, Vec<u8>>, prefix: &str) -> usize {
    seeds.keys().filter(|k| k.starts_with(prefix)).count()
}

#[test]
fn ip_and_l4_seeds_parse_as_named() {
    let seeds = read_tree(&seeds_dir());
    for (name, bytes) in seeds.iter().filter(|(k, _)| k.starts_with("ip/")) {
        let base = name.trim_start_matches("ip/");
        if base.starts_with("quote_") {
            let q = IcmpQuote::new_checked(&bytes[..]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(q.ports().is_some(), "{name}");
            continue;
        }
        let r = FrameInfo::parse_ip(bytes);
        assert_eq!(r.is_err(), malformed(base), "{name}: {r:?}");
    }
    for (name, bytes) in seeds.iter().filter(|(k, _)| k.starts_with("l4/")) {
        let base = name.trim_start_matches("l4/");
        let ok = if base.starts_with("tcp") {
            lvs_core::wire::TcpPacket::new_checked(&bytes[..]).is_ok()
        } else if base.starts_with("udp") {
            lvs_core::wire::UdpPacket::new_checked(&bytes[..]).is_ok()
        } else if base.starts_with("icmp4") {
            lvs_core::wire::Icmpv4Packet::new_checked(&bytes[..]).is_ok()
        } else if base.starts_with("icmp6") {
            lvs_core::wire::Icmpv6Packet::new_checked(&bytes[..]).is_ok()
        } else {
            panic!("{name}: unknown kind")
        };
        assert!(ok, "{name}");
    }
}
