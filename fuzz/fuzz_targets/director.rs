//! One `Director` (64 IPv4 + 64 IPv6 connections, 4 service slots, 16 real servers
//! with at most 6 per service, 2 FULLNAT local addresses) driven by a sequence of
//! control operations and frames decoded from the input. After every operation
//! `check_invariants` holds and every service member is a live real server of that
//! service. For every `Forward`/`Reply` the output range lies within the buffer and
//! re-parses (IPv4 header checksum included), and an L4 checksum that verified before
//! still verifies; a `Forward` of TCP/UDP goes to its next hop (or is the frame
//! untouched: DR), a `Reply` to the sender. `Local` leaves the buffer untouched.
//! Nothing panics.
//!
//! Every input runs three times: with the established-flow fast path of `process` on
//! and off (`Director::set_fast_path`), and with every frame through `process_burst`
//! (a burst of one, reading ahead whatever the table's size). After every operation the
//! three runs must agree on the verdict, the buffer, the counters, the real servers and
//! services, and both connection tables.
//!
//! The director and its storage are rebuilt for every input (a few tens of kilobytes of
//! memset), so an input replays the same way alone or inside a campaign.
//!
//! # Input format
//! Missing bytes read as 0. Four header bytes: `h0` the switches (see [`switches`]),
//! `h1 % 16` the sweep budget, `h2 % 128` the victim budget, `MTUS[h3 % 8]` the tunnel
//! MTU. Then operations, each an opcode byte (`% 16`) and its argument bytes:
//!
//! | op | name | argument bytes |
//! |---|---|---|
//! | 0 | AddService | key, sched, flags, timeout, prefix (see [`service_spec`]) |
//! | 1 | EditService | same as AddService |
//! | 2 | DeleteService | key |
//! | 3 | AddDest | key, rip, method, weight, thresholds (see [`dest_spec`]) |
//! | 4 | EditDest | same as AddDest |
//! | 5 | DeleteDest | key, rip |
//! | 6 | AddLaddr | `LADDRS[b % 4]` |
//! | 7 | Zero | b: even zeroes everything, odd reads a key |
//! | 8 | Clear | - |
//! | 9 | SetTimeouts | tcp, tcpfin, udp: 4 s units each (0 leaves the value) |
//! | 10 | AdvanceTime | unit (`% 4`: ms, 10 ms, s, min), value (minutes `% 11`) |
//! | 11 | SetConfig | switches byte, MTU byte (as `h0`, `h3`) |
//! | 12 | Packet | a frame between endpoints of the address pools ([`free_packet`]) |
//! | 13 | ConnPacket | a frame of an existing connection ([`conn_packet`]) |
//! | 14 | RawFrame | rx, len_hi, len_lo, then `len % 2048` raw bytes |
//! | 15 | Maintain | budget |
//!
//! `tests/src/bin/gen_fuzz_seeds.rs` writes seeds in this format (`fuzz/seeds/director`).
#![no_main]
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::Range;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lvs_core::checksum;
use lvs_core::conn::table::{Conn, ConnTable, Proto, index_len_for};
use lvs_core::director::{
    Config, DestMeta, DestSpec, Director, Packet, Persistence, Rx, SchedStorage, ServiceKey,
    ServiceSpec, Storage, Verdict,
};
use lvs_core::sched::lblc::{Lblc, LblcEntry};
use lvs_core::sched::lblcr::{Lblcr, LblcrEntry};
use lvs_core::sched::mh::Mh;
use lvs_core::sched::{SchedFlags, SchedKind};
use lvs_core::service::{Method, RealServer};
use lvs_core::time::{Duration, Instant};
use lvs_core::wire::{FrameInfo, IpVersion, L4Info, TcpPacket, UdpPacket};

#[path = "common.rs"]
mod common;
use common::l4_valid;

/// Connections per family.
const CONNS: usize = 64;
/// Service slots; the first `SCHED_SLOTS` have mh/lblc/lblcr storage.
const SERVICES: usize = 4;
const SCHED_SLOTS: usize = 3;
/// Real-server slots, and the most per service.
const DESTS: usize = 16;
const PER_SERVICE: usize = 6;
const LADDR_SLOTS: usize = 2;
/// Bounds the work per input.
const MAX_OPS: usize = 512;

const MTUS: [u16; 8] = [1500, 1280, 1400, 576, 9000, 68, 100, 65535];

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const fn v6(hi: u16, mid: u16, lo: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, hi, mid, 0, 0, 0, lo))
}

/// Virtual addresses: two per family.
const VIPS: [IpAddr; 4] = [v4(10, 0, 0, 1), v4(10, 0, 0, 2), v6(0, 0, 1), v6(0, 0, 2)];
const VPORTS: [u16; 4] = [80, 53, 0, 443];
/// Real servers: three per family.
const RIPS: [IpAddr; 6] = [
    v4(192, 168, 0, 1),
    v4(192, 168, 0, 2),
    v4(192, 168, 0, 3),
    v6(0xaa, 0, 1),
    v6(0xaa, 0, 2),
    v6(0xaa, 0, 3),
];
const RPORTS: [u16; 4] = [80, 8080, 53, 0];
/// FULLNAT local addresses: two per family (two slots).
const LADDRS: [IpAddr; 4] = [
    v4(10, 1, 0, 1),
    v4(10, 1, 0, 2),
    v6(0xbb, 0, 1),
    v6(0xbb, 0, 2),
];
/// Frame endpoints per family: three clients (the third in another /24 and /48), two
/// VIPs, two RIPs, a local address.
const POOL4: [IpAddr; 8] = [
    v4(172, 16, 0, 1),
    v4(172, 16, 0, 2),
    v4(172, 16, 1, 1),
    VIPS[0],
    VIPS[1],
    RIPS[0],
    RIPS[1],
    LADDRS[0],
];
const POOL6: [IpAddr; 8] = [
    v6(0xc, 0, 1),
    v6(0xc, 0, 2),
    v6(0xd, 0, 1),
    VIPS[2],
    VIPS[3],
    RIPS[3],
    RIPS[4],
    LADDRS[2],
];
const PORTS: [u16; 8] = [1024, 1025, 40000, 80, 53, 443, 8080, 0];
const ROUTER4: IpAddr = v4(192, 0, 2, 254);
const ROUTER6: IpAddr = v6(0xff, 0, 0xfe);
const TUN4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const TUN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);

const ACK: u8 = 0x10;

/// The input, read byte by byte; 0 past its end.
struct Reader<'d> {
    d: &'d [u8],
    i: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.d.get(self.i).copied().unwrap_or(0);
        self.i = self.i.saturating_add(1);
        b
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.u8() as usize % from.len()]
    }

    fn is_empty(&self) -> bool {
        self.i >= self.d.len()
    }

    fn rest(&mut self, n: usize) -> &[u8] {
        let start = self.i.min(self.d.len());
        let end = start.saturating_add(n).min(self.d.len());
        self.i = self.i.saturating_add(n);
        &self.d[start..end]
    }
}

fn trace() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("LVS_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($t:tt)*) => {
        if trace() {
            eprintln!($($t)*);
        }
    };
}

/// Applies a switches byte: bit 0 `expire_nodest_conn`, 1 `expire_quiescent_template`,
/// 2 `sloppy_tcp`, 3 `secure_tcp`, 4 no IPv4 tunnel source, 5 no IPv6 tunnel source,
/// bits 6-7 `conn_reuse_mode`.
fn switches(cfg: &mut Config, b: u8) {
    cfg.expire_nodest_conn = b & 1 != 0;
    cfg.expire_quiescent_template = b & 2 != 0;
    cfg.sloppy_tcp = b & 4 != 0;
    cfg.secure_tcp = b & 8 != 0;
    cfg.tun_src_v4 = (b & 0x10 == 0).then_some(TUN4);
    cfg.tun_src_v6 = (b & 0x20 == 0).then_some(TUN6);
    cfg.conn_reuse_mode = b >> 6;
}

/// A service key from one byte: bit 7 set is an fwmark service (mark `1 + bit 0`, IPv6
/// when bit 1); otherwise bit 0 UDP, bits 1-2 `VIPS`, bits 3-4 `VPORTS`.
fn service_key(b: u8) -> ServiceKey {
    if b & 0x80 != 0 {
        ServiceKey::FwMark {
            mark: 1 + u32::from(b & 1),
            family: if b & 2 != 0 {
                IpVersion::V6
            } else {
                IpVersion::V4
            },
        }
    } else {
        ServiceKey::Addr {
            proto: if b & 1 != 0 { Proto::Udp } else { Proto::Tcp },
            addr: VIPS[usize::from(b >> 1) & 3],
            port: VPORTS[usize::from(b >> 3) & 3],
        }
    }
}

/// key; `SchedKind::ALL[sched % 14]`; flags: bit 0 fallback, 1 port, 2 persistence,
/// 3 one-packet; persistence timeout in 4 s units; prefix `% (family bits + 2)` (the
/// last value is invalid).
fn service_spec(r: &mut Reader) -> ServiceSpec {
    let key = service_key(r.u8());
    let sched = r.pick(&SchedKind::ALL);
    let f = r.u8();
    let timeout = Duration::from_secs(u64::from(r.u8()) * 4);
    let bits = match key.family() {
        IpVersion::V4 => 32u8,
        IpVersion::V6 => 128,
    };
    let prefix = r.u8() % (bits + 2);
    ServiceSpec {
        key,
        sched,
        flags: SchedFlags {
            fallback: f & 1 != 0,
            port: f & 2 != 0,
        },
        persistence: (f & 4 != 0).then_some(Persistence { timeout, prefix }),
        one_packet: f & 8 != 0,
    }
}

/// A real server's address and port from one byte: `RIPS[(b & 15) % 6]`,
/// `RPORTS[(b >> 4) & 3]`.
fn rip(b: u8) -> (IpAddr, u16) {
    (
        RIPS[usize::from(b & 0x0f) % RIPS.len()],
        RPORTS[usize::from(b >> 4) & 3],
    )
}

const METHODS: [Method; 4] = [
    Method::Masq,
    Method::DirectRoute,
    Method::Tunnel,
    Method::FullNat,
];

/// key, rip, `METHODS[m % 4]`, weight `% 6` (255: 70000, invalid), thresholds: upper
/// low nibble, lower high nibble.
fn dest_spec(r: &mut Reader) -> (ServiceKey, DestSpec) {
    let key = service_key(r.u8());
    let (addr, port) = rip(r.u8());
    let method = r.pick(&METHODS);
    let w = r.u8();
    let t = r.u8();
    (
        key,
        DestSpec {
            addr,
            port,
            method,
            weight: if w == 255 { 70_000 } else { u32::from(w % 6) },
            u_threshold: u32::from(t & 0x0f),
            l_threshold: u32::from(t >> 4),
        },
    )
}

/// How to wrap a packet.
#[derive(Clone, Copy, Default)]
struct Shape {
    vlan: bool,
    /// IPv4 options (4 NOP/EOL bytes), IPv6 hop-by-hop header.
    ext: bool,
    /// A fragment: `Some(false)` the first, `Some(true)` a later one.
    frag: Option<bool>,
    df: bool,
}

fn tcp_segment(src: IpAddr, dst: IpAddr, sp: u16, dp: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; 20];
    s[0..2].copy_from_slice(&sp.to_be_bytes());
    s[2..4].copy_from_slice(&dp.to_be_bytes());
    s[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    if flags & ACK != 0 {
        s[8..12].copy_from_slice(&0x0a0b_0c0du32.to_be_bytes());
    }
    s[12] = 5 << 4;
    s[13] = flags;
    s[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    s.extend_from_slice(payload);
    TcpPacket::new_unchecked(&mut s[..]).fill_checksum(&src, &dst);
    s
}

fn udp_datagram(src: IpAddr, dst: IpAddr, sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; 8];
    s[0..2].copy_from_slice(&sp.to_be_bytes());
    s[2..4].copy_from_slice(&dp.to_be_bytes());
    let len = (8 + payload.len()) as u16;
    s[4..6].copy_from_slice(&len.to_be_bytes());
    s.extend_from_slice(payload);
    UdpPacket::new_unchecked(&mut s[..]).fill_checksum(&src, &dst);
    s
}

/// An IP packet carrying `payload` as protocol `proto`.
fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8], sh: Shape) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let hl = if sh.ext { 24 } else { 20 };
            let mut p = vec![0u8; hl];
            p[0] = 0x40 | (hl / 4) as u8;
            p[2..4].copy_from_slice(&((hl + payload.len()) as u16).to_be_bytes());
            p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            let mut ff = 0u16;
            if sh.df {
                ff |= 0x4000;
            }
            match sh.frag {
                Some(false) => ff |= 0x2000,
                Some(true) => ff |= 1,
                None => {}
            }
            p[6..8].copy_from_slice(&ff.to_be_bytes());
            p[8] = 64;
            p[9] = proto;
            p[12..16].copy_from_slice(&s.octets());
            p[16..20].copy_from_slice(&d.octets());
            if sh.ext {
                p[20..24].copy_from_slice(&[1, 1, 1, 0]);
            }
            let c = checksum::checksum(&p);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p.extend_from_slice(payload);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ext = Vec::new();
            let mut first = proto;
            if let Some(later) = sh.frag {
                // Offset (8-byte units) << 3 | M: a later fragment at 8, or the first with M.
                let off: u16 = if later { 1 << 3 } else { 1 };
                ext.splice(
                    0..0,
                    [first, 0, (off >> 8) as u8, off as u8, 0, 0, 0x12, 0x34],
                );
                first = 44;
            }
            if sh.ext {
                ext.splice(0..0, [first, 0, 1, 4, 0, 0, 0, 0]);
                first = 0;
            }
            let mut p = vec![0u8; 40];
            p[0] = 0x60;
            p[4..6].copy_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
            p[6] = first;
            p[7] = 64;
            p[8..24].copy_from_slice(&s.octets());
            p[24..40].copy_from_slice(&d.octets());
            p.extend_from_slice(&ext);
            p.extend_from_slice(payload);
            p
        }
        _ => Vec::new(),
    }
}

fn ethernet(ip: &[u8], vlan: bool) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    }
    let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
    f.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    f.extend_from_slice(ip);
    f
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// A TCP or UDP packet `src:sp -> dst:dp`.
#[allow(clippy::too_many_arguments)]
fn l4_packet(
    udp: bool,
    src: IpAddr,
    dst: IpAddr,
    sp: u16,
    dp: u16,
    flags: u8,
    len: usize,
    sh: Shape,
) -> Vec<u8> {
    let data = payload(len);
    if udp {
        ip_packet(src, dst, 17, &udp_datagram(src, dst, sp, dp, &data), sh)
    } else {
        ip_packet(
            src,
            dst,
            6,
            &tcp_segment(src, dst, sp, dp, flags, &data),
            sh,
        )
    }
}

/// ICMP types: with `error`, by `sel % 3` (v4) or `% 4` (v6) the errors the director
/// translates (v4 unreachable with the code from bits 3-6, time exceeded, parameter
/// problem; v6 unreachable, packet too big, time exceeded, parameter problem); without,
/// by `sel % 4`, others (v4 source quench, redirect, echo reply, echo request; v6 echo
/// request, echo reply, neighbour solicitation, router advertisement).
fn icmp_type(v6: bool, sel: u8, error: bool) -> (u8, u8) {
    let code = (sel >> 3) & 0x0f;
    match (v6, error) {
        (false, true) => [(3, code), (11, 0), (12, 0)][usize::from(sel) % 3],
        (true, true) => [(1, code % 7), (2, 0), (3, 0), (4, 0)][usize::from(sel) % 4],
        (false, false) => [(4, 0), (5, 1), (0, 0), (8, 0)][usize::from(sel) % 4],
        (true, false) => [(128, 0), (129, 0), (135, 0), (134, 0)][usize::from(sel) % 4],
    }
}

/// An ICMP message from `src` to `dst` quoting `quoted` (a whole IP packet): the type
/// from the selector ([`icmp_type`]); selector bit 7 quotes only the IPv4 header and 8
/// bytes.
fn icmp_error(src: IpAddr, dst: IpAddr, sel: u8, error: bool, quoted: &[u8], sh: Shape) -> Vec<u8> {
    let is6 = matches!(src, IpAddr::V6(_));
    let (t, code) = icmp_type(is6, sel, error);
    let mut q = quoted;
    if sel & 0x80 != 0 && !is6 {
        let ihl = quoted.first().map_or(20, |b| usize::from(b & 0x0f) * 4);
        q = &quoted[..(ihl + 8).min(quoted.len())];
    }
    let mut m = vec![t, code, 0, 0, 0, 0, 0x05, 0x00]; // MTU 1280 where one is carried
    m.extend_from_slice(q);
    let c = match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => !checksum::combine(
            checksum::pseudo_header_v6(&s, &d, 58, m.len() as u32),
            checksum::sum(&m),
        ),
        _ => checksum::checksum(&m),
    };
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ip_packet(src, dst, if is6 { 58 } else { 1 }, &m, sh)
}

/// The payload length from a byte: the byte itself below 128, else 16-byte units (up
/// to 2032 bytes, past every MTU once tunnelled).
fn payload_len(b: u8) -> usize {
    if b & 0x80 == 0 {
        usize::from(b)
    } else {
        usize::from(b & 0x7f) * 16
    }
}

/// The shape byte: bit 0 VLAN, 1 IP options / hop-by-hop, 2 fragment (bit 3: a later
/// one), 4 DF; bits 5-6 the number of byte corruptions, 7 a truncation; their bytes
/// follow (offset, xor per corruption; the cut for a truncation).
fn shape(b: u8) -> Shape {
    Shape {
        vlan: b & 1 != 0,
        ext: b & 2 != 0,
        frag: (b & 4 != 0).then_some(b & 8 != 0),
        df: b & 0x10 != 0,
    }
}

fn corrupt(r: &mut Reader, shape_byte: u8, frame: &mut Vec<u8>) {
    for _ in 0..(shape_byte >> 5) & 3 {
        let (off, x) = (r.u8(), r.u8());
        if !frame.is_empty() {
            let i = usize::from(off) % frame.len();
            frame[i] ^= x;
        }
    }
    if shape_byte & 0x80 != 0 {
        let cut = usize::from(r.u8());
        frame.truncate(cut % (frame.len() + 1));
    }
}

/// A frame between pool endpoints, bytes: kind (bit 0 IPv6; bits 1-2 TCP, UDP, ICMP
/// error, ICMP other), src, dst, sport, dport (`% 8` into the pools), TCP flags,
/// payload length, ICMP selector, shape (and its corruption bytes), rx.
/// An ICMP message comes from `src` (or, with selector bit 6, a router) to `dst` and
/// quotes the packet `dst:dport -> src:sport` it answers (UDP when bit 0 of the flags
/// byte is set, else TCP).
fn free_packet(r: &mut Reader) -> (Vec<u8>, u8) {
    let kind = r.u8();
    let pool = if kind & 1 != 0 { &POOL6 } else { &POOL4 };
    let src = r.pick(pool);
    let dst = r.pick(pool);
    let sp = r.pick(&PORTS);
    let dp = r.pick(&PORTS);
    let flags = r.u8();
    let len = payload_len(r.u8());
    let sel = r.u8();
    let sb = r.u8();
    let sh = shape(sb);
    let ip = match (kind >> 1) & 3 {
        0 => l4_packet(false, src, dst, sp, dp, flags, len, sh),
        1 => l4_packet(true, src, dst, sp, dp, flags, len, sh),
        k => {
            let quoted = l4_packet(
                flags & 1 != 0,
                dst,
                src,
                dp,
                sp,
                flags,
                len % 32,
                Shape::default(),
            );
            let from = if sel & 0x40 != 0 {
                if kind & 1 != 0 { ROUTER6 } else { ROUTER4 }
            } else {
                src
            };
            icmp_error(from, dst, sel, k == 2, &quoted, sh)
        }
    };
    let mut f = ethernet(&ip, sh.vlan);
    corrupt(r, sb, &mut f);
    (f, r.u8())
}

/// The endpoints of a connection (or template) in the tables.
#[derive(Debug, Clone, Copy)]
struct ConnView {
    udp: bool,
    c: (IpAddr, u16),
    v: (IpAddr, u16),
    d: (IpAddr, u16),
    l: (IpAddr, u16),
}

fn view<A: Copy + Into<IpAddr> + lvs_core::conn::table::FlowAddr>(c: &Conn<A>) -> ConnView {
    ConnView {
        udp: c.proto == Proto::Udp,
        c: (c.caddr.into(), c.cport),
        v: (c.vaddr.into(), c.vport),
        d: (c.daddr.into(), c.dport),
        l: (c.laddr.into(), c.lport),
    }
}

/// A frame of the `n`-th connection in the tables (IPv4 first), bytes: index, kind
/// (bits 0-1: client -> virtual, real server -> local address (the reply), ICMP error
/// client side (client -> VIP quoting VIP -> client), ICMP error real-server side (RIP
/// -> local address quoting local address -> RIP); bit 2 the other protocol), TCP
/// flags, payload length, ICMP selector, shape (and its corruption bytes), rx.
/// `None` when the tables are empty.
fn conn_packet<const D: usize>(r: &mut Reader, d: &Director<'_, D>) -> Option<(Vec<u8>, u8)> {
    let n = r.u8();
    let kind = r.u8();
    let flags = r.u8();
    let len = payload_len(r.u8());
    let sel = r.u8();
    let sb = r.u8();
    let sh = shape(sb);
    let total = d.conns_v4().len() + d.conns_v6().len();
    let rx = |r: &mut Reader| r.u8();
    if total == 0 {
        // Keep the reader's position independent of the tables.
        corrupt(r, sb, &mut Vec::new());
        rx(r);
        return None;
    }
    let k = usize::from(n) % total;
    let cv = if k < d.conns_v4().len() {
        d.conns_v4().iter().nth(k).map(|(_, c)| view(c))
    } else {
        d.conns_v6()
            .iter()
            .nth(k - d.conns_v4().len())
            .map(|(_, c)| view(c))
    };
    let Some(cv) = cv else {
        corrupt(r, sb, &mut Vec::new());
        rx(r);
        return None;
    };
    let udp = cv.udp ^ (kind & 4 != 0);
    let ip = match kind & 3 {
        0 => l4_packet(udp, cv.c.0, cv.v.0, cv.c.1, cv.v.1, flags, len, sh),
        1 => l4_packet(udp, cv.d.0, cv.l.0, cv.d.1, cv.l.1, flags, len, sh),
        2 => {
            let q = l4_packet(
                udp,
                cv.v.0,
                cv.c.0,
                cv.v.1,
                cv.c.1,
                flags,
                len % 32,
                Shape::default(),
            );
            icmp_error(cv.c.0, cv.v.0, sel, true, &q, sh)
        }
        _ => {
            let q = l4_packet(
                udp,
                cv.l.0,
                cv.d.0,
                cv.l.1,
                cv.d.1,
                flags,
                len % 32,
                Shape::default(),
            );
            icmp_error(cv.d.0, cv.l.0, sel, true, &q, sh)
        }
    };
    if ip.is_empty() {
        // A tunnel to the other family: the endpoints mix families.
        corrupt(r, sb, &mut Vec::new());
        rx(r);
        return None;
    }
    let mut f = ethernet(&ip, sh.vlan);
    corrupt(r, sb, &mut f);
    Some((f, rx(r)))
}

/// Processes `frame` with the rx byte: bits 0-1 the fwmark (0, 1, 2, 0), bits 2-3 the
/// headroom (0, 20, 40, 64), bits 4-5 the tailroom (the same), bit 6 the interface,
/// bit 7 a frame range past the buffer's end.
fn process<const D: usize>(
    d: &mut Director<'_, D>,
    now: Instant,
    frame: &[u8],
    rxb: u8,
    mode: Mode,
) -> String {
    const ROOM: [usize; 4] = [0, 20, 40, 64];
    let head = ROOM[usize::from(rxb >> 2) & 3];
    let tail = ROOM[usize::from(rxb >> 4) & 3];
    let rx = Rx {
        iface: (rxb >> 6) & 1,
        fwmark: [0, 1, 2, 0][usize::from(rxb & 3)],
    };
    let mut buf = vec![0u8; head + frame.len() + tail];
    buf[head..head + frame.len()].copy_from_slice(frame);
    let range = if rxb & 0x80 != 0 {
        head..buf.len() + 1
    } else {
        head..head + frame.len()
    };
    let before = FrameInfo::parse(frame).ok();
    let valid_before = before.as_ref().and_then(|i| l4_valid(frame, i));
    let original = buf.clone();
    let verdict = if mode == Mode::Burst {
        let mut burst = [Packet::new(rx, &mut buf[..], range.clone())];
        d.process_burst(now, &mut burst);
        let [p] = burst;
        p.verdict
    } else {
        d.process(now, rx, &mut buf, range.clone())
    };
    trace!(
        "  -> {verdict:?} (input {:?}; {}+{} conns)",
        before.map(|i| (i.ip.src, i.ip.dst, i.l4)),
        d.conns_v4().len(),
        d.conns_v6().len()
    );
    let check_out = |out: &Range<usize>, what: &str| -> FrameInfo {
        assert!(
            out.start <= out.end && out.end <= buf.len(),
            "{what}: output range {out:?} outside the buffer of {}",
            buf.len()
        );
        FrameInfo::parse(&buf[out.clone()])
            .unwrap_or_else(|e| panic!("{what}: output frame does not parse: {e:?}"))
    };
    match &verdict {
        Verdict::Forward {
            frame: out,
            next_hop,
        } => {
            let after = check_out(out, "Forward");
            // A TCP/UDP packet is rewritten towards the next hop (NAT, FULLNAT, TUN) or
            // untouched (DR). (An ICMP error goes where its quote says, whatever its
            // outer destination.)
            let l4_before = before.as_ref().map(|b| b.l4);
            let transport = matches!(l4_before, Some(L4Info::Tcp { .. } | L4Info::Udp { .. }));
            assert!(
                !transport || after.ip.dst == *next_hop || buf.get(out.clone()) == Some(frame),
                "Forward: next hop {next_hop} but the frame goes to {}",
                after.ip.dst
            );
            if valid_before == Some(true) && !matches!(after.l4, L4Info::IpIp(_)) {
                assert_ne!(
                    l4_valid(&buf[out.clone()], &after),
                    Some(false),
                    "Forward: L4 checksum broken"
                );
            }
        }
        Verdict::Reply { frame: out } => {
            let after = check_out(out, "Reply");
            if let Some(b) = &before {
                assert_eq!(after.ip.dst, b.ip.src, "Reply: not to the sender");
            }
            assert_ne!(
                l4_valid(&buf[out.clone()], &after),
                Some(false),
                "Reply: ICMP checksum invalid"
            );
        }
        Verdict::Local => assert!(buf == original, "Local: the frame was changed"),
        Verdict::Drop(_) => {}
    }
    format!("{verdict:?} {buf:?}")
}

/// What the runs with and without the fast path must agree on after an operation.
fn digest<const D: usize>(d: &Director<'_, D>, out: &str) -> u64 {
    use std::fmt::Write as _;
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut s = format!("{out}\n{:?} {:?}\n", d.drops(), d.totals());
    for (i, svc) in d.services() {
        let _ = writeln!(s, "{i} {:?} {:?}", svc.stats(), svc.members());
    }
    for id in 0..DESTS as u16 {
        let _ = writeln!(s, "{id} {:?}", d.dest(id));
    }
    for (id, c) in d.conns_v4().iter() {
        let _ = writeln!(s, "{id} {c:?}");
    }
    for (id, c) in d.conns_v6().iter() {
        let _ = writeln!(s, "{id} {c:?}");
    }
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// What the director's listings must agree on besides `check_invariants`.
fn check<const D: usize>(d: &Director<'_, D>) {
    if let Err(e) = d.check_invariants() {
        panic!("check_invariants: {e}");
    }
    for (i, s) in d.services() {
        for &id in s.members() {
            let Some((_, m)) = d.dest(id) else {
                panic!("service {i}: member {id} is a free real server slot");
            };
            assert!(!m.removed, "service {i}: member {id} is marked removed");
            assert_eq!(usize::from(m.service), i, "member {id} of service {i}");
        }
    }
    assert!(d.conns_v4().len() <= CONNS && d.conns_v6().len() <= CONNS);
}

/// How a run sends its frames.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `process` without the fast path.
    General,
    /// `process`.
    Fast,
    /// `process_burst`, one frame per burst, reading ahead for any table size.
    Burst,
}

fn run(data: &[u8], mode: Mode) -> Vec<u64> {
    let mut transcript = Vec::new();
    let mut r = Reader { d: data, i: 0 };
    let mut cfg = Config::default();
    switches(&mut cfg, r.u8());
    cfg.sweep_budget = usize::from(r.u8() % 16);
    cfg.victim_budget = usize::from(r.u8() % 128);
    cfg.tun_mtu = r.pick(&MTUS);
    cfg.burst_read_ahead_from = 0;

    let mut e4 = vec![Conn::<Ipv4Addr>::empty(); CONNS];
    let mut i4 = vec![0u32; index_len_for(CONNS)];
    let mut o4 = vec![0u32; index_len_for(CONNS)];
    let mut e6 = vec![Conn::<Ipv6Addr>::empty(); CONNS];
    let mut i6 = vec![0u32; index_len_for(CONNS)];
    let mut o6 = vec![0u32; index_len_for(CONNS)];
    let mut mh_tables = vec![[0u16; 251]; SCHED_SLOTS];
    let mut lblc_entries = vec![[LblcEntry::EMPTY; 32]; SCHED_SLOTS];
    let mut lblcr_entries = vec![[LblcrEntry::EMPTY; 16]; SCHED_SLOTS];
    let mut mhs: Vec<Mh> = mh_tables
        .iter_mut()
        .map(|t| Mh::new(&mut t[..], SchedFlags::default()).expect("251 is an mh prime"))
        .collect();
    let mut lblcs: Vec<Lblc> = lblc_entries
        .iter_mut()
        .map(|e| Lblc::new(&mut e[..]))
        .collect();
    let mut lblcrs: Vec<Lblcr> = lblcr_entries
        .iter_mut()
        .map(|e| Lblcr::new(&mut e[..]))
        .collect();
    let mut sched: Vec<SchedStorage> = mhs
        .iter_mut()
        .zip(lblcs.iter_mut())
        .zip(lblcrs.iter_mut())
        .map(|((mh, lblc), lblcr)| SchedStorage {
            mh: Some(mh),
            lblc: Some(lblc),
            lblcr: Some(lblcr),
        })
        .collect();
    let mut services: Vec<_> = (0..SERVICES).map(|_| None).collect();
    let mut dests: Vec<Option<RealServer>> = vec![None; DESTS];
    let mut meta = vec![DestMeta::EMPTY; DESTS];
    let mut laddrs: Vec<Option<IpAddr>> = vec![None; LADDR_SLOTS];
    let seed = [7u8; 16];
    let mut now = Instant::from_secs(1000);
    let mut d: Director<'_, PER_SERVICE> = Director::new(
        cfg,
        now,
        Storage {
            services: &mut services,
            sched: &mut sched,
            dests: &mut dests,
            dest_meta: &mut meta,
            laddrs: &mut laddrs,
            v4: ConnTable::new(&mut e4, &mut i4, &mut o4, seed).expect("v4 table"),
            v6: ConnTable::new(&mut e6, &mut i6, &mut o6, seed).expect("v6 table"),
        },
    );
    d.set_fast_path(mode != Mode::General);
    check(&d);

    let mut ops = 0;
    while !r.is_empty() && ops < MAX_OPS {
        ops += 1;
        let op = r.u8() % 16;
        let mut out = String::new();
        match op {
            0 => {
                let spec = service_spec(&mut r);
                let res = d.add_service(spec, now);
                trace!("add_service {spec:?} -> {res:?}");
            }
            1 => {
                let spec = service_spec(&mut r);
                let res = d.edit_service(spec);
                trace!("edit_service {spec:?} -> {res:?}");
            }
            2 => {
                let key = service_key(r.u8());
                let res = d.delete_service(&key);
                trace!("delete_service {key:?} -> {res:?}");
            }
            3 => {
                let (key, spec) = dest_spec(&mut r);
                let res = d.add_dest(&key, spec, now);
                trace!("add_dest {key:?} {spec:?} -> {res:?}");
            }
            4 => {
                let (key, spec) = dest_spec(&mut r);
                let res = d.edit_dest(&key, spec);
                trace!("edit_dest {key:?} {spec:?} -> {res:?}");
            }
            5 => {
                let key = service_key(r.u8());
                let (addr, port) = rip(r.u8());
                let res = d.delete_dest(&key, &addr, port);
                trace!("delete_dest {key:?} {addr}:{port} -> {res:?}");
            }
            6 => {
                let a = r.pick(&LADDRS);
                let res = d.add_laddr(a);
                trace!("add_laddr {a} -> {res:?}");
            }
            7 => {
                let key = (r.u8() & 1 != 0).then(|| service_key(r.u8()));
                let res = d.zero(key.as_ref());
                trace!("zero {key:?} -> {res:?}");
            }
            8 => {
                trace!("clear");
                d.clear();
            }
            9 => {
                let mut t = || Duration::from_secs(u64::from(r.u8()) * 4);
                let (tcp, fin, udp) = (t(), t(), t());
                trace!("set_timeouts {tcp:?} {fin:?} {udp:?}");
                d.set_timeouts(tcp, fin, udp);
            }
            10 => {
                let unit = r.u8() % 4;
                let v = u64::from(r.u8());
                let ms = match unit {
                    0 => v,
                    1 => v * 10,
                    2 => v * 1000,
                    _ => (v % 11) * 60_000,
                };
                now += Duration::from_millis(ms);
                trace!("advance {ms} ms");
            }
            11 => {
                let (s, m) = (r.u8(), r.pick(&MTUS));
                let c = d.config_mut();
                switches(c, s);
                c.tun_mtu = m;
                trace!("config {s:#04x} mtu {m}");
            }
            12 => {
                let (f, rx) = free_packet(&mut r);
                trace!("packet ({} bytes, rx {rx:#04x})", f.len());
                out = process(&mut d, now, &f, rx, mode);
            }
            13 => {
                if let Some((f, rx)) = conn_packet(&mut r, &d) {
                    trace!("conn packet ({} bytes, rx {rx:#04x})", f.len());
                    out = process(&mut d, now, &f, rx, mode);
                }
            }
            14 => {
                let rx = r.u8();
                let len = usize::from(u16::from_be_bytes([r.u8(), r.u8()])) % 2048;
                let f = r.rest(len).to_vec();
                trace!("raw frame ({} bytes)", f.len());
                out = process(&mut d, now, &f, rx, mode);
            }
            _ => {
                let budget = usize::from(r.u8());
                trace!("maintain {budget}");
                d.maintain(now, budget);
            }
        }
        check(&d);
        transcript.push(digest(&d, &out));
    }
    transcript
}

fuzz_target!(|data: &[u8]| {
    let fast = run(data, Mode::Fast);
    let general = run(data, Mode::General);
    if let Some(i) = (0..fast.len()).find(|&i| fast.get(i) != general.get(i)) {
        panic!("operation {i}: the fast path and the general path disagree (LVS_FUZZ_TRACE=1)");
    }
    assert_eq!(fast.len(), general.len());
    let burst = run(data, Mode::Burst);
    if let Some(i) = (0..fast.len()).find(|&i| fast.get(i) != burst.get(i)) {
        panic!("operation {i}: process_burst and process disagree (LVS_FUZZ_TRACE=1)");
    }
    assert_eq!(fast.len(), burst.len());
});
