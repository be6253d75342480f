//! `lvs-director` on a real tap device, in a network namespace of its own, with
//! `lvsadm` talking to it: the tap comes up, frames written to the tap's kernel side
//! (an `AF_PACKET` socket in the namespace) reach the director and its answers and
//! forwarded frames come back; a refused command leaves it running; SIGTERM stops it
//! cleanly (exit 0, socket removed, tap gone); and without CAP_NET_ADMIN it says which
//! tap and why.
//!
//! Needs root, `ip` (iproute2), `setpriv` and `/dev/net/tun`; without root each test
//! prints why and passes without running. Every test makes its own namespace (named
//! after this process and the test) and removes it in [`Lab`]'s `Drop`, panics
//! included; nothing touches the root namespace's network.

mod common;

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{TempDir, fixtures, root_skip_reason, run, wait_for};

const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const NAT_RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x15];

/// A namespace, a temporary directory, and the director running in them; all removed
/// on drop.
struct Lab {
    ns: String,
    dir: TempDir,
    child: Option<Child>,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let ns = format!("lvsd-{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let ok = Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {ns}");
        Lab {
            ns,
            dir: TempDir::new(tag),
            child: None,
        }
    }

    fn control(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }

    /// Starts the director in the namespace and waits for its ready line.
    fn start(&mut self, args: &[&str]) -> String {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(env!("CARGO_BIN_EXE_lvs-director"))
            .args(args)
            .arg("--control")
            .arg(self.control())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lvs-director");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let out = self.child.take().unwrap();
                let _ = kill_child(&out);
                let o = out.wait_with_output().unwrap();
                panic!(
                    "lvs-director did not get ready: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }

    fn lvsadm(&self, args: &[&str]) -> (String, String, Option<i32>) {
        run(Command::new(env!("CARGO_BIN_EXE_lvsadm"))
            .arg("--control")
            .arg(self.control())
            .args(args))
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// An AF_PACKET socket on `iface`'s kernel side, in the namespace.
    fn packet_socket(&self, iface: &str) -> OwnedFd {
        let ns = self.ns.clone();
        let iface = iface.to_string();
        std::thread::spawn(move || packet_socket_in(&ns, &iface))
            .join()
            .expect("packet socket thread")
    }
}

/// SIGKILL by the child's own id (never by name).
fn kill_child(c: &Child) -> std::io::Result<()> {
    Command::new("kill")
        .args(["-KILL", &c.id().to_string()])
        .status()
        .map(drop)
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = kill_child(&c);
            }
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

fn cvt(r: i32, what: &str) -> i32 {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    r
}

/// Joins the namespace (this thread only) and opens a packet socket bound to `iface`
/// with a short receive timeout.
fn packet_socket_in(ns: &str, iface: &str) -> OwnedFd {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("namespace file");
    // SAFETY: setns on an open namespace descriptor; it moves only this thread.
    cvt(
        unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) },
        "setns",
    );
    let name = CString::new(iface).unwrap();
    // SAFETY: a NUL-terminated name that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert!(index != 0, "{iface}: {}", std::io::Error::last_os_error());
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket() takes no pointers.
    let fd = cvt(
        unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                proto.into(),
            )
        },
        "AF_PACKET socket",
    );
    // SAFETY: a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: proto,
        sll_ifindex: index as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: a valid sockaddr_ll of the length given.
    cvt(
        unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        },
        "bind",
    );
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: a live timeval of the size given; the kernel copies it.
    cvt(
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        },
        "SO_RCVTIMEO",
    );
    fd
}

fn send(fd: &OwnedFd, frame: &[u8]) {
    // SAFETY: a live buffer of the length given.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n,
        frame.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
}

/// Waits up to `limit` for a frame from the director that `want` accepts.
fn expect_frame(
    fd: &OwnedFd,
    what: &str,
    limit: Duration,
    want: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        // SAFETY: a live buffer of the length given.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            continue;
        }
        let f = &buf[..n as usize];
        if f.len() >= 14 && f[6..12] == DIRECTOR_MAC && want(f) {
            return f.to_vec();
        }
    }
    panic!("no {what} from the director within {limit:?}");
}

/// The frames of the replay fixture: the same topology serves here.
fn fixture_frames() -> Vec<Vec<u8>> {
    let mut r = pcap_file::pcap::PcapReader::new(
        std::fs::File::open(fixtures().join("replay_in.pcap")).unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

fn skip() -> bool {
    if let Some(why) = root_skip_reason() {
        eprintln!("skipped: {why}");
        return true;
    }
    false
}

#[test]
fn director_on_a_tap_forwards_answers_and_stops_cleanly() {
    if skip() {
        return;
    }
    let mut lab = Lab::new("live");
    let rules = fixtures().join("replay.rules");
    let trace = lab.dir.join("trace.pcap");
    let ready = lab.start(&[
        "--iface",
        "lvd0,ip=192.0.2.1/24,mac=02:00:00:00:00:01,mtu=1400",
        "--route",
        "0.0.0.0/0,via=192.0.2.254",
        "--neigh",
        "192.0.2.254=02:00:00:00:00:fe",
        "--neigh",
        "192.0.2.21=02:00:00:00:00:15",
        "--laddr",
        "192.0.2.100",
        "--rules",
        rules.to_str().unwrap(),
        "--pcap",
        trace.to_str().unwrap(),
    ]);
    assert!(
        ready.starts_with("lvs-director: ready: port 0 lvd0"),
        "{ready}"
    );

    // The tap is up, with the MTU asked for.
    let link = run(Command::new("ip").args(["-n", &lab.ns, "-o", "link", "show", "lvd0"])).0;
    assert!(link.contains(",UP") && link.contains("mtu 1400"), "{link}");

    // The rules are loaded.
    let (out, err, code) = lab.lvsadm(&["-L", "-n"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("TCP  192.0.2.10:80 rr\n  -> 192.0.2.21:8080"),
        "{out}"
    );

    let sock = lab.packet_socket("lvd0");
    let frames = fixture_frames();
    // ARP for the VIP: answered.
    send(&sock, &frames[0]);
    expect_frame(
        &sock,
        "ARP reply for the VIP",
        Duration::from_secs(5),
        |f| f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] && f[28..32] == [192, 0, 2, 10],
    );
    // A SYN to the NAT service: forwarded to the real server's MAC, address and port.
    send(&sock, &frames[3]);
    let fwd = expect_frame(&sock, "the forwarded SYN", Duration::from_secs(5), |f| {
        f[0..6] == NAT_RS_MAC && f[12..14] == [0x08, 0x00]
    });
    assert_eq!(fwd[30..34], [192, 0, 2, 21], "destination address");
    assert_eq!(fwd[36..38], 8080u16.to_be_bytes(), "destination port");

    // Stats are readable any time.
    let stats = wait_for("the connection in --stats", Duration::from_secs(5), || {
        let (out, _, _) = lab.lvsadm(&["-L", "-n", "--stats"]);
        out.lines()
            .find(|l| l.starts_with("TCP  192.0.2.10:80"))
            .filter(|l| l.split_whitespace().nth(2) == Some("1"))
            .map(str::to_string)
    });
    let cols: Vec<&str> = stats.split_whitespace().collect();
    assert_eq!(&cols[2..5], &["1", "1", "0"], "{stats}");
    let (conns, _, _) = lab.lvsadm(&["-L", "-n", "-c"]);
    assert!(
        conns.contains("TCP ")
            && conns.contains("SYN_RECV    198.51.100.7:40000 192.0.2.10:80      192.0.2.21:8080"),
        "{conns}"
    );

    // A refused command: ipvsadm's message and status, and the director runs on.
    let (_, err, code) = lab.lvsadm(&["-D", "-t", "9.9.9.9:80"]);
    assert_eq!((code, err.as_str()), (Some(255), "No such service\n"));
    let (_, err, code) = lab.lvsadm(&["-A", "-t", "9.9.9.9:80", "-s", "bogus"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(lab.running());
    let (_, _, code) = lab.lvsadm(&["-A", "-t", "9.9.9.9:80"]);
    assert_eq!(code, Some(0));

    // SIGTERM: exit 0, socket removed, the tap (made by the director) gone.
    let mut child = lab.child.take().unwrap();
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = wait_for("the director to stop", Duration::from_secs(10), || {
        child.try_wait().unwrap()
    });
    let err = {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut s).unwrap();
        s
    };
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("lvd0: rx "), "{err}");
    assert!(!lab.control().exists(), "the control socket is removed");
    let gone = Command::new("ip")
        .args(["-n", &lab.ns, "link", "show", "lvd0"])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the tap is gone with the director");

    // --pcap traced both directions: the SYN in, and out to the real server.
    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(&trace).unwrap()).unwrap();
    let mut traced = Vec::new();
    while let Some(p) = r.next_packet() {
        traced.push(p.unwrap().data.into_owned());
    }
    assert!(traced.contains(&frames[3]), "the SYN as received");
    assert!(traced.contains(&fwd), "the SYN as forwarded");
}

#[test]
fn without_cap_net_admin_the_director_names_the_tap_and_why() {
    if skip() {
        return;
    }
    let have_setpriv = Command::new("setpriv")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_setpriv {
        eprintln!("skipped: no setpriv (util-linux)");
        return;
    }
    let lab = Lab::new("perm");
    let (out, err, code) = run(Command::new("ip")
        .args(["netns", "exec", &lab.ns])
        .args([
            "setpriv",
            "--inh-caps=-net_admin",
            "--bounding-set=-net_admin",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_lvs-director"))
        .args(["--iface", "lvdp0,ip=192.0.2.1/24", "--control"])
        .arg(lab.control()));
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with("lvs-director: tap lvdp0: TUNSETIFF: Operation not permitted"),
        "{err}"
    );
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    assert!(!lab.control().exists());
}

#[test]
fn a_second_director_on_the_same_socket_is_refused_and_the_first_runs_on() {
    if skip() {
        return;
    }
    let mut lab = Lab::new("twice");
    lab.start(&["--iface", "lvd0,ip=192.0.2.1/24"]);
    let (_, err, code) = run(Command::new("ip")
        .args(["netns", "exec", &lab.ns])
        .arg(env!("CARGO_BIN_EXE_lvs-director"))
        .args(["--iface", "lvd1,ip=192.0.2.1/24", "--control"])
        .arg(lab.control()));
    assert_eq!(code, Some(1));
    assert!(err.contains("another director is listening there"), "{err}");
    assert!(lab.running());
    let (_, _, code) = lab.lvsadm(&["-L", "-n"]);
    assert_eq!(code, Some(0));
}
