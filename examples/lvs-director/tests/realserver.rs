//! `lvs-realserver` in network namespaces: tunnelled packets in, direct replies out.
//!
//! Needs root, `ip` (iproute2) and `/dev/net/tun`; without them each test prints why and
//! passes without running. Every test makes its own namespaces (named after the test and
//! this process), veth pairs and processes, sends traffic only inside them, and removes
//! them all in [`Lab`]'s `Drop`, panics included.
//!
//! Topology (addresses from the documentation ranges, inside the namespaces only):
//!
//! ```text
//!   C (client)            D (director)                       R (real server)
//!   vc 198.51.100.7 ---- vdc 198.51.100.1   vd 192.0.2.1 ---- vr 192.0.2.2
//!      2001:db8:c::7         2001:db8:c::1     2001:db8:1::1      2001:db8:1::2
//!                                                                 lvs0 (TUN): VIPs
//!                                                                 203.0.113.10
//!                                                                 2001:db8:f::10
//! ```
//!
//! - `decapsulates_every_tunnel_kind`: D injects hand-built TCP SYNs to VIP:80, wrapped by
//!   `lvs_core::fwd::tun::encap` (4in4, 6in6, 4in6, 6in4), on an `AF_PACKET` socket; the
//!   test captures on D's veth the SYN-ACK that R's own stack sends from the VIP straight
//!   to the client, unencapsulated, acknowledging exactly that SYN's sequence number.
//! - `full_tcp_exchange_through_the_tunnel`: C connects to the VIPs with real sockets; a
//!   small director loop in D encapsulates C's frames to R; R's replies come back through
//!   D's routing, never through the loop; the echo server's answer arrives intact.
//! - `without_sysctls_or_sink_the_kernel_drops_and_complains`: the two kernel behaviours
//!   the binary works around, shown with its workarounds turned off.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use lvs_core::fwd::{self, tun};
use lvs_core::wire::{
    EtherType, EthernetAddress, EthernetFrame, FrameInfo, IpProtocol, Ipv4Packet, Ipv6Packet,
    L4Info, TcpFlags, TcpPacket,
};
use lvs_director::realserver::complete_checksum;

const BIN: &str = env!("CARGO_BIN_EXE_lvs-realserver");

const MAC_D: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_R: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const MAC_DC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0d];
const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];

const DIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const RIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
const DIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1));
const RIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2));
const VIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x10));
const CIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const CIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7));

// ---------------------------------------------------------------------------------------
// The lab: namespaces, devices and processes, removed on drop.

/// Why the tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces, veth and TUN need it)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("no `ip` command (iproute2)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    None
}

struct RealServer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

struct Lab {
    name: String,
    namespaces: Vec<String>,
    servers: Vec<RealServer>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Lab {
    /// A new lab for test `name`, or `None` (after printing why) when it cannot run.
    fn new(name: &str) -> Option<Lab> {
        if let Some(why) = skip_reason() {
            println!("skipping {name}: {why}");
            return None;
        }
        Some(Lab {
            name: format!("lvsrs-{}-{name}", std::process::id()),
            namespaces: Vec::new(),
            servers: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        })
    }

    /// Creates namespace `<lab>-<short>`: loopback up, no duplicate address detection
    /// (addresses are usable at once), IPv4 rp_filter off unless a test sets it.
    fn netns(&mut self, short: &str) -> String {
        let ns = format!("{}-{short}", self.name);
        run("ip", &["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        sysctl(&ns, "net/ipv6/conf/default/accept_dad", "0");
        sysctl(&ns, "net/ipv4/conf/all/rp_filter", "0");
        sysctl(&ns, "net/ipv4/conf/default/rp_filter", "0");
        ns
    }

    /// A veth pair `a`@`ns_a` -- `b`@`ns_b` with the given MACs, both up.
    fn veth(&self, ns_a: &str, a: &str, mac_a: [u8; 6], ns_b: &str, b: &str, mac_b: [u8; 6]) {
        run(
            "ip",
            &[
                "link",
                "add",
                a,
                "netns",
                ns_a,
                "address",
                &mac(mac_a),
                "type",
                "veth",
                "peer",
                "name",
                b,
                "netns",
                ns_b,
                "address",
                &mac(mac_b),
            ],
        );
        run("ip", &["-n", ns_a, "link", "set", a, "up"]);
        run("ip", &["-n", ns_b, "link", "set", b, "up"]);
    }

    /// Starts `lvs-realserver` in `ns` and waits for its "ready" line.
    fn start_realserver(&mut self, ns: &str, args: &[&str]) -> usize {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, BIN])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn lvs-realserver");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                println!("[lvs-realserver] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.servers.push(RealServer { child, lines });
        let i = self.servers.len() - 1;
        let line = self.servers[i]
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("lvs-realserver did not become ready");
        assert!(line.contains("ready"), "unexpected first line: {line}");
        i
    }

    /// Stops real server `i` with SIGTERM and returns its exit status and last line.
    fn stop_realserver(&mut self, i: usize) -> (ExitStatus, String) {
        let s = &mut self.servers[i];
        let status = terminate(&mut s.child);
        let mut last = String::new();
        while let Ok(l) = s.lines.recv_timeout(Duration::from_secs(2)) {
            last = l;
        }
        (status, last)
    }

    /// Runs `f` on a thread of its own inside `ns` until the lab stops it.
    fn spawn_in(&mut self, ns: &str, f: impl FnOnce(Arc<AtomicBool>) + Send + 'static) {
        let path = netns_path(ns);
        let stop = self.stop.clone();
        self.threads.push(thread::spawn(move || {
            enter_netns(&path);
            f(stop)
        }));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for s in &mut self.servers {
            terminate(&mut s.child);
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// SIGTERM to the child (by its PID: `ip netns exec` execs the binary in place), then
/// SIGKILL if it is still there after 5 s.
fn terminate(child: &mut Child) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill takes no pointers; the PID is our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().expect("wait")
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn netns_path(ns: &str) -> String {
    format!("/run/netns/{ns}")
}

/// Moves the calling thread (only it) into the named namespace.
fn enter_netns(path: &str) {
    let f = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns on an open namespace file; it changes the calling thread only.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// Runs `f` inside `ns` (on a thread of its own) and returns its result: sockets made
/// there stay in that namespace wherever they are used.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = netns_path(ns);
    thread::spawn(move || {
        enter_netns(&path);
        f()
    })
    .join()
    .expect("thread in namespace")
}

/// Writes a sysctl (path under /proc/sys) inside `ns`.
fn sysctl(ns: &str, path: &str, value: &str) {
    let file = format!("/proc/sys/{path}");
    let value = value.to_string();
    in_netns(ns, move || {
        std::fs::write(&file, &value).unwrap_or_else(|e| panic!("{file}: {e}"))
    });
}

/// Reads a sysctl inside `ns`.
fn read_sysctl(ns: &str, path: &str) -> String {
    let file = format!("/proc/sys/{path}");
    in_netns(ns, move || {
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .trim()
            .to_string()
    })
}

/// The counter `name` of `/proc/net/netstat` (TcpExt/IpExt) inside `ns`.
fn netstat(ns: &str, name: &str) -> u64 {
    let name = name.to_string();
    in_netns(ns, move || {
        let text = std::fs::read_to_string("/proc/thread-self/net/netstat").expect("netstat");
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let (Some(keys), Some(values)) = (pair.first(), pair.get(1)) else {
                continue;
            };
            for (k, v) in keys.split_whitespace().zip(values.split_whitespace()) {
                if k == name {
                    return v.parse().unwrap_or(0);
                }
            }
        }
        0
    })
}

// ---------------------------------------------------------------------------------------
// AF_PACKET sockets for the test's director.

struct PacketSocket(OwnedFd);

impl PacketSocket {
    /// A raw socket on interface `ifname` of the calling thread's namespace, every
    /// protocol, with a short receive timeout.
    fn open(ifname: &str) -> PacketSocket {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: socket takes no pointers; a new descriptor nothing else owns.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, c_int(proto)) };
        assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
        // SAFETY: as above.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: a NUL-terminated name that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert_ne!(ifindex, 0, "no interface {ifname}");
        let sll = sockaddr_ll(proto, ifindex as i32);
        // SAFETY: a valid sockaddr_ll of the length given.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "bind {ifname}: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: a live timeval of the size given.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        PacketSocket(fd)
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: a live buffer of the length given.
        let n = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// One frame and its packet type (`PACKET_HOST` 0, `PACKET_OUTGOING` 4, ...), or
    /// `None` after the timeout.
    fn recv(&self, buf: &mut [u8]) -> Option<(usize, u8)> {
        let mut from = sockaddr_ll(0, 0);
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: live buffers of the lengths given.
        let n = unsafe {
            libc::recvfrom(
                self.0.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        (n >= 0).then_some((n as usize, from.sll_pkttype))
    }
}

fn c_int(proto_be: u16) -> libc::c_int {
    libc::c_int::from(proto_be)
}

fn sockaddr_ll(proto_be: u16, ifindex: i32) -> libc::sockaddr_ll {
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: proto_be,
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    }
}

// ---------------------------------------------------------------------------------------
// Frames.

/// A bare IP packet carrying a TCP SYN (MSS 1400) from `src:sport` to `dst:dport`.
fn tcp_syn(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    const TCP_LEN: usize = 24;
    let ip_len = if src.is_ipv4() { 20 } else { 40 };
    let mut p = vec![0u8; ip_len + TCP_LEN];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
            ip.set_version(4);
            ip.set_header_len(20);
            ip.set_total_len((ip_len + TCP_LEN) as u16);
            ip.set_ident(seq as u16);
            ip.set_dont_frag(true);
            ip.set_hop_limit(64);
            ip.set_next_header(IpProtocol::Tcp);
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
            ip.fill_checksum();
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ip = Ipv6Packet::new_unchecked(&mut p[..]);
            ip.set_version(6);
            ip.set_payload_len(TCP_LEN as u16);
            ip.set_next_header(IpProtocol::Tcp);
            ip.set_hop_limit(64);
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
        }
        _ => panic!("mixed families"),
    }
    let mut tcp = TcpPacket::new_unchecked(&mut p[ip_len..]);
    tcp.set_src_port(sport);
    tcp.set_dst_port(dport);
    tcp.set_seq_number(seq);
    tcp.set_header_len(TCP_LEN);
    tcp.set_flags(TcpFlags::SYN);
    tcp.set_window_len(64240);
    tcp.options_mut().copy_from_slice(&[2, 4, 0x05, 0x78]);
    tcp.fill_checksum(&src, &dst);
    p
}

/// `packet` in an Ethernet frame from D to R.
fn ether(packet: &[u8], src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + packet.len()];
    let mut eth = EthernetFrame::new_unchecked(&mut f[..14]);
    eth.set_dst_addr(EthernetAddress(dst));
    eth.set_src_addr(EthernetAddress(src));
    eth.set_ethertype(if packet[0] >> 4 == 4 {
        EtherType::Ipv4
    } else {
        EtherType::Ipv6
    });
    f[14..].copy_from_slice(packet);
    f
}

/// Encapsulates `frame` from `outer_src` to `outer_dst` with lvs-core's TUN encap, as the
/// director does.
fn encapsulate(frame: &[u8], outer_src: IpAddr, outer_dst: IpAddr, ident: u16) -> Vec<u8> {
    let head = 64;
    let mut buf = vec![0u8; head + frame.len()];
    buf[head..].copy_from_slice(frame);
    let info = FrameInfo::parse(frame).expect("inner frame parses");
    let p = tun::TunParams {
        src: outer_src,
        dst: outer_dst,
        ident,
        flow_label: u32::from(ident),
        mtu: 1500,
    };
    let end = buf.len();
    let r = tun::encap(&mut buf, head..end, &info, &p).expect("encap");
    buf[r].to_vec()
}

/// A tunnelled SYN from `client:sport` to `vip:80`, D to R.
fn tunnelled_syn(
    client: IpAddr,
    vip: IpAddr,
    sport: u16,
    seq: u32,
    outer: (IpAddr, IpAddr),
) -> Vec<u8> {
    let f = ether(&tcp_syn(client, vip, sport, 80, seq), MAC_D, MAC_R);
    encapsulate(&f, outer.0, outer.1, sport)
}

/// What the capture on D's veth saw.
#[derive(Default)]
struct Seen {
    /// ICMP protocol unreachable / ICMPv6 parameter problem from R.
    icmp_complaints: usize,
}

/// Reads frames on `sock` until `want` matches one (true) or `timeout` passes (false),
/// noting ICMP complaints from R on the way.
fn capture(
    sock: &PacketSocket,
    timeout: Duration,
    seen: &mut Seen,
    mut want: impl FnMut(&[u8], &FrameInfo) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        let Some((n, pkttype)) = sock.recv(&mut buf) else {
            continue;
        };
        if pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        let f = &buf[..n];
        let Ok(info) = FrameInfo::parse(f) else {
            continue;
        };
        if let L4Info::Icmp(m) = info.l4
            && (info.ip.src == RIP4 || info.ip.src == RIP6)
            && ((info.ip.version == lvs_core::wire::IpVersion::V4
                && m.msg_type == 3
                && m.code == 2)
                || (info.ip.version == lvs_core::wire::IpVersion::V6 && m.msg_type == 4))
        {
            seen.icmp_complaints += 1;
        }
        if want(f, &info) {
            return true;
        }
    }
    false
}

/// Whether `f` is R's SYN-ACK, straight from `vip:80` to `client:sport` (not
/// encapsulated), acknowledging `seq`.
fn is_syn_ack(
    f: &[u8],
    info: &FrameInfo,
    vip: IpAddr,
    client: IpAddr,
    sport: u16,
    seq: u32,
) -> bool {
    let L4Info::Tcp {
        src_port,
        dst_port,
        flags,
    } = info.l4
    else {
        return false;
    };
    info.ip.src == vip
        && info.ip.dst == client
        && (src_port, dst_port) == (80, sport)
        && flags.contains(TcpFlags::SYN)
        && flags.contains(TcpFlags::ACK)
        && TcpPacket::new_unchecked(&f[info.l4_offset()..info.ip_end()]).ack_number()
            == seq.wrapping_add(1)
}

/// The counter `name` in the real server's final line (`... name N ...`).
fn counter(line: &str, name: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0].trim_start_matches('(') == name)
        .and_then(|w| w[1].trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in `{line}`"))
}

/// D and R joined by a veth, R routing everything back through D.
fn director_and_real_server(lab: &mut Lab) -> (String, String) {
    let d = lab.netns("d");
    let r = lab.netns("r");
    lab.veth(&d, "vd", MAC_D, &r, "vr", MAC_R);
    run(
        "ip",
        &["-n", &d, "addr", "add", "192.0.2.1/24", "dev", "vd"],
    );
    run(
        "ip",
        &[
            "-n",
            &d,
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            "vd",
            "nodad",
        ],
    );
    run(
        "ip",
        &["-n", &r, "addr", "add", "192.0.2.2/24", "dev", "vr"],
    );
    run(
        "ip",
        &[
            "-n",
            &r,
            "addr",
            "add",
            "2001:db8:1::2/64",
            "dev",
            "vr",
            "nodad",
        ],
    );
    run(
        "ip",
        &["-n", &r, "route", "add", "default", "via", "192.0.2.1"],
    );
    run(
        "ip",
        &[
            "-n",
            &r,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:1::1",
        ],
    );
    (d, r)
}

/// Listens on VIP:80 (both families) inside `ns`.
fn listen_on_vips(ns: &str) -> (TcpListener, TcpListener) {
    in_netns(ns, || {
        (
            TcpListener::bind(SocketAddr::new(VIP4, 80)).expect("bind VIP4:80"),
            TcpListener::bind(SocketAddr::new(VIP6, 80)).expect("bind [VIP6]:80"),
        )
    })
}

const VIP_ARGS: [&str; 8] = [
    "--iface",
    "vr",
    "--tun",
    "lvs0",
    "--vip",
    "203.0.113.10/32",
    "--vip",
    "2001:db8:f::10/128",
];

#[test]
fn decapsulates_every_tunnel_kind() {
    let Some(mut lab) = Lab::new("kinds") else {
        return;
    };
    let (d, r) = director_and_real_server(&mut lab);
    // Strict reverse-path filtering, as many distributions ship it: the binary must turn
    // it off for packets from the TUN device to be accepted.
    sysctl(&r, "net/ipv4/conf/all/rp_filter", "1");
    let rs = lab.start_realserver(&r, &VIP_ARGS);

    assert_eq!(read_sysctl(&r, "net/ipv4/conf/all/rp_filter"), "0");
    assert_eq!(read_sysctl(&r, "net/ipv4/conf/lvs0/rp_filter"), "0");
    assert_eq!(read_sysctl(&r, "net/ipv4/conf/all/arp_ignore"), "1");
    assert_eq!(read_sysctl(&r, "net/ipv4/conf/vr/arp_announce"), "2");
    let addrs = Command::new("ip")
        .args(["-n", &r, "-o", "addr", "show", "dev", "lvs0"])
        .output()
        .expect("ip addr");
    let addrs = String::from_utf8_lossy(&addrs.stdout);
    assert!(addrs.contains("203.0.113.10/32"), "{addrs}");
    assert!(addrs.contains("2001:db8:f::10/128"), "{addrs}");

    let _listeners = listen_on_vips(&r);
    let sock = in_netns(&d, || PacketSocket::open("vd"));
    let mut seen = Seen::default();

    let cases = [
        ("4in4", CIP4, VIP4, (DIP4, RIP4)),
        ("6in6", CIP6, VIP6, (DIP6, RIP6)),
        ("4in6", CIP4, VIP4, (DIP6, RIP6)),
        ("6in4", CIP6, VIP6, (DIP4, RIP4)),
    ];
    for (i, (kind, client, vip, outer)) in cases.into_iter().enumerate() {
        let sport = 40001 + i as u16;
        let seq = 0x1000_0000 * (i as u32 + 1) + 7;
        sock.send(&tunnelled_syn(client, vip, sport, seq, outer));
        let answered = capture(&sock, Duration::from_secs(5), &mut seen, |f, info| {
            is_syn_ack(f, info, vip, client, sport, seq)
        });
        assert!(
            answered,
            "{kind}: no SYN-ACK from {vip}:80 to {client}:{sport}"
        );
    }

    // Not for R: another outer destination (R's MAC, so it reaches the socket).
    sock.send(&tunnelled_syn(
        CIP4,
        VIP4,
        40010,
        1,
        (DIP4, "192.0.2.99".parse().unwrap()),
    ));
    // Malformed: the inner IPv4 header checksum broken.
    let mut bad = tunnelled_syn(CIP4, VIP4, 40011, 1, (DIP4, RIP4));
    bad[14 + 20 + 10] ^= 0xff;
    sock.send(&bad);
    // One more good one: once it is answered, the two above have been handled.
    sock.send(&tunnelled_syn(CIP4, VIP4, 40012, 99, (DIP4, RIP4)));
    assert!(capture(
        &sock,
        Duration::from_secs(5),
        &mut seen,
        |f, info| { is_syn_ack(f, info, VIP4, CIP4, 40012, 99) }
    ));
    assert_eq!(
        seen.icmp_complaints, 0,
        "R's kernel answered a tunnel packet with an ICMP error"
    );

    let (status, last) = lab.stop_realserver(rs);
    assert!(status.success(), "lvs-realserver exited with {status}");
    assert_eq!(counter(&last, "decapsulated"), 5, "{last}");
    assert_eq!(counter(&last, "not-local"), 1, "{last}");
    assert_eq!(counter(&last, "malformed"), 1, "{last}");
    assert_eq!(counter(&last, "tun-errors"), 0, "{last}");
    // The TUN device (and the VIPs with it) went away with the process.
    let gone = Command::new("ip")
        .args(["-n", &r, "link", "show", "lvs0"])
        .output()
        .expect("ip link");
    assert!(!gone.status.success(), "lvs0 is still there");
}

#[test]
fn full_tcp_exchange_through_the_tunnel() {
    let Some(mut lab) = Lab::new("tcp") else {
        return;
    };
    let (d, r) = director_and_real_server(&mut lab);
    let c = lab.netns("c");
    lab.veth(&c, "vc", MAC_C, &d, "vdc", MAC_DC);
    run(
        "ip",
        &["-n", &c, "addr", "add", "198.51.100.7/24", "dev", "vc"],
    );
    run(
        "ip",
        &[
            "-n",
            &c,
            "addr",
            "add",
            "2001:db8:c::7/64",
            "dev",
            "vc",
            "nodad",
        ],
    );
    run(
        "ip",
        &["-n", &c, "route", "add", "default", "via", "198.51.100.1"],
    );
    run(
        "ip",
        &[
            "-n",
            &c,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:c::1",
        ],
    );
    run(
        "ip",
        &["-n", &d, "addr", "add", "198.51.100.1/24", "dev", "vdc"],
    );
    run(
        "ip",
        &[
            "-n",
            &d,
            "addr",
            "add",
            "2001:db8:c::1/64",
            "dev",
            "vdc",
            "nodad",
        ],
    );
    // D routes R's direct replies to C; what C sends to the VIPs its kernel drops
    // silently (the director loop below takes it from the socket first).
    sysctl(&d, "net/ipv4/conf/all/forwarding", "1");
    sysctl(&d, "net/ipv6/conf/all/forwarding", "1");
    run(
        "ip",
        &["-n", &d, "route", "add", "blackhole", "203.0.113.10/32"],
    );
    run(
        "ip",
        &[
            "-n",
            &d,
            "-6",
            "route",
            "add",
            "blackhole",
            "2001:db8:f::10/128",
        ],
    );

    let rs = lab.start_realserver(&r, &VIP_ARGS);
    let (l4, l6) = listen_on_vips(&r);
    for l in [l4, l6] {
        lab.spawn_in(&r, move |stop| echo_server(l, stop));
    }

    // The director: C's frames to a VIP, encapsulated to R (4in4 and 6in6).
    let encapsulated = Arc::new(AtomicU64::new(0));
    let count = encapsulated.clone();
    let (ready_tx, ready) = mpsc::channel();
    lab.spawn_in(&d, move |stop| {
        let from_clients = PacketSocket::open("vdc");
        let to_servers = PacketSocket::open("vd");
        ready_tx.send(()).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut ident = 0u16;
        while !stop.load(Ordering::Relaxed) {
            let Some((n, pkttype)) = from_clients.recv(&mut buf) else {
                continue;
            };
            let Ok(info) = FrameInfo::parse(&buf[..n]) else {
                continue;
            };
            if pkttype != libc::PACKET_HOST || (info.ip.dst != VIP4 && info.ip.dst != VIP6) {
                continue;
            }
            let mut frame = buf[..n].to_vec();
            // C's stack leaves the TCP checksum to offload and veth carries it across
            // unfinished (CHECKSUM_PARTIAL): a NIC would have filled it in by now.
            let l3 = info.l3_offset;
            if let Ok(inner) = FrameInfo::parse_ip(&frame[l3..]) {
                complete_checksum(&mut frame[l3..], &inner);
            }
            fwd::set_macs(&mut frame, EthernetAddress(MAC_D), EthernetAddress(MAC_R)).unwrap();
            let (src, dst) = if info.ip.dst.is_ipv4() {
                (DIP4, RIP4)
            } else {
                (DIP6, RIP6)
            };
            ident = ident.wrapping_add(1);
            to_servers.send(&encapsulate(&frame, src, dst, ident));
            count.fetch_add(1, Ordering::Relaxed);
        }
    });
    ready.recv_timeout(Duration::from_secs(5)).unwrap();

    // Three round trips per VIP. Each message fits one segment and waits for its echo:
    // C's stack would otherwise hand veth a GSO super-packet (up to 64 KiB) that the
    // loop would have to segment before encapsulating (a NIC segments it in hardware).
    for vip in [VIP4, VIP6] {
        let rounds: Vec<String> = (0..3)
            .map(|i| format!("round {i} to {vip} through the tunnel {}", "x".repeat(500)))
            .collect();
        let expected = rounds.clone();
        let echoed = in_netns(&c, move || {
            let mut s =
                TcpStream::connect_timeout(&SocketAddr::new(vip, 80), Duration::from_secs(5))
                    .expect("connect to the VIP");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.set_nodelay(true).unwrap();
            let mut echoed = Vec::new();
            for msg in &rounds {
                s.write_all(msg.as_bytes()).unwrap();
                let mut back = vec![0u8; msg.len()];
                s.read_exact(&mut back).expect("read the echo");
                echoed.push(String::from_utf8(back).unwrap());
            }
            s.shutdown(Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).expect("the server closes");
            assert!(rest.is_empty());
            echoed
        });
        assert_eq!(echoed, expected, "echo through {vip}");
    }

    // Every frame the director encapsulated was decapsulated (nothing else is sent to R
    // in a tunnel), and R's replies never came through the director loop.
    thread::sleep(Duration::from_millis(300));
    let (status, last) = lab.stop_realserver(rs);
    assert!(status.success(), "lvs-realserver exited with {status}");
    let sent = encapsulated.load(Ordering::Relaxed);
    assert!(sent >= 10, "only {sent} frames encapsulated");
    assert_eq!(counter(&last, "decapsulated"), sent, "{last}");
    assert_eq!(counter(&last, "malformed"), 0, "{last}");
}

/// Echoes each connection on `l` (what it reads, until EOF, then closes) until stopped.
fn echo_server(l: TcpListener, stop: Arc<AtomicBool>) {
    l.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[test]
fn without_sysctls_or_sink_the_kernel_drops_and_complains() {
    let Some(mut lab) = Lab::new("bare") else {
        return;
    };
    let (d, r) = director_and_real_server(&mut lab);
    sysctl(&r, "net/ipv4/conf/all/rp_filter", "1");
    let mut args = VIP_ARGS.to_vec();
    args.extend(["--no-sysctl", "--no-icmp-sink"]);
    let rs = lab.start_realserver(&r, &args);
    let _listeners = listen_on_vips(&r);
    let sock = in_netns(&d, || PacketSocket::open("vd"));
    let rp_drops = netstat(&r, "IPReversePathFilter");

    let mut seen = Seen::default();
    sock.send(&tunnelled_syn(CIP4, VIP4, 40100, 5, (DIP4, RIP4)));
    let answered = capture(&sock, Duration::from_millis(1500), &mut seen, |f, info| {
        is_syn_ack(f, info, VIP4, CIP4, 40100, 5)
    });
    // Decapsulated, but the inner packet arrived on lvs0 from an address routed via vr:
    // strict rp_filter drops it (TcpExtIPReversePathFilter counts it).
    assert!(!answered, "answered despite rp_filter=1");
    assert!(netstat(&r, "IPReversePathFilter") > rp_drops);
    // And the outer packet, with no handler for protocol 4, got ICMP protocol unreachable
    // back (a kernel with an ipip module, built in or loaded, would take it instead).
    if !Path::new("/sys/module/ipip").exists() {
        assert!(seen.icmp_complaints >= 1, "no ICMP protocol unreachable");
    }

    let (status, last) = lab.stop_realserver(rs);
    assert!(status.success());
    assert_eq!(counter(&last, "decapsulated"), 1, "{last}");
}
