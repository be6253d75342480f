//! The embedded LVS director, shared by every board: the STM32 firmware
//! (`examples/stm32-director`) and the QEMU one (`examples/qemu-director`) differ only
//! in their Ethernet driver, clock and memory map.
//!
//! - [`storage!`]: every table in a `static`, sized by constants.
//! - [`rules`]: the virtual services, compiled in from a `const` table.
//! - [`Firmware`]: an [`lvs_smoltcp::Adapter`] around the lvs-core director, a smoltcp
//!   `Interface` for the director's own addresses (ARP, ping) and a UDP stats port
//!   ([`STATS_PORT`]): any datagram to it is answered with the counters as text; and,
//!   if the rules name one, a UDP control port taking ipvsadm's words ([`control`]).
//! - [`driver::DriverDevice`]: any `embassy-net-driver` 0.2 driver (embassy-stm32's
//!   Ethernet) as a smoltcp 0.14 `Device`.
//! - `clock` (feature `cortex-m`): a SysTick millisecond clock.
//!
//! A board's main loop is:
//! ```ignore
//! let mut fw = Firmware::new(lvs_firmware::storage!(conns_v4 = 4096, conns_v6 = 16),
//!                            &board, &RULES, &mut devs, now())?;
//! loop { fw.poll(now(), &mut devs, &mut |w, devs| writeln!(w, "nic_rx {}", ...)); }
//! ```
#![no_std]
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "cortex-m")]
pub mod clock;
pub mod control;
pub mod driver;
pub mod rules;
pub mod stats;
pub mod storage;

use core::fmt::Write as _;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_core::conn::table::{Conn, ConnTable, TableError};
use lvs_core::director::{self, Config, ControlError, DestMeta, Director, Service};
use lvs_core::service::RealServer;
use lvs_smoltcp::{Adapter, Held, Neighbour, PortConfig, Route};
use smoltcp::iface::{Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::socket::udp::{self, PacketMetadata};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Cidr};

pub use rules::{RULES, Rules};

/// Real servers per virtual service.
pub const DESTS_PER_SERVICE: usize = 8;
/// The UDP port the firmware answers with its counters.
pub const STATS_PORT: u16 = 9999;

/// The director type every board runs.
pub type FwAdapter = Adapter<'static, DESTS_PER_SERVICE>;

/// The firmware's static storage, from [`storage!`].
pub struct Storage {
    /// IPv4 connection entries.
    pub conns_v4: &'static mut [Conn<Ipv4Addr>],
    /// Their in-index.
    pub in_v4: &'static mut [u32],
    /// Their out-index.
    pub out_v4: &'static mut [u32],
    /// IPv6 connection entries.
    pub conns_v6: &'static mut [Conn<Ipv6Addr>],
    /// Their in-index.
    pub in_v6: &'static mut [u32],
    /// Their out-index.
    pub out_v6: &'static mut [u32],
    /// Virtual service slots.
    pub services: &'static mut [Option<Service<'static, DESTS_PER_SERVICE>>],
    /// Real server slots.
    pub dests: &'static mut [Option<RealServer>],
    /// Beside each real server slot.
    pub dest_meta: &'static mut [DestMeta],
    /// FULLNAT local addresses.
    pub laddrs: &'static mut [Option<IpAddr>],
    /// The adapter's neighbour cache.
    pub neighbours: &'static mut [Neighbour],
    /// The adapter's hold queue.
    pub held: &'static mut [Held],
    /// The hold queue's frames.
    pub held_bytes: &'static mut [u8],
    /// The adapter's working buffer.
    pub scratch: &'static mut [u8],
    /// smoltcp socket slots.
    pub sockets: &'static mut [SocketStorage<'static>],
    /// The stats socket's receive metadata.
    pub stats_rx_meta: &'static mut [PacketMetadata],
    /// The stats socket's transmit metadata.
    pub stats_tx_meta: &'static mut [PacketMetadata],
    /// The stats socket's receive bytes.
    pub stats_rx: &'static mut [u8],
    /// The stats socket's transmit bytes.
    pub stats_tx: &'static mut [u8],
    /// The control socket's receive metadata.
    pub control_rx_meta: &'static mut [PacketMetadata],
    /// The control socket's transmit metadata.
    pub control_tx_meta: &'static mut [PacketMetadata],
    /// The control socket's receive bytes.
    pub control_rx: &'static mut [u8],
    /// The control socket's transmit bytes.
    pub control_tx: &'static mut [u8],
}

/// What makes one board's firmware its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// Its name, as the stats port reports it.
    pub name: &'static str,
    /// The Ethernet port's MAC address.
    pub mac: [u8; 6],
    /// Seeds the connection table's keyed hash and the director's and smoltcp's random
    /// numbers: draw it from a hardware RNG where the board has one.
    pub seed: u64,
}

/// Why the firmware could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A connection table's storage was refused.
    Table(TableError),
    /// The rules were refused by the director.
    Rules(ControlError),
    /// The port, an address or the route was refused by the adapter.
    Adapter(lvs_smoltcp::Error),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Table(e) => write!(f, "connection table: {e:?}"),
            Error::Rules(e) => write!(f, "rules: {e}"),
            Error::Adapter(e) => write!(f, "adapter: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// The director firmware: adapter, local stack, stats port. See the crate docs.
pub struct Firmware {
    /// The director and its link layer (public for the board's own listings).
    pub adapter: FwAdapter,
    iface: Interface,
    sockets: SocketSet<'static>,
    stats_socket: SocketHandle,
    control: Option<(SocketHandle, rules::Control)>,
    board: Board,
    boot: Instant,
    stats_requests: u64,
    control_commands: u64,
    control_refused: u64,
}

fn seed_bytes(seed: u64, salt: u8) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8..].copy_from_slice(&(!seed).rotate_left(u32::from(salt)).to_le_bytes());
    s[15] ^= salt;
    s
}

fn core_now(now: Instant) -> lvs_core::time::Instant {
    lvs_core::time::Instant::from_millis(now.total_millis().max(0) as u64)
}

impl Firmware {
    /// Builds the director over `st`, adds the rules, sets up port 0 (`devs[0]`) with the
    /// rules' addresses, and the local stack with the stats port.
    pub fn new<Dev: Device>(
        st: Storage,
        board: Board,
        rules: &Rules,
        devs: &mut [Dev],
        now: Instant,
    ) -> Result<Firmware, Error> {
        let v4 = ConnTable::new(st.conns_v4, st.in_v4, st.out_v4, seed_bytes(board.seed, 4))
            .map_err(Error::Table)?;
        let v6 = ConnTable::new(st.conns_v6, st.in_v6, st.out_v6, seed_bytes(board.seed, 6))
            .map_err(Error::Table)?;
        let first = rules.addrs.first().map(|a| a.0);
        let cfg = Config {
            tun_src_v4: first,
            seed: board.seed,
            ..Config::default()
        };
        let mut director = Director::new(
            cfg,
            core_now(now),
            director::Storage {
                services: st.services,
                sched: &mut [],
                dests: st.dests,
                dest_meta: st.dest_meta,
                laddrs: st.laddrs,
                v4,
                v6,
            },
        );
        rules::apply(&mut director, rules, core_now(now)).map_err(Error::Rules)?;
        let mut adapter = Adapter::new(
            director,
            lvs_smoltcp::Storage {
                neighbours: st.neighbours,
                held: st.held,
                held_bytes: st.held_bytes,
                scratch: st.scratch,
            },
        );
        let mac = EthernetAddress(board.mac);
        let mut port = PortConfig::new(mac);
        port.answer_vips = true;
        for &(a, len) in rules.addrs {
            port = port
                .with_addr(IpCidr::Ipv4(Ipv4Cidr::new(a, len)))
                .map_err(Error::Adapter)?;
        }
        adapter.add_port(port).map_err(Error::Adapter)?;
        if let Some(gw) = rules.gateway {
            adapter
                .add_route(Route {
                    prefix: IpCidr::Ipv4(Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0)),
                    via: IpAddress::Ipv4(gw),
                    port: Some(0),
                })
                .map_err(Error::Adapter)?;
        }

        let mut icfg = smoltcp::iface::Config::new(HardwareAddress::Ethernet(mac));
        icfg.random_seed = board.seed;
        let mut iface = Interface::new(icfg, &mut adapter.device(devs, 0), now);
        iface.update_ip_addrs(|addrs| {
            for &(a, len) in rules.addrs {
                // Capacity: smoltcp's address list holds more than PortConfig's.
                let _ = addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(a, len)));
            }
        });
        if let Some(gw) = rules.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        let mut sockets = SocketSet::new(st.sockets);
        let mut udp = udp::Socket::new(
            udp::PacketBuffer::new(st.stats_rx_meta, st.stats_rx),
            udp::PacketBuffer::new(st.stats_tx_meta, st.stats_tx),
        );
        // Cannot fail: the socket is new and the port non-zero.
        let _ = udp.bind(STATS_PORT);
        let stats_socket = sockets.add(udp);
        let control = rules.control.map(|c| {
            let mut udp = udp::Socket::new(
                udp::PacketBuffer::new(st.control_rx_meta, st.control_rx),
                udp::PacketBuffer::new(st.control_tx_meta, st.control_tx),
            );
            let _ = udp.bind(c.port);
            (sockets.add(udp), c)
        });
        Ok(Firmware {
            adapter,
            iface,
            sockets,
            stats_socket,
            control,
            board,
            boot: now,
            stats_requests: 0,
            control_commands: 0,
            control_refused: 0,
        })
    }

    /// One round: the local stack polled through the adapter's device for port 0 (which
    /// forwards every virtual-service frame on the way), the adapter's timers, and the
    /// stats port. `extra` appends the board's own counter lines to a stats reply (it is
    /// given the devices, so it can read the driver's counters as they are).
    /// Returns how long the board may sleep before the next round if nothing arrives.
    pub fn poll<Dev: Device>(
        &mut self,
        now: Instant,
        devs: &mut [Dev],
        extra: &mut dyn FnMut(&mut dyn core::fmt::Write, &mut [Dev]) -> core::fmt::Result,
    ) -> Option<smoltcp::time::Duration> {
        self.iface
            .poll(now, &mut self.adapter.device(devs, 0), &mut self.sockets);
        let next = self.adapter.maintain(now, devs);
        if self.serve_stats(now, devs, extra) | self.serve_control(now) {
            // The reply is queued: send it now rather than on the next round.
            self.iface
                .poll(now, &mut self.adapter.device(devs, 0), &mut self.sockets);
        }
        let delay = self.iface.poll_delay(now, &self.sockets);
        match (delay, next) {
            (Some(d), Some(t)) => Some(d.min(t - now)),
            (d, None) => d,
            (None, Some(t)) => Some(t - now),
        }
    }

    /// Answers every pending stats request. Returns whether it queued a reply.
    fn serve_stats<Dev: Device>(
        &mut self,
        now: Instant,
        devs: &mut [Dev],
        extra: &mut dyn FnMut(&mut dyn core::fmt::Write, &mut [Dev]) -> core::fmt::Result,
    ) -> bool {
        let mut answered = false;
        let sock = self.sockets.get_mut::<udp::Socket>(self.stats_socket);
        while let Ok((_, meta)) = sock.recv() {
            self.stats_requests += 1;
            let mut buf = [0u8; stats::MAX_REPLY];
            let mut w = stats::Writer::new(&mut buf);
            // A full buffer truncates the reply; the lines written are still whole.
            let _ = stats::render(
                &mut w,
                &self.board,
                (now - self.boot).total_millis(),
                self.stats_requests,
                &self.adapter,
            );
            let _ = writeln!(w, "control_datagrams {}", self.control_commands);
            let _ = writeln!(w, "control_refused {}", self.control_refused);
            let _ = extra(&mut w, devs);
            let len = w.len();
            if sock.send_slice(&buf[..len], meta.endpoint).is_ok() {
                answered = true;
            }
        }
        answered
    }

    /// Runs the commands of every pending control datagram from an allowed sender.
    /// Returns whether it queued a reply.
    fn serve_control(&mut self, now: Instant) -> bool {
        let Some((handle, c)) = self.control else {
            return false;
        };
        let allowed = Ipv4Cidr::new(c.from.0, c.from.1);
        let mut answered = false;
        let sock = self.sockets.get_mut::<udp::Socket>(handle);
        while let Ok((data, meta)) = sock.recv() {
            let from_ok = match meta.endpoint.addr {
                IpAddress::Ipv4(a) => allowed.contains_addr(&a),
                #[allow(unreachable_patterns)]
                _ => false,
            };
            if !from_ok {
                self.control_refused += 1;
                continue;
            }
            let mut buf = [0u8; stats::MAX_REPLY];
            let mut w = stats::Writer::new(&mut buf);
            control::run_all(&mut self.adapter.director, data, core_now(now), &mut w);
            self.control_commands += 1;
            let len = w.len();
            if sock.send_slice(&buf[..len], meta.endpoint).is_ok() {
                answered = true;
            }
        }
        answered
    }

    /// The board this firmware runs on.
    pub fn board(&self) -> &Board {
        &self.board
    }

    /// The local stack (for a board that adds sockets of its own).
    pub fn interface(&mut self) -> &mut Interface {
        &mut self.iface
    }
}

#[doc(hidden)]
pub mod __private {
    //! What [`storage!`](macro@crate::storage) expands to needs.
    pub use crate::DESTS_PER_SERVICE;
    pub use crate::Storage;
    pub use crate::storage::{
        DESTS as DESTS_N, HELD as HELD_N, HELD_SLOT, LADDRS as LADDRS_N,
        NEIGHBOURS as NEIGHBOURS_N, SCRATCH as SCRATCH_N, SERVICES as SERVICES_N,
        SOCKETS as SOCKETS_N, STATS_BYTES, STATS_PACKETS, StaticCell, fill,
    };
    pub use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    pub use lvs_core::conn::table::{Conn, index_len_for};
    pub use lvs_core::director::{DestMeta, Service};
    pub use lvs_core::service::RealServer;
    pub use lvs_smoltcp::{Held, Neighbour};
    pub use smoltcp::iface::SocketStorage;
    pub use smoltcp::socket::udp::PacketMetadata;
}

#[cfg(test)]
mod test;
