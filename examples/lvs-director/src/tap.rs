//! A Linux tap device as a [`smoltcp::phy::Device`], for the director's ports.
//!
//! smoltcp's own `TunTapInterface` allocates a `Vec` for every frame and panics on I/O
//! errors; this one reads into and writes from two buffers it keeps, never blocks, and
//! counts what goes wrong ([`TapStats`]) instead of panicking:
//! - a read that finds nothing yields no token; a failed read is counted and yields none;
//! - a write the kernel refuses for lack of room (`EAGAIN`, `ENOBUFS`) is a dropped
//!   frame, any other failed write an error (a tap whose other side is down gives `EIO`).
//!
//! [`Tap::open`] opens `/dev/net/tun` with `TUNSETIFF` (`IFF_TAP | IFF_NO_PI`), which
//! creates the device if absent (it then disappears when the director exits) or attaches
//! to an existing one (`ip tuntap add NAME mode tap`, which stays); sets its MTU; and
//! brings it up (`SIOCSIFFLAGS`), so the caller has nothing to do with `ip`.
//!
//! Each `unsafe` block is one `ioctl` on a struct laid out as the kernel reads it.

use std::ffi::c_int;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// The largest frame read or written: a 64 KiB packet with its Ethernet header.
const BUF_LEN: usize = 65536 + 18;

/// Bytes an Ethernet header adds to the IP MTU.
pub const ETHERNET_HEADER: usize = 14;

/// What happened on a tap since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Frames read.
    pub rx_frames: u64,
    /// Bytes read.
    pub rx_bytes: u64,
    /// Failed reads (other than "nothing to read").
    pub rx_errors: u64,
    /// Frames written.
    pub tx_frames: u64,
    /// Bytes written.
    pub tx_bytes: u64,
    /// Frames the kernel had no room for (`EAGAIN`, `ENOBUFS`).
    pub tx_dropped: u64,
    /// Failed writes (`EIO` while the device is down, short writes, ...).
    pub tx_errors: u64,
}

impl fmt::Display for TapStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx {} frames {} bytes {} errors; tx {} frames {} bytes {} dropped {} errors",
            self.rx_frames,
            self.rx_bytes,
            self.rx_errors,
            self.tx_frames,
            self.tx_bytes,
            self.tx_dropped,
            self.tx_errors
        )
    }
}

/// An open tap device.
pub struct Tap {
    name: String,
    file: File,
    /// The IP MTU.
    mtu: usize,
    rx: Vec<u8>,
    tx: Vec<u8>,
    stats: TapStats,
}

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tap")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// `struct ifreq` with the union's `short` flags (TUNSETIFF, SIOC[GS]IFFLAGS).
#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `struct ifreq` with the union's `int` MTU (SIOCSIFMTU).
#[repr(C)]
struct IfReqMtu {
    name: [u8; libc::IFNAMSIZ],
    mtu: c_int,
    _pad: [u8; 20],
}

fn ifname(name: &str) -> io::Result<[u8; libc::IFNAMSIZ]> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name `{name}` (1 to 15 bytes)"),
        ));
    }
    let mut out = [0u8; libc::IFNAMSIZ];
    out[..name.len()].copy_from_slice(name.as_bytes());
    Ok(out)
}

/// An `AF_INET` datagram socket: the handle the interface ioctls go through.
fn ioctl_socket() -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: socket() takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Why opening a tap failed, worded for the person running the director.
fn explain(name: &str, step: &str, e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "{e}: creating or attaching a tap needs CAP_NET_ADMIN (run as root), or a tap \
             made beforehand for this user (`ip tuntap add {name} mode tap user $USER`)"
        ),
        Some(libc::EBUSY) => format!("{e}: another process has the tap open"),
        Some(libc::EINVAL) if step == "TUNSETIFF" => format!(
            "{e}: an interface named {name} exists and is not a tap (or a tap with other flags)"
        ),
        Some(libc::ENOENT) | Some(libc::ENODEV) if step == "/dev/net/tun" => format!(
            "{e}: the kernel has no tun/tap driver here (modprobe tun), or /dev/net/tun is missing"
        ),
        _ => e.to_string(),
    };
    io::Error::new(e.kind(), format!("tap {name}: {step}: {why}"))
}

impl Tap {
    /// Opens the tap `name` (creating it if absent), sets its IP MTU and brings it up.
    /// The error names the tap, the step and why (a missing permission says so).
    pub fn open(name: &str, mtu: usize) -> io::Result<Tap> {
        let ifr_name = ifname(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| explain(name, "/dev/net/tun", e))?;
        let mut req = IfReqFlags {
            name: ifr_name,
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            _pad: [0; 22],
        };
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `req` lays out in
        // full; the descriptor is open.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
            return Err(explain(name, "TUNSETIFF", io::Error::last_os_error()));
        }
        let sock = ioctl_socket().map_err(|e| explain(name, "socket", e))?;
        let mut m = IfReqMtu {
            name: ifr_name,
            mtu: c_int::try_from(mtu).unwrap_or(c_int::MAX),
            _pad: [0; 20],
        };
        // SAFETY: SIOCSIFMTU reads a `struct ifreq` with the MTU in the union, as `m`
        // lays it out.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFMTU, &mut m) } < 0 {
            return Err(explain(name, "set MTU", io::Error::last_os_error()));
        }
        let mut f = IfReqFlags {
            name: ifr_name,
            flags: 0,
            _pad: [0; 22],
        };
        // SAFETY: SIOCGIFFLAGS writes the flags into the `struct ifreq` `f` lays out.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut f) } < 0 {
            return Err(explain(name, "get flags", io::Error::last_os_error()));
        }
        f.flags |= libc::IFF_UP as libc::c_short;
        // SAFETY: SIOCSIFFLAGS reads the `struct ifreq` `f` lays out.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut f) } < 0 {
            return Err(explain(name, "set up", io::Error::last_os_error()));
        }
        Ok(Tap {
            name: name.to_string(),
            file,
            mtu,
            rx: vec![0; BUF_LEN],
            tx: vec![0; mtu + ETHERNET_HEADER],
            stats: TapStats::default(),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The descriptor, for `poll`.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The counters.
    pub fn stats(&self) -> &TapStats {
        &self.stats
    }
}

/// A frame read from the tap.
pub struct TapRx<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for TapRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Room for a frame to write to the tap.
pub struct TapTx<'a> {
    file: &'a File,
    buf: &'a mut Vec<u8>,
    stats: &'a mut TapStats,
}

impl phy::TxToken for TapTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if self.buf.len() < len {
            // Grows once to the largest frame seen; never shrinks.
            self.buf.resize(len, 0);
        }
        let frame = &mut self.buf[..len];
        let r = f(frame);
        let mut file = self.file;
        loop {
            match file.write(frame) {
                Ok(n) if n == len => {
                    self.stats.tx_frames += 1;
                    self.stats.tx_bytes += len as u64;
                }
                Ok(_) => self.stats.tx_errors += 1,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    self.stats.tx_dropped += 1
                }
                Err(_) => self.stats.tx_errors += 1,
            }
            break;
        }
        r
    }
}

impl Device for Tap {
    type RxToken<'a> = TapRx<'a>;
    type TxToken<'a> = TapTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(TapRx<'_>, TapTx<'_>)> {
        let n = loop {
            match (&self.file).read(&mut self.rx) {
                Ok(0) => return None,
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(_) => {
                    self.stats.rx_errors += 1;
                    return None;
                }
            }
        };
        self.stats.rx_frames += 1;
        self.stats.rx_bytes += n as u64;
        Some((
            TapRx {
                frame: &self.rx[..n],
            },
            TapTx {
                file: &self.file,
                buf: &mut self.tx,
                stats: &mut self.stats,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TapTx<'_>> {
        Some(TapTx {
            file: &self.file,
            buf: &mut self.tx,
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + ETHERNET_HEADER;
        caps
    }
}
