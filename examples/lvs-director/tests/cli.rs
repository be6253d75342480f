//! `lvs-director`'s flags and `--check`: good flags parse to what they say, bad ones are
//! refused with the flag, the value and why; `--check` prints exactly the listing
//! `ipvsadm -L -n` gives for the rules, and a bad rule line exits non-zero naming the
//! file and the line. No root needed.

mod common;

use std::net::IpAddr;

use clap::Parser;
use common::{TempDir, director, run};
use lvs_director::flags::{Args, Cidr, Mac};
use lvs_director::ipvsadm;
use lvs_director::setup;

fn parse(argv: &[&str]) -> Result<Args, String> {
    let args = Args::try_parse_from(std::iter::once("lvs-director").chain(argv.iter().copied()))
        .map_err(|e| e.to_string())?;
    args.validate()?;
    Ok(args)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn good_flags_parse_to_what_they_say() {
    let a = parse(&[
        "--iface",
        "lvs0,ip=192.0.2.1/24,ip=2001:db8::1/64,mac=02:00:5e:00:53:01,mtu=9000",
        "--iface",
        "lvs1,ip=10.0.0.1/24",
        "--route",
        "0.0.0.0/0,via=192.0.2.254",
        "--route",
        "::/0,via=2001:db8::fe,iface=lvs0",
        "--route",
        "172.16.0.0/12,via=10.0.0.254",
        "--neigh",
        "10.0.0.11=02:00:00:00:00:11",
        "--laddr",
        "10.0.0.100",
        "--laddr",
        "2001:db8::100",
        "--vip-iface",
        "lvs0",
        "--conns",
        "1000",
        "--control",
        "/tmp/x.sock",
    ])
    .unwrap();
    assert_eq!(a.ifaces.len(), 2);
    let i = &a.ifaces[0];
    assert_eq!(i.name, "lvs0");
    assert_eq!(
        i.addrs,
        vec![
            Cidr {
                addr: ip("192.0.2.1"),
                prefix: 24
            },
            Cidr {
                addr: ip("2001:db8::1"),
                prefix: 64
            }
        ]
    );
    assert_eq!(i.mac(), Mac([0x02, 0x00, 0x5e, 0x00, 0x53, 0x01]));
    assert_eq!(i.mtu(), 9000);
    assert_eq!(a.ifaces[1].mtu(), 1500);
    assert_eq!(a.ifaces[1].mac(), Mac::from_name("lvs1"));
    assert_eq!(a.routes.len(), 3);
    assert_eq!(a.route_port(&a.routes[0]), 0);
    assert_eq!(a.route_port(&a.routes[1]), 0);
    // The gateway's subnet picks the port.
    assert_eq!(a.route_port(&a.routes[2]), 1);
    assert_eq!(a.neighs[0].ip, ip("10.0.0.11"));
    assert_eq!(a.laddrs, vec![ip("10.0.0.100"), ip("2001:db8::100")]);
    assert_eq!(a.vip_port(), 0);
    assert_eq!(a.conns, 1000);
    assert_eq!(a.control_path().to_str(), Some("/tmp/x.sock"));
}

#[test]
fn vip_iface_defaults_to_the_first_and_can_be_another() {
    let a = parse(&["--iface", "a", "--iface", "b"]).unwrap();
    assert_eq!(a.vip_port(), 0);
    let b = parse(&["--iface", "a", "--iface", "b", "--vip-iface", "b"]).unwrap();
    assert_eq!(b.vip_port(), 1);
}

#[test]
fn bad_flags_name_the_value_and_why() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--iface", "lvs0,ip=192.0.2.1"],
            "`192.0.2.1` has no /PREFIX",
        ),
        (
            &["--iface", "lvs0,ip=192.0.2.1/33"],
            "`33` is not a prefix length from 0 to 32",
        ),
        (
            &["--iface", "lvs0,ip=nope/24"],
            "`nope` is not an IP address",
        ),
        (
            &["--iface", "lvs0,mac=02:00:00:00:00"],
            "is not a MAC address",
        ),
        (
            &["--iface", "lvs0,mac=01:00:5e:00:00:01"],
            "is a multicast MAC address",
        ),
        (
            &["--iface", "lvs0,mtu=100"],
            "mtu=100: not a number from 576 to 65521",
        ),
        (
            &["--iface", "lvs0,speed=10"],
            "`speed=`: expected ip=, mac= or mtu=",
        ),
        (&["--iface", "a-name-much-too-long"], "longer than 15 bytes"),
        (&["--iface", ",ip=192.0.2.1/24"], "no interface name"),
        (&["--iface", "a", "--iface", "a"], "--iface a: given twice"),
        (&["--iface", "a", "--route", "0.0.0.0/0"], "no via=ADDR"),
        (
            &[
                "--iface",
                "a,ip=192.0.2.1/24",
                "--route",
                "0.0.0.0/0,via=2001:db8::1",
            ],
            "not of the prefix's family",
        ),
        (
            &[
                "--iface",
                "a",
                "--route",
                "0.0.0.0/0,via=192.0.2.254,iface=b",
            ],
            "iface=b is not an --iface",
        ),
        (
            &[
                "--iface",
                "a,ip=10.0.0.1/24",
                "--route",
                "0.0.0.0/0,via=192.0.2.254",
            ],
            "no --iface has a subnet holding the gateway 192.0.2.254",
        ),
        (
            &["--iface", "a", "--neigh", "10.0.0.1"],
            "expected ADDR=MAC",
        ),
        (
            &["--iface", "a", "--neigh", "10.0.0.1=zz"],
            "`zz` is not a MAC address",
        ),
        (
            &["--iface", "a", "--laddr", "10.0.0.1", "--laddr", "10.0.0.1"],
            "given twice",
        ),
        (
            &["--iface", "a", "--vip-iface", "b"],
            "--vip-iface b: not an --iface",
        ),
        (&["--iface", "a", "--replay", "x.pcap"], "--write"),
        (&["--iface", "a", "--conns", "0"], "--conns"),
        (&["--rules", "r"], "at least one --iface"),
        (
            &[
                "--iface", "a", "--iface", "b", "--iface", "c", "--iface", "d", "--iface", "e",
            ],
            "--iface: 5 given, the director takes at most 4",
        ),
        (&["--iface", "a", "--bogus"], "--bogus"),
    ];
    for (argv, want) in cases {
        let e = parse(argv).expect_err(&format!("{argv:?} should be refused"));
        assert!(e.contains(want), "{argv:?}: {e:?} does not say {want:?}");
    }
}

#[test]
fn the_binary_refuses_bad_flags_with_status_2() {
    let (out, err, code) = run(director().args(["--iface", "lvs0,ip=192.0.2.1"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("--iface") && err.contains("has no /PREFIX"),
        "{err}"
    );
    let (_, err, code) = run(director().args(["--iface", "a", "--iface", "a", "--check"]));
    assert_eq!(code, Some(2));
    assert_eq!(err, "lvs-director: --iface a: given twice\n");
}

const RULES: &str = "\
# web
-A -t 203.0.113.10:80 -s rr
-a -t 203.0.113.10:80 -r 10.0.0.11:8080 -m -w 1
-a -t 203.0.113.10:80 -r 10.0.0.12:8080 -m -w 2

-A -t 203.0.113.10:443 -s wlc -p 600
-a -t 203.0.113.10:443 -r 10.0.0.11:443 -g -w 1
-A -u [2001:db8:f::10]:53 -s sh -b sh-port
-a -u [2001:db8:f::10]:53 -r [2001:db8:1::11]:53 -i -w 3
-A -f 7 -s lc
-a -f 7 -r 10.0.0.13:0 -g -w 1
-A -t 203.0.113.11:80 -s wrr
-a -t 203.0.113.11:80 -r 10.0.0.14:80 -b -w 1
";

const LISTING: &str = "\
IP Virtual Server version 1.2.1 (size=2048)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  203.0.113.10:80 rr
  -> 10.0.0.11:8080               Masq    1      0          0         
  -> 10.0.0.12:8080               Masq    2      0          0         
TCP  203.0.113.10:443 wlc persistent 600
  -> 10.0.0.11:443                Route   1      0          0         
TCP  203.0.113.11:80 wrr
  -> 10.0.0.14:80                 FullNat 1      0          0         
UDP  [2001:db8:f::10]:53 sh (sh-port)
  -> [2001:db8:1::11]:53          Tunnel  3      0          0         
FWM  7 lc
  -> 10.0.0.13:0                  Route   1      0          0         
";

#[test]
fn check_prints_the_ipvsadm_listing() {
    let dir = TempDir::new("check");
    let rules = dir.write("lvs.rules", RULES);
    let rules = rules.to_str().unwrap();
    let (out, err, code) = run(director().args([
        "--rules",
        rules,
        "--laddr",
        "10.0.0.100",
        "--conns",
        "1024",
        "--check",
    ]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        err,
        "lvs-director: warning: --laddr 10.0.0.100: on no --iface's subnet; ARP/NDP for it is answered on the VIP port\n"
    );
    // The listing of the same rules restored into a director by the ipvsadm module.
    let a = parse(&[
        "--rules",
        rules,
        "--laddr",
        "10.0.0.100",
        "--conns",
        "1024",
        "--check",
    ])
    .unwrap();
    let d = setup::build(&a, lvs_core::time::Instant::ZERO, 0).unwrap();
    let want = ipvsadm::list(&d, &Default::default(), lvs_core::time::Instant::ZERO).unwrap();
    assert_eq!(out, want);
    // And ipvsadm's layout, byte for byte.
    assert_eq!(out, LISTING);
    // With ports too: the flags are checked, nothing is opened.
    let (out2, err, code) = run(director().args([
        "--iface",
        "lvs-no-such0,ip=10.0.0.1/24",
        "--rules",
        rules,
        "--laddr",
        "10.0.0.100",
        "--conns",
        "1024",
        "--check",
    ]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out2, LISTING);
    assert!(!std::path::Path::new("/sys/class/net/lvs-no-such0").exists());
}

#[test]
fn check_names_the_file_and_line_of_a_bad_rule() {
    let dir = TempDir::new("badrule");
    let cases = [
        (
            "-A -t 203.0.113.10:80 -s rr\n\n-a -t 203.0.113.10:80 -r 10.0.0.11 -w 70000\n",
            ":3: illegal weight specified: `70000' (0 to 65535)",
        ),
        (
            "-A -t 203.0.113.10:80 -s nope\n",
            ":1: unknown scheduler \"nope\"",
        ),
        (
            "-A -t 203.0.113.10:80\n-A -t 203.0.113.10:80\n",
            ":2: Service already exists",
        ),
        (
            "# comment\n-a -t 203.0.113.10:80 -r 10.0.0.11\n",
            ":2: Service not defined",
        ),
        (
            "-A -t 203.0.113.10:80\n-a -t 203.0.113.10:80 -r 10.0.0.11 -b\n",
            ":2: FULLNAT needs a local address of this family",
        ),
        ("-L -n\n", ":1: 'list' is not a rule"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = dir.write(&format!("bad{i}.rules"), text);
        let (out, err, code) = run(director().args(["--rules", path.to_str().unwrap(), "--check"]));
        assert_eq!(code, Some(1), "{text:?}: {err}");
        assert!(out.is_empty(), "{out}");
        let want = format!("lvs-director: {}{want}", path.display());
        assert!(
            err.starts_with(&want),
            "{err:?} does not start with {want:?}"
        );
    }
    let (_, err, code) = run(director().args(["--rules", "/nonexistent/lvs.rules", "--check"]));
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("lvs-director: /nonexistent/lvs.rules: No such file or directory"),
        "{err}"
    );
}
