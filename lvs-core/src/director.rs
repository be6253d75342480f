//! The director: IPVS's packet path ([`Director::process`]) and its control API
//! (add/edit/delete services and real servers, zero counters, set timeouts, list), kept
//! apart: `process` shares no code path with the control calls beyond the data they
//! both read.
//!
//! # The packet path
//! `process(now, rx, buf, frame)` parses the frame once ([`FrameInfo`]), then:
//! 1. a TCP/UDP packet of a known connection from the client side is forwarded to its
//!    real server (state advanced, counted, rewritten by the connection's method);
//! 2. a reply from a real server (NAT, FULLNAT) is rewritten back to the client;
//! 3. a packet to a virtual service that opens a connection (a TCP SYN, any UDP) is
//!    scheduled (persistence templates first), the connection inserted, and forwarded;
//! 4. an ICMP error quoting a forwarded connection is rewritten for the other side
//!    (NAT, FULLNAT) or forwarded like the connection's packets (DR, TUN);
//! 5. everything else is [`Verdict::Local`]: ARP, the director's own traffic, ICMP
//!    echo, a TCP segment to a virtual service that opens nothing (the kernel hands it
//!    to the local stack too, which answers with a reset);
//! 6. malformed input, and what cannot be forwarded, is [`Verdict::Drop`] with a
//!    counted [`DropReason`].
//!
//! When the clock has moved, a call also expires a few connections
//! (`Config::sweep_budget` per millisecond), so expiry is
//! amortised and never a full scan; rate estimators tick every 2 s.
//!
//! # Guarantees
//! No allocation, no panic, no `unsafe`. The counts on each real server (active,
//! inactive, persistent) always equal what its connections in the table say; the fuzz
//! target `director` checks it after every operation.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::Range;

use heapless::Vec as HVec;

use crate::conn::state::{Direction, TcpState, Timeouts, tcp_transition, tcp_transition_secure};
use crate::conn::table::{
    Conn, ConnFlags, ConnId, ConnTable, Expire, FlowAddr, Hints, InsertError, NO_CONN, Prepared,
    Proto,
};
use crate::fwd::{self, Endpoint, fullnat, icmp, nat, tun};
use crate::sched::{
    Dests, SchedFlags, SchedInput, SchedKind, Scheduler, dh::Dh, fo::Fo, lblc::Lblc, lblcr::Lblcr,
    lc::Lc, mh::Mh, nq::Nq, ovf::Ovf, rr::Rr, sed::Sed, sh::Sh, twos::Twos, wlc::Wlc, wrr::Wrr,
};
use crate::service::{DestId, Method, RealServer};
use crate::stats::{Counters, DropCounters, DropReason, Estimator, Rates};
use crate::time::{Deadline, Duration, Instant};
use crate::wire::{self, Fragment, FrameInfo, IpVersion, L4Info, TcpFlags};

/// The ICMP error types a director translates for a connection: destination
/// unreachable, time exceeded, parameter problem (ICMPv4 3, 11, 12; ICMPv6 1, 2, 3, 4).
fn is_translated_icmp(v: IpVersion, msg_type: u8) -> bool {
    match v {
        IpVersion::V4 => matches!(msg_type, 3 | 11 | 12),
        IpVersion::V6 => matches!(msg_type, 1..=4),
    }
}

/// How a virtual service is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServiceKey {
    /// `-t`/`-u VIP:port`: protocol, virtual address, port (0: every port, which needs
    /// persistence as in IPVS).
    Addr {
        /// TCP or UDP.
        proto: Proto,
        /// The virtual IP address.
        addr: IpAddr,
        /// The virtual port.
        port: u16,
    },
    /// `-f MARK`: packets the caller marked, of one address family (`-6` for IPv6).
    FwMark {
        /// The firewall mark.
        mark: u32,
        /// Its address family.
        family: IpVersion,
    },
}

impl ServiceKey {
    /// The address family of the service.
    pub fn family(&self) -> IpVersion {
        match self {
            ServiceKey::Addr { addr, .. } => IpVersion::of(addr),
            ServiceKey::FwMark { family, .. } => *family,
        }
    }
}

/// Persistence (`-p timeout -M netmask`): a client (masked) keeps its real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Persistence {
    /// How long a template lives after it last gave a client its server. A template
    /// whose connections outlive that is kept, re-armed a minute at a time until they
    /// end, as in the kernel.
    pub timeout: Duration,
    /// Prefix length of the client mask (`-M 255.255.255.0` is 24); 32 or 128 for one
    /// client address.
    pub prefix: u8,
}

/// A virtual service as `ipvsadm -A` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServiceSpec {
    /// How it is addressed.
    pub key: ServiceKey,
    /// Its scheduler (`-s`).
    pub sched: SchedKind,
    /// Scheduler flags (`-b`).
    pub flags: SchedFlags,
    /// Persistence (`-p`, `-M`).
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`-o`, UDP): every datagram is scheduled on its own.
    pub one_packet: bool,
}

/// A real server as `ipvsadm -a` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DestSpec {
    /// Its address (`-r`).
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
    /// Forwarding method (`-m`, `-g`, `-i`, `-b`).
    pub method: Method,
    /// Weight (`-w`).
    pub weight: u32,
    /// Upper threshold (`-x`), 0 for none.
    pub u_threshold: u32,
    /// Lower threshold (`-y`), 0 for none.
    pub l_threshold: u32,
}

/// Why a control call was refused. The messages are ipvsadm's where it has one.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ControlError {
    /// No such virtual service.
    NoService,
    /// The virtual service exists already.
    ServiceExists,
    /// No such real server in the service.
    NoDest,
    /// The real server exists already in the service.
    DestExists,
    /// The service storage is full.
    NoServiceRoom,
    /// The real-server storage, or the service's member list, is full.
    NoDestRoom,
    /// The scheduler needs table storage this service slot was not given.
    NoSchedStorage,
    /// The real server's family differs from the service's (allowed only for `tunnel`).
    FamilyMismatch,
    /// Port 0 (every port) without persistence, or a weight above 65535, or a
    /// persistence prefix beyond the family's length.
    Invalid,
    /// FULLNAT needs a local address of the real server's family (`--laddr`).
    NoLocalAddress,
    /// The FULLNAT local address storage is full.
    NoLaddrRoom,
}

impl core::fmt::Display for ControlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ControlError::NoService => "Service not defined",
            ControlError::ServiceExists => "Service already exists",
            ControlError::NoDest => "No such destination",
            ControlError::DestExists => "Destination already exists",
            ControlError::NoServiceRoom => "No room for another service",
            ControlError::NoDestRoom => "No room for another destination",
            ControlError::NoSchedStorage => "Scheduler needs table storage this slot lacks",
            ControlError::FamilyMismatch => "Destination address family differs from the service's",
            ControlError::Invalid => "Invalid argument",
            ControlError::NoLocalAddress => "FULLNAT needs a local address of this family",
            ControlError::NoLaddrRoom => "No room for another local address",
        })
    }
}

impl core::error::Error for ControlError {}

/// What the caller knows about a received frame besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rx {
    /// The interface it came in on (the caller's numbering).
    pub iface: u8,
    /// Its firewall mark, 0 for none (fwmark services match on it).
    pub fwmark: u32,
}

/// The fast path's fixed-offset parse of a frame (`wire::info::fast_v4_tuple`):
/// still to do, or done by a burst's read-ahead (the frame has not changed since).
#[derive(Clone, Copy)]
enum Parsed {
    Later,
    Done(Option<wire::info::FastV4>),
}

/// What a burst's read-ahead made for a frame, for its processing: the fast path's
/// parse and the hash of the key it looks up first. Nothing for a single frame.
#[derive(Clone, Copy)]
struct Ahead {
    parsed: Parsed,
    prepared: Option<Prepared>,
    /// For a SYN, when a service has NAT or FULLNAT members: the local end its
    /// connection's out key would have (the client's own for NAT, the first local
    /// address and port tried for FULLNAT) and that end's hash
    /// ([`ConnTable::prepare_out_end`]), whose home slot was read.
    out_end: Option<(Ipv4Addr, u16, u64)>,
}

impl Ahead {
    /// Nothing made ahead: the fast path parses and hashes as it goes.
    const NONE: Ahead = Ahead {
        parsed: Parsed::Later,
        prepared: None,
        out_end: None,
    };
}

/// One received frame of a burst ([`Director::process_burst`]): `buf[frame]`, with
/// headroom and tailroom as for [`Director::process`], and its verdict once processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<B> {
    /// What the caller knows about the frame besides its bytes.
    pub rx: Rx,
    /// The frame's buffer.
    pub buf: B,
    /// Where the frame is in `buf`.
    pub frame: Range<usize>,
    /// Its verdict, set by [`Director::process_burst`] (where the frame is then, for a
    /// forwarded or answered frame).
    pub verdict: Verdict,
}

impl<B> Packet<B> {
    /// A received frame, not yet processed (its verdict [`Verdict::Local`] until then).
    pub fn new(rx: Rx, buf: B, frame: Range<usize>) -> Packet<B> {
        Packet {
            rx,
            buf,
            frame,
            verdict: Verdict::Local,
        }
    }
}

/// What to do with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// Send `buf[frame]` towards `next_hop` (the real server, or the client), whose
    /// link-layer address the caller resolves; the Ethernet addresses are the caller's
    /// to set. The frame may have moved within the buffer (TUN encapsulation).
    Forward {
        /// Where the frame now is in the buffer.
        frame: Range<usize>,
        /// The IP address to resolve and send to.
        next_hop: IpAddr,
    },
    /// Not a virtual service's: hand the frame, unchanged, to the local stack.
    Local,
    /// Dropped, and counted under this reason.
    Drop(DropReason),
    /// Send `buf[frame]` back out of the interface the frame came in on (a generated
    /// ICMP error, Ethernet addresses already swapped).
    Reply {
        /// Where the reply is in the buffer.
        frame: Range<usize>,
    },
}

/// Tunable behaviour, with IPVS's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Connection timeouts per state (`ipvsadm --set`).
    pub timeouts: Timeouts,
    /// `conn_reuse_mode` (default 1): a SYN on a closing connection reschedules it.
    pub conn_reuse_mode: u8,
    /// `expire_nodest_conn`: a packet of a connection whose real server was removed
    /// expires the connection (and is dropped) instead of being forwarded.
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template`: a persistence template whose server has weight 0
    /// is not used.
    pub expire_quiescent_template: bool,
    /// `sloppy_tcp`: any TCP segment, not only a SYN, may open a connection.
    pub sloppy_tcp: bool,
    /// `secure_tcp`: the kernel's defensive TCP state table.
    pub secure_tcp: bool,
    /// Connections examined for expiry per millisecond of clock between `process`
    /// calls (at most 16 ms' worth at once): 32 examines 32,000 a second, a full round
    /// of a million-entry table in about 31 s. Expired entries are also recognised
    /// when looked up, and reused first when the table is full.
    pub sweep_budget: usize,
    /// Connections examined for a victim when the table is full.
    pub victim_budget: usize,
    /// The IPv4 table capacity from which [`Director::process_burst`] reads ahead:
    /// below it the table is taken to be in the cache, where the extra rounds of reads
    /// cost more than they save (16,384 entries, 960 KiB with their indexes, are about
    /// a server core's L2). 0 reads ahead always.
    pub burst_read_ahead_from: usize,
    /// The director's IPv4 address: the source of IPv4 tunnels.
    pub tun_src_v4: Option<Ipv4Addr>,
    /// The director's IPv6 address: the source of IPv6 tunnels.
    pub tun_src_v6: Option<Ipv6Addr>,
    /// The MTU of the link tunnelled packets leave on.
    pub tun_mtu: u16,
    /// Seed of the director's random generator (the twos scheduler). FULLNAT local
    /// ends are drawn from the connection tables' keyed hash instead (the seed given
    /// to [`ConnTable::new`]), so that a client cannot predict them.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            timeouts: Timeouts::DEFAULT,
            conn_reuse_mode: 1,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
            secure_tcp: false,
            sweep_budget: 32,
            victim_budget: 64,
            burst_read_ahead_from: 1 << 14,
            tun_src_v4: None,
            tun_src_v6: None,
            tun_mtu: 1500,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// Table storage a service slot offers to the schedulers that need it. The caller
/// builds these once (e.g. in `static`s); a service with `mh`, `lblc` or `lblcr` borrows
/// the matching one while it exists and gives it back when deleted.
#[derive(Default)]
pub struct SchedStorage<'a> {
    /// For `mh`.
    pub mh: Option<&'a mut Mh<'a>>,
    /// For `lblc`.
    pub lblc: Option<&'a mut Lblc<'a>>,
    /// For `lblcr`.
    pub lblcr: Option<&'a mut Lblcr<'a>>,
}

/// The scheduler of one service.
enum AnySched<'a> {
    Rr(Rr),
    Wrr(Wrr),
    Lc(Lc),
    Wlc(Wlc),
    Sed(Sed),
    Nq(Nq),
    Dh(Dh),
    Sh(Sh),
    Fo(Fo),
    Ovf(Ovf),
    Twos(Twos),
    Mh(&'a mut Mh<'a>),
    Lblc(&'a mut Lblc<'a>),
    Lblcr(&'a mut Lblcr<'a>),
}

impl<'a> AnySched<'a> {
    fn new(kind: SchedKind, flags: SchedFlags, st: &mut SchedStorage<'a>) -> Option<AnySched<'a>> {
        Some(match kind {
            SchedKind::Rr => AnySched::Rr(Rr::new()),
            SchedKind::Wrr => AnySched::Wrr(Wrr::new()),
            SchedKind::Lc => AnySched::Lc(Lc::new()),
            SchedKind::Wlc => AnySched::Wlc(Wlc::new()),
            SchedKind::Sed => AnySched::Sed(Sed::new()),
            SchedKind::Nq => AnySched::Nq(Nq::new()),
            SchedKind::Dh => AnySched::Dh(Dh::<256>::new()),
            SchedKind::Sh => AnySched::Sh(Sh::<256>::new(flags)),
            SchedKind::Fo => AnySched::Fo(Fo::new()),
            SchedKind::Ovf => AnySched::Ovf(Ovf::new()),
            SchedKind::Twos => AnySched::Twos(Twos::new()),
            SchedKind::Mh => {
                let m = st.mh.take()?;
                m.reset(flags);
                AnySched::Mh(m)
            }
            SchedKind::Lblc => {
                let l = st.lblc.take()?;
                l.flush();
                AnySched::Lblc(l)
            }
            SchedKind::Lblcr => {
                let l = st.lblcr.take()?;
                l.flush();
                AnySched::Lblcr(l)
            }
        })
    }

    /// Gives borrowed table storage back to its slot.
    fn release(self, st: &mut SchedStorage<'a>) {
        match self {
            AnySched::Mh(m) => st.mh = Some(m),
            AnySched::Lblc(l) => st.lblc = Some(l),
            AnySched::Lblcr(l) => st.lblcr = Some(l),
            _ => {}
        }
    }

    fn sched(&mut self) -> &mut dyn Scheduler {
        match self {
            AnySched::Rr(s) => s,
            AnySched::Wrr(s) => s,
            AnySched::Lc(s) => s,
            AnySched::Wlc(s) => s,
            AnySched::Sed(s) => s,
            AnySched::Nq(s) => s,
            AnySched::Dh(s) => s,
            AnySched::Sh(s) => s,
            AnySched::Fo(s) => s,
            AnySched::Ovf(s) => s,
            AnySched::Twos(s) => s,
            AnySched::Mh(s) => &mut **s,
            AnySched::Lblc(s) => &mut **s,
            AnySched::Lblcr(s) => &mut **s,
        }
    }
}

/// A virtual service in its slot. `D` is the most real servers a service may have.
pub struct Service<'a, const D: usize> {
    spec: ServiceSpec,
    sched: AnySched<'a>,
    /// Member real servers, newest first (the kernel's list order).
    members: HVec<DestId, D>,
    /// Whether a member forwards by NAT (masq): a new connection's NAT out slot is
    /// then read before scheduling ([`ConnTable::prepare_out_end`]). Only a hint: a
    /// stale value would cost a needless read or miss a useful one, never change a
    /// verdict.
    masq: bool,
    /// The same for FULLNAT: the out slot of the first local end a new connection
    /// would try is read before scheduling.
    fullnat: bool,
    stats: Counters,
    est: Estimator,
}

impl<const D: usize> Service<'_, D> {
    /// After a change to its members or to one of them: the scheduler sees them anew,
    /// and `masq` and `fullnat` follow.
    fn members_changed(&mut self, dests: &[Option<RealServer>]) {
        self.sched.sched().update(Dests::new(dests, &self.members));
        let has = |m: Method| {
            self.members.iter().any(|&id| {
                dests
                    .get(id as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|d| d.method == m)
            })
        };
        (self.masq, self.fullnat) = (has(Method::Masq), has(Method::FullNat));
    }

    /// How it was specified.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// Its member real servers, in list order.
    pub fn members(&self) -> &[DestId] {
        &self.members
    }

    /// Its counters.
    pub fn stats(&self) -> &Counters {
        &self.stats
    }

    /// Its rates (`ipvsadm -L --rate`).
    pub fn rates(&self) -> Rates {
        self.est.rates()
    }
}

/// What the director keeps beside each real server (the server itself, which the
/// schedulers read, lives in its own slot array).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DestMeta {
    /// Index of its service's slot; [`DestMeta::NO_SERVICE`] once that service was
    /// deleted (the slot may then hold another service).
    pub service: u16,
    /// Removed from its service but still referenced by connections (the kernel's
    /// "trash"): the slot is freed when the last one goes.
    pub removed: bool,
    /// Its counters.
    pub stats: Counters,
    est: Estimator,
}

impl DestMeta {
    /// [`DestMeta::service`] of a real server whose service was deleted.
    pub const NO_SERVICE: u16 = u16::MAX;

    /// An empty slot's metadata, for initialising storage.
    pub const EMPTY: DestMeta = DestMeta {
        service: 0,
        removed: false,
        stats: Counters::ZERO,
        est: Estimator::new(Instant::ZERO, &Counters::ZERO),
    };

    /// Its rates.
    pub fn rates(&self) -> Rates {
        self.est.rates()
    }
}

fn unreferenced(s: &RealServer) -> bool {
    s.active_conns == 0 && s.inactive_conns == 0 && s.persist_conns == 0
}

/// The caller's storage for a director.
pub struct Storage<'a, const D: usize> {
    /// Virtual service slots (`[const { None }; N]`).
    pub services: &'a mut [Option<Service<'a, D>>],
    /// Per service slot, table storage for mh/lblc/lblcr (may be shorter than
    /// `services`: slots beyond it offer none).
    pub sched: &'a mut [SchedStorage<'a>],
    /// Real server slots.
    pub dests: &'a mut [Option<RealServer>],
    /// Beside each real server slot (same length as `dests`, `[DestMeta::EMPTY; N]`).
    pub dest_meta: &'a mut [DestMeta],
    /// FULLNAT local addresses (`--laddr`) slots.
    pub laddrs: &'a mut [Option<IpAddr>],
    /// The IPv4 connection table.
    pub v4: ConnTable<'a, Ipv4Addr>,
    /// The IPv6 connection table.
    pub v6: ConnTable<'a, Ipv6Addr>,
}

/// The two connection tables.
struct Tables<'a> {
    v4: ConnTable<'a, Ipv4Addr>,
    v6: ConnTable<'a, Ipv6Addr>,
}

/// What the generic packet path needs of an address family beyond [`FlowAddr`].
trait Family: FlowAddr + 'static {
    fn table<'s, 'a>(t: &'s mut Tables<'a>) -> &'s mut ConnTable<'a, Self>;
    /// The address with all but the first `prefix` bits cleared.
    fn masked(self, prefix: u8) -> Self;
    /// A firewall mark as an address, for the key of an fwmark service's templates.
    fn from_mark(mark: u32) -> Self;
}

impl Family for Ipv4Addr {
    fn table<'s, 'a>(t: &'s mut Tables<'a>) -> &'s mut ConnTable<'a, Ipv4Addr> {
        &mut t.v4
    }
    fn masked(self, prefix: u8) -> Ipv4Addr {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(prefix.min(32)))
            .unwrap_or(0);
        Ipv4Addr::from(u32::from(self) & mask)
    }
    fn from_mark(mark: u32) -> Ipv4Addr {
        Ipv4Addr::from(mark)
    }
}

impl Family for Ipv6Addr {
    fn table<'s, 'a>(t: &'s mut Tables<'a>) -> &'s mut ConnTable<'a, Ipv6Addr> {
        &mut t.v6
    }
    fn masked(self, prefix: u8) -> Ipv6Addr {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(prefix.min(128)))
            .unwrap_or(0);
        Ipv6Addr::from(u128::from(self) & mask)
    }
    fn from_mark(mark: u32) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(mark))
    }
}

/// An LVS director over caller storage. `D` bounds the real servers per service.
pub struct Director<'a, const D: usize = 64> {
    cfg: Config,
    services: &'a mut [Option<Service<'a, D>>],
    sched_storage: &'a mut [SchedStorage<'a>],
    dests: &'a mut [Option<RealServer>],
    meta: &'a mut [DestMeta],
    laddrs: &'a mut [Option<IpAddr>],
    tables: Tables<'a>,
    drops: DropCounters,
    totals: Counters,
    est: Estimator,
    last_tick: Instant,
    last_sweep: Instant,
    /// The latest clock `maintain` saw (the 32-bit deadlines' reference).
    last_seen: Instant,
    rng: u64,
    tun_ident: u16,
    fast_path: bool,
    svc_index: SvcIndex,
}

/// The accounting every removal of a connection makes at its real server: the counts
/// follow the table exactly, and a removed server's slot is freed with its last one.
fn unbind<A: FlowAddr>(dests: &mut [Option<RealServer>], meta: &[DestMeta], c: &Conn<A>) {
    let Some(slot) = dests.get_mut(c.dest as usize) else {
        return;
    };
    let Some(s) = slot.as_mut() else { return };
    if c.is_template() {
        s.persist_conns = s.persist_conns.saturating_sub(1);
    } else if c.flags.contains(ConnFlags::INACTIVE) {
        s.inactive_conns = s.inactive_conns.saturating_sub(1);
    } else {
        s.active_conns = s.active_conns.saturating_sub(1);
    }
    s.update_overload();
    if meta.get(c.dest as usize).is_some_and(|m| m.removed) && unreferenced(s) {
        *slot = None;
    }
}

/// Moves a connection between its server's active and inactive counts when its TCP
/// state crosses the kernel's active set; returns the new flags.
#[inline(always)]
fn account_state(
    dests: &mut [Option<RealServer>],
    dest: DestId,
    mut flags: ConnFlags,
    active: bool,
) -> ConnFlags {
    let was_active = !flags.contains(ConnFlags::INACTIVE);
    if was_active == active {
        return flags;
    }
    if let Some(Some(s)) = dests.get_mut(dest as usize) {
        if active {
            s.inactive_conns = s.inactive_conns.saturating_sub(1);
            s.active_conns = s.active_conns.saturating_add(1);
        } else {
            s.active_conns = s.active_conns.saturating_sub(1);
            s.inactive_conns = s.inactive_conns.saturating_add(1);
        }
        s.update_overload();
    }
    flags.set(ConnFlags::INACTIVE, !active);
    flags
}

/// The TCP flags that are events of the state tables: FIN, SYN, RST and ACK.
const TCP_EVENT_FLAGS: u8 = TcpFlags::FIN.0 | TcpFlags::SYN.0 | TcpFlags::RST.0 | TcpFlags::ACK.0;

/// The transport view of a TCP/UDP packet.
#[derive(Clone, Copy)]
struct Flow {
    proto: Proto,
    sport: u16,
    dport: u16,
    tcp_flags: TcpFlags,
}

impl<'a, const D: usize> Director<'a, D> {
    /// A director over `storage`. All slots should be empty (`None`).
    pub fn new(cfg: Config, now: Instant, storage: Storage<'a, D>) -> Director<'a, D> {
        let totals = Counters::default();
        Director {
            cfg,
            services: storage.services,
            sched_storage: storage.sched,
            dests: storage.dests,
            meta: storage.dest_meta,
            laddrs: storage.laddrs,
            tables: Tables {
                v4: storage.v4,
                v6: storage.v6,
            },
            drops: DropCounters::ZERO,
            est: Estimator::new(now, &totals),
            totals,
            last_tick: now,
            last_sweep: now,
            last_seen: now,
            rng: cfg.seed | 1,
            tun_ident: (cfg.seed >> 17) as u16,
            fast_path: true,
            svc_index: SvcIndex::EMPTY,
        }
        .with_service_index()
    }

    /// `self` with its service index built from the service slots.
    fn with_service_index(mut self) -> Self {
        self.svc_index = SvcIndex::build(self.services);
        self
    }

    // ---------------------------------------------------------------- control API

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// `ipvsadm --set tcp tcpfin udp` (0 leaves a value).
    pub fn set_timeouts(&mut self, tcp: Duration, tcpfin: Duration, udp: Duration) {
        self.cfg.timeouts.set(tcp, tcpfin, udp);
    }

    /// Other run-time switches (`conn_reuse_mode`, `expire_nodest_conn`, ...).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.cfg
    }

    /// Turns the established-flow fast path of [`Director::process`] on (the default)
    /// or off. For tests and benchmarks: the fast path decides exactly what the general
    /// path decides (the same verdicts, bytes, counters and table), only faster, so the
    /// two can be compared.
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast_path = on;
    }

    /// Whether the established-flow fast path is on ([`Director::set_fast_path`]).
    pub fn fast_path(&self) -> bool {
        self.fast_path
    }

    fn find_service(&self, key: &ServiceKey) -> Option<usize> {
        let is = |i: usize| {
            self.services
                .get(i)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.spec.key == *key)
        };
        match self.svc_index.find(key, is) {
            Some(found) => found,
            None => (0..self.services.len()).find(|&i| is(i)),
        }
    }

    fn validate_service(spec: &ServiceSpec) -> Result<(), ControlError> {
        if let ServiceKey::Addr { port: 0, .. } = spec.key
            && spec.persistence.is_none()
        {
            return Err(ControlError::Invalid);
        }
        if let Some(p) = spec.persistence {
            let max = match spec.key.family() {
                IpVersion::V4 => 32,
                IpVersion::V6 => 128,
            };
            if p.prefix > max {
                return Err(ControlError::Invalid);
            }
        }
        Ok(())
    }

    /// `ipvsadm -A`: adds a virtual service; returns its slot.
    pub fn add_service(&mut self, spec: ServiceSpec, now: Instant) -> Result<usize, ControlError> {
        Self::validate_service(&spec)?;
        if self.find_service(&spec.key).is_some() {
            return Err(ControlError::ServiceExists);
        }
        let idx = self
            .services
            .iter()
            .position(Option::is_none)
            .ok_or(ControlError::NoServiceRoom)?;
        let mut empty = SchedStorage::default();
        let st = self.sched_storage.get_mut(idx).unwrap_or(&mut empty);
        let sched =
            AnySched::new(spec.sched, spec.flags, st).ok_or(ControlError::NoSchedStorage)?;
        let stats = Counters::default();
        if let Some(slot) = self.services.get_mut(idx) {
            *slot = Some(Service {
                spec,
                sched,
                members: HVec::new(),
                masq: false,
                fullnat: false,
                est: Estimator::new(now, &stats),
                stats,
            });
        }
        self.svc_index = SvcIndex::build(self.services);
        Ok(idx)
    }

    /// `ipvsadm -E`: changes a service's scheduler, flags, persistence or one-packet
    /// mode (not its key). Existing connections keep their real servers.
    pub fn edit_service(&mut self, spec: ServiceSpec) -> Result<(), ControlError> {
        Self::validate_service(&spec)?;
        let idx = self
            .find_service(&spec.key)
            .ok_or(ControlError::NoService)?;
        let Director {
            services,
            sched_storage,
            dests,
            ..
        } = self;
        let Some(Some(svc)) = services.get_mut(idx) else {
            return Err(ControlError::NoService);
        };
        if svc.spec.sched != spec.sched || svc.spec.flags != spec.flags {
            let mut empty = SchedStorage::default();
            let st = sched_storage.get_mut(idx).unwrap_or(&mut empty);
            // Give the old scheduler's storage back first: mh -> mh may reuse it.
            let old = core::mem::replace(&mut svc.sched, AnySched::Rr(Rr::new()));
            old.release(st);
            match AnySched::new(spec.sched, spec.flags, st) {
                Some(s) => svc.sched = s,
                None => {
                    // Restore the previous scheduler.
                    if let Some(s) = AnySched::new(svc.spec.sched, svc.spec.flags, st) {
                        svc.sched = s;
                        svc.members_changed(dests);
                    }
                    return Err(ControlError::NoSchedStorage);
                }
            }
            svc.members_changed(dests);
        }
        svc.spec = spec;
        Ok(())
    }

    /// `ipvsadm -D`: deletes a service. Its real servers leave with it; their existing
    /// connections continue until they end (or die at their next packet with
    /// `expire_nodest_conn`).
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), ControlError> {
        let idx = self.find_service(key).ok_or(ControlError::NoService)?;
        let Some(svc) = self.services.get_mut(idx).and_then(Option::take) else {
            return Err(ControlError::NoService);
        };
        for &id in svc.members.iter() {
            // Its connections must count neither for a later service in this slot nor
            // revive it as that service's real server.
            if let Some(m) = self.meta.get_mut(id as usize) {
                m.service = DestMeta::NO_SERVICE;
            }
            self.retire_dest(id);
        }
        if let Some(st) = self.sched_storage.get_mut(idx) {
            svc.sched.release(st);
        }
        self.svc_index = SvcIndex::build(self.services);
        Ok(())
    }

    /// `ipvsadm -C`: deletes every service.
    pub fn clear(&mut self) {
        // One at a time, restarting the scan: no allocation.
        while let Some(key) = self.services.iter().flatten().map(|s| s.spec.key).next() {
            let _ = self.delete_service(&key);
        }
    }

    /// Takes a real server out of its service: freed now if nothing references it, else
    /// kept as removed until its last connection goes.
    fn retire_dest(&mut self, id: DestId) {
        if let (Some(slot), Some(m)) = (
            self.dests.get_mut(id as usize),
            self.meta.get_mut(id as usize),
        ) && let Some(d) = slot.as_ref()
        {
            m.removed = true;
            if unreferenced(d) {
                *slot = None;
            }
        }
    }

    fn find_dest(&self, svc: usize, addr: &IpAddr, port: u16) -> Option<DestId> {
        let s = self.services.get(svc)?.as_ref()?;
        s.members.iter().copied().find(|&id| {
            self.dests
                .get(id as usize)
                .and_then(Option::as_ref)
                .is_some_and(|d| d.addr == *addr && d.port == port)
        })
    }

    fn check_dest(&self, svc: &ServiceSpec, spec: &DestSpec) -> Result<(), ControlError> {
        if spec.weight > 65535 {
            return Err(ControlError::Invalid);
        }
        if IpVersion::of(&spec.addr) != svc.key.family() && spec.method != Method::Tunnel {
            return Err(ControlError::FamilyMismatch);
        }
        if spec.method == Method::FullNat
            && !self
                .laddrs
                .iter()
                .flatten()
                .any(|a| IpVersion::of(a) == IpVersion::of(&spec.addr))
        {
            return Err(ControlError::NoLocalAddress);
        }
        Ok(())
    }

    /// `ipvsadm -a`: adds a real server to a service.
    pub fn add_dest(
        &mut self,
        key: &ServiceKey,
        spec: DestSpec,
        now: Instant,
    ) -> Result<DestId, ControlError> {
        let svc_idx = self.find_service(key).ok_or(ControlError::NoService)?;
        let svc_spec = self
            .services
            .get(svc_idx)
            .and_then(Option::as_ref)
            .map(|s| s.spec)
            .ok_or(ControlError::NoService)?;
        self.check_dest(&svc_spec, &spec)?;
        if self.find_dest(svc_idx, &spec.addr, spec.port).is_some() {
            return Err(ControlError::DestExists);
        }
        // A removed server of this service with the same address comes back from the
        // trash, with its connections, as in the kernel.
        let revived = self.dests.iter().zip(self.meta.iter()).position(|(d, m)| {
            d.as_ref().is_some_and(|d| {
                m.removed
                    && m.service as usize == svc_idx
                    && d.addr == spec.addr
                    && d.port == spec.port
            })
        });
        let id = match revived.or_else(|| self.dests.iter().position(Option::is_none)) {
            Some(i) if i < DestId::MAX as usize => i as DestId,
            _ => return Err(ControlError::NoDestRoom),
        };
        let Director {
            services,
            dests,
            meta,
            ..
        } = self;
        let Some(Some(svc)) = services.get_mut(svc_idx) else {
            return Err(ControlError::NoService);
        };
        let (Some(slot), Some(m)) = (dests.get_mut(id as usize), meta.get_mut(id as usize)) else {
            return Err(ControlError::NoDestRoom);
        };
        if svc.members.insert(0, id).is_err() {
            return Err(ControlError::NoDestRoom);
        }
        match slot {
            Some(d) => {
                m.removed = false;
                apply_dest_spec(d, &spec);
            }
            None => {
                let mut server = RealServer::new(spec.addr, spec.port, spec.method, spec.weight);
                apply_dest_spec(&mut server, &spec);
                *slot = Some(server);
                let stats = Counters::default();
                *m = DestMeta {
                    service: svc_idx as u16,
                    removed: false,
                    est: Estimator::new(now, &stats),
                    stats,
                };
            }
        }
        svc.members_changed(dests);
        Ok(id)
    }

    /// `ipvsadm -e`: changes a real server's method, weight or thresholds. Weight 0
    /// quiesces it: no new connections, existing ones continue.
    pub fn edit_dest(&mut self, key: &ServiceKey, spec: DestSpec) -> Result<(), ControlError> {
        let svc_idx = self.find_service(key).ok_or(ControlError::NoService)?;
        let svc_spec = self
            .services
            .get(svc_idx)
            .and_then(Option::as_ref)
            .map(|s| s.spec)
            .ok_or(ControlError::NoService)?;
        self.check_dest(&svc_spec, &spec)?;
        let id = self
            .find_dest(svc_idx, &spec.addr, spec.port)
            .ok_or(ControlError::NoDest)?;
        let Director {
            services, dests, ..
        } = self;
        if let Some(Some(d)) = dests.get_mut(id as usize) {
            apply_dest_spec(d, &spec);
        }
        if let Some(Some(svc)) = services.get_mut(svc_idx) {
            svc.members_changed(dests);
        }
        Ok(())
    }

    /// `ipvsadm -d`: removes a real server from a service. Its connections continue
    /// (or die at their next packet with `expire_nodest_conn`); it gets no new ones.
    pub fn delete_dest(
        &mut self,
        key: &ServiceKey,
        addr: &IpAddr,
        port: u16,
    ) -> Result<(), ControlError> {
        let svc_idx = self.find_service(key).ok_or(ControlError::NoService)?;
        let id = self
            .find_dest(svc_idx, addr, port)
            .ok_or(ControlError::NoDest)?;
        if let Some(Some(svc)) = self.services.get_mut(svc_idx) {
            svc.members.retain(|&m| m != id);
        }
        self.retire_dest(id);
        let Director {
            services, dests, ..
        } = self;
        if let Some(Some(svc)) = services.get_mut(svc_idx) {
            svc.members_changed(dests);
        }
        Ok(())
    }

    /// Adds a FULLNAT local address (`--laddr`).
    pub fn add_laddr(&mut self, addr: IpAddr) -> Result<(), ControlError> {
        if self.laddrs.iter().flatten().any(|a| *a == addr) {
            return Ok(());
        }
        let slot = self
            .laddrs
            .iter_mut()
            .find(|a| a.is_none())
            .ok_or(ControlError::NoLaddrRoom)?;
        *slot = Some(addr);
        Ok(())
    }

    /// `ipvsadm -Z`: zeroes the counters of one service (and its real servers), or of
    /// everything.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), ControlError> {
        let only = match key {
            Some(k) => Some(self.find_service(k).ok_or(ControlError::NoService)?),
            None => None,
        };
        for (i, s) in self.services.iter_mut().enumerate() {
            if let Some(s) = s
                && only.is_none_or(|o| o == i)
            {
                s.stats.zero();
                s.est.zero(&s.stats);
            }
        }
        for (d, m) in self.dests.iter().zip(self.meta.iter_mut()) {
            if d.is_some() && only.is_none_or(|o| o == m.service as usize) {
                m.stats.zero();
                m.est.zero(&m.stats);
            }
        }
        if only.is_none() {
            self.totals.zero();
            self.est.zero(&self.totals);
            self.drops.zero();
        }
        Ok(())
    }

    /// Service slots, for listings (`ipvsadm -L`).
    pub fn services(&self) -> impl Iterator<Item = (usize, &Service<'a, D>)> {
        self.services
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.as_ref()?)))
    }

    /// The service with this key.
    pub fn service(&self, key: &ServiceKey) -> Option<&Service<'a, D>> {
        self.services.get(self.find_service(key)?)?.as_ref()
    }

    /// A real server slot, with its metadata.
    pub fn dest(&self, id: DestId) -> Option<(&RealServer, &DestMeta)> {
        Some((
            self.dests.get(id as usize)?.as_ref()?,
            self.meta.get(id as usize)?,
        ))
    }

    /// The IPv4 connection table (`ipvsadm -L -c`).
    pub fn conns_v4(&self) -> &ConnTable<'a, Ipv4Addr> {
        &self.tables.v4
    }

    /// The IPv6 connection table.
    pub fn conns_v6(&self) -> &ConnTable<'a, Ipv6Addr> {
        &self.tables.v6
    }

    /// Drops by reason.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// Totals over every service.
    pub fn totals(&self) -> &Counters {
        &self.totals
    }

    /// Rates over every service.
    pub fn rates(&self) -> Rates {
        self.est.rates()
    }

    /// Expires connections and ticks the estimators; `process` calls it, and a caller
    /// with idle periods may call it with a larger budget.
    pub fn maintain(&mut self, now: Instant, budget: usize) {
        // Connection deadlines are 32-bit (`Deadline`): comparable with the clock only
        // within 24.8 days. Every deadline was set at most 12.4 days ahead of a clock
        // this director saw, so after a longer silence they have all passed: expire
        // them all. And a sweep that has not finished a lap in 6.2 days (a big table
        // swept by a small budget on rare calls) finishes it now.
        let jumped = now.saturating_since(self.last_seen) >= Deadline::MAX_AHEAD;
        self.last_seen = self.last_seen.max(now);
        let Director {
            tables,
            dests,
            meta,
            ..
        } = self;
        let t = TEMPLATE_REARM;
        let mut on_expire_v4 =
            |_: ConnId, c: &mut Conn<Ipv4Addr>| expire_one(dests, meta, c, now, t);
        if !tables.v4.is_empty() {
            if jumped {
                tables.v4.sweep_all(now, &mut on_expire_v4);
            }
            let lap = tables.v4.lap_overdue(now);
            let b = if lap { tables.v4.capacity() } else { budget };
            tables.v4.sweep(now, b, &mut on_expire_v4);
        }
        let mut on_expire_v6 =
            |_: ConnId, c: &mut Conn<Ipv6Addr>| expire_one(dests, meta, c, now, t);
        if !tables.v6.is_empty() {
            if jumped {
                tables.v6.sweep_all(now, &mut on_expire_v6);
            }
            let lap = tables.v6.lap_overdue(now);
            let b = if lap { tables.v6.capacity() } else { budget };
            tables.v6.sweep(now, b, &mut on_expire_v6);
        }
        if now.saturating_since(self.last_tick) >= crate::stats::Estimator::PERIOD {
            self.last_tick = now;
            self.est.tick(now, &self.totals);
            for s in self.services.iter_mut().flatten() {
                s.est.tick(now, &s.stats);
            }
            for (d, m) in self.dests.iter().zip(self.meta.iter_mut()) {
                if d.is_some() {
                    m.est.tick(now, &m.stats);
                }
            }
        }
    }

    // ---------------------------------------------------------------- packet path

    fn drop(&mut self, reason: DropReason) -> Verdict {
        self.drops.inc(reason);
        lvs_trace!("drop: {}", reason.name());
        Verdict::Drop(reason)
    }

    fn random(&mut self) -> u32 {
        // xorshift64*: cheap, deterministic from the seed; only for twos.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    /// The expiry sweep of `process` when the clock moved by `elapsed` ms.
    #[inline(never)]
    fn tick(&mut self, now: Instant, elapsed: u64) {
        self.last_sweep = now;
        let budget = self
            .cfg
            .sweep_budget
            .saturating_mul(elapsed.min(16) as usize);
        self.maintain(now, budget);
    }

    /// Processes one received frame, `buf[frame]`; `buf` may have headroom before the
    /// frame and tailroom after it (TUN encapsulation uses them). Never panics, never
    /// allocates.
    pub fn process(
        &mut self,
        now: Instant,
        rx: Rx,
        buf: &mut [u8],
        frame: Range<usize>,
    ) -> Verdict {
        self.process_ahead(now, rx, buf, frame, &Ahead::NONE)
    }

    /// Processes a burst of received frames, each exactly as [`Director::process`]
    /// would, in order, and leaves each one's verdict in its [`Packet::verdict`].
    ///
    /// Faster than one call per frame when the table or the frames are not in the
    /// cache: in groups of 16, it hashes every established-flow candidate's key, then
    /// reads those keys' index slots (and the next group's frame headers; the first
    /// group's are read before), then the entries a lookup will compare, so that the
    /// group's memory reads overlap instead of following one another; then it
    /// processes the frames one by one, with the hashes and the parses already made.
    /// When a service has NAT real servers, a SYN's read-ahead also hashes its client
    /// end and reads the out slot its NAT connection would take
    /// ([`ConnTable::prepare_out_end`]); when one has FULLNAT real servers (and none
    /// has NAT ones), the out slot of the first local end its FULLNAT connection would
    /// try. New connections' out slots are so read together too.
    /// Those first rounds only read: the verdicts, the table and every counter are the
    /// same as with [`Director::process`] (a test checks it).
    /// It reads ahead only for an IPv4 table of at least
    /// [`Config::burst_read_ahead_from`] entries; for a smaller one it is a loop of
    /// [`Director::process`].
    pub fn process_burst<B: AsMut<[u8]>>(&mut self, now: Instant, burst: &mut [Packet<B>]) {
        const GROUP: usize = 16;
        let read_ahead =
            self.fast_path && self.tables.v4.capacity() >= self.cfg.burst_read_ahead_from;
        let n = burst.len();
        // The reads' results are combined and kept, so that they are made.
        let mut sink = 0u8;
        // Whether a SYN may open a NAT connection, or else a FULLNAT one, whose out slot
        // is then read ahead.
        let (mut masq, mut fullnat) = (false, false);
        if read_ahead {
            sink ^= Self::touch_frames(burst.get_mut(..n.min(GROUP)).unwrap_or_default());
            masq = self.services.iter().flatten().any(|s| s.masq);
            fullnat = !masq && self.services.iter().flatten().any(|s| s.fullnat);
        }
        let mut start = 0;
        while start < n {
            let end = n.min(start + GROUP);
            let mut ahead = [Ahead::NONE; GROUP];
            if read_ahead {
                let (table, laddrs) = (&self.tables.v4, &*self.laddrs);
                let group = burst.get_mut(start..end).unwrap_or_default();
                for (p, a) in group.iter_mut().zip(&mut ahead) {
                    let t = p
                        .buf
                        .as_mut()
                        .get(p.frame.clone())
                        .and_then(wire::info::fast_v4_tuple);
                    a.parsed = Parsed::Done(t);
                    if let Some(t) = t {
                        let proto = if t.tcp { Proto::Tcp } else { Proto::Udp };
                        let (src, dst) = (Ipv4Addr::from(t.src), Ipv4Addr::from(t.dst));
                        a.prepared = table.prepare(proto, src, t.sport, dst, t.dport);
                        let flags = TcpFlags(t.tcp_flags);
                        if (masq || fullnat) && t.tcp && flags.syn() && !flags.ack() {
                            let end = if masq {
                                Some((src, t.sport))
                            } else {
                                let h = a.prepared.as_ref().and_then(Prepared::in_hash);
                                h.and_then(|h| first_local_end(laddrs, h))
                            };
                            a.out_end = end.map(|(l, p)| (l, p, table.end_hash(proto, l, p)));
                        }
                    }
                }
                // The hashes first and the reads after, in loops of their own: a read
                // the processor cannot finish holds up what follows it once its
                // reorder window is full, which a hash between two reads would fill.
                // The next group's frames are read with this group's slots.
                let next = burst.get_mut(end..n.min(end + GROUP)).unwrap_or_default();
                sink ^= Self::touch_frames(next);
                let mut slots = 0u32;
                for a in &ahead {
                    if let Some(p) = &a.prepared {
                        slots ^= table.home_slot(p);
                    }
                    if let Some((_, _, h)) = a.out_end {
                        slots ^= table.out_home_slot(h);
                    }
                }
                for p in ahead.iter().filter_map(|a| a.prepared.as_ref()) {
                    sink ^= table.touch_entry(p);
                }
                core::hint::black_box(slots);
            }
            let group = burst.get_mut(start..end).unwrap_or_default();
            for (p, a) in group.iter_mut().zip(&ahead) {
                p.verdict = self.process_ahead(now, p.rx, p.buf.as_mut(), p.frame.clone(), a);
            }
            start = end;
        }
        core::hint::black_box(sink);
    }

    /// [`Director::process`], with what a burst's read-ahead made for the frame.
    #[inline(always)]
    fn process_ahead(
        &mut self,
        now: Instant,
        rx: Rx,
        buf: &mut [u8],
        frame: Range<usize>,
        ahead: &Ahead,
    ) -> Verdict {
        // Expiry runs when the clock has moved, not on every packet: the budget is per
        // millisecond that passed (at most 16 ms' worth per call), so a busy director
        // examines the same number of entries a second as an idle one.
        let elapsed = now.saturating_since(self.last_sweep).total_millis();
        if elapsed > 0 {
            self.tick(now, elapsed);
        }
        if self.fast_path
            && let Some(v) = self.fast_v4(now, buf, frame.clone(), ahead)
        {
            return v;
        }
        self.process_general(now, rx, buf, frame, ahead)
    }

    /// [`Director::process`] after the expiry tick, without the fast path: every frame.
    /// Out of line, so that its stack frame and saved registers are not paid by the
    /// packets the fast path forwards.
    #[inline(never)]
    fn process_general(
        &mut self,
        now: Instant,
        rx: Rx,
        buf: &mut [u8],
        frame: Range<usize>,
        ahead: &Ahead,
    ) -> Verdict {
        let Some(f) = buf.get(frame.clone()) else {
            return self.drop(DropReason::Truncated);
        };
        // Borrowed where it was parsed: a `FrameInfo` is 152 bytes, not worth a move.
        let parsed = FrameInfo::parse(f);
        let info = match &parsed {
            Ok(i) => i,
            Err(wire::Error::Unsupported) => return Verdict::Local,
            Err(e) => return self.drop(DropReason::from(*e)),
        };
        match (info.ip.src, info.ip.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => {
                self.process_af::<Ipv4Addr>(now, rx, buf, frame, info, ahead)
            }
            (IpAddr::V6(_), IpAddr::V6(_)) => {
                self.process_af::<Ipv6Addr>(now, rx, buf, frame, info, &Ahead::NONE)
            }
            _ => Verdict::Local,
        }
    }

    /// The established-flow fast path: an untagged IPv4 TCP/UDP frame (20-byte header,
    /// checksum verified, not a fragment: the parse fast path's checks) of a live
    /// connection whose real server is there, from the client (NAT, FULLNAT, DR, TUN) or
    /// the real server (NAT, FULLNAT). It reads the 4-tuple at fixed offsets (or takes
    /// the read-ahead's parse), hashes (unless `ahead` holds the key's hash) and probes
    /// once, updates the entry in place, counts, and rewrites at fixed offsets from the
    /// entry's fields, without a [`FrameInfo`]. `None`, having changed nothing, for
    /// anything else: the general path then decides as it always has. A SYN without ACK
    /// (which may open a connection or reuse a closing one) always goes there. TUN
    /// encapsulates 4in4 at fixed offsets where that applies, and otherwise with the
    /// general path's code, from the parse's view of the frame.
    #[inline(always)]
    fn fast_v4(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        frame: Range<usize>,
        ahead: &Ahead,
    ) -> Option<Verdict> {
        let f = buf.get_mut(frame.clone())?;
        let t = match ahead.parsed {
            Parsed::Done(t) => t?,
            Parsed::Later => wire::info::fast_v4_tuple(f)?,
        };
        let flags = TcpFlags(t.tcp_flags);
        if t.tcp && flags.syn() && !flags.ack() {
            return None;
        }
        let proto = if t.tcp { Proto::Tcp } else { Proto::Udp };
        let (src, dst) = (Ipv4Addr::from(t.src), Ipv4Addr::from(t.dst));
        let (id, reply) =
            self.tables
                .v4
                .lookup_prepared(ahead.prepared, proto, src, t.sport, dst, t.dport)?;
        let Director {
            tables,
            dests,
            meta,
            cfg,
            services,
            totals,
            ..
        } = self;
        let mut e = tables.v4.entry_mut(id)?;
        let two_way = matches!(e.method, Method::Masq | Method::FullNat);
        if (reply && !two_way) || e.expires <= now {
            return None;
        }
        // Its real server, still there (`dest_gone`'s test), with the counters the
        // packet is counted in: one access to its slot's metadata for both.
        let d = usize::from(e.dest);
        let (Some(Some(_)), Some(m)) = (dests.get(d), meta.get_mut(d)) else {
            return None;
        };
        if m.removed {
            return None;
        }
        let dir = match (reply, two_way) {
            (true, _) => Direction::Output,
            (false, true) => Direction::Input,
            (false, false) => Direction::InputOnly,
        };
        let flow = Flow {
            proto,
            sport: t.sport,
            dport: t.dport,
            tcp_flags: flags,
        };
        let (state, cflags, expires) = Self::next_state(cfg, dests, &e, now, dir, &flow);
        e.set_state(state);
        e.set_flags(cflags);
        e.set_expires(expires);
        let bytes = usize::from(t.total_len);
        count_at(totals, Some(m), services, e.service, bytes, !reply);
        // The rewrite from the entry's fields, each case with its own constant shape.
        let ports = (t.sport, t.dport);
        let mut rewrite = |s: Option<(Ipv4Addr, u16)>, d: Option<(Ipv4Addr, u16)>| {
            let o = |e: Option<(Ipv4Addr, u16)>| e.map(|(a, p)| (a.octets(), p));
            fwd::rewrite_v4_fixed(f, t.tcp, ports, o(s), o(d))
        };
        let (ok, hop) = match (e.method, reply) {
            (Method::Masq, false) => (rewrite(None, Some((e.daddr, e.dport))), e.daddr),
            (Method::FullNat, false) => (
                rewrite(Some((e.laddr, e.lport)), Some((e.daddr, e.dport))),
                e.daddr,
            ),
            (Method::Masq, true) => (rewrite(Some((e.vaddr, e.vport)), None), e.caddr),
            (Method::FullNat, true) => (
                rewrite(Some((e.vaddr, e.vport)), Some((e.caddr, e.cport))),
                e.caddr,
            ),
            (Method::DirectRoute, _) => (true, e.daddr),
            (Method::Tunnel, _) => {
                // 4in4 at fixed offsets where it applies (an IPv4 real server, a tunnel
                // source, headroom, within the MTU): the bytes `tunnel` would write.
                // The entry's real-server address is the server's own, unless the server
                // is of the other family: `new_conn` then stores the virtual address,
                // which `tunnel` resolves through the server's slot.
                let c = *e;
                if c.daddr != c.vaddr
                    && let Some(src) = self.cfg.tun_src_v4
                    && let Some(v) =
                        self.encap_fixed_v4(buf, frame.clone(), t.total_len, src, c.daddr)
                {
                    return Some(v);
                }
                // Otherwise the general path's code, from the parse's view, without
                // trying the fixed offsets again: they failed, or there is no IPv4
                // tunnel source, or the entry holds the virtual address in place of a
                // real server of the other family.
                return Some(self.tunnel::<Ipv4Addr>(c, buf, frame, &t.info(), false));
            }
        };
        Some(if ok {
            Verdict::Forward {
                frame,
                next_hop: IpAddr::V4(hop),
            }
        } else {
            self.drop(DropReason::RewriteFailed)
        })
    }

    fn process_af<A: Family>(
        &mut self,
        now: Instant,
        rx: Rx,
        buf: &mut [u8],
        frame: Range<usize>,
        info: &FrameInfo,
        ahead: &Ahead,
    ) -> Verdict {
        let (Some(src), Some(dst)) = (A::from_ip(&info.ip.src), A::from_ip(&info.ip.dst)) else {
            return Verdict::Local;
        };
        let flow = match info.l4 {
            L4Info::Tcp {
                src_port,
                dst_port,
                flags,
            } => Flow {
                proto: Proto::Tcp,
                sport: src_port,
                dport: dst_port,
                tcp_flags: flags,
            },
            L4Info::Udp { src_port, dst_port } => Flow {
                proto: Proto::Udp,
                sport: src_port,
                dport: dst_port,
                tcp_flags: TcpFlags::default(),
            },
            L4Info::Icmp(i) if i.is_error && is_translated_icmp(info.ip.version, i.msg_type) => {
                return self.process_icmp::<A>(buf, frame, info);
            }
            _ => {
                // A later fragment of a datagram for a virtual address cannot be matched
                // to a connection without reassembly.
                if info.ip.fragment == Fragment::Later && self.is_virtual_addr(&info.ip.dst) {
                    return self.drop(DropReason::Fragment);
                }
                return Verdict::Local;
            }
        };
        if info.ip.fragment != Fragment::Whole && self.is_virtual_addr(&info.ip.dst) {
            return self.drop(DropReason::Fragment);
        }

        // 1. A known connection, client side. Each key is hashed at most once: a
        // lookup that misses keeps its hash for the insert of a new connection, and the
        // table's address filters skip the lookups that cannot hit.
        let mut hints = Hints::new();
        // Whether the read-ahead read the out slot of this packet's connection's first
        // local end.
        let mut end_read = false;
        let table = A::table(&mut self.tables);
        // A burst's read-ahead hashed this packet's client-side key already (a frame
        // the fast path declined, such as a SYN): the hash is kept, when the key it was
        // made for is this one.
        if let (Parsed::Done(Some(t)), Some(p)) = (&ahead.parsed, &ahead.prepared) {
            let proto = if t.tcp { Proto::Tcp } else { Proto::Udp };
            let v4 = |a: [u8; 4]| IpAddr::V4(Ipv4Addr::from(a));
            if (proto, src.to_ip(), flow.sport, dst.to_ip(), flow.dport)
                == (flow.proto, v4(t.src), t.sport, v4(t.dst), t.dport)
            {
                hints.keep_prepared(p, proto, src, flow.sport, dst, flow.dport);
                if let Some((l, port, h)) = ahead.out_end
                    && let Some(l) = A::from_ip(&IpAddr::V4(l))
                {
                    hints.keep_end(proto, l, port, h);
                    end_read = true;
                }
            }
        }
        if let Some(id) =
            table.lookup_in_with(&mut hints, flow.proto, src, flow.sport, dst, flow.dport)
        {
            // The common case in one access to the entry; anything unusual (expired, a
            // removed real server, a SYN that may reuse a closing connection) below.
            if let Some(v) = self.known::<A>(now, id, &flow, buf, frame.clone(), info, true) {
                return v;
            }
            match self.existing_in::<A>(now, id, &flow) {
                Ok(()) => return self.forward_in::<A>(now, id, buf, frame, info),
                Err(Some(reason)) => return self.drop(reason),
                Err(None) => {} // expired or reused: schedule anew
            }
        } else if let Some(id) =
            table.lookup_out_with(&hints, flow.proto, src, flow.sport, dst, flow.dport)
        {
            // 2. A reply from a real server (NAT, FULLNAT).
            if let Some(v) = self.known::<A>(now, id, &flow, buf, frame.clone(), info, false) {
                return v;
            }
            return self.forward_out::<A>(now, id, &flow, buf, frame, info);
        }

        // 3. A new connection to a virtual service?
        let Some(svc_idx) = self.lookup_service(flow.proto, &info.ip.dst, flow.dport, rx.fwmark)
        else {
            return Verdict::Local;
        };
        let opens = flow.tcp_flags.syn() && !flow.tcp_flags.ack();
        if flow.proto == Proto::Tcp && !self.cfg.sloppy_tcp && !opens {
            // The kernel hands it to the local stack (which answers with a reset).
            return Verdict::Local;
        }
        if flow.tcp_flags.rst() {
            return Verdict::Local;
        }
        // A connection's out slot depends on its local end, not on the real server: its
        // read is under way while the scheduler runs, not after it. A NAT connection's
        // local end is the client's; a FULLNAT one's is drawn from its client-side hash
        // (`alloc_local` tries that end first). Not again after a burst's read-ahead
        // (which, with both NAT and FULLNAT services, reads the NAT end).
        let (masq, fullnat) = match self.services.get(svc_idx).and_then(Option::as_ref) {
            Some(s) if !end_read => (s.masq, s.fullnat),
            _ => (false, false),
        };
        let table = A::table(&mut self.tables);
        let end = if masq {
            Some((src, flow.sport))
        } else if fullnat {
            let h = table.in_hash(&mut hints, flow.proto, src, flow.sport, dst, flow.dport);
            first_local_end(self.laddrs, h)
        } else {
            None
        };
        if let Some((l, p)) = end {
            core::hint::black_box(table.prepare_out_end(&mut hints, flow.proto, l, p));
        }
        let id = match self.new_conn::<A>(now, svc_idx, &flow, src, dst, info, &mut hints) {
            Ok(id) => id,
            Err(reason) => return self.drop(reason),
        };
        let verdict = self.forward_in::<A>(now, id, buf, frame, info);
        // One-packet scheduling: the connection ends with its first datagram.
        let one_packet = A::table(&mut self.tables)
            .get(id)
            .is_some_and(|c| c.flags.contains(ConnFlags::ONE_PACKET));
        if one_packet {
            self.remove_conn::<A>(id);
        }
        verdict
    }

    fn is_virtual_addr(&self, addr: &IpAddr) -> bool {
        self.services
            .iter()
            .flatten()
            .any(|s| matches!(s.spec.key, ServiceKey::Addr { addr: a, .. } if a == *addr))
    }

    fn lookup_service(&self, proto: Proto, addr: &IpAddr, port: u16, fwmark: u32) -> Option<usize> {
        let family = IpVersion::of(addr);
        if fwmark != 0
            && self.svc_index.marks > 0
            && let Some(i) = self.find_service(&ServiceKey::FwMark {
                mark: fwmark,
                family,
            })
        {
            return Some(i);
        }
        self.find_service(&ServiceKey::Addr {
            proto,
            addr: *addr,
            port,
        })
        .or_else(|| {
            if self.svc_index.wildcards == 0 {
                return None;
            }
            self.find_service(&ServiceKey::Addr {
                proto,
                addr: *addr,
                port: 0,
            })
        })
    }

    fn remove_conn<A: Family>(&mut self, id: ConnId) {
        let Director {
            tables,
            dests,
            meta,
            ..
        } = self;
        if let Some(c) = A::table(tables).remove(id) {
            unbind(dests, meta, &c);
        }
    }

    /// Reads two bytes of each frame's headers, for [`Director::process_burst`]: its IP
    /// protocol and the last byte of a TCP header without options, which is in the next
    /// cache line when the frame does not start on one. Returns them combined.
    #[inline]
    fn touch_frames<B: AsMut<[u8]>>(frames: &mut [Packet<B>]) -> u8 {
        let mut sink = 0;
        for p in frames {
            let (first, end) = (p.frame.start.saturating_add(23), p.frame.end);
            let b = p.buf.as_mut();
            sink ^= b.get(first).copied().unwrap_or(0);
            let last = first.saturating_add(30).min(end.saturating_sub(1));
            sink ^= b.get(last).copied().unwrap_or(0);
        }
        sink
    }

    /// Whether a connection's real server was removed (or its slot freed).
    fn dest_gone(&self, dest: DestId) -> bool {
        dest_gone(self.dests, self.meta, dest)
    }

    /// Checks a client-side hit: `Err(None)` means the connection is gone (expired, or
    /// closing and reused by a new SYN) and the packet should be scheduled anew.
    fn existing_in<A: Family>(
        &mut self,
        now: Instant,
        id: ConnId,
        flow: &Flow,
    ) -> Result<(), Option<DropReason>> {
        let Some(c) = A::table(&mut self.tables).get(id).copied() else {
            return Err(None);
        };
        if c.expires <= now {
            self.remove_conn::<A>(id);
            return Err(None);
        }
        if self.dest_gone(c.dest) {
            // As the kernel: a packet of a connection whose real server was removed is
            // dropped, and the connection's timer is not restarted. With
            // expire_nodest_conn the connection expires at once, and (Linux >= 5.9) a
            // packet that can open a connection (a SYN, a UDP datagram) is scheduled
            // anew, to a server that is still there.
            if self.cfg.expire_nodest_conn {
                self.remove_conn::<A>(id);
                let opens =
                    c.proto == Proto::Udp || (flow.tcp_flags.syn() && !flow.tcp_flags.ack());
                if opens {
                    return Err(None);
                }
            }
            return Err(Some(DropReason::DestUnavailable));
        }
        // conn_reuse_mode: a new SYN on a closing connection opens a new one.
        if c.proto == Proto::Tcp
            && self.cfg.conn_reuse_mode != 0
            && flow.tcp_flags.syn()
            && !flow.tcp_flags.ack()
            && c.control == NO_CONN
            && let Some(st) = TcpState::from_u8(c.state)
        {
            let no_output = matches!(c.method, Method::DirectRoute | Method::Tunnel);
            if st.is_new_conn_expected(no_output, self.cfg.conn_reuse_mode) {
                self.remove_conn::<A>(id);
                return Err(None);
            }
        }
        Ok(())
    }

    /// The new state, flags and expiry of a connection `c` of real server slot `dest`
    /// for a packet in direction `dir` (moving it between the server's active and
    /// inactive counts): [`Director::advance`]'s decision, shared with the fast paths.
    #[inline(always)]
    fn next_state<A: FlowAddr>(
        cfg: &Config,
        dests: &mut [Option<RealServer>],
        c: &Conn<A>,
        now: Instant,
        dir: Direction,
        flow: &Flow,
    ) -> (u8, ConnFlags, Deadline) {
        match c.proto {
            Proto::Tcp => {
                // The established flow's segment, the commonest by far: a plain ACK
                // (PSH, URG and the rest aside) keeps an active ESTABLISHED connection
                // where it is in every direction and both tables (a test checks it).
                if c.state == TcpState::Established as u8
                    && flow.tcp_flags.0 & TCP_EVENT_FLAGS == TcpFlags::ACK.0
                    && !c.flags.contains(ConnFlags::INACTIVE)
                {
                    let t = cfg.timeouts.tcp(TcpState::Established);
                    return (c.state, c.flags, Deadline::after(now, t));
                }
                let old = TcpState::from_u8(c.state).unwrap_or(TcpState::None);
                let new = if cfg.secure_tcp {
                    tcp_transition_secure(old, dir, flow.tcp_flags)
                } else {
                    tcp_transition(old, dir, flow.tcp_flags)
                };
                // The server's overload flag needs no update here: a move between its
                // active and inactive counts leaves their sum, all the thresholds
                // compare, unchanged (`account_state` re-evaluates it all the same).
                let flags = account_state(dests, c.dest, c.flags, new.is_active());
                (
                    new as u8,
                    flags,
                    Deadline::after(now, cfg.timeouts.tcp(new)),
                )
            }
            Proto::Udp => (0, c.flags, Deadline::after(now, cfg.timeouts.udp())),
        }
    }

    /// The common case of a packet of a known connection, with one access to its entry:
    /// alive, its real server there, and, from the client, not a SYN that could reuse it
    /// (those go through [`Director::existing_in`] and [`Director::forward_in`]; replies
    /// through [`Director::forward_out`], which decide the same for the rest). `None`,
    /// having changed nothing, otherwise.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn known<A: Family>(
        &mut self,
        now: Instant,
        id: ConnId,
        flow: &Flow,
        buf: &mut [u8],
        frame: Range<usize>,
        info: &FrameInfo,
        from_client: bool,
    ) -> Option<Verdict> {
        let Director {
            tables,
            dests,
            meta,
            cfg,
            ..
        } = self;
        let mut e = A::table(tables).entry_mut(id)?;
        let reuse = from_client && flow.tcp_flags.syn() && !flow.tcp_flags.ack();
        if e.expires <= now || reuse || dest_gone(dests, meta, e.dest) {
            return None;
        }
        let dir = match (from_client, e.method) {
            (false, _) => Direction::Output,
            (true, Method::DirectRoute | Method::Tunnel) => Direction::InputOnly,
            (true, Method::Masq | Method::FullNat) => Direction::Input,
        };
        let (state, flags, expires) = Self::next_state(cfg, dests, &e, now, dir, flow);
        e.set_state(state);
        e.set_flags(flags);
        e.set_expires(expires);
        let c = *e;
        Some(if from_client {
            self.send_to_real_server(c, buf, frame, info, false)
        } else {
            self.send_to_client(c, buf, frame, info, false)
        })
    }

    /// Advances the state of connection `id` for a packet in direction `dir`.
    fn advance<A: Family>(&mut self, now: Instant, id: ConnId, dir: Direction, flow: &Flow) {
        let Director {
            tables, dests, cfg, ..
        } = self;
        let Some(mut e) = A::table(tables).entry_mut(id) else {
            return;
        };
        let (state, flags, expires) = Self::next_state(cfg, dests, &e, now, dir, flow);
        e.set_state(state);
        e.set_flags(flags);
        e.set_expires(expires);
    }

    fn count(&mut self, svc: u16, dest: DestId, bytes: usize, inbound: bool) {
        count_in_place(
            &mut self.totals,
            self.meta,
            self.services,
            svc,
            dest,
            bytes,
            inbound,
        );
    }

    /// Forwards a client-side packet of connection `id` to its real server.
    fn forward_in<A: Family>(
        &mut self,
        now: Instant,
        id: ConnId,
        buf: &mut [u8],
        frame: Range<usize>,
        info: &FrameInfo,
    ) -> Verdict {
        let Some(c) = A::table(&mut self.tables).get(id).copied() else {
            return self.drop(DropReason::RewriteFailed);
        };
        let flow = match info.l4 {
            L4Info::Tcp { flags, .. } => Flow {
                proto: Proto::Tcp,
                sport: 0,
                dport: 0,
                tcp_flags: flags,
            },
            _ => Flow {
                proto: c.proto,
                sport: 0,
                dport: 0,
                tcp_flags: TcpFlags::default(),
            },
        };
        let dir = match c.method {
            Method::DirectRoute | Method::Tunnel => Direction::InputOnly,
            Method::Masq | Method::FullNat => Direction::Input,
        };
        self.advance::<A>(now, id, dir, &flow);
        self.send_to_real_server(c, buf, frame, info, false)
    }

    /// Counts and rewrites a client-side packet (or, with `icmp`, an ICMP error about
    /// a packet the director sent the client) of connection `c` for its real server.
    fn send_to_real_server<A: Family>(
        &mut self,
        c: Conn<A>,
        buf: &mut [u8],
        frame: Range<usize>,
        info: &FrameInfo,
        icmp: bool,
    ) -> Verdict {
        self.count(c.service, c.dest, info.ip.total_len, true);
        let daddr = c.daddr.to_ip();
        let Some(f) = buf.get_mut(frame.clone()) else {
            return self.drop(DropReason::RewriteFailed);
        };
        let real = Endpoint::new(daddr, c.dport);
        let local = Endpoint::new(c.laddr.to_ip(), c.lport);
        let res = match (c.method, icmp) {
            (Method::Masq, false) => nat::inbound(f, info, real),
            (Method::Masq, true) => nat::inbound_icmp(f, info, real),
            (Method::FullNat, false) => fullnat::inbound(f, info, local, real),
            (Method::FullNat, true) => fullnat::inbound_icmp(f, info, local, real),
            (Method::DirectRoute, _) => Ok(()),
            (Method::Tunnel, _) => return self.tunnel::<A>(c, buf, frame, info, true),
        };
        self.forwarded(res, frame, daddr)
    }

    /// Counts and rewrites a real server's packet (or, with `icmp`, an ICMP error about
    /// a packet the director sent the real server) of connection `c` for its client.
    fn send_to_client<A: Family>(
        &mut self,
        c: Conn<A>,
        buf: &mut [u8],
        frame: Range<usize>,
        info: &FrameInfo,
        icmp: bool,
    ) -> Verdict {
        self.count(c.service, c.dest, info.ip.total_len, false);
        let virt = Endpoint::new(c.vaddr.to_ip(), c.vport);
        let client = Endpoint::new(c.caddr.to_ip(), c.cport);
        let Some(f) = buf.get_mut(frame.clone()) else {
            return self.drop(DropReason::RewriteFailed);
        };
        let res = match (c.method, icmp) {
            (Method::Masq, false) => nat::outbound(f, info, virt),
            (Method::Masq, true) => nat::outbound_icmp(f, info, virt),
            (Method::FullNat, false) => fullnat::outbound(f, info, virt, client),
            (Method::FullNat, true) => fullnat::outbound_icmp(f, info, virt, client),
            // DR/TUN connections are not indexed from the real-server side.
            (Method::DirectRoute | Method::Tunnel, _) => return Verdict::Local,
        };
        self.forwarded(res, frame, client.addr)
    }

    /// The verdict of a rewrite: forward to `next_hop`, or drop with its reason.
    fn forwarded(
        &mut self,
        res: Result<(), fwd::Error>,
        frame: Range<usize>,
        next_hop: IpAddr,
    ) -> Verdict {
        match res {
            Ok(()) => Verdict::Forward { frame, next_hop },
            Err(e) => self.drop(DropReason::from(e)),
        }
    }

    /// Encapsulates a connection's packet to its real server (TUN), or answers that it
    /// does not fit the tunnel's MTU. `fixed`: whether to try the fixed-offset 4in4
    /// first (the fast path has already tried it when it passes `false`).
    fn tunnel<A: Family>(
        &mut self,
        c: Conn<A>,
        buf: &mut [u8],
        frame: Range<usize>,
        info: &FrameInfo,
        fixed: bool,
    ) -> Verdict {
        // The real server's own address: it may be of the other family (4in6, 6in4),
        // which the family-typed connection entry cannot hold.
        let daddr = self
            .dests
            .get(c.dest as usize)
            .and_then(Option::as_ref)
            .map_or(c.daddr.to_ip(), |d| d.addr);
        // The tunnel source is the director's own address of the real server's family
        // (the real server may be of the other family: 4in6, 6in4).
        let src = match daddr {
            IpAddr::V4(_) => self.cfg.tun_src_v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.cfg.tun_src_v6.map(IpAddr::V6),
        };
        let Some(src) = src else {
            return self.drop(DropReason::FamilyMismatch);
        };
        // 4in4 of an untagged frame with a plain 20-byte header: at fixed offsets, as the
        // fast path does (unless `fixed` says the caller tried that).
        if fixed
            && let (IpAddr::V4(s), IpAddr::V4(d)) = (src, daddr)
            && info.l3_offset == 14
            && info.vlan.is_none()
            && info.ip.version == IpVersion::V4
            && info.ip.header_len == 20
            && info.ip.fragment == Fragment::Whole
            && let Ok(total) = u16::try_from(info.ip.total_len)
            && let Some(v) = self.encap_fixed_v4(buf, frame.clone(), total, s, d)
        {
            return v;
        }
        self.tun_ident = self.tun_ident.wrapping_add(1);
        let p = tun::TunParams {
            src,
            dst: daddr,
            ident: self.tun_ident,
            flow_label: c.cport as u32 ^ (c.vport as u32) << 4,
            mtu: self.cfg.tun_mtu,
        };
        match tun::encap(buf, frame.clone(), info, &p) {
            Ok(out) => Verdict::Forward {
                frame: out,
                next_hop: daddr,
            },
            Err(fwd::Error::FragNeeded { mtu }) => {
                let ident = self.tun_ident;
                match icmp::too_big_reply(buf, frame, info, info.ip.dst, mtu, ident) {
                    Ok(r) => {
                        self.drops.inc(DropReason::TooBig);
                        Verdict::Reply { frame: r }
                    }
                    Err(e) => self.drop(DropReason::from(e)),
                }
            }
            Err(e) => self.drop(DropReason::from(e)),
        }
    }

    /// 4in4 from `src` to `dst` at fixed offsets (`tun::encap_v4_fixed`: the bytes
    /// `tun::encap` writes, a proptest in `fwd` checks it), with the next
    /// identification; `None`, having changed nothing, where it declines (no headroom,
    /// too big for the MTU, a frame shorter than its header says).
    #[inline(always)]
    fn encap_fixed_v4(
        &mut self,
        buf: &mut [u8],
        frame: Range<usize>,
        total: u16,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Option<Verdict> {
        let ident = self.tun_ident.wrapping_add(1);
        let (s, d, mtu) = (src.octets(), dst.octets(), self.cfg.tun_mtu);
        let out = tun::encap_v4_fixed(buf, frame, total, s, d, ident, mtu)?;
        self.tun_ident = ident;
        Some(Verdict::Forward {
            frame: out,
            next_hop: IpAddr::V4(dst),
        })
    }

    /// Forwards a reply from a real server back to the client (NAT, FULLNAT).
    fn forward_out<A: Family>(
        &mut self,
        now: Instant,
        id: ConnId,
        flow: &Flow,
        buf: &mut [u8],
        frame: Range<usize>,
        info: &FrameInfo,
    ) -> Verdict {
        let Some(c) = A::table(&mut self.tables).get(id).copied() else {
            return Verdict::Local;
        };
        if c.expires <= now {
            self.remove_conn::<A>(id);
            return Verdict::Local;
        }
        if self.dest_gone(c.dest) {
            // As on the client side: the kernel drops a removed server's traffic.
            if self.cfg.expire_nodest_conn {
                self.remove_conn::<A>(id);
            }
            return self.drop(DropReason::DestUnavailable);
        }
        self.advance::<A>(now, id, Direction::Output, flow);
        self.send_to_client(c, buf, frame, info, false)
    }

    /// An ICMP error: about a packet the director sent to the client (it quotes
    /// VIP:vport -> CIP:cport, or for FULLNAT the same), or about a packet it forwarded
    /// to a real server (it quotes CIP/LIP:port -> RIP:rport).
    fn process_icmp<A: Family>(
        &mut self,
        buf: &mut [u8],
        frame: Range<usize>,
        info: &FrameInfo,
    ) -> Verdict {
        let L4Info::Icmp(m) = info.l4 else {
            return Verdict::Local;
        };
        let Some(q) = m.inner else {
            return Verdict::Local;
        };
        let proto = match q.protocol {
            wire::IpProtocol::Tcp => Proto::Tcp,
            wire::IpProtocol::Udp => Proto::Udp,
            _ => return Verdict::Local,
        };
        let (Some((qs, qd)), Some(qsrc), Some(qdst)) =
            (q.ports, A::from_ip(&q.src), A::from_ip(&q.dst))
        else {
            return Verdict::Local;
        };
        let table = A::table(&mut self.tables);
        // Client side: the quoted packet went from the virtual service to the client.
        if let Some(id) = table.lookup_in(proto, qdst, qd, qsrc, qs) {
            let Some(c) = table.get(id).copied() else {
                return Verdict::Local;
            };
            return self.send_to_real_server(c, buf, frame, info, true);
        }
        // Real-server side: the quoted packet went from the director to a real server.
        if let Some(id) = table.lookup_out(proto, qdst, qd, qsrc, qs) {
            let Some(c) = table.get(id).copied() else {
                return Verdict::Local;
            };
            return self.send_to_client(c, buf, frame, info, true);
        }
        Verdict::Local
    }

    /// Schedules a new connection of service `svc_idx` and inserts it, with the hashes
    /// the lookups before it computed (`hints`).
    #[allow(clippy::too_many_arguments)] // the packet's parts, as the lookups had them
    fn new_conn<A: Family>(
        &mut self,
        now: Instant,
        svc_idx: usize,
        flow: &Flow,
        src: A,
        dst: A,
        info: &FrameInfo,
        hints: &mut Hints<A>,
    ) -> Result<ConnId, DropReason> {
        let random = self.random();
        let Some(Some(svc)) = self.services.get(svc_idx) else {
            return Err(DropReason::NoDest);
        };
        let spec = svc.spec;
        let input = SchedInput {
            src: info.ip.src,
            dst: info.ip.dst,
            src_port: flow.sport,
            dst_port: flow.dport,
            now,
            random,
        };

        // Persistence: a template for the (masked) client decides, while its server is
        // usable; a new template is made otherwise.
        let mut control = NO_CONN;
        let mut dest = None;
        // A template the client can no longer use that still controls connections. The
        // kernel invalidates it (rehashed out of reach until its connections end) and
        // makes a new one; the table cannot change a key, and refuses a second entry
        // under the same key, so it is re-pointed at the newly scheduled server instead.
        let mut stale: Option<Conn<A>> = None;
        let (tkey_addr, tkey_port, tproto) = match spec.key {
            ServiceKey::Addr { port, .. } => (dst, port, flow.proto),
            // The kernel keys an fwmark template with IPPROTO_IP: one template for every
            // protocol the mark covers. The table knows TCP and UDP only; TCP stands
            // for "any" here.
            ServiceKey::FwMark { mark, .. } => (A::from_mark(mark), 0, Proto::Tcp),
        };
        if let Some(p) = spec.persistence {
            let caddr = src.masked(p.prefix);
            let table = A::table(&mut self.tables);
            if let Some(tid) = table.lookup_template(tproto, caddr, tkey_addr, tkey_port)
                && let Some(t) = table.get(tid).copied()
            {
                // Past its time but still controlling connections, a template is alive:
                // the sweep would re-arm it, as the kernel's timer does.
                let live = t.expires > now || t.n_control > 0;
                let usable = live
                    && self
                        .dests
                        .get(t.dest as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|d| d.weight > 0 || !self.cfg.expire_quiescent_template)
                    && self.meta.get(t.dest as usize).is_some_and(|m| !m.removed);
                if usable {
                    dest = Some(t.dest);
                    control = tid;
                    A::table(&mut self.tables)
                        .update(tid, |d| d.expires = Deadline::after(now, p.timeout));
                } else if t.n_control > 0 {
                    stale = Some(t);
                    control = tid;
                } else {
                    self.remove_conn::<A>(tid);
                }
            }
        }
        let dest = match dest {
            Some(d) => d,
            None => {
                let Director {
                    services, dests, ..
                } = self;
                let Some(Some(svc)) = services.get_mut(svc_idx) else {
                    return Err(DropReason::NoDest);
                };
                let d = svc
                    .sched
                    .sched()
                    .schedule(Dests::new(dests, &svc.members), &input)
                    .ok_or(DropReason::NoDest)?;
                if let Some(p) = spec.persistence {
                    let server = dests
                        .get(d as usize)
                        .and_then(Option::as_ref)
                        .copied()
                        .ok_or(DropReason::NoDest)?;
                    if let Some(t) = stale {
                        // Re-point the stale template (its listed daddr/dport stay the
                        // old server's: key fields cannot change) and move its
                        // PersistConn count.
                        let Director {
                            tables,
                            dests,
                            meta,
                            ..
                        } = self;
                        A::table(tables).update(control, |x| {
                            x.dest = d;
                            x.method = server.method;
                            x.expires = Deadline::after(now, p.timeout);
                        });
                        unbind(dests, meta, &t);
                        if let Some(Some(ds)) = dests.get_mut(d as usize) {
                            ds.persist_conns = ds.persist_conns.saturating_add(1);
                        }
                    } else {
                        let daddr = A::from_ip(&server.addr).unwrap_or(A::UNSPECIFIED);
                        let mut t = Conn::<A>::empty();
                        t.proto = tproto;
                        t.flags = ConnFlags::TEMPLATE;
                        t.method = server.method;
                        t.caddr = src.masked(p.prefix);
                        t.vaddr = tkey_addr;
                        t.vport = tkey_port;
                        t.daddr = daddr;
                        t.dport = server.port;
                        t.laddr = t.caddr;
                        t.service = svc_idx as u16;
                        t.dest = d;
                        t.expires = Deadline::after(now, p.timeout);
                        control = self.insert_conn::<A>(now, t, &Hints::new())?;
                        if let Some(Some(ds)) = self.dests.get_mut(d as usize) {
                            ds.persist_conns = ds.persist_conns.saturating_add(1);
                        }
                    }
                }
                d
            }
        };
        let server = self
            .dests
            .get(dest as usize)
            .and_then(Option::as_ref)
            .copied()
            .ok_or(DropReason::NoDest)?;
        let mut c = Conn::<A>::empty();
        c.proto = flow.proto;
        c.flags = ConnFlags::INACTIVE;
        if spec.one_packet && flow.proto == Proto::Udp {
            c.flags.insert(ConnFlags::ONE_PACKET);
        }
        c.method = server.method;
        c.caddr = src;
        c.cport = flow.sport;
        c.vaddr = dst;
        c.vport = flow.dport;
        c.laddr = src;
        c.lport = flow.sport;
        c.service = svc_idx as u16;
        c.dest = dest;
        c.control = control;
        c.state = TcpState::None as u8;
        c.expires = Deadline::after(now, self.cfg.timeouts.tcp(TcpState::None));
        match server.method {
            Method::Masq | Method::FullNat => {
                // Tunnelled real servers may be of the other family; NAT ones are not.
                c.daddr = A::from_ip(&server.addr).ok_or(DropReason::FamilyMismatch)?;
                // The kernel's choice (ip_vs_schedule, ip_vs_sched_persist): a real
                // server of port 0 (a port-zero or fwmark service) keeps the packet's
                // port; a persistent service maps only packets to its own port.
                let svc_port = match spec.key {
                    ServiceKey::Addr { port, .. } => port,
                    ServiceKey::FwMark { .. } => 0,
                };
                let mapped =
                    server.port != 0 && (spec.persistence.is_none() || flow.dport == svc_port);
                c.dport = if mapped { server.port } else { flow.dport };
                c.flags.insert(ConnFlags::OUT_INDEXED);
            }
            Method::DirectRoute => {
                c.daddr = A::from_ip(&server.addr).ok_or(DropReason::FamilyMismatch)?;
                // DR cannot map ports: the packet keeps the virtual port.
                c.dport = flow.dport;
            }
            Method::Tunnel => {
                // The table stores addresses of one family; a tunnel to a real server of
                // the other family is keyed by the virtual address and resolved through
                // the real server's slot when forwarding.
                c.daddr = A::from_ip(&server.addr).unwrap_or(dst);
                c.dport = flow.dport;
            }
        }
        if server.method == Method::FullNat {
            let (laddr, lport) = self
                .alloc_local::<A>(&c, hints)
                .ok_or(DropReason::TableFull)?;
            c.laddr = laddr;
            c.lport = lport;
        }
        let id = self.insert_conn::<A>(now, c, hints)?;
        if let Some(Some(d)) = self.dests.get_mut(dest as usize) {
            d.inactive_conns = d.inactive_conns.saturating_add(1);
            d.update_overload();
        }
        if let Some(m) = self.meta.get_mut(dest as usize) {
            m.stats.add_conn();
        }
        if let Some(Some(s)) = self.services.get_mut(svc_idx) {
            s.stats.add_conn();
        }
        self.totals.add_conn();
        Ok(id)
    }

    /// Inserts, making room when full: an expired or embryonic connection (never an
    /// established one, never a template) is evicted to admit the new one.
    fn insert_conn<A: Family>(
        &mut self,
        now: Instant,
        c: Conn<A>,
        hints: &Hints<A>,
    ) -> Result<ConnId, DropReason> {
        let victim_budget = self.cfg.victim_budget;
        let table = A::table(&mut self.tables);
        match table.insert_with(c, hints) {
            Ok(id) => Ok(id),
            // A duplicate key or a full probe window: evicting some other entry would
            // not make room for this one.
            Err((_, InsertError::Duplicate)) => Err(DropReason::KeyCollision),
            Err((_, e)) if e != InsertError::Full => Err(DropReason::TableFull),
            Err((c, _)) => {
                let victim = table.find_victim(now, victim_budget, |v: &Conn<A>| {
                    !v.is_template()
                        && v.n_control == 0
                        && v.proto == Proto::Tcp
                        && TcpState::from_u8(v.state)
                            .is_some_and(|s| s.is_embryonic() || s == TcpState::None)
                });
                let Some(v) = victim else {
                    return Err(DropReason::TableFull);
                };
                self.remove_conn::<A>(v);
                A::table(&mut self.tables)
                    .insert_with(c, hints)
                    .map_err(|_| DropReason::TableFull)
            }
        }
    }

    /// A FULLNAT local address and port for connection `c` (its client side and real
    /// server set), such that its real-server-side key is unique and has room in the
    /// out index: collision-free by construction. The candidates are drawn from the
    /// connection's client-side hash ([`local_addr`]), so the first one is known before
    /// scheduling, when its out slot is read ([`ConnTable::prepare_out_end`]).
    fn alloc_local<A: Family>(&mut self, c: &Conn<A>, hints: &mut Hints<A>) -> Option<(A, u16)> {
        let table = A::table(&mut self.tables);
        let h = table.in_hash(hints, c.proto, c.caddr, c.cport, c.vaddr, c.vport);
        for k in 0..self.laddrs.len() {
            let Some(l) = local_addr(self.laddrs, h, k) else {
                continue;
            };
            for t in 0..LOCAL_PORT_TRIES {
                let p = local_port(h, t);
                if table.out_vacant_with(hints, c.proto, c.daddr, c.dport, l, p) {
                    return Some((l, p));
                }
            }
        }
        None
    }

    /// Checks the invariants the fuzz target and the proptests rely on: each real
    /// server's counts equal its connections in the tables. Returns a description of
    /// the first mismatch.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        for (id, slot) in self.dests.iter().enumerate() {
            let Some(d) = slot else { continue };
            let (mut act, mut inact, mut pers) = (0u32, 0u32, 0u32);
            let mut tally = |dest: DestId, flags: ConnFlags, template: bool| {
                if dest as usize != id {
                    return;
                }
                if template {
                    pers += 1;
                } else if flags.contains(ConnFlags::INACTIVE) {
                    inact += 1;
                } else {
                    act += 1;
                }
            };
            for (_, c) in self.tables.v4.iter() {
                tally(c.dest, c.flags, c.is_template());
            }
            for (_, c) in self.tables.v6.iter() {
                tally(c.dest, c.flags, c.is_template());
            }
            let s = d;
            if (act, inact, pers) != (s.active_conns, s.inactive_conns, s.persist_conns) {
                return Err("real server counts differ from the connection table");
            }
        }
        for (_, c) in self.tables.v4.iter() {
            if self
                .dests
                .get(c.dest as usize)
                .and_then(Option::as_ref)
                .is_none()
            {
                return Err("an IPv4 connection references a freed real server slot");
            }
        }
        for (_, c) in self.tables.v6.iter() {
            if self
                .dests
                .get(c.dest as usize)
                .and_then(Option::as_ref)
                .is_none()
            {
                return Err("an IPv6 connection references a freed real server slot");
            }
        }
        Ok(())
    }
}

/// Tries per local address when choosing a FULLNAT local port.
const LOCAL_PORT_TRIES: u32 = 64;

/// The `k`-th local address a FULLNAT connection of client-side hash `h` tries
/// (`None` for an empty slot or one of another family).
///
/// A connection's local ends are drawn from `h`, its client-side key's keyed hash (a
/// client cannot predict them): the local addresses from the slot `h`'s top bits name
/// on, round; for each, [`LOCAL_PORT_TRIES`] ports ([`local_port`]). A function of the
/// key, not of a counter, so that a burst's read-ahead knows the first
/// ([`first_local_end`]) before the SYNs ahead of it are processed.
#[inline]
fn local_addr<A: FlowAddr>(laddrs: &[Option<IpAddr>], h: u64, k: usize) -> Option<A> {
    let n = laddrs.len();
    let first = ((h >> 48) as usize).checked_rem(n)?;
    laddrs.get((first + k) % n)?.as_ref().and_then(A::from_ip)
}

/// The `t`-th local port of `h`'s: from the one bits 32..48 of `h` name in
/// 1024..=65535, steps of 7,919 (prime to the 64,512 ports: never one twice).
#[inline]
fn local_port(h: u64, t: u32) -> u16 {
    const PORTS: u32 = 65536 - 1024;
    let p0 = (h >> 32) as u32 & 0xffff;
    1024 + (p0.wrapping_add(t.wrapping_mul(7919)) % PORTS) as u16
}

/// The first local end a FULLNAT connection of client-side hash `h` tries.
#[inline]
fn first_local_end<A: FlowAddr>(laddrs: &[Option<IpAddr>], h: u64) -> Option<(A, u16)> {
    (0..laddrs.len()).find_map(|k| Some((local_addr(laddrs, h, k)?, local_port(h, 0))))
}

/// Counts a packet of `bytes` bytes of a connection of service slot `svc` and real
/// server slot `dest`: in the totals, at the real server, and at the service while the
/// real server still belongs to it.
#[inline(always)]
fn count_in_place<const D: usize>(
    totals: &mut Counters,
    meta: &mut [DestMeta],
    services: &mut [Option<Service<'_, D>>],
    svc: u16,
    dest: DestId,
    bytes: usize,
    inbound: bool,
) {
    count_at(
        totals,
        meta.get_mut(dest as usize),
        services,
        svc,
        bytes,
        inbound,
    );
}

/// [`count_in_place`] for a real server whose metadata the caller holds (`None`: its
/// slot is out of range, and only the totals count the packet).
#[inline(always)]
fn count_at<const D: usize>(
    totals: &mut Counters,
    meta: Option<&mut DestMeta>,
    services: &mut [Option<Service<'_, D>>],
    svc: u16,
    bytes: usize,
    inbound: bool,
) {
    let add = |c: &mut Counters| {
        if inbound {
            c.add_in(bytes)
        } else {
            c.add_out(bytes)
        }
    };
    add(totals);
    let Some(m) = meta else {
        return;
    };
    add(&mut m.stats);
    // A connection of a deleted service counts for no service (its slot may hold
    // another one now).
    if m.service == svc
        && let Some(Some(s)) = services.get_mut(svc as usize)
    {
        add(&mut s.stats);
    }
}

/// Slots of [`SvcIndex`]: 256 bytes.
const SVC_INDEX_SLOTS: usize = 128;
/// Slots a service key may take, from its home slot on.
const SVC_INDEX_PROBE: usize = 4;

/// Where the services are, for the new-connection path: service lookups in O(1), hit
/// or miss, where the control path scanned every slot (a cost that grew with the
/// number of services, on every new connection and every packet for the local stack).
///
/// An open-addressed table of slot numbers (plus one; 0 is empty) keyed by a hash of
/// the service key, rebuilt from the service slots whenever a service is added or
/// deleted. A hit is verified against the slot's key, so the index can never name a
/// wrong service; a miss is final when every service found a place (`complete`), and
/// otherwise falls back to the scan.
#[derive(Debug, Clone, Copy)]
struct SvcIndex {
    slots: [u16; SVC_INDEX_SLOTS],
    /// Every service is in `slots`.
    complete: bool,
    /// Services keyed by port 0 (every port).
    wildcards: u16,
    /// Firewall-mark services.
    marks: u16,
}

impl SvcIndex {
    const EMPTY: SvcIndex = SvcIndex {
        slots: [0; SVC_INDEX_SLOTS],
        complete: true,
        wildcards: 0,
        marks: 0,
    };

    /// The home slot of a service key: its words folded, then a multiplicative hash
    /// (not keyed: the keys are the operator's, not a client's).
    fn home(key: &ServiceKey) -> usize {
        let x = match *key {
            ServiceKey::Addr { proto, addr, port } => {
                let w = match addr {
                    IpAddr::V4(a) => u32::from(a),
                    IpAddr::V6(a) => {
                        let o = a.octets();
                        o.chunks_exact(4)
                            .fold(0, |x, c| x ^ u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    }
                };
                w ^ u32::from(port) << 8 ^ proto as u32
            }
            ServiceKey::FwMark { mark, family } => !mark ^ (family as u32) << 31,
        };
        (x.wrapping_mul(0x9e37_79b1) >> 25) as usize % SVC_INDEX_SLOTS
    }

    /// The index of `services`.
    fn build<const D: usize>(services: &[Option<Service<'_, D>>]) -> SvcIndex {
        let mut ix = SvcIndex::EMPTY;
        for (i, s) in services.iter().enumerate() {
            let Some(s) = s else { continue };
            match s.spec.key {
                ServiceKey::Addr { port: 0, .. } => ix.wildcards = ix.wildcards.saturating_add(1),
                ServiceKey::FwMark { .. } => ix.marks = ix.marks.saturating_add(1),
                ServiceKey::Addr { .. } => {}
            }
            let home = Self::home(&s.spec.key);
            let free = (0..SVC_INDEX_PROBE)
                .map(|k| (home + k) % SVC_INDEX_SLOTS)
                .find(|&j| ix.slots[j] == 0);
            match (free, u16::try_from(i + 1)) {
                (Some(j), Ok(v)) => ix.slots[j] = v,
                _ => ix.complete = false,
            }
        }
        ix
    }

    /// `Some(Some(slot))` for a service slot whose key is `key` (`is` tells), `Some(None)`
    /// when there is certainly none, `None` when the caller must scan.
    #[inline]
    fn find(&self, key: &ServiceKey, is: impl Fn(usize) -> bool) -> Option<Option<usize>> {
        let home = Self::home(key);
        for k in 0..SVC_INDEX_PROBE {
            let v = self.slots[(home + k) % SVC_INDEX_SLOTS];
            if v == 0 {
                break;
            }
            let i = usize::from(v) - 1;
            if is(i) {
                return Some(Some(i));
            }
        }
        self.complete.then_some(None)
    }
}

/// Whether a connection's real server was removed (or its slot freed).
#[inline(always)]
fn dest_gone(dests: &[Option<RealServer>], meta: &[DestMeta], dest: DestId) -> bool {
    dests.get(dest as usize).and_then(Option::as_ref).is_none()
        || meta.get(dest as usize).is_none_or(|m| m.removed)
}

fn apply_dest_spec(s: &mut RealServer, spec: &DestSpec) {
    s.method = spec.method;
    s.weight = spec.weight;
    s.u_threshold = spec.u_threshold;
    s.l_threshold = spec.l_threshold;
    s.update_overload();
}

/// How long a template that still controls connections lives on when its time is up:
/// the kernel's `ip_vs_conn_expire` re-arms it for 60 s, whatever its timeout.
const TEMPLATE_REARM: Duration = Duration::from_secs(60);

/// The sweep's decision for one expired entry: a template that still controls
/// connections is re-armed by [`TEMPLATE_REARM`] (the kernel's `ip_vs_conn_expire` does
/// the same); anything else is removed, with its real server's counts.
fn expire_one<A: FlowAddr>(
    dests: &mut [Option<RealServer>],
    meta: &[DestMeta],
    c: &mut Conn<A>,
    now: Instant,
    rearm: Duration,
) -> Expire {
    if c.n_control > 0 {
        c.expires = Deadline::after(now, rearm);
        return Expire::Keep;
    }
    unbind(dests, meta, c);
    Expire::Remove
}
