//! A test harness around [`lvs_core::director::Director`]: storage on the heap (leaked,
//! tests only), ipvsadm-like words for services and real servers, a `step` that runs one
//! frame through `process` with headroom and tailroom and checks the director's
//! invariants after it, views of the connection tables, and a parser of output frames
//! built on smoltcp that verifies every checksum it meets.
//!
//! ```ignore
//! let mut h = Harness::new();
//! let svc = h.add_service("-t 203.0.113.10:80 -s rr");
//! let rs = h.add_dest(&svc, "-r 10.0.0.11:8080 -m -w 1");
//! let (v, out) = h.step(secs(1), &frames::tcp(&Flow::v4(), SYN, &[]));
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use lvs_core::conn::state::TcpState;
use lvs_core::conn::table::{Conn, ConnFlags, ConnId, ConnTable, FlowAddr, Proto, index_len_for};
use lvs_core::director::{
    Config, DestMeta, DestSpec, Director, Persistence, Rx, SchedStorage, Service, ServiceKey,
    ServiceSpec, Storage, Verdict,
};
use lvs_core::sched::lblc::{Lblc, LblcEntry};
use lvs_core::sched::lblcr::{Lblcr, LblcrEntry};
use lvs_core::sched::mh::{MH_PRIMES, Mh};
use lvs_core::sched::{SchedFlags, SchedKind};
use lvs_core::service::{DestId, Method, RealServer};
use lvs_core::stats::Counters;
use lvs_core::time::{Deadline, Duration, Instant};
use lvs_core::wire::IpVersion;
use smoltcp::wire::{
    EthernetFrame, Icmpv4Packet, Icmpv6Packet, IpAddress, Ipv4Packet, Ipv6Packet, TcpPacket,
    UdpPacket,
};

/// Bytes of free buffer in front of every frame `step` processes.
pub const HEADROOM: usize = 64;
/// Bytes of free buffer after every frame `step` processes.
pub const TAILROOM: usize = 64;
/// The director's IPv4 address (source of IPv4 tunnels).
pub const TUN_SRC_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The director's IPv6 address (source of IPv6 tunnels).
pub const TUN_SRC_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xd, 0, 0, 0, 0, 1);
/// Length of the mh table each service slot offers (the smallest the kernel allows).
pub const MH_TABLE_LEN: usize = MH_PRIMES[0];
/// Entries of the lblc / lblcr tables each service slot offers.
pub const LBLC_ENTRIES: usize = 64;

/// The instant `s` seconds after the start.
pub fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// The instant `ms` milliseconds after the start.
pub fn millis(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Storage sizes of a harness's director.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// IPv4 connection entries.
    pub conns_v4: usize,
    /// IPv6 connection entries.
    pub conns_v6: usize,
    /// Virtual service slots (each with mh, lblc and lblcr storage).
    pub services: usize,
    /// Real server slots.
    pub dests: usize,
    /// FULLNAT local address slots.
    pub laddrs: usize,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            conns_v4: 1024,
            conns_v6: 1024,
            services: 8,
            dests: 32,
            laddrs: 4,
        }
    }
}

/// IPVS's defaults with both tunnel sources set ([`TUN_SRC_V4`], [`TUN_SRC_V6`]).
pub fn config() -> Config {
    Config {
        tun_src_v4: Some(TUN_SRC_V4),
        tun_src_v6: Some(TUN_SRC_V6),
        ..Config::default()
    }
}

fn leak<T>(v: Vec<T>) -> &'static mut [T] {
    Box::leak(v.into_boxed_slice())
}

fn table<A: FlowAddr>(cap: usize, seed: u8) -> ConnTable<'static, A> {
    let entries = leak((0..cap).map(|_| Conn::<A>::empty()).collect());
    let n = index_len_for(cap);
    ConnTable::new(
        entries,
        leak(vec![0u32; n]),
        leak(vec![0u32; n]),
        [seed; 16],
    )
    .expect("harness: connection table storage")
}

fn sched_storage() -> SchedStorage<'static> {
    let mh = Mh::new(leak(vec![0u16; MH_TABLE_LEN]), SchedFlags::default()).expect("mh table");
    SchedStorage {
        mh: Some(Box::leak(Box::new(mh))),
        lblc: Some(Box::leak(Box::new(Lblc::new(leak(vec![
            LblcEntry::EMPTY;
            LBLC_ENTRIES
        ]))))),
        lblcr: Some(Box::leak(Box::new(Lblcr::new(leak(vec![
            LblcrEntry::EMPTY;
            LBLC_ENTRIES
        ]))))),
    }
}

/// A director over leaked heap storage of the given sizes.
pub fn director(caps: Caps, cfg: Config, now: Instant) -> Director<'static, 64> {
    let storage = Storage {
        services: leak(
            (0..caps.services)
                .map(|_| None::<Service<'static, 64>>)
                .collect(),
        ),
        sched: leak((0..caps.services).map(|_| sched_storage()).collect()),
        dests: leak(vec![None::<RealServer>; caps.dests]),
        dest_meta: leak(vec![DestMeta::EMPTY; caps.dests]),
        laddrs: leak(vec![None::<IpAddr>; caps.laddrs]),
        v4: table::<Ipv4Addr>(caps.conns_v4, 0x5a),
        v6: table::<Ipv6Addr>(caps.conns_v6, 0xa5),
    };
    Director::new(cfg, now, storage)
}

// ------------------------------------------------------------------ ipvsadm-like words

fn parse_endpoint(s: &str) -> (IpAddr, Option<u16>) {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return (sa.ip(), Some(sa.port()));
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    let ip = bare
        .parse::<IpAddr>()
        .unwrap_or_else(|_| panic!("harness: not an address[:port]: {s:?}"));
    (ip, None)
}

fn sched_kind(name: &str) -> SchedKind {
    SchedKind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .unwrap_or_else(|| panic!("harness: no scheduler {name:?}"))
}

/// A prefix length from `-M`: a dotted IPv4 netmask or a prefix length.
fn prefix_of(mask: &str) -> u8 {
    if let Ok(m) = mask.parse::<Ipv4Addr>() {
        let bits = u32::from(m);
        assert_eq!(
            bits.leading_ones(),
            bits.count_ones(),
            "harness: non-contiguous netmask {mask}"
        );
        return bits.count_ones() as u8;
    }
    mask.trim_start_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("harness: bad -M {mask:?}"))
}

/// A [`ServiceSpec`] from `ipvsadm -A` words: `-t|-u ADDR:PORT` or `-f MARK [-6]`,
/// `-s SCHED` (default wlc), `-p [SECS]` (default 300), `-M MASK|PREFIX`, `-o`,
/// `-b sh-fallback,sh-port,mh-fallback,mh-port`.
pub fn service_spec(words: &str) -> ServiceSpec {
    let toks: Vec<&str> = words.split_whitespace().collect();
    let mut key = None;
    let mut fwmark = None;
    let mut v6 = false;
    let mut sched = SchedKind::Wlc;
    let mut flags = SchedFlags::default();
    let mut timeout = None;
    let mut prefix = None;
    let mut one_packet = false;
    let mut i = 0;
    let arg = |i: usize| {
        *toks
            .get(i + 1)
            .unwrap_or_else(|| panic!("harness: {} needs an argument", toks[i]))
    };
    while i < toks.len() {
        match toks[i] {
            t @ ("-t" | "-u") => {
                let (addr, port) = parse_endpoint(arg(i));
                let proto = if t == "-t" { Proto::Tcp } else { Proto::Udp };
                key = Some(ServiceKey::Addr {
                    proto,
                    addr,
                    port: port.unwrap_or(0),
                });
                i += 1;
            }
            "-f" => {
                fwmark = Some(arg(i).parse::<u32>().expect("harness: fwmark"));
                i += 1;
            }
            "-6" => v6 = true,
            "-s" => {
                sched = sched_kind(arg(i));
                i += 1;
            }
            "-p" => {
                match toks.get(i + 1).and_then(|t| t.parse::<u64>().ok()) {
                    Some(s) => {
                        timeout = Some(Duration::from_secs(s));
                        i += 1;
                    }
                    None => timeout = Some(Duration::from_secs(300)),
                };
            }
            "-M" => {
                prefix = Some(prefix_of(arg(i)));
                i += 1;
            }
            "-o" => one_packet = true,
            "-b" => {
                for f in arg(i).split(',') {
                    match f {
                        "sh-fallback" | "mh-fallback" => flags.fallback = true,
                        "sh-port" | "mh-port" => flags.port = true,
                        other => panic!("harness: sched flag {other:?}"),
                    }
                }
                i += 1;
            }
            other => panic!("harness: service word {other:?}"),
        }
        i += 1;
    }
    let key = match (key, fwmark) {
        (Some(k), None) => k,
        (None, Some(mark)) => ServiceKey::FwMark {
            mark,
            family: if v6 { IpVersion::V6 } else { IpVersion::V4 },
        },
        _ => panic!("harness: a service needs one of -t, -u, -f: {words:?}"),
    };
    let full = match key.family() {
        IpVersion::V4 => 32,
        IpVersion::V6 => 128,
    };
    ServiceSpec {
        key,
        sched,
        flags,
        persistence: timeout.map(|timeout| Persistence {
            timeout,
            prefix: prefix.unwrap_or(full),
        }),
        one_packet,
    }
}

/// A [`DestSpec`] from `ipvsadm -a` words: `-r ADDR[:PORT]`, `-m` (masq), `-g` (droute,
/// the default), `-i` (tunnel), `-b` (fullnat), `-w WEIGHT` (default 1), `-x UPPER`,
/// `-y LOWER`. A missing port is `default_port` (ipvsadm takes the service's).
pub fn dest_spec(words: &str, default_port: u16) -> DestSpec {
    let toks: Vec<&str> = words.split_whitespace().collect();
    let mut ep = None;
    let mut method = Method::DirectRoute;
    let mut weight = 1;
    let (mut u, mut l) = (0, 0);
    let mut i = 0;
    let num = |i: usize| -> u32 {
        toks.get(i + 1)
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("harness: {} needs a number", toks[i]))
    };
    while i < toks.len() {
        match toks[i] {
            "-r" => {
                ep = Some(parse_endpoint(
                    toks.get(i + 1).expect("harness: -r needs an address"),
                ));
                i += 1;
            }
            "-m" => method = Method::Masq,
            "-g" => method = Method::DirectRoute,
            "-i" => method = Method::Tunnel,
            "-b" => method = Method::FullNat,
            "-w" => {
                weight = num(i);
                i += 1;
            }
            "-x" => {
                u = num(i);
                i += 1;
            }
            "-y" => {
                l = num(i);
                i += 1;
            }
            other => panic!("harness: dest word {other:?}"),
        }
        i += 1;
    }
    let (addr, port) = ep.unwrap_or_else(|| panic!("harness: a dest needs -r: {words:?}"));
    DestSpec {
        addr,
        port: port.unwrap_or(default_port),
        method,
        weight,
        u_threshold: u,
        l_threshold: l,
    }
}

fn key_port(key: &ServiceKey) -> u16 {
    match key {
        ServiceKey::Addr { port, .. } => *port,
        ServiceKey::FwMark { .. } => 0,
    }
}

// ------------------------------------------------------------------ connection views

/// A connection table entry, either family, as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnView {
    /// Its id in its family's table.
    pub id: ConnId,
    /// TCP or UDP.
    pub proto: Proto,
    /// A persistence template.
    pub template: bool,
    /// Counted in InActConn (else ActiveConn), for a connection.
    pub inactive: bool,
    /// One-packet scheduling.
    pub one_packet: bool,
    /// The raw state (a `TcpState` for TCP, 0 for UDP).
    pub state: u8,
    /// Forwarding method.
    pub method: Method,
    /// Client address (masked, for a template).
    pub caddr: IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// Local (FULLNAT) address, else the client's.
    pub laddr: IpAddr,
    /// Local (FULLNAT) port, else the client's.
    pub lport: u16,
    /// Service slot.
    pub service: u16,
    /// Real server id.
    pub dest: DestId,
    /// Controlled by a template.
    pub controlled: bool,
    /// Entries it controls.
    pub n_control: u16,
    /// When it expires (compares with an `Instant`).
    pub expires: Deadline,
}

impl ConnView {
    fn of<A: FlowAddr>(id: ConnId, c: &Conn<A>) -> ConnView {
        ConnView {
            id,
            proto: c.proto,
            template: c.is_template(),
            inactive: c.flags.contains(ConnFlags::INACTIVE),
            one_packet: c.flags.contains(ConnFlags::ONE_PACKET),
            state: c.state,
            method: c.method,
            caddr: c.caddr.to_ip(),
            cport: c.cport,
            vaddr: c.vaddr.to_ip(),
            vport: c.vport,
            daddr: c.daddr.to_ip(),
            dport: c.dport,
            laddr: c.laddr.to_ip(),
            lport: c.lport,
            service: c.service,
            dest: c.dest,
            controlled: c.control != lvs_core::conn::table::NO_CONN,
            n_control: c.n_control,
            expires: c.expires,
        }
    }

    /// The TCP state (panics on a bad value).
    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_u8(self.state).expect("harness: bad TCP state")
    }
}

// ------------------------------------------------------------------ the harness

/// A director with helpers; every `step` and `maintain` checks its invariants.
pub struct Harness {
    /// The director under test.
    pub d: Director<'static, 64>,
    /// What `step` passes as [`Rx`].
    pub rx: Rx,
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

impl Harness {
    /// Default capacities and [`config`].
    pub fn new() -> Harness {
        Harness::with(Caps::default(), config())
    }

    /// Given capacities and configuration, started at time 0.
    pub fn with(caps: Caps, cfg: Config) -> Harness {
        Harness {
            d: director(caps, cfg, Instant::ZERO),
            rx: Rx::default(),
        }
    }

    /// Default capacities, [`config`] changed by `f`.
    pub fn with_config(f: impl FnOnce(&mut Config)) -> Harness {
        let mut cfg = config();
        f(&mut cfg);
        Harness::with(Caps::default(), cfg)
    }

    /// Panics with the director's message if an invariant is broken.
    pub fn check(&self) {
        if let Err(e) = self.d.check_invariants() {
            panic!("director invariant broken: {e}");
        }
    }

    /// `ipvsadm -A` with these words ([`service_spec`]); panics if refused.
    pub fn add_service(&mut self, words: &str) -> ServiceKey {
        let spec = service_spec(words);
        self.d
            .add_service(spec, Instant::ZERO)
            .unwrap_or_else(|e| panic!("add_service {words:?}: {e}"));
        spec.key
    }

    /// `ipvsadm -a` with these words ([`dest_spec`], the port defaulting to the
    /// service's); panics if refused.
    pub fn add_dest(&mut self, key: &ServiceKey, words: &str) -> DestId {
        let spec = dest_spec(words, key_port(key));
        let id = self
            .d
            .add_dest(key, spec, Instant::ZERO)
            .unwrap_or_else(|e| panic!("add_dest {words:?}: {e}"));
        self.check();
        id
    }

    /// `ipvsadm -e` with these words; panics if refused.
    pub fn edit_dest(&mut self, key: &ServiceKey, words: &str) {
        let spec = dest_spec(words, key_port(key));
        self.d
            .edit_dest(key, spec)
            .unwrap_or_else(|e| panic!("edit_dest {words:?}: {e}"));
        self.check();
    }

    /// Adds a FULLNAT local address; panics if refused.
    pub fn add_laddr(&mut self, a: &str) {
        self.d
            .add_laddr(a.parse().expect("harness: laddr"))
            .expect("harness: add_laddr");
    }

    /// Runs `frame` through `process` with [`HEADROOM`] and [`TAILROOM`] and `self.rx`;
    /// returns the verdict and the bytes of the output frame range (for `Local` and
    /// `Drop`, the input range as `process` left it). Checks the invariants.
    pub fn step(&mut self, now: Instant, frame: &[u8]) -> (Verdict, Vec<u8>) {
        let rx = self.rx;
        self.step_with(now, rx, frame, HEADROOM, TAILROOM)
    }

    /// [`Harness::step`] with another [`Rx`].
    pub fn step_rx(&mut self, now: Instant, rx: Rx, frame: &[u8]) -> (Verdict, Vec<u8>) {
        self.step_with(now, rx, frame, HEADROOM, TAILROOM)
    }

    /// [`Harness::step`] with given headroom and tailroom.
    pub fn step_with(
        &mut self,
        now: Instant,
        rx: Rx,
        frame: &[u8],
        headroom: usize,
        tailroom: usize,
    ) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0u8; headroom + frame.len() + tailroom];
        let input = headroom..headroom + frame.len();
        buf[input.clone()].copy_from_slice(frame);
        let v = self.d.process(now, rx, &mut buf, input.clone());
        let out = match &v {
            Verdict::Forward { frame, .. } | Verdict::Reply { frame } => {
                buf[frame.clone()].to_vec()
            }
            Verdict::Local | Verdict::Drop(_) => buf[input].to_vec(),
        };
        self.check();
        (v, out)
    }

    /// Expires everything due at `now` (a budget covering both tables), then checks.
    pub fn maintain(&mut self, now: Instant) {
        self.d.maintain(now, 1 << 20);
        self.check();
    }

    /// Every entry of both tables (IPv4 first), templates included.
    pub fn conns(&self) -> Vec<ConnView> {
        let mut v: Vec<ConnView> = self
            .d
            .conns_v4()
            .iter()
            .map(|(id, c)| ConnView::of(id, c))
            .collect();
        v.extend(self.d.conns_v6().iter().map(|(id, c)| ConnView::of(id, c)));
        v
    }

    /// Connections only (no templates).
    pub fn flows(&self) -> Vec<ConnView> {
        self.conns().into_iter().filter(|c| !c.template).collect()
    }

    /// Templates only.
    pub fn templates(&self) -> Vec<ConnView> {
        self.conns().into_iter().filter(|c| c.template).collect()
    }

    /// The connection of client `caddr:cport` (panics unless exactly one).
    pub fn flow(&self, caddr: IpAddr, cport: u16) -> ConnView {
        let v: Vec<ConnView> = self
            .flows()
            .into_iter()
            .filter(|c| c.caddr == caddr && c.cport == cport)
            .collect();
        assert_eq!(v.len(), 1, "harness: connections of {caddr}:{cport}: {v:?}");
        v[0]
    }

    /// The connection of client `caddr:cport`, if any.
    pub fn find_flow(&self, caddr: IpAddr, cport: u16) -> Option<ConnView> {
        self.flows()
            .into_iter()
            .find(|c| c.caddr == caddr && c.cport == cport)
    }

    /// The real server `id`'s (ActiveConn, InActConn, PersistConn).
    pub fn counts(&self, id: DestId) -> (u32, u32, u32) {
        let (d, _) = self.d.dest(id).expect("harness: no such dest slot");
        (d.active_conns, d.inactive_conns, d.persist_conns)
    }

    /// The real server `id`.
    pub fn server(&self, id: DestId) -> RealServer {
        *self.d.dest(id).expect("harness: no such dest slot").0
    }

    /// The real server `id`'s counters.
    pub fn dest_stats(&self, id: DestId) -> Counters {
        self.d.dest(id).expect("harness: no such dest slot").1.stats
    }

    /// The service's counters.
    pub fn svc_stats(&self, key: &ServiceKey) -> Counters {
        *self
            .d
            .service(key)
            .expect("harness: no such service")
            .stats()
    }
}

// ------------------------------------------------------------------ output frames

/// A parsed transport header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    /// TCP (checksum verified).
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// The flags byte.
        flags: u8,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Payload.
        payload: Vec<u8>,
    },
    /// UDP (checksum verified, or zero over IPv4).
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// The checksum field.
        checksum: u16,
        /// Payload.
        payload: Vec<u8>,
    },
    /// An ICMP / ICMPv6 message (checksum verified).
    Icmp {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
        /// Bytes 4..8 of the header (the MTU of "fragmentation needed" / "too big").
        rest: u32,
        /// The quoted datagram (for errors), parsed as far as the quote goes.
        quote: Option<Quote>,
        /// Bytes after the 8-byte header.
        body: Vec<u8>,
    },
    /// An IP-in-IP payload (protocol 4 or 41).
    Inner(Box<Ip>),
    /// Anything else: the payload.
    Other(Vec<u8>),
}

/// A datagram quoted in an ICMP error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Protocol.
    pub protocol: u8,
    /// Source and destination ports (TCP/UDP).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Whether the quoted transport checksum verifies, when the whole datagram is quoted.
    pub l4_checksum_ok: Option<bool>,
}

/// A parsed IP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// TTL / hop limit.
    pub hop_limit: u8,
    /// IPv4 DF (true for IPv6).
    pub dont_frag: bool,
    /// IP total length.
    pub total_len: usize,
    /// The IP packet's bytes.
    pub bytes: Vec<u8>,
    /// Its transport.
    pub l4: L4,
}

impl Ip {
    /// (source port, destination port) of TCP or UDP; panics otherwise.
    pub fn ports(&self) -> (u16, u16) {
        match &self.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport, .. } => (*sport, *dport),
            other => panic!("harness: no ports in {other:?}"),
        }
    }

    /// The TCP or UDP payload; panics otherwise.
    pub fn payload(&self) -> &[u8] {
        match &self.l4 {
            L4::Tcp { payload, .. } | L4::Udp { payload, .. } => payload,
            other => panic!("harness: no payload in {other:?}"),
        }
    }

    /// The TCP flags; panics for another protocol.
    pub fn tcp_flags(&self) -> u8 {
        match &self.l4 {
            L4::Tcp { flags, .. } => *flags,
            other => panic!("harness: not TCP: {other:?}"),
        }
    }

    /// The inner packet of IP-in-IP; panics otherwise.
    pub fn inner(&self) -> &Ip {
        match &self.l4 {
            L4::Inner(i) => i,
            other => panic!("harness: not IP-in-IP: {other:?}"),
        }
    }
}

/// A parsed Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// The 802.1Q TCI, if tagged.
    pub vlan: Option<u16>,
    /// The EtherType (after the tag).
    pub ethertype: u16,
    /// The IP packet.
    pub ip: Ip,
}

/// Parses an Ethernet frame (at most one 802.1Q tag) with its IP packet; panics on
/// anything malformed or any checksum that does not verify.
pub fn parse_frame(frame: &[u8]) -> Frame {
    let eth = EthernetFrame::new_checked(frame).expect("output: Ethernet");
    let mut ethertype = u16::from(eth.ethertype());
    let mut payload = eth.payload();
    let mut vlan = None;
    if ethertype == crate::frames::VLAN_TPID {
        vlan = Some(u16::from_be_bytes([payload[0], payload[1]]));
        ethertype = u16::from_be_bytes([payload[2], payload[3]]);
        payload = &payload[4..];
    }
    let ip = parse_ip(payload);
    let want = match ip.src {
        IpAddr::V4(_) => 0x0800,
        IpAddr::V6(_) => 0x86dd,
    };
    assert_eq!(ethertype, want, "output: EtherType of the IP version");
    Frame {
        dst_mac: eth.dst_addr().0,
        src_mac: eth.src_addr().0,
        vlan,
        ethertype,
        ip,
    }
}

fn ipaddr(a: IpAddr) -> IpAddress {
    IpAddress::from(a)
}

fn parse_l4(src: IpAddr, dst: IpAddr, protocol: u8, payload: &[u8]) -> L4 {
    match protocol {
        6 => {
            let t = TcpPacket::new_checked(payload).expect("output: TCP");
            assert!(
                t.verify_checksum(&ipaddr(src), &ipaddr(dst)),
                "output: TCP checksum {src} -> {dst}"
            );
            L4::Tcp {
                sport: t.src_port(),
                dport: t.dst_port(),
                flags: payload[13],
                seq: t.seq_number().0 as u32,
                ack: t.ack_number().0 as u32,
                payload: t.payload().to_vec(),
            }
        }
        17 => {
            let u = UdpPacket::new_checked(payload).expect("output: UDP");
            assert!(
                u.verify_checksum(&ipaddr(src), &ipaddr(dst)),
                "output: UDP checksum {src} -> {dst}"
            );
            if src.is_ipv6() {
                assert_ne!(u.checksum(), 0, "output: zero UDP checksum over IPv6");
            }
            L4::Udp {
                sport: u.src_port(),
                dport: u.dst_port(),
                checksum: u.checksum(),
                payload: u.payload().to_vec(),
            }
        }
        1 => {
            let m = Icmpv4Packet::new_checked(payload).expect("output: ICMP");
            assert!(m.verify_checksum(), "output: ICMP checksum");
            let ty = payload[0];
            let body = payload[8..].to_vec();
            let quote = matches!(ty, 3 | 11 | 12).then(|| parse_quote(&body));
            L4::Icmp {
                ty,
                code: payload[1],
                rest: u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
                quote,
                body,
            }
        }
        58 => {
            let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
                panic!("output: ICMPv6 over IPv4");
            };
            let m = Icmpv6Packet::new_checked(payload).expect("output: ICMPv6");
            assert!(m.verify_checksum(&s, &d), "output: ICMPv6 checksum");
            let ty = payload[0];
            let body = payload[8..].to_vec();
            let quote = (1..=4).contains(&ty).then(|| parse_quote(&body));
            L4::Icmp {
                ty,
                code: payload[1],
                rest: u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
                quote,
                body,
            }
        }
        4 | 41 => L4::Inner(Box::new(parse_ip(payload))),
        _ => L4::Other(payload.to_vec()),
    }
}

/// Parses a bare IP packet (no extension headers or options expected beyond what
/// smoltcp skips); panics on anything malformed or a checksum that does not verify.
pub fn parse_ip(bytes: &[u8]) -> Ip {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => {
            let p = Ipv4Packet::new_checked(bytes).expect("output: IPv4");
            assert!(p.verify_checksum(), "output: IPv4 header checksum");
            let total = usize::from(p.total_len());
            let src = IpAddr::V4(p.src_addr());
            let dst = IpAddr::V4(p.dst_addr());
            let protocol = u8::from(p.next_header());
            Ip {
                src,
                dst,
                protocol,
                hop_limit: p.hop_limit(),
                dont_frag: p.dont_frag(),
                total_len: total,
                bytes: bytes[..total].to_vec(),
                l4: parse_l4(src, dst, protocol, p.payload()),
            }
        }
        Some(6) => {
            let p = Ipv6Packet::new_checked(bytes).expect("output: IPv6");
            let total = p.total_len();
            let src = IpAddr::V6(p.src_addr());
            let dst = IpAddr::V6(p.dst_addr());
            // Walk hop-by-hop, routing, fragment and destination options headers.
            let mut protocol = u8::from(p.next_header());
            let mut payload = p.payload();
            while matches!(protocol, 0 | 43 | 44 | 60) {
                let len = if protocol == 44 {
                    8
                } else {
                    (usize::from(payload[1]) + 1) * 8
                };
                protocol = payload[0];
                payload = &payload[len..];
            }
            Ip {
                src,
                dst,
                protocol,
                hop_limit: p.hop_limit(),
                dont_frag: true,
                total_len: total,
                bytes: bytes[..total].to_vec(),
                l4: parse_l4(src, dst, protocol, payload),
            }
        }
        v => panic!("output: IP version {v:?}"),
    }
}

/// Parses the datagram an ICMP error quotes: its header (IPv4 header checksum
/// verified), ports, and the transport checksum when the whole datagram is there.
pub fn parse_quote(q: &[u8]) -> Quote {
    let (src, dst, protocol, l4): (IpAddr, IpAddr, u8, &[u8]) = match q[0] >> 4 {
        4 => {
            let p = Ipv4Packet::new_unchecked(q);
            assert!(p.verify_checksum(), "quote: IPv4 header checksum");
            let hl = usize::from(p.header_len());
            let total = usize::from(p.total_len());
            let end = total.min(q.len());
            (
                IpAddr::V4(p.src_addr()),
                IpAddr::V4(p.dst_addr()),
                u8::from(p.next_header()),
                &q[hl..end],
            )
        }
        6 => {
            let p = Ipv6Packet::new_unchecked(q);
            let end = p.total_len().min(q.len());
            (
                IpAddr::V6(p.src_addr()),
                IpAddr::V6(p.dst_addr()),
                u8::from(p.next_header()),
                &q[40..end],
            )
        }
        v => panic!("quote: IP version {v}"),
    };
    let whole = match q[0] >> 4 {
        4 => usize::from(Ipv4Packet::new_unchecked(q).total_len()) <= q.len(),
        _ => Ipv6Packet::new_unchecked(q).total_len() <= q.len(),
    };
    let sport = u16::from_be_bytes([l4[0], l4[1]]);
    let dport = u16::from_be_bytes([l4[2], l4[3]]);
    let l4_checksum_ok = match (whole, protocol) {
        (true, 6) => Some(
            TcpPacket::new_checked(l4).is_ok_and(|t| t.verify_checksum(&ipaddr(src), &ipaddr(dst))),
        ),
        (true, 17) => Some(
            UdpPacket::new_checked(l4).is_ok_and(|u| u.verify_checksum(&ipaddr(src), &ipaddr(dst))),
        ),
        _ => None,
    };
    Quote {
        src,
        dst,
        protocol,
        sport,
        dport,
        l4_checksum_ok,
    }
}
