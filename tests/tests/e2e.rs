//! End to end: real Linux TCP clients (curl) through the tap director (`lvs-director`,
//! the smoltcp stack on a TAP device) to real HTTP servers, in network namespaces, for
//! every forwarding method in IPv4 and IPv6.
//!
//! The topology is the demo's (`scripts/topology.sh`, driven by `lvs_tests::netns`): a
//! client, a one-arm director on a bridge, three real servers running Python's
//! http.server (`scripts/realserver-httpd.py`, which names itself in an `X-Real-Server`
//! header and tells the peer address it saw at `/peer`). Each test builds its own
//! namespaces (named after the test and this process) and removes them on drop, panics
//! included.
//!
//! Each test, for one method and family:
//! 1. rr: 30 connections, exactly 10 per real server; every peer address is the
//!    client's (FULLNAT: the director's local address, never the client's).
//! 2. wrr after `lvsadm -E`/`-e` (weights 3, 2, 1): 60 connections, exactly 30/20/10.
//! 3. `lvsadm -L -n --stats`: 90 connections; DR and TUN: OutPkts 0 (replies never cross
//!    the director); NAT and FULLNAT: OutPkts counted. TUN: every real server's TUN
//!    device (lvs-realserver's) received packets: the kernel has no ipip module here.
//! 4. A 100 MiB download through the VIP, byte-exact.
//! 5. `lvsadm -d` of a real server under load (three rate-limited downloads, one per
//!    server): that server's download ends (stalls, curl gives up), the other two
//!    complete byte-exact, new connections go to the two servers left, 3 and 3; the
//!    other family's service still uses all three.
//!
//! `kernel_nat_stand_in` runs steps 1 and 4 with Linux's own NAT (nftables DNAT, round
//! robin) in place of the tap director: it proves the topology and the harness alone.
//!
//! Needs root (skips, printing why, otherwise), iproute2, ethtool, curl, python3 and
//! nftables (scripts/check.sh installs them); builds the release binaries itself.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lvs_tests::netns::{
    Family, Guarded, Mode, Options, Topology, files_dir, first_difference, parse_stats,
    skip_reason, test_file, wait_until,
};

const BIG: u64 = 100 << 20;
const LOAD: u64 = 8 << 20;
/// The rate of each download while a real server is removed: LOAD takes 8 s at it, so
/// the removal always lands mid-transfer.
const LOAD_RATE: &str = "1M";

/// The files the real servers serve, made once per run (the tests run in parallel).
fn files() -> (PathBuf, PathBuf) {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FILES
        .get_or_init(|| {
            let dir = files_dir();
            (
                test_file(&dir.join("big.bin"), BIG),
                test_file(&dir.join("load.bin"), LOAD),
            )
        })
        .clone()
}

/// `n` connections to `/peer` through the VIP: how many each real server answered. Each
/// peer address must be `peer`.
fn distribution(t: &Topology, family: Family, n: usize, peer: &str) -> [usize; 3] {
    let mut counts = [0; 3];
    for _ in 0..n {
        let (rs, seen) = t.peer(family);
        assert!((1..=3).contains(&rs), "real server {rs}?");
        assert_eq!(seen, peer, "rs{rs} saw the connection come from {seen}");
        counts[rs - 1] += 1;
    }
    counts
}

/// The expected peer address at the real server.
fn expected_peer(mode: Mode, family: Family) -> &'static str {
    if mode == Mode::FullNat {
        family.laddr()
    } else {
        family.client()
    }
}

fn big_download(t: &Topology, family: Family, big: &Path) {
    let out = t.state.join("big.out");
    let url = format!("http://{}/big.bin", family.vip_host());
    let start = Instant::now();
    let r = t
        .command("c", "curl")
        .args(["-sS", "-g", "--max-time", "300", "-o"])
        .arg(&out)
        .arg(&url)
        .output()
        .expect("curl");
    let secs = start.elapsed().as_secs_f64();
    assert!(
        r.status.success(),
        "curl {url}: {}\n{}",
        r.status,
        String::from_utf8_lossy(&r.stderr)
    );
    if let Some(diff) = first_difference(big, &out) {
        panic!("{url} arrived damaged: {diff}");
    }
    println!(
        "[{}] {} MiB through the VIP in {secs:.2} s ({:.1} MB/s), byte-exact",
        t.tag,
        BIG >> 20,
        BIG as f64 / secs / 1e6
    );
    let _ = fs::remove_file(out);
}

/// The `X-Real-Server` of a dumped header file, once it is there.
fn header_server(path: &Path) -> Option<usize> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let v = l.strip_prefix("X-Real-Server: rs")?;
        v.trim().parse().ok()
    })
}

fn remove_under_load(t: &Topology, mode: Mode, family: Family, load: &Path) {
    let svc = family.service();
    t.lvsadm_ok(&["-E", "-t", &svc, "-s", "rr"]);
    let url = format!("http://{}/load.bin", family.vip_host());
    let mut downloads = Vec::new();
    for k in 0..3 {
        let hdr = t.state.join(format!("load{k}.hdr"));
        let out = t.state.join(format!("load{k}.out"));
        let child = t
            .command("c", "curl")
            .args(["-sS", "-g", "--limit-rate", LOAD_RATE])
            .args([
                "--speed-limit",
                "1000",
                "--speed-time",
                "5",
                "--max-time",
                "120",
            ])
            .arg("-D")
            .arg(&hdr)
            .arg("-o")
            .arg(&out)
            .arg(&url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl");
        downloads.push((Guarded(child), hdr, out));
    }
    let servers: Vec<usize> = downloads
        .iter()
        .map(|(_, hdr, _)| {
            wait_until(
                "a download's response header",
                Duration::from_secs(30),
                || header_server(hdr),
            )
        })
        .collect();
    assert_eq!(
        servers.iter().collect::<BTreeSet<_>>().len(),
        3,
        "rr put the three downloads on {servers:?}"
    );
    for (child, _, _) in &mut downloads {
        assert!(
            child.0.try_wait().expect("try_wait").is_none(),
            "a {} MiB download at {LOAD_RATE}/s finished before the removal",
            LOAD >> 20
        );
    }
    let victim = servers.iter().position(|&s| s == 2).expect("rs2 has one");
    t.lvsadm_ok(&["-d", "-t", &svc, "-r", &family.real_server(2)]);
    println!("[{}] removed rs2 under load", t.tag);

    // New connections go to the two servers left, in turn.
    let counts = distribution(t, family, 6, expected_peer(mode, family));
    assert_eq!(counts, [3, 0, 3], "new connections after removing rs2");

    // The other family's service, untouched, still has all three (rr: one each).
    let other = match family {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    };
    let counts = distribution(t, other, 3, expected_peer(mode, other));
    assert_eq!(
        counts,
        [1, 1, 1],
        "the {other:?} service after removing rs2"
    );

    let listing = t.lvsadm_ok(&["-L", "-n"]);
    let rs2 = family.real_server(2);
    assert!(
        !listing.contains(&format!("-> {rs2} ")),
        "rs2 still listed:\n{listing}"
    );

    for (k, (mut child, _, out)) in downloads.into_iter().enumerate() {
        let status = wait_until("a download to end", Duration::from_secs(120), || {
            child.0.try_wait().expect("try_wait")
        });
        let mut err = String::new();
        if let Some(mut e) = child.0.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        if k == victim {
            let got = fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            assert!(
                !status.success() && got < LOAD,
                "the removed server's download should have ended early: {status}, \
                 {got} of {LOAD} bytes"
            );
            println!(
                "[{}] rs2's download ended after {got} bytes: {}",
                t.tag,
                err.trim()
            );
        } else {
            assert!(
                status.success(),
                "rs{}'s download failed: {status}: {err}",
                servers[k]
            );
            if let Some(diff) = first_difference(load, &out) {
                panic!("rs{}'s download arrived damaged: {diff}", servers[k]);
            }
        }
    }
}

/// Whether test `name` cannot run here (printed): checked before making any file.
fn skipped(name: &str) -> bool {
    let why = skip_reason();
    if let Some(why) = &why {
        println!("skipping {name}: {why}");
    }
    why.is_some()
}

fn scenario(name: &str, mode: Mode, family: Family) {
    if skipped(name) {
        return;
    }
    let (big, load) = files();
    let opts = Options {
        serve: vec![big.clone(), load.clone()],
        ..Options::default()
    };
    let Some(t) = Topology::up(name, mode, &opts) else {
        return;
    };
    let peer = expected_peer(mode, family);
    let svc = family.service();

    let start = Instant::now();
    let rr = distribution(&t, family, 30, peer);
    assert_eq!(rr, [10, 10, 10], "rr over 30 connections");

    t.lvsadm_ok(&["-E", "-t", &svc, "-s", "wrr"]);
    for (n, w) in [(1, "3"), (2, "2"), (3, "1")] {
        let rs = family.real_server(n);
        t.lvsadm_ok(&["-e", "-t", &svc, "-r", &rs, mode.flag(), "-w", w]);
    }
    let wrr = distribution(&t, family, 60, peer);
    assert_eq!(wrr, [30, 20, 10], "wrr 3:2:1 over 60 connections");
    println!(
        "[{}] rr {rr:?}, wrr {wrr:?}, peer {peer}, in {:.2?}",
        t.tag,
        start.elapsed()
    );

    let listing = t.lvsadm_ok(&["-L", "-n", "--stats"]);
    println!("{listing}");
    let stats = parse_stats(&listing);
    let head = format!("TCP {svc}");
    let at = stats
        .iter()
        .position(|s| s.name == head)
        .unwrap_or_else(|| panic!("no {head} in:\n{listing}"));
    let service = &stats[at];
    let reals: Vec<_> = stats[at + 1..]
        .iter()
        .take_while(|s| s.name.starts_with("->"))
        .collect();
    assert_eq!(service.counters[0], 90, "Conns of {head}:\n{listing}");
    assert_eq!(
        reals.iter().map(|s| s.counters[0]).collect::<Vec<_>>(),
        [40, 30, 20],
        "Conns per real server:\n{listing}"
    );
    assert!(service.counters[1] >= 90 * 4, "InPkts:\n{listing}");
    match mode {
        Mode::Dr | Mode::Tun => {
            for s in std::iter::once(service).chain(reals.iter().copied()) {
                assert_eq!(
                    s.counters[2], 0,
                    "a reply crossed the director ({}):\n{listing}",
                    s.name
                );
            }
        }
        _ => assert!(service.counters[2] >= 90 * 3, "OutPkts:\n{listing}"),
    }
    if mode == Mode::Tun {
        for n in 1..=3 {
            let rx = t.if_stat(&format!("r{n}"), "lvstun0", "rx_packets");
            assert!(rx >= 40, "rs{n}'s TUN device received {rx} packets");
        }
    }

    big_download(&t, family, &big);
    remove_under_load(&t, mode, family, &load);
    println!("[{}] passed in {:.2?}", t.tag, start.elapsed());
}

#[test]
fn nat_ipv4() {
    scenario("nat4", Mode::Nat, Family::V4);
}

#[test]
fn nat_ipv6() {
    scenario("nat6", Mode::Nat, Family::V6);
}

#[test]
fn dr_ipv4() {
    scenario("dr4", Mode::Dr, Family::V4);
}

#[test]
fn dr_ipv6() {
    scenario("dr6", Mode::Dr, Family::V6);
}

#[test]
fn tun_ipv4() {
    scenario("tun4", Mode::Tun, Family::V4);
}

#[test]
fn tun_ipv6() {
    scenario("tun6", Mode::Tun, Family::V6);
}

#[test]
fn fullnat_ipv4() {
    scenario("fullnat4", Mode::FullNat, Family::V4);
}

#[test]
fn fullnat_ipv6() {
    scenario("fullnat6", Mode::FullNat, Family::V6);
}

/// The topology and the harness with Linux's own NAT (nftables DNAT, round robin) in
/// place of the tap director: if this fails, the machine is the problem, not the director.
#[test]
fn kernel_nat_stand_in() {
    if skipped("kern") {
        return;
    }
    let (big, _) = files();
    let opts = Options {
        serve: vec![big.clone()],
        ..Options::default()
    };
    let Some(t) = Topology::up("kern", Mode::Kernel, &opts) else {
        return;
    };
    for family in [Family::V4, Family::V6] {
        let counts = distribution(&t, family, 30, family.client());
        assert_eq!(counts, [10, 10, 10], "numgen round robin, {family:?}");
        big_download(&t, family, &big);
    }
}
