//! # lvs-smoltcp
//!
//! Plugs the [`lvs_core`] director into any [`smoltcp::phy::Device`]: a Linux tap, an
//! MCU's Ethernet MAC, or either wrapped in smoltcp's `PcapWriter`, `Tracer` or
//! `FaultInjector`.
//!
//! ```text
//!  devs[p] ──receive──► Adapter ──lvs-core process──► Forward ──► devs[q] (route, neighbour)
//!                          │                          Reply   ──► devs[p]
//!                          │                          Drop    (counted by lvs-core)
//!                          ├── ARP/NDP for VIPs and FULLNAT local addresses: answered here
//!                          └── everything else ──► your smoltcp Interface for port p
//! ```
//!
//! An [`Adapter`] owns the [`Director`] and the link layer around it: ports (one per
//! device, each with its MAC address, IP addresses and MTU), static routes with gateways,
//! a neighbour cache that resolves next hops with ARP and NDP, and a bounded hold queue
//! for frames whose next hop is still being resolved.
//!
//! You keep one smoltcp `Interface` per port and poll it as usual, with the device that
//! [`Adapter::device`] gives you. Receiving from that device runs every frame of the real
//! device through lvs-core: frames of virtual services go straight out of the right
//! device (smoltcp does not forward, so forwarding never enters the `Interface`), and
//! only the frames that are not the director's (ARP and NDP for the port's own
//! addresses, ICMP echo, health checks, management) reach the `Interface`:
//!
//! ```ignore
//! loop {
//!     let now = clock();
//!     for p in 0..ports {
//!         ifaces[p].poll(now, &mut adapter.device(&mut devs, p), &mut sockets[p]);
//!     }
//!     let next = adapter.maintain(now, &mut devs);
//!     // sleep until a device is readable, `next`, or the interfaces' poll_delay
//! }
//! ```
//!
//! ## VIPs, DR and TUN
//! In DR and TUN the real servers hold the VIP too, so the director must be the one
//! that answers for it: the adapter answers ARP and neighbour solicitations for every
//! virtual address on the ports marked [`PortConfig::answer_vips`] (the client-facing
//! ones) and nowhere else, and for each FULLNAT local address on the port whose subnet
//! holds it.
//!
//! ## Guarantees
//! - No allocation and no panic on the data path; all storage comes from the caller
//!   ([`Storage`]), so firmware keeps it in `static`s.
//! - One copy per forwarded frame into the adapter's buffer (smoltcp's `RxToken` lends
//!   the frame read-only, and lvs-core rewrites in place, with headroom for tunnels),
//!   and the device's own copy into its transmit buffer.
//! - Bounded work per call: [`PortDevice`] forwards at most [`Adapter::burst`] frames per
//!   `receive` before it lets the `Interface` go on.
//!
//! ## Features
//! - `std`: `Storage::leak` (feature `std`), storage sized at run time on a host.
//! - `log` / `defmt`: passed on to lvs-core and smoltcp.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub use lvs_core;
pub use smoltcp;

mod device;
pub mod neigh;
mod resolve;

use core::net::IpAddr;
use core::ops::Range;

use heapless::Vec as HVec;
use lvs_core::director::{ControlError, Director, Rx, ServiceKey, Verdict};
use smoltcp::phy::{Device, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

pub use device::{LocalRxToken, PortDevice};
pub use neigh::{Held, Neighbour, NeighbourState};

/// Bytes kept free in front of a received frame: room for an IP-in-IP outer header
/// (IPv6, 40 bytes) when lvs-core tunnels the frame to a real server.
pub const HEADROOM: usize = 64;
/// Ports (devices) an adapter drives.
pub const MAX_PORTS: usize = 4;
/// IP addresses per port.
pub const MAX_ADDRS: usize = 4;
/// Static routes.
pub const MAX_ROUTES: usize = 16;
/// FULLNAT local addresses.
pub const MAX_LADDRS: usize = 16;
/// Route lookups remembered (direct-mapped by destination).
const ROUTE_CACHE: usize = 32;

/// A remembered route: destination, output port, address to resolve.
type CachedRoute = Option<(IpAddress, usize, IpAddress)>;

/// One port: a device and the director's link-layer identity on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// The port's MAC address: source of every frame it sends, and the only unicast
    /// destination it accepts.
    pub mac: EthernetAddress,
    /// The director's addresses on this port, with their prefixes (connected routes).
    /// The same addresses go to this port's smoltcp `Interface`, which answers for them.
    pub addrs: HVec<IpCidr, MAX_ADDRS>,
    /// The largest IP packet the link carries.
    pub mtu: usize,
    /// Answer ARP and NDP for the virtual services' addresses on this port (the
    /// client-facing one).
    pub answer_vips: bool,
}

impl PortConfig {
    /// A port with this MAC address, no IP addresses, MTU 1500, not answering for VIPs.
    pub fn new(mac: EthernetAddress) -> PortConfig {
        PortConfig {
            mac,
            addrs: HVec::new(),
            mtu: 1500,
            answer_vips: false,
        }
    }

    /// Adds an address (with its prefix). Errors when [`MAX_ADDRS`] are already set.
    pub fn with_addr(mut self, cidr: IpCidr) -> Result<PortConfig, Error> {
        self.addrs.push(cidr).map_err(|_| Error::TooManyAddresses)?;
        Ok(self)
    }

    fn holds(&self, ip: &IpAddress) -> bool {
        self.addrs.iter().any(|c| c.address() == *ip)
    }

    fn on_link(&self, ip: &IpAddress) -> Option<u8> {
        self.addrs
            .iter()
            .filter(|c| c.contains_addr(ip))
            .map(|c| c.prefix_len())
            .max()
    }

    /// The source address for a solicitation of `target`: an address of its family on
    /// the same subnet, else the first of its family.
    fn source_for(&self, target: &IpAddress) -> Option<IpAddress> {
        let same_family = |c: &&IpCidr| {
            matches!(
                (c.address(), target),
                (IpAddress::Ipv4(_), IpAddress::Ipv4(_)) | (IpAddress::Ipv6(_), IpAddress::Ipv6(_))
            )
        };
        self.addrs
            .iter()
            .filter(same_family)
            .find(|c| c.contains_addr(target))
            .or_else(|| self.addrs.iter().find(same_family))
            .map(|c| c.address())
    }
}

/// A static route: packets to `prefix` go through the gateway `via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destinations (`0.0.0.0/0` and `::/0` for the default routes).
    pub prefix: IpCidr,
    /// The gateway, on a connected subnet of some port.
    pub via: IpAddress,
    /// The port to leave by; `None`: the port whose subnet holds `via`.
    pub port: Option<usize>,
}

/// Caller storage for an adapter (see `Storage::leak` (feature `std`) on a host; `static`s on an MCU).
pub struct Storage<'a> {
    /// The neighbour cache, filled with [`Neighbour::EMPTY`]. A few slots more than the
    /// real servers and gateways it must resolve.
    pub neighbours: &'a mut [Neighbour],
    /// The hold queue's bookkeeping, filled with [`Held::EMPTY`].
    pub held: &'a mut [Held],
    /// The hold queue's frames: `held.len()` slots of equal size, each the largest
    /// frame it may keep (MTU + 18 + [`HEADROOM`] is always enough).
    pub held_bytes: &'a mut [u8],
    /// The working buffer a received frame is copied into: [`HEADROOM`] + the largest
    /// frame + 40 bytes.
    pub scratch: &'a mut [u8],
}

#[cfg(feature = "std")]
impl Storage<'static> {
    /// Storage for a host program, sized at start-up and kept for the process's life.
    pub fn leak(neighbours: usize, held: usize, max_frame: usize) -> Storage<'static> {
        use std::boxed::Box;
        use std::vec;
        Storage {
            neighbours: Box::leak(vec![Neighbour::EMPTY; neighbours].into_boxed_slice()),
            held: Box::leak(vec![Held::EMPTY; held].into_boxed_slice()),
            held_bytes: Box::leak(vec![0u8; held * (max_frame + HEADROOM)].into_boxed_slice()),
            scratch: Box::leak(vec![0u8; HEADROOM + max_frame + 40].into_boxed_slice()),
        }
    }
}

/// What the control side of an adapter can refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// [`MAX_PORTS`] ports are already set up.
    TooManyPorts,
    /// [`MAX_ADDRS`] addresses on a port.
    TooManyAddresses,
    /// [`MAX_ROUTES`] routes, or [`MAX_LADDRS`] local addresses.
    TooManyRoutes,
    /// No room in the neighbour cache near this address.
    NeighbourCacheFull,
    /// A route names a port that does not exist, or its gateway is on no port's subnet.
    NoSuchPort,
    /// The scratch buffer cannot hold one frame of this port's MTU.
    ScratchTooSmall,
    /// The director refused.
    Director(ControlError),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::TooManyPorts => write!(f, "too many ports (at most {MAX_PORTS})"),
            Error::TooManyAddresses => {
                write!(f, "too many addresses on one port (at most {MAX_ADDRS})")
            }
            Error::TooManyRoutes => write!(f, "too many routes or local addresses"),
            Error::NeighbourCacheFull => f.write_str("no room in the neighbour cache"),
            Error::NoSuchPort => f.write_str("no such port, or the gateway is on no port's subnet"),
            Error::ScratchTooSmall => {
                f.write_str("the scratch buffer is smaller than one frame of this MTU")
            }
            Error::Director(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<ControlError> for Error {
    fn from(e: ControlError) -> Error {
        Error::Director(e)
    }
}

/// The adapter's own counters (lvs-core counts its drops by reason itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdapterStats {
    /// Frames received from the devices.
    pub rx: u64,
    /// Frames forwarded (transmitted after lvs-core's rewrite).
    pub forwarded: u64,
    /// ICMP errors lvs-core generated and the adapter sent back.
    pub replies: u64,
    /// Frames handed to the local stack.
    pub local: u64,
    /// Frames lvs-core dropped (reasons in its drop counters).
    pub dropped: u64,
    /// Local frames lost because the device had no transmit token for the `Interface`,
    /// or because nobody polled an `Interface` ([`Adapter::poll`]).
    pub local_lost: u64,
    /// Unicast frames for another MAC address (a bridge flooding).
    pub not_ours: u64,
    /// Frames shorter than an Ethernet header, or longer than the scratch buffer.
    pub malformed: u64,
    /// Forwarded frames with no route to their next hop.
    pub no_route: u64,
    /// Forwarded frames larger than the output port's MTU.
    pub too_big: u64,
    /// Frames the device had no transmit token for.
    pub tx_busy: u64,
    /// Frames put in the hold queue while their next hop was resolved.
    pub held: u64,
    /// Frames the hold queue could not keep.
    pub hold_dropped: u64,
    /// Held frames dropped because their next hop never answered.
    pub unresolved: u64,
    /// Next hops that found no room in the neighbour cache.
    pub neighbour_full: u64,
    /// ARP requests and neighbour solicitations sent.
    pub solicits: u64,
    /// ARP replies and neighbour advertisements sent for VIPs and local addresses.
    pub answers: u64,
}

/// The director plus its link layer, over caller storage. See the crate docs.
pub struct Adapter<'a, const D: usize = 64> {
    /// The lvs-core director: its control API (services, real servers, listings) is used
    /// directly; use [`Adapter::add_laddr`] for FULLNAT local addresses so the adapter
    /// answers for them.
    pub director: Director<'a, D>,
    /// Frames a [`PortDevice`] forwards per `receive` call before it returns to the
    /// `Interface` (default 64).
    pub burst: usize,
    /// Frames held per unresolved next hop (default 4).
    pub hold_per_hop: usize,
    /// Gives a received frame its firewall mark (for `-f` services); the port index and
    /// the frame are its arguments. `None` (default): mark 0.
    pub fwmark: Option<fn(usize, &[u8]) -> u32>,
    ports: HVec<PortConfig, MAX_PORTS>,
    routes: HVec<Route, MAX_ROUTES>,
    laddrs: HVec<IpAddress, MAX_LADDRS>,
    route_cache: [CachedRoute; ROUTE_CACHE],
    neigh: neigh::Cache<'a>,
    hold: neigh::HoldQueue<'a>,
    scratch: &'a mut [u8],
    stats: AdapterStats,
}

/// What became of one received frame.
pub(crate) enum Step {
    /// The device had nothing.
    Empty,
    /// Forwarded, answered, dropped or held.
    Consumed,
    /// For the local stack: `scratch[range]`.
    Local(Range<usize>),
}

fn millis(now: Instant) -> i64 {
    now.total_millis()
}

fn core_now(now: Instant) -> lvs_core::time::Instant {
    lvs_core::time::Instant::from_millis(now.total_millis().max(0) as u64)
}

impl<'a, const D: usize> Adapter<'a, D> {
    /// An adapter around `director`, with no ports yet.
    pub fn new(director: Director<'a, D>, storage: Storage<'a>) -> Adapter<'a, D> {
        Adapter {
            director,
            burst: 64,
            hold_per_hop: 4,
            fwmark: None,
            ports: HVec::new(),
            routes: HVec::new(),
            laddrs: HVec::new(),
            route_cache: [None; ROUTE_CACHE],
            neigh: neigh::Cache::new(storage.neighbours),
            hold: neigh::HoldQueue::new(storage.held, storage.held_bytes),
            scratch: storage.scratch,
            stats: AdapterStats::default(),
        }
    }

    /// Adds a port; its index is the index of its device in the `devs` slices passed to
    /// [`Adapter::device`], [`Adapter::maintain`] and [`Adapter::poll`].
    pub fn add_port(&mut self, cfg: PortConfig) -> Result<usize, Error> {
        if self.scratch.len() < HEADROOM + cfg.mtu + 18 {
            return Err(Error::ScratchTooSmall);
        }
        self.ports.push(cfg).map_err(|_| Error::TooManyPorts)?;
        self.route_cache = [None; ROUTE_CACHE];
        Ok(self.ports.len() - 1)
    }

    /// The ports, by index.
    pub fn ports(&self) -> &[PortConfig] {
        &self.ports
    }

    /// Adds a static route (`--route PREFIX,via=ADDR[,iface=NAME]`).
    pub fn add_route(&mut self, route: Route) -> Result<(), Error> {
        let port_ok = match route.port {
            Some(p) => p < self.ports.len(),
            None => self.ports.iter().any(|p| p.on_link(&route.via).is_some()),
        };
        if !port_ok {
            return Err(Error::NoSuchPort);
        }
        self.routes.push(route).map_err(|_| Error::TooManyRoutes)?;
        self.route_cache = [None; ROUTE_CACHE];
        Ok(())
    }

    /// Adds a static neighbour (`--neigh ADDR=MAC`): never asked, never expires.
    pub fn add_neighbour(&mut self, ip: IpAddress, mac: EthernetAddress) -> Result<(), Error> {
        if self.neigh.add_static(ip, mac) {
            Ok(())
        } else {
            Err(Error::NeighbourCacheFull)
        }
    }

    /// Adds a FULLNAT local address (`--laddr`) to the director, and answers ARP/NDP for
    /// it on the port whose subnet holds it (or on the VIP ports if none does).
    pub fn add_laddr(&mut self, addr: IpAddr) -> Result<(), Error> {
        if self.laddrs.contains(&addr.into()) {
            return Ok(());
        }
        if self.laddrs.is_full() {
            return Err(Error::TooManyRoutes);
        }
        self.director.add_laddr(addr)?;
        let _ = self.laddrs.push(addr.into());
        Ok(())
    }

    /// The neighbour cache's entries.
    pub fn neighbours(&self) -> impl Iterator<Item = &Neighbour> {
        self.neigh.iter()
    }

    /// Frames waiting in the hold queue for their next hop to answer.
    pub fn held(&self) -> usize {
        self.hold.len()
    }

    /// The adapter's counters.
    pub fn stats(&self) -> &AdapterStats {
        &self.stats
    }

    /// A smoltcp device for port `port`: poll that port's `Interface` with it. Receiving
    /// from it forwards what lvs-core forwards (out of any of `devs`), answers ARP/NDP for
    /// VIPs and local addresses, and yields the frames for the local stack.
    pub fn device<'x, Dev: Device>(
        &'x mut self,
        devs: &'x mut [Dev],
        port: usize,
    ) -> PortDevice<'x, 'a, Dev, D> {
        PortDevice::new(self, devs, port)
    }

    /// Forwards what every port has received (at most [`Adapter::burst`] frames each)
    /// without a local stack: frames for the local stack are counted in
    /// [`AdapterStats::local_lost`] and dropped. For benchmarks and forwarding-only
    /// builds; a director with an `Interface` polls it through [`Adapter::device`].
    /// Returns the frames received.
    pub fn poll<Dev: Device>(&mut self, now: Instant, devs: &mut [Dev]) -> usize {
        let mut n = 0;
        for port in 0..self.ports.len().min(devs.len()) {
            for _ in 0..self.burst {
                match self.receive_one(now, devs, port) {
                    Step::Empty => break,
                    Step::Consumed => n += 1,
                    Step::Local(_) => {
                        n += 1;
                        self.stats.local_lost += 1;
                    }
                }
            }
        }
        n
    }

    /// Timers: asks again for unresolved next hops, gives up on silent ones (dropping
    /// their held frames), forgets stale neighbours. Returns when it wants to be called
    /// again (`None`: nothing pending).
    pub fn maintain<Dev: Device>(&mut self, now: Instant, devs: &mut [Dev]) -> Option<Instant> {
        let ms = millis(now);
        let mut due: HVec<(IpAddress, usize), 16> = HVec::new();
        let (hold, stats) = (&mut self.hold, &mut self.stats);
        let next = self.neigh.tick(
            ms,
            |ip, port| {
                // More than 16 at once wait for the next call (they stay due).
                let _ = due.push((ip, port));
            },
            |ip| stats.unresolved += hold.discard(ip) as u64,
        );
        for (ip, port) in due {
            self.solicit(now, devs, ip, port);
        }
        next.map(Instant::from_millis)
    }

    /// Receives one frame from `devs[port]` and deals with it.
    pub(crate) fn receive_one<Dev: Device>(
        &mut self,
        now: Instant,
        devs: &mut [Dev],
        port: usize,
    ) -> Step {
        let scratch = &mut *self.scratch;
        let room = scratch.len().saturating_sub(HEADROOM + 40);
        // The transmit token that comes with the frame is dropped: a forwarded frame may
        // leave by another device, and the local stack gets a fresh one.
        let len = {
            let Some((rx, _tx)) = devs.get_mut(port).and_then(|d| d.receive(now)) else {
                return Step::Empty;
            };
            smoltcp::phy::RxToken::consume(rx, |f| {
                if f.len() > room {
                    return None;
                }
                scratch
                    .get_mut(HEADROOM..HEADROOM + f.len())?
                    .copy_from_slice(f);
                Some(f.len())
            })
        };
        self.stats.rx += 1;
        let Some(len) = len else {
            self.stats.malformed += 1;
            return Step::Consumed;
        };
        self.handle(now, devs, port, HEADROOM..HEADROOM + len)
    }

    fn handle<Dev: Device>(
        &mut self,
        now: Instant,
        devs: &mut [Dev],
        port: usize,
        frame: Range<usize>,
    ) -> Step {
        let Some(cfg) = self.ports.get(port) else {
            return Step::Consumed;
        };
        let f = &self.scratch[frame.clone()];
        if f.len() < 14 {
            self.stats.malformed += 1;
            return Step::Consumed;
        }
        let dst = EthernetAddress::from_bytes(&f[..6]);
        if dst.is_unicast() && dst != cfg.mac {
            self.stats.not_ours += 1;
            return Step::Consumed;
        }
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        if ethertype == 0x0806 {
            return self.on_resolution(now, devs, port, frame);
        }
        let rx = Rx {
            iface: port as u8,
            fwmark: self.fwmark.map_or(0, |mark| mark(port, f)),
        };
        match self
            .director
            .process(core_now(now), rx, self.scratch, frame.clone())
        {
            Verdict::Forward { frame, next_hop } => {
                self.forward(now, devs, frame, next_hop.into());
                Step::Consumed
            }
            Verdict::Reply { frame } => {
                if self.transmit(now, devs, port, frame) {
                    self.stats.replies += 1;
                }
                Step::Consumed
            }
            Verdict::Drop(_) => {
                self.stats.dropped += 1;
                Step::Consumed
            }
            Verdict::Local if ethertype == 0x86dd => self.on_resolution(now, devs, port, frame),
            Verdict::Local => {
                self.stats.local += 1;
                Step::Local(frame)
            }
        }
    }

    /// Is `ip` one this port answers ARP/NDP for on the director's behalf?
    fn answers_for(&self, port: usize, ip: &IpAddress) -> bool {
        let Some(cfg) = self.ports.get(port) else {
            return false;
        };
        if self.laddrs.contains(ip) {
            let home = self.ports.iter().position(|p| p.on_link(ip).is_some());
            return match home {
                Some(h) => h == port,
                None => cfg.answer_vips,
            };
        }
        cfg.answer_vips
            && self.director.services().any(|(_, s)| match s.spec().key {
                ServiceKey::Addr { addr, .. } => IpAddress::from(addr) == *ip,
                ServiceKey::FwMark { .. } => false,
            })
    }

    /// ARP, and NDP frames lvs-core left to the local stack: learn, answer for VIPs
    /// and local addresses, pass the rest on.
    fn on_resolution<Dev: Device>(
        &mut self,
        now: Instant,
        devs: &mut [Dev],
        port: usize,
        frame: Range<usize>,
    ) -> Step {
        let ms = millis(now);
        let Some(msg) = resolve::parse(&self.scratch[frame.clone()]) else {
            self.stats.local += 1;
            return Step::Local(frame);
        };
        let own = |a: &Self, ip: &IpAddress| a.ports.get(port).is_some_and(|p| p.holds(ip));
        match msg {
            resolve::Message::Arp {
                request,
                sender_mac,
                sender_ip,
                target_ip,
            } => {
                let target = IpAddress::Ipv4(target_ip);
                let mine = own(self, &target);
                let answer = !mine && self.answers_for(port, &target);
                let sender = IpAddress::Ipv4(sender_ip);
                if self
                    .neigh
                    .learn(sender, sender_mac, port, ms, mine || answer)
                {
                    self.flush(now, devs, sender);
                }
                if request && answer {
                    let mac = self.ports[port].mac;
                    let sent = self.emit(now, devs, port, resolve::ARP_LEN, |b| {
                        resolve::emit_arp(b, false, mac, target_ip, sender_mac, sender_ip)
                    });
                    self.stats.answers += sent as u64;
                    Step::Consumed
                } else if mine || !request {
                    self.stats.local += 1;
                    Step::Local(frame)
                } else {
                    Step::Consumed
                }
            }
            resolve::Message::Solicit {
                src,
                src_mac,
                lladdr,
                target,
            } => {
                let t = IpAddress::Ipv6(target);
                let mine = own(self, &t);
                let answer = !mine && self.answers_for(port, &t);
                if !src.is_unspecified()
                    && let Some(mac) = lladdr
                    && self
                        .neigh
                        .learn(IpAddress::Ipv6(src), mac, port, ms, mine || answer)
                {
                    self.flush(now, devs, IpAddress::Ipv6(src));
                }
                if answer {
                    let mac = self.ports[port].mac;
                    let (dst_ip, dst_mac) = if src.is_unspecified() {
                        let all = core::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                        (all, resolve::multicast_mac(all))
                    } else {
                        (src, lladdr.unwrap_or(src_mac))
                    };
                    let sent = self.emit(now, devs, port, resolve::NDISC_LEN, |b| {
                        resolve::emit_ndisc(b, true, mac, target, dst_mac, dst_ip, target)
                    });
                    self.stats.answers += sent as u64;
                    Step::Consumed
                } else {
                    self.stats.local += 1;
                    Step::Local(frame)
                }
            }
            resolve::Message::Advert { target, lladdr } => {
                let t = IpAddress::Ipv6(target);
                if let Some(mac) = lladdr
                    && self.neigh.learn(t, mac, port, ms, false)
                {
                    self.flush(now, devs, t);
                }
                self.stats.local += 1;
                Step::Local(frame)
            }
        }
    }

    /// The output port and the address to resolve for `dst`, remembered in a small
    /// direct-mapped cache (emptied whenever a port or route is added).
    fn route(&mut self, dst: &IpAddress) -> Option<(usize, IpAddress)> {
        let i = neigh::home(dst, ROUTE_CACHE);
        if let Some((ip, port, hop)) = self.route_cache[i]
            && ip == *dst
        {
            return Some((port, hop));
        }
        let found = self.lookup_route(dst)?;
        self.route_cache[i] = Some((*dst, found.0, found.1));
        Some(found)
    }

    /// The most specific of the connected subnets and the static routes for `dst`.
    fn lookup_route(&self, dst: &IpAddress) -> Option<(usize, IpAddress)> {
        let mut best: Option<(u8, usize, IpAddress)> = None;
        for (p, cfg) in self.ports.iter().enumerate() {
            if let Some(len) = cfg.on_link(dst)
                && best.is_none_or(|b| len > b.0)
            {
                best = Some((len, p, *dst));
            }
        }
        for r in &self.routes {
            let len = r.prefix.prefix_len();
            if r.prefix.contains_addr(dst) && best.is_none_or(|b| len > b.0) {
                let port = r
                    .port
                    .or_else(|| self.ports.iter().position(|p| p.on_link(&r.via).is_some()));
                if let Some(port) = port {
                    best = Some((len, port, r.via));
                }
            }
        }
        best.map(|(_, p, hop)| (p, hop))
    }

    fn forward<Dev: Device>(
        &mut self,
        now: Instant,
        devs: &mut [Dev],
        frame: Range<usize>,
        next_hop: IpAddress,
    ) {
        let Some((out, hop)) = self.route(&next_hop) else {
            self.stats.no_route += 1;
            return;
        };
        let cfg = &self.ports[out];
        // Ethernet header plus one 802.1Q tag around an IP packet of at most the MTU.
        if frame.len() > cfg.mtu + 18 {
            self.stats.too_big += 1;
            return;
        }
        let mac = cfg.mac;
        if let Some(src) = self.scratch.get_mut(frame.start + 6..frame.start + 12) {
            src.copy_from_slice(&mac.0);
        }
        match self.neigh.lookup(hop, out, millis(now)) {
            neigh::Lookup::Known { mac, probe } => {
                if let Some(dst) = self.scratch.get_mut(frame.start..frame.start + 6) {
                    dst.copy_from_slice(&mac.0);
                }
                if self.transmit(now, devs, out, frame) {
                    self.stats.forwarded += 1;
                }
                if probe {
                    self.solicit(now, devs, hop, out);
                }
            }
            neigh::Lookup::Pending { probe } => {
                let bytes = &self.scratch[frame];
                if self.hold.push(hop, out, bytes, self.hold_per_hop) {
                    self.stats.held += 1;
                } else {
                    self.stats.hold_dropped += 1;
                }
                if probe {
                    self.solicit(now, devs, hop, out);
                }
            }
            neigh::Lookup::Full => self.stats.neighbour_full += 1,
        }
    }

    /// Sends the frames held for `ip`, now that it has answered.
    fn flush<Dev: Device>(&mut self, now: Instant, devs: &mut [Dev], ip: IpAddress) {
        let mac = match self.neigh.lookup(ip, 0, millis(now)) {
            neigh::Lookup::Known { mac, .. } => mac,
            _ => return,
        };
        let stats = &mut self.stats;
        self.hold.release(ip, |port, f| {
            f[..6].copy_from_slice(&mac.0);
            if send(devs, now, port, stats, f.len(), |b| b.copy_from_slice(f)) {
                stats.forwarded += 1;
            }
        });
    }

    /// Asks for `ip`'s link-layer address on `port`.
    fn solicit<Dev: Device>(&mut self, now: Instant, devs: &mut [Dev], ip: IpAddress, port: usize) {
        let Some(cfg) = self.ports.get(port) else {
            return;
        };
        let (mac, src) = (cfg.mac, cfg.source_for(&ip));
        let sent = match (src, ip) {
            (Some(IpAddress::Ipv4(src)), IpAddress::Ipv4(t)) => {
                self.emit(now, devs, port, resolve::ARP_LEN, |b| {
                    resolve::emit_arp(b, true, mac, src, EthernetAddress([0; 6]), t)
                })
            }
            (Some(IpAddress::Ipv6(src)), IpAddress::Ipv6(t)) => {
                self.emit(now, devs, port, resolve::NDISC_LEN, |b| {
                    resolve::emit_ndisc(b, false, mac, src, mac, src, t)
                })
            }
            _ => false,
        };
        self.stats.solicits += sent as u64;
    }

    /// Builds a frame of `len` bytes straight into `devs[port]`'s transmit buffer.
    fn emit<Dev: Device>(
        &mut self,
        now: Instant,
        devs: &mut [Dev],
        port: usize,
        len: usize,
        build: impl FnOnce(&mut [u8]),
    ) -> bool {
        send(devs, now, port, &mut self.stats, len, build)
    }

    /// Sends `scratch[frame]` out of `devs[port]`.
    fn transmit<Dev: Device>(
        &mut self,
        now: Instant,
        devs: &mut [Dev],
        port: usize,
        frame: Range<usize>,
    ) -> bool {
        let Some(bytes) = self.scratch.get(frame) else {
            return false;
        };
        send(devs, now, port, &mut self.stats, bytes.len(), |b| {
            b.copy_from_slice(bytes)
        })
    }
}

/// Writes a frame of `len` bytes with `build` into `devs[port]`'s transmit buffer; a
/// device without a transmit token counts a busy drop.
fn send<Dev: Device>(
    devs: &mut [Dev],
    now: Instant,
    port: usize,
    stats: &mut AdapterStats,
    len: usize,
    build: impl FnOnce(&mut [u8]),
) -> bool {
    match devs.get_mut(port).and_then(|d| d.transmit(now)) {
        Some(tx) => {
            tx.consume(len, build);
            true
        }
        None => {
            stats.tx_busy += 1;
            false
        }
    }
}
