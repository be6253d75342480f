//! The real server's side of TUN mode (`ipvsadm -i`) on a kernel without the `ipip`
//! module: the logic of `lvs-realserver`, which the binary drives with its sockets.
//!
//! A director in TUN mode wraps each packet for a virtual service in an outer IP header
//! addressed to the real server (4in4, 6in6, 4in6 or 6in4). A Linux real server normally
//! lets its `tunl0` device (the `ipip` module) unwrap it; here the binary reads the
//! outer frames from an `AF_PACKET` socket on the real server's interface, [`classify`]
//! finds the inner packet with [`lvs_core::fwd::tun::inner_packet`], and the binary
//! writes it into a TUN device (`IFF_TUN | IFF_NO_PI`) that carries the VIPs. The kernel
//! then delivers the inner packet to the socket listening on the VIP, and the reply
//! leaves through the ordinary routing table straight to the client.
//!
//! # What the kernel does with the outer packet
//! An `AF_PACKET` socket gets a copy; the stack still receives the original. Without a
//! handler for protocol 4 or 41 the kernel answers it with ICMP "protocol unreachable"
//! (IPv4) or ICMPv6 "parameter problem, unrecognized next header" (IPv6), rate-limited,
//! to the director. That costs a packet per second or so and confuses nobody that checks
//! quotes, but it is noise on the director and counts as an error in the real server's
//! SNMP counters. The kernel does not send it when a raw socket of that protocol exists
//! (it counts the packet delivered), so the binary opens one raw socket per family and
//! tunnel protocol with a filter that drops everything ([`DROP_ALL`]): the stack consumes
//! the outer packet silently, as `tunl0` would.
//!
//! # Sysctls
//! What LVS real servers set (the binary does it unless told not to, see
//! [`real_server_sysctls`]):
//! - `rp_filter = 0` on `all` and on the TUN device: the inner packet arrives on the TUN
//!   device from the client's address, whose route points out of the Ethernet interface,
//!   so strict reverse-path filtering (1, the default of many distributions) drops it as
//!   a martian. The kernel takes the larger of `all` and the device's value, so both.
//! - `arp_ignore = 1`, `arp_announce = 2` on `all` and on the interface: the VIP is a
//!   local address, and without them the real server answers ARP for it on the LAN and
//!   steals the VIP from the director.
//!
//! IPv6 needs neither: there is no reverse-path filter, and neighbour discovery answers
//! only for addresses of the interface asked. IPv6 VIPs are added with `nodad`, since a
//! tentative address does not accept packets.
//!
//! # GRO
//! A NIC's GRO may merge consecutive tunnelled TCP segments (the kernel has IP-in-IP GRO
//! built in) into one large packet whose inner TCP checksum is only the pseudo-header's
//! (`CHECKSUM_PARTIAL`, reported by `PACKET_AUXDATA` as `TP_STATUS_CSUMNOTREADY`). A
//! TUN device cannot carry that state, so the binary completes the checksum
//! ([`complete_checksum`]) before the write; the receive buffer takes 64 KiB packets.
//!
//! # Limits
//! Outer fragments are counted and ignored: the socket sees them before reassembly. The
//! IPVS director sets DF from the inner packet and `lvs-core` never fragments; a director
//! that does fragment needs a real `ipip` module or a larger MTU on the path.

use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::ops::Range;
use std::process::Command;
use std::str::FromStr;

use clap::Parser;
use lvs_core::fwd::{self, tun};
use lvs_core::wire::{self, Fragment, FrameInfo, IpProtocol, L4Info, TcpPacket, UdpPacket};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType of an 802.1Q tag.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// `PACKET_HOST`: a frame addressed to this host's link-layer address.
pub const PACKET_HOST: u8 = 0;

/// IPv6 extension headers that may stand between the fixed header and an IP-in-IP
/// payload (hop-by-hop, routing, fragment, AH, destination options); frames with them
/// go to [`classify`], which walks the chain.
const IPV6_EXT_HEADERS: [u8; 5] = [0, 43, 44, 51, 60];
/// The IP-in-IP protocol numbers: IPv4 inside (4) and IPv6 inside (41).
const IPIP_PROTOCOLS: [u8; 2] = [4, 41];

/// Decapsulates IPVS tunnel (IP-in-IP) packets into a TUN device that carries the VIPs,
/// for a real server in TUN mode whose kernel has no ipip module.
#[derive(Debug, Clone, Parser)]
#[command(name = "lvs-realserver", version)]
pub struct Args {
    /// The interface the tunnelled packets arrive on (only packets addressed to one of
    /// its addresses are taken).
    #[arg(long, value_name = "ETH")]
    pub iface: String,
    /// The TUN device to write the inner packets to: created if absent, brought up.
    #[arg(long, value_name = "NAME")]
    pub tun: String,
    /// A virtual address to put on the TUN device (repeatable); the prefix defaults to
    /// the full length (/32, /128).
    #[arg(long = "vip", value_name = "ADDR[/PREFIX]")]
    pub vips: Vec<Vip>,
    /// Leave rp_filter, arp_ignore and arp_announce as they are.
    #[arg(long)]
    pub no_sysctl: bool,
    /// Do not open the raw sockets that keep the kernel from answering each tunnelled
    /// packet with ICMP protocol unreachable / ICMPv6 parameter problem.
    #[arg(long)]
    pub no_icmp_sink: bool,
}

/// A virtual address and its prefix length, as `ip addr add` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl FromStr for Vip {
    type Err = String;

    fn from_str(s: &str) -> Result<Vip, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("`{p}` is not a prefix length from 0 to {max}")),
            },
        };
        Ok(Vip { addr, prefix })
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a frame was not decapsulated although it is well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Not an IP-in-IP packet.
    NotTunnel,
    /// Not addressed to this host (another host's MAC, a multicast, or an outer
    /// destination that is not one of the interface's addresses).
    NotLocal,
    /// An outer fragment: only whole tunnel packets are unwrapped.
    Fragment,
}

/// Why a tunnel packet could not be decapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The outer headers do not parse.
    Outer(wire::Error),
    /// The outer headers parse but the tunnel payload is not a packet.
    Tunnel(fwd::Error),
    /// The inner packet does not parse.
    Inner(wire::Error),
    /// The inner packet's version is not the one the outer protocol announces.
    InnerVersion,
    /// Longer than the receive buffer.
    Truncated,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Outer(e) => write!(f, "outer headers: {e}"),
            Malformed::Tunnel(e) => write!(f, "tunnel: {e}"),
            Malformed::Inner(e) => write!(f, "inner packet: {e}"),
            Malformed::InnerVersion => f.write_str("inner IP version differs from the tunnel's"),
            Malformed::Truncated => f.write_str("frame longer than the receive buffer"),
        }
    }
}

/// What to do with one received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An IP-in-IP packet for this host: write `frame[inner]` to the TUN device.
    Decapsulate {
        /// The inner IP packet's range in the frame.
        inner: Range<usize>,
        /// The inner packet, parsed (offsets relative to `inner.start`).
        info: FrameInfo,
    },
    /// Well formed, not for us.
    Ignore(Ignored),
    /// A tunnel packet that does not parse.
    Malformed(Malformed),
}

/// Whether the frame is an IP-in-IP packet as far as its first header shows: IPv4
/// protocol 4 or 41, IPv6 next header 4 or 41 or an extension header (the parse walks
/// the chain). The same test as [`socket_filter`], in user space.
pub fn looks_like_tunnel(frame: &[u8]) -> bool {
    let ethertype = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let (ethertype, l3) = match ethertype(12) {
        Some(ETHERTYPE_VLAN) => (ethertype(16), 18),
        t => (t, 14),
    };
    match ethertype {
        Some(ETHERTYPE_IPV4) => frame
            .get(l3 + 9)
            .is_some_and(|p| IPIP_PROTOCOLS.contains(p)),
        Some(ETHERTYPE_IPV6) => frame
            .get(l3 + 6)
            .is_some_and(|n| IPIP_PROTOCOLS.contains(n) || IPV6_EXT_HEADERS.contains(n)),
        _ => false,
    }
}

/// Decides what to do with an Ethernet frame received on the interface whose addresses
/// are `local`: the inner packet of an IP-in-IP packet addressed to one of them, checked
/// with [`FrameInfo::parse_ip`], or why not.
pub fn classify(frame: &[u8], local: &[IpAddr]) -> Verdict {
    if !looks_like_tunnel(frame) {
        return Verdict::Ignore(Ignored::NotTunnel);
    }
    let info = match FrameInfo::parse(frame) {
        Ok(i) => i,
        Err(e) => return Verdict::Malformed(Malformed::Outer(e)),
    };
    if !local.contains(&info.ip.dst) {
        return Verdict::Ignore(Ignored::NotLocal);
    }
    if info.ip.fragment != Fragment::Whole {
        return Verdict::Ignore(Ignored::Fragment);
    }
    let L4Info::IpIp(version) = info.l4 else {
        return Verdict::Ignore(Ignored::NotTunnel);
    };
    let inner = match tun::inner_packet(frame, &info) {
        Ok(r) => r,
        Err(fwd::Error::Fragmented) => return Verdict::Ignore(Ignored::Fragment),
        Err(e) => return Verdict::Malformed(Malformed::Tunnel(e)),
    };
    let Some(packet) = frame.get(inner.clone()) else {
        return Verdict::Malformed(Malformed::Tunnel(fwd::Error::Mismatch));
    };
    match FrameInfo::parse_ip(packet) {
        Ok(i) if i.ip.version == version => Verdict::Decapsulate { inner, info: i },
        Ok(_) => Verdict::Malformed(Malformed::InnerVersion),
        Err(e) => Verdict::Malformed(Malformed::Inner(e)),
    }
}

/// Completes the TCP or UDP checksum of an inner packet whose checksum the kernel left
/// to offload (GRO's `CHECKSUM_PARTIAL`, `TP_STATUS_CSUMNOTREADY`): the field holds the
/// pseudo-header sum only, and a TUN device's packet is checked in full. `info` is the
/// packet's [`FrameInfo::parse_ip`]. Returns whether a checksum was written.
pub fn complete_checksum(packet: &mut [u8], info: &FrameInfo) -> bool {
    if info.ip.fragment != Fragment::Whole {
        return false;
    }
    let (src, dst) = (info.ip.src, info.ip.dst);
    let Some(l4) = packet.get_mut(info.l4_offset()..info.ip_end()) else {
        return false;
    };
    match info.ip.protocol {
        IpProtocol::Tcp => {
            TcpPacket::new_unchecked(l4).fill_checksum(&src, &dst);
            true
        }
        IpProtocol::Udp => {
            UdpPacket::new_unchecked(l4).fill_checksum(&src, &dst);
            true
        }
        _ => false,
    }
}

/// What the binary counts, printed when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inner packets written to the TUN device.
    pub decapsulated: u64,
    /// Frames not decapsulated although well formed (the sum of the next three).
    pub ignored: u64,
    /// ... of which not IP-in-IP.
    pub not_tunnel: u64,
    /// ... of which not addressed to this host.
    pub not_local: u64,
    /// ... of which outer fragments.
    pub fragments: u64,
    /// Tunnel packets that do not parse.
    pub malformed: u64,
    /// Inner checksums completed (GRO'd packets).
    pub checksums_completed: u64,
    /// Inner packets the TUN device refused.
    pub tun_errors: u64,
}

impl Stats {
    /// Counts a verdict (a `Decapsulate` counts once written: [`Stats::written`]).
    pub fn count(&mut self, v: &Verdict) {
        match v {
            Verdict::Decapsulate { .. } => {}
            Verdict::Ignore(why) => self.ignore(*why),
            Verdict::Malformed(_) => self.malformed += 1,
        }
    }

    /// Counts a well-formed frame that is not ours.
    pub fn ignore(&mut self, why: Ignored) {
        self.ignored += 1;
        match why {
            Ignored::NotTunnel => self.not_tunnel += 1,
            Ignored::NotLocal => self.not_local += 1,
            Ignored::Fragment => self.fragments += 1,
        }
    }

    /// Counts the outcome of a TUN write.
    pub fn written(&mut self, ok: bool) {
        if ok {
            self.decapsulated += 1;
        } else {
            self.tun_errors += 1;
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "decapsulated {} ignored {} (not-tunnel {} not-local {} fragments {}) \
             malformed {} checksums-completed {} tun-errors {}",
            self.decapsulated,
            self.ignored,
            self.not_tunnel,
            self.not_local,
            self.fragments,
            self.malformed,
            self.checksums_completed,
            self.tun_errors
        )
    }
}

/// One classic BPF instruction: `(code, jt, jf, k)`, as `struct sock_filter`.
pub type BpfInsn = (u16, u8, u8, u32);

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_LD_H_ABS: u16 = 0x28;
const BPF_LD_B_ABS: u16 = 0x30;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
/// `SKF_AD_OFF + SKF_AD_PKTTYPE`: loads the packet type (`PACKET_HOST`, ...).
const SKF_AD_PKTTYPE: u32 = (-0x1000i32 + 4) as u32;

/// A filter that drops every packet: for the raw sockets that only keep the kernel
/// from answering tunnel packets with ICMP errors.
pub const DROP_ALL: [BpfInsn; 1] = [(BPF_RET_K, 0, 0, 0)];

/// The kernel-side filter of the `AF_PACKET` socket: frames addressed to this host's MAC
/// (`PACKET_HOST`, so never our own outgoing replies) that [`looks_like_tunnel`]. Without
/// it every frame the server sends and receives would be copied to user space.
pub fn socket_filter() -> Vec<BpfInsn> {
    // (instruction, jump-if-true target, jump-if-false target), targets absolute;
    // converted to the relative offsets BPF wants below.
    const ACCEPT: usize = usize::MAX;
    const DROP: usize = usize::MAX - 1;
    let mut prog: Vec<(u16, u32, usize, usize)> = vec![
        (BPF_LD_W_ABS, SKF_AD_PKTTYPE, 0, 0),
        (BPF_JEQ_K, u32::from(PACKET_HOST), 2, DROP),
        (BPF_LD_H_ABS, 12, 0, 0),
        (BPF_JEQ_K, u32::from(ETHERTYPE_IPV4), 4, 7),
        (BPF_LD_B_ABS, 14 + 9, 0, 0),
        (BPF_JEQ_K, 4, ACCEPT, 6),
        (BPF_JEQ_K, 41, ACCEPT, DROP),
        (BPF_JEQ_K, u32::from(ETHERTYPE_IPV6), 8, DROP),
        (BPF_LD_B_ABS, 14 + 6, 0, 0),
    ];
    let v6: Vec<u8> = IPIP_PROTOCOLS
        .iter()
        .chain(IPV6_EXT_HEADERS.iter())
        .copied()
        .collect();
    for (i, n) in v6.iter().enumerate() {
        let next = if i + 1 == v6.len() {
            DROP
        } else {
            prog.len() + 1
        };
        prog.push((BPF_JEQ_K, u32::from(*n), ACCEPT, next));
    }
    let accept = prog.len();
    let drop = accept + 1;
    let rel = |pc: usize, target: usize| -> u8 {
        let target = match target {
            ACCEPT => accept,
            DROP => drop,
            t => t,
        };
        u8::try_from(target - pc - 1).expect("a short program")
    };
    let mut out: Vec<BpfInsn> = prog
        .iter()
        .enumerate()
        .map(|(pc, &(code, k, jt, jf))| {
            if code == BPF_JEQ_K {
                (code, rel(pc, jt), rel(pc, jf), k)
            } else {
                (code, 0, 0, k)
            }
        })
        .collect();
    // Accept the whole frame; drop.
    out.push((BPF_RET_K, 0, 0, u32::MAX));
    out.push((BPF_RET_K, 0, 0, 0));
    out
}

/// Runs a classic BPF program of the instructions [`socket_filter`] uses over a frame
/// of packet type `pkttype`, as the kernel would: the bytes it accepts (0 = dropped).
/// For tests; `None` for an instruction it does not know or a load out of bounds
/// (which the kernel treats as a drop).
pub fn run_filter(prog: &[BpfInsn], frame: &[u8], pkttype: u8) -> Option<u32> {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let &(code, jt, jf, k) = prog.get(pc)?;
        pc += 1;
        match code {
            BPF_LD_W_ABS if k == SKF_AD_PKTTYPE => a = u32::from(pkttype),
            BPF_LD_W_ABS => {
                let b = frame.get(k as usize..k as usize + 4)?;
                a = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            }
            BPF_LD_H_ABS => {
                let b = frame.get(k as usize..k as usize + 2)?;
                a = u32::from(u16::from_be_bytes([b[0], b[1]]));
            }
            BPF_LD_B_ABS => a = u32::from(*frame.get(k as usize)?),
            BPF_JEQ_K => pc += usize::from(if a == k { jt } else { jf }),
            BPF_RET_K => return Some(k),
            _ => return None,
        }
    }
}

/// The sysctls an LVS real server in TUN mode sets (see the [module docs](self)):
/// `(path under /proc/sys, value)`.
pub fn real_server_sysctls(iface: &str, tun: &str) -> Vec<(String, &'static str)> {
    vec![
        ("net/ipv4/conf/all/rp_filter".into(), "0"),
        (format!("net/ipv4/conf/{tun}/rp_filter"), "0"),
        ("net/ipv4/conf/all/arp_ignore".into(), "1"),
        ("net/ipv4/conf/all/arp_announce".into(), "2"),
        (format!("net/ipv4/conf/{iface}/arp_ignore"), "1"),
        (format!("net/ipv4/conf/{iface}/arp_announce"), "2"),
    ]
}

/// Writes each sysctl that differs and returns what changed, as `name: old -> new`.
pub fn apply_sysctls(settings: &[(String, &str)]) -> io::Result<Vec<String>> {
    let mut changed = Vec::new();
    for (path, value) in settings {
        let file = format!("/proc/sys/{path}");
        let old = fs::read_to_string(&file)
            .map_err(|e| io::Error::new(e.kind(), format!("{file}: {e}")))?;
        let old = old.trim();
        if old != *value {
            fs::write(&file, value)
                .map_err(|e| io::Error::new(e.kind(), format!("{file}: {e}")))?;
            changed.push(format!("{}: {old} -> {value}", path.replace('/', ".")));
        }
    }
    Ok(changed)
}

/// Runs `ip ARGS...`, an error carrying its stderr if it fails.
pub fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The `ip` commands that bring the TUN device up and put the VIPs on it (`replace`:
/// running twice is harmless; IPv6 with `nodad`, a tentative address takes no packets).
pub fn tun_commands(tun: &str, vips: &[Vip]) -> Vec<Vec<String>> {
    let mut cmds = vec![vec![
        "link".into(),
        "set".into(),
        "dev".into(),
        tun.into(),
        "up".into(),
    ]];
    for vip in vips {
        let mut c: Vec<String> = vec![
            if vip.addr.is_ipv4() { "-4" } else { "-6" }.into(),
            "addr".into(),
            "replace".into(),
            vip.to_string(),
            "dev".into(),
            tun.into(),
        ];
        if vip.addr.is_ipv6() {
            c.push("nodad".into());
        }
        cmds.push(c);
    }
    cmds
}

/// Brings the TUN device up with the VIPs on it.
pub fn configure_tun(tun: &str, vips: &[Vip]) -> io::Result<()> {
    for c in tun_commands(tun, vips) {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        ip(&args)?;
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;
    use lvs_core::fwd::tun::{TunParams, encap};
    use lvs_core::wire::{EtherType, EthernetAddress, EthernetFrame, IpVersion, Ipv4Packet};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const RIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const DIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const RIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2));
    const DIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1));

    /// A bare IPv4 UDP packet from 198.51.100.7:5353 to 203.0.113.10:53.
    fn inner_v4() -> Vec<u8> {
        let mut p = vec![0u8; 20 + 8 + 4];
        let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len(32);
        ip.set_hop_limit(64);
        ip.set_next_header(IpProtocol::Udp);
        ip.set_src_addr(Ipv4Addr::new(198, 51, 100, 7));
        ip.set_dst_addr(Ipv4Addr::new(203, 0, 113, 10));
        ip.fill_checksum();
        let mut udp = UdpPacket::new_unchecked(&mut p[20..]);
        udp.set_src_port(5353);
        udp.set_dst_port(53);
        udp.set_len(12);
        p[28..].copy_from_slice(b"ping");
        let (s, d) = (
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
        );
        UdpPacket::new_unchecked(&mut p[20..]).fill_checksum(&s, &d);
        p
    }

    /// An Ethernet frame around `inner`, encapsulated from `src` to `dst`.
    fn tunnelled(inner: &[u8], src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let head = 40;
        let mut buf = vec![0u8; head + 14 + inner.len()];
        {
            let mut eth = EthernetFrame::new_unchecked(&mut buf[head..head + 14]);
            eth.set_dst_addr(EthernetAddress([2, 0, 0, 0, 0, 2]));
            eth.set_src_addr(EthernetAddress([2, 0, 0, 0, 0, 1]));
            eth.set_ethertype(if inner[0] >> 4 == 4 {
                EtherType::Ipv4
            } else {
                EtherType::Ipv6
            });
        }
        buf[head + 14..].copy_from_slice(inner);
        let len = buf.len();
        let info = FrameInfo::parse(&buf[head..]).unwrap();
        let p = TunParams {
            src,
            dst,
            ident: 7,
            flow_label: 0,
            mtu: 1500,
        };
        let r = encap(&mut buf, head..len, &info, &p).unwrap();
        buf[r].to_vec()
    }

    #[test]
    fn test_vip_parses_with_and_without_prefix() {
        assert_eq!(
            "203.0.113.10/24".parse::<Vip>().unwrap().to_string(),
            "203.0.113.10/24"
        );
        assert_eq!(
            "203.0.113.10".parse::<Vip>().unwrap().to_string(),
            "203.0.113.10/32"
        );
        assert_eq!(
            "2001:db8::10".parse::<Vip>().unwrap().to_string(),
            "2001:db8::10/128"
        );
        assert!("203.0.113.10/33".parse::<Vip>().is_err());
        assert!("eth0/24".parse::<Vip>().is_err());
    }

    #[test]
    fn test_classify_finds_the_inner_packet_of_each_kind() {
        let v4 = inner_v4();
        for (src, dst) in [(DIP4, RIP4), (DIP6, RIP6)] {
            let f = tunnelled(&v4, src, dst);
            let Verdict::Decapsulate { inner, info } = classify(&f, &[RIP4, RIP6]) else {
                panic!("not decapsulated: {:?}", classify(&f, &[RIP4, RIP6]))
            };
            assert_eq!(&f[inner], &v4[..]);
            assert_eq!(info.ip.version, IpVersion::V4);
            assert_eq!(info.l4.ports(), Some((5353, 53)));
        }
    }

    #[test]
    fn test_classify_ignores_what_is_not_ours_and_flags_bad_tunnels() {
        let v4 = inner_v4();
        let f = tunnelled(&v4, DIP4, RIP4);
        // Another destination.
        assert_eq!(classify(&f, &[DIP4]), Verdict::Ignore(Ignored::NotLocal));
        // Not a tunnel: the inner packet in its own frame.
        let mut plain = f[..14].to_vec();
        plain.extend_from_slice(&v4);
        assert_eq!(
            classify(&plain, &[RIP4]),
            Verdict::Ignore(Ignored::NotTunnel)
        );
        // A fragment of a tunnel packet.
        let mut frag = f.clone();
        frag[14 + 6] = 0x20; // MF
        Ipv4Packet::new_unchecked(&mut frag[14..]).fill_checksum();
        assert_eq!(classify(&frag, &[RIP4]), Verdict::Ignore(Ignored::Fragment));
        // Inner header checksum broken.
        let mut bad = f.clone();
        bad[14 + 20 + 10] ^= 0xff;
        assert_eq!(
            classify(&bad, &[RIP4]),
            Verdict::Malformed(Malformed::Inner(wire::Error::BadChecksum))
        );
        // Protocol 41 (IPv6 inside) around an IPv4 packet.
        let mut ver = f.clone();
        ver[14 + 9] = 41;
        Ipv4Packet::new_unchecked(&mut ver[14..]).fill_checksum();
        assert_eq!(
            classify(&ver, &[RIP4]),
            Verdict::Malformed(Malformed::InnerVersion)
        );
        // Outer length beyond the frame.
        assert_eq!(
            classify(&f[..f.len() - 1], &[RIP4]),
            Verdict::Malformed(Malformed::Outer(wire::Error::Truncated))
        );
    }

    #[test]
    fn test_stats_count_and_print() {
        let mut s = Stats::default();
        s.count(&Verdict::Ignore(Ignored::NotLocal));
        s.count(&Verdict::Malformed(Malformed::InnerVersion));
        s.written(true);
        s.written(false);
        assert_eq!(
            s.to_string(),
            "decapsulated 1 ignored 1 (not-tunnel 0 not-local 1 fragments 0) malformed 1 \
             checksums-completed 0 tun-errors 1"
        );
    }

    #[test]
    fn test_complete_checksum_fixes_a_partial_one() {
        let mut p = inner_v4();
        let good = p.clone();
        // What GRO leaves: the pseudo-header sum only.
        p[26] = 0x12;
        p[27] = 0x34;
        let info = FrameInfo::parse_ip(&p).unwrap();
        assert!(complete_checksum(&mut p, &info));
        assert_eq!(p, good);
    }

    #[test]
    fn test_socket_filter_matches_user_space_test() {
        let prog = socket_filter();
        let v4 = inner_v4();
        let mut cases = vec![
            (tunnelled(&v4, DIP4, RIP4), PACKET_HOST, true),
            (tunnelled(&v4, DIP6, RIP6), PACKET_HOST, true),
            // Our own outgoing copy, and another host's frame.
            (tunnelled(&v4, DIP4, RIP4), 4, false),
            (tunnelled(&v4, DIP4, RIP4), 3, false),
        ];
        let mut plain = vec![0u8; 14];
        plain[12] = 0x08;
        plain.extend_from_slice(&v4);
        cases.push((plain, PACKET_HOST, false));
        let mut arp = vec![0u8; 60];
        arp[12] = 0x08;
        arp[13] = 0x06;
        cases.push((arp, PACKET_HOST, false));
        let mut v6_ext = tunnelled(&v4, DIP6, RIP6);
        v6_ext[14 + 6] = 60;
        cases.push((v6_ext, PACKET_HOST, true));
        for (i, (frame, pkttype, want)) in cases.iter().enumerate() {
            let got = run_filter(&prog, frame, *pkttype).unwrap_or(0) != 0;
            assert_eq!(got, *want, "case {i}");
            if *pkttype == PACKET_HOST {
                assert_eq!(looks_like_tunnel(frame), *want, "case {i}");
            }
        }
        assert_eq!(run_filter(&DROP_ALL, &[], 0), Some(0));
    }

    #[test]
    fn test_tun_commands() {
        let vips = [
            "203.0.113.10".parse().unwrap(),
            "2001:db8::10/64".parse().unwrap(),
        ];
        let cmds: Vec<String> = tun_commands("lvs0", &vips)
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            cmds,
            [
                "link set dev lvs0 up",
                "-4 addr replace 203.0.113.10/32 dev lvs0",
                "-6 addr replace 2001:db8::10/64 dev lvs0 nodad",
            ]
        );
        assert_eq!(
            real_server_sysctls("eth0", "lvs0")[1].0,
            "net/ipv4/conf/lvs0/rp_filter"
        );
    }
}
