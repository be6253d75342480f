//! `lvs-realserver --iface ETH --tun NAME [--vip ADDR/PREFIX]...`: the decapsulating half
//! of TUN mode (`ipvsadm -i`) for a real server whose kernel has no `ipip` module.
//!
//! It reads IP-in-IP frames addressed to ETH's addresses from an `AF_PACKET` socket on
//! ETH, and writes each inner packet into the TUN device NAME (created if absent, brought
//! up, the VIPs put on it), so the kernel delivers it to the socket listening on the VIP;
//! the reply goes straight to the client through the routing table. SIGINT or SIGTERM
//! stops it: it prints its counters on stdout and exits 0. A TUN device it created
//! disappears with it, and the VIPs with the device.
//!
//! The decisions (what to unwrap, the sysctls, the socket filter) are in
//! [`lvs_director::realserver`]; this file is the operating system's side: the sockets,
//! the TUN ioctl, the signal handlers. Each `unsafe` block is one system call (or the
//! walk of the list `getifaddrs` returns) and says why it is sound.

use std::ffi::{CStr, CString, c_int, c_void};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use lvs_director::realserver::{
    Args, BpfInsn, DROP_ALL, Ignored, Malformed, PACKET_HOST, Stats, Verdict, apply_sysctls,
    classify, complete_checksum, configure_tun, real_server_sysctls, socket_filter,
};

/// Set by SIGINT / SIGTERM; the receive loop checks it at least every [`POLL`].
static STOP: AtomicBool = AtomicBool::new(false);

/// The receive timeout: how late the loop notices a signal at worst, and how often the
/// interface's addresses may be re-read while idle.
const POLL: Duration = Duration::from_millis(200);
/// How often the interface's addresses are re-read.
const ADDR_REFRESH: Duration = Duration::from_secs(1);
/// The largest frame: a GRO'd 64 KiB packet with its link-layer header.
const BUF_LEN: usize = 65536 + 128;
/// Malformed frames reported on stderr (then only counted).
const REPORT_MALFORMED: u64 = 10;

extern "C" fn on_signal(_: c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn cvt(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn context(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn install_signal_handlers() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero sigaction is valid (empty mask, no flags). The handler only
        // stores to an atomic, which is async-signal-safe. Without SA_RESTART a blocked
        // recvmsg returns EINTR, so the loop sees the flag at once.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
            cvt(libc::sigaction(sig, &sa, std::ptr::null_mut()))?;
        }
    }
    Ok(())
}

fn socket(domain: c_int, ty: c_int, protocol: c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) })?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: &OwnedFd, level: c_int, name: c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live T and the length given is its size; the kernel copies it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<c_void>(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn attach_filter(fd: &OwnedFd, prog: &[BpfInsn]) -> io::Result<()> {
    let mut insns: Vec<libc::sock_filter> = prog
        .iter()
        .map(|&(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
        .collect();
    let fprog = libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_mut_ptr(),
    };
    // The kernel copies the program during the call; `insns` outlives it.
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::other("interface name has a NUL"))?;
    // SAFETY: a NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(context(format!("interface {name}"))(
            io::Error::last_os_error(),
        )),
        i => Ok(i),
    }
}

/// The addresses of interface `name`.
fn iface_addrs(name: &str) -> io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list that stays valid until freeifaddrs.
    cvt(unsafe { libc::getifaddrs(&mut head) })?;
    let mut out = Vec::new();
    let mut p = head;
    // SAFETY: we walk the list getifaddrs built (each node, name and address valid and
    // NUL-terminated or of the size its family says) and read only; freed once, after.
    unsafe {
        while let Some(ifa) = p.as_ref() {
            p = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || CStr::from_ptr(ifa.ifa_name).to_bytes() != name.as_bytes()
            {
                continue;
            }
            match c_int::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                    out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        sin.sin_addr.s_addr,
                    ))));
                }
                libc::AF_INET6 => {
                    let sin6 = &*ifa.ifa_addr.cast::<libc::sockaddr_in6>();
                    out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                }
                _ => {}
            }
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then the union's `short` flags,
/// padded to the union's 24 bytes.
#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens (creating it if absent) the TUN device `name`: bare IP packets, no header.
fn open_tun(name: &str) -> io::Result<File> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::other(format!("bad TUN device name `{name}`")));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(context("/dev/net/tun"))?;
    let mut req = IfReqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `req` lays out in full;
    // the descriptor is open.
    cvt(unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) })
        .map_err(context(format!("TUNSETIFF {name}")))?;
    Ok(file)
}

/// Raw sockets for protocols 4 and 41 over IPv4 and IPv6 that drop everything: with one
/// open the kernel counts a tunnel packet delivered instead of answering it with ICMP
/// protocol unreachable / ICMPv6 parameter problem (see the library's docs).
fn icmp_sinks() -> io::Result<Vec<OwnedFd>> {
    let mut out = Vec::new();
    for (family, proto) in [
        (libc::AF_INET, libc::IPPROTO_IPIP),
        (libc::AF_INET, libc::IPPROTO_IPV6),
        (libc::AF_INET6, libc::IPPROTO_IPIP),
        (libc::AF_INET6, libc::IPPROTO_IPV6),
    ] {
        let fd = match socket(family, libc::SOCK_RAW, proto) {
            Ok(fd) => fd,
            // A host without IPv6: nothing to answer there.
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => continue,
            Err(e) => return Err(context("raw socket")(e)),
        };
        attach_filter(&fd, &DROP_ALL)?;
        out.push(fd);
    }
    Ok(out)
}

/// The `AF_PACKET` socket on the interface, filtered in the kernel to tunnel frames for
/// this host, with `PACKET_AUXDATA` (the checksum state) and a receive timeout.
struct PacketSocket(OwnedFd);

struct Received {
    len: usize,
    pkttype: u8,
    csum_not_ready: bool,
}

impl PacketSocket {
    fn open(ifindex: u32) -> io::Result<PacketSocket> {
        // Protocol 0: no frame is queued before the filter is on and the bind made.
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, 0).map_err(context("AF_PACKET"))?;
        attach_filter(&fd, &socket_filter())?;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &(1 as c_int))?;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: POLL.as_micros() as libc::suseconds_t,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        // Room for bursts (capped by net.core.rmem_max).
        let rcvbuf: c_int = 4 << 20;
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf)?;
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
            sll_ifindex: ifindex as c_int,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: a valid sockaddr_ll of the length given.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(PacketSocket(fd))
    }

    /// One frame into `buf`; `None` on timeout or signal. `len` is the frame's real
    /// length (MSG_TRUNC), which may exceed `buf`.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let mut from = libc::sockaddr_ll {
            sll_family: 0,
            sll_protocol: 0,
            sll_ifindex: 0,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // u64s: aligned for cmsghdr.
        let mut control = [0u64; 16];
        // SAFETY: an all-zero msghdr is valid (no name, no buffers); filled below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>() as _;
        // SAFETY: every pointer in `msg` is to a live buffer of the size given, all of
        // which outlive the call.
        let n = unsafe { libc::recvmsg(self.0.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let mut status = 0u32;
        // SAFETY: the CMSG_* functions walk the control data the kernel wrote, within
        // `msg_controllen`; the auxdata is copied out unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while let Some(h) = c.as_ref() {
                if h.cmsg_level == libc::SOL_PACKET && h.cmsg_type == libc::PACKET_AUXDATA {
                    let aux: libc::tpacket_auxdata =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    status = aux.tp_status;
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Some(Received {
            len: n as usize,
            pkttype: from.sll_pkttype,
            csum_not_ready: status & libc::TP_STATUS_CSUMNOTREADY != 0,
        }))
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let v: Vec<String> = items.iter().map(T::to_string).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(" ")
    }
}

fn run(args: &Args) -> io::Result<Stats> {
    install_signal_handlers()?;
    let ifindex = if_index(&args.iface)?;
    let mut tun = open_tun(&args.tun)?;
    if !args.no_sysctl {
        for change in apply_sysctls(&real_server_sysctls(&args.iface, &args.tun))? {
            eprintln!("lvs-realserver: sysctl {change}");
        }
    }
    configure_tun(&args.tun, &args.vips)?;
    let _sinks = if args.no_icmp_sink {
        Vec::new()
    } else {
        icmp_sinks()?
    };
    let sock = PacketSocket::open(ifindex)?;
    let mut local = iface_addrs(&args.iface)?;
    let mut refreshed = Instant::now();
    println!(
        "lvs-realserver: ready: {} -> {} (vips {}; tunnel endpoints {})",
        args.iface,
        args.tun,
        list(&args.vips),
        list(&local)
    );
    io::stdout().flush()?;

    let mut buf = vec![0u8; BUF_LEN];
    let mut stats = Stats::default();
    while !STOP.load(Ordering::Relaxed) {
        if refreshed.elapsed() >= ADDR_REFRESH {
            local = iface_addrs(&args.iface)?;
            refreshed = Instant::now();
        }
        let Some(rx) = sock.recv(&mut buf)? else {
            continue;
        };
        if rx.pkttype != PACKET_HOST {
            stats.ignore(Ignored::NotLocal);
            continue;
        }
        if rx.len > buf.len() {
            stats.count(&Verdict::Malformed(Malformed::Truncated));
            continue;
        }
        let frame = &mut buf[..rx.len];
        let mut verdict = classify(frame, &local);
        if verdict == Verdict::Ignore(Ignored::NotLocal)
            && refreshed.elapsed() >= Duration::from_millis(100)
        {
            // An address may have just been added.
            local = iface_addrs(&args.iface)?;
            refreshed = Instant::now();
            verdict = classify(frame, &local);
        }
        match verdict {
            Verdict::Decapsulate { inner, info } => {
                let packet = &mut frame[inner];
                if rx.csum_not_ready && complete_checksum(packet, &info) {
                    stats.checksums_completed += 1;
                }
                let ok = tun.write(packet).is_ok();
                stats.written(ok);
            }
            Verdict::Malformed(why) => {
                stats.count(&verdict);
                if stats.malformed <= REPORT_MALFORMED {
                    eprintln!("lvs-realserver: malformed tunnel frame: {why}");
                }
            }
            other => stats.count(&other),
        }
    }
    Ok(stats)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(stats) => {
            println!("lvs-realserver: {stats}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lvs-realserver: {e}");
            ExitCode::FAILURE
        }
    }
}
