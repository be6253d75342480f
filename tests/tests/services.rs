//! The director's service lookup (an index over the service slots, rebuilt on every add
//! and delete) against a plain model: after any sequence of `ipvsadm -A`/`-D`, every
//! key finds exactly the service added under it, or none. Enough services for the
//! index's home slots to collide and to overflow its probe window (the index then falls
//! back to a scan), IPv4 and IPv6 addresses, port-zero (persistent) and fwmark
//! services. New connections then reach the service their packet names: its own port,
//! else the address's port-zero service.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_core::director::{ServiceKey, Verdict};
use lvs_tests::director::*;
use lvs_tests::frames::{self, Flow};
use proptest::prelude::*;

/// A service by its words: 12 addresses (4 of them IPv6), ports 0 (persistent) or
/// 1..=5, TCP or UDP, or fwmark 1..=6 of either family.
fn words(k: u16) -> String {
    let k = k % 180;
    if k >= 168 {
        let mark = 1 + (k - 168) / 2;
        return if k.is_multiple_of(2) {
            format!("-f {mark} -s rr")
        } else {
            format!("-f {mark} -6 -s rr")
        };
    }
    let (a, rest) = (k % 12, k / 12);
    let (port, udp) = (rest % 7, rest >= 7);
    let addr = addr(a);
    let ep = match addr {
        IpAddr::V4(_) => format!("{addr}:{port}"),
        IpAddr::V6(_) => format!("[{addr}]:{port}"),
    };
    let proto = if udp { "-u" } else { "-t" };
    let persist = if port == 0 { " -p 300" } else { "" };
    format!("{proto} {ep} -s rr{persist}")
}

fn addr(a: u16) -> IpAddr {
    if a < 8 {
        IpAddr::V4(Ipv4Addr::new(10, 0, a as u8, 1))
    } else {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, a, 0, 0, 0, 1))
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(u16),
    Delete(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u16..180).prop_map(Op::Add),
        1 => (0u16..180).prop_map(Op::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_service_lookup_matches_a_model(ops in prop::collection::vec(op(), 1..300)) {
        let caps = Caps { services: 200, ..Caps::default() };
        let mut h = Harness::with(caps, config());
        let keys: Vec<ServiceKey> = (0..180).map(|k| service_spec(&words(k)).key).collect();
        let mut model = BTreeSet::new();
        for op in &ops {
            match *op {
                Op::Add(k) => {
                    let r = h.d.add_service(service_spec(&words(k)), secs(1));
                    prop_assert_eq!(r.is_ok(), model.insert(k), "add {}", words(k));
                }
                Op::Delete(k) => {
                    let r = h.d.delete_service(&keys[k as usize]);
                    prop_assert_eq!(r.is_ok(), model.remove(&k), "delete {}", words(k));
                }
            }
            for (k, key) in keys.iter().enumerate() {
                let found = h.d.service(key).map(|s| s.spec().key);
                let want = model.contains(&(k as u16)).then_some(*key);
                prop_assert_eq!(found, want, "lookup {}", words(k as u16));
            }
        }
    }
}

/// A SYN to `vip:port` from a fresh client: `Forward` when a service took it.
fn syn_to(h: &mut Harness, vip: IpAddr, port: u16, n: u16) -> Verdict {
    let client = match vip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10)),
    };
    let f = Flow {
        src: client,
        dst: vip,
        sport: 40000 + n,
        dport: port,
    };
    h.step(secs(2), &frames::tcp(&f, 0x02, &[])).0
}

#[test]
fn new_connections_find_their_port_or_the_port_zero_service() {
    let mut h = Harness::new();
    let a = addr(1);
    let exact = h.add_service(&format!("-t {a}:80 -s rr"));
    h.add_dest(&exact, "-r 10.9.0.1 -g -w 1");
    // No port-zero service yet: another port of the address is not a service's.
    assert_eq!(syn_to(&mut h, a, 81, 1), Verdict::Local);
    assert!(matches!(syn_to(&mut h, a, 80, 2), Verdict::Forward { .. }));
    let any = h.add_service(&format!("-t {a}:0 -s rr -p 300"));
    h.add_dest(&any, "-r 10.9.0.2 -g -w 1");
    let to = |v: Verdict| match v {
        Verdict::Forward { next_hop, .. } => next_hop,
        v => panic!("not forwarded: {v:?}"),
    };
    assert_eq!(to(syn_to(&mut h, a, 81, 3)), addr_of("10.9.0.2"));
    assert_eq!(to(syn_to(&mut h, a, 80, 4)), addr_of("10.9.0.1"));
    h.d.delete_service(&any).expect("delete");
    assert_eq!(syn_to(&mut h, a, 82, 5), Verdict::Local);
}

fn addr_of(s: &str) -> IpAddr {
    s.parse().expect("address")
}
