//! The rules compiled into the firmware: the director's addresses and its virtual
//! services, as a `const` table (the same for every board; edit it, or give
//! [`crate::Firmware::new`] your own [`Rules`]).
//!
//! The default table is the topology of `examples/qemu-director/e2e.sh`: one Ethernet
//! port carrying two subnets, clients on `192.0.2.0/24`, real servers on
//! `198.51.100.0/24` (whose default gateway is the director, as NAT needs).
//!
//! | service | ipvsadm | real servers |
//! |---|---|---|
//! | NAT | `-A -t 192.0.2.10:80 -s rr` | `-a -r 198.51.100.{11,12,13}:8080 -m` |
//! | DR  | `-A -t 192.0.2.20:80 -s rr` | `-a -r 198.51.100.{11,12,13}:80 -g` |
//! | UDP NAT | `-A -u 192.0.2.10:5353 -s rr` | `-a -r 198.51.100.{11,12,13}:5353 -m` |
//!
//! The control port ([`crate::control`]) listens on UDP 9998 for the client subnet.

use core::net::{IpAddr, Ipv4Addr};

use lvs_core::conn::table::Proto;
use lvs_core::director::{ControlError, DestSpec, Director, ServiceKey, ServiceSpec};
use lvs_core::sched::{SchedFlags, SchedKind};
use lvs_core::service::Method;
use lvs_core::time::Instant;

/// One real server of a [`VirtualService`] (`ipvsadm -a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Real {
    /// Its address (`-r`).
    pub addr: Ipv4Addr,
    /// Its port (DR keeps the virtual port whatever this says, as IPVS does).
    pub port: u16,
    /// How packets reach it (`-m`, `-g`, `-i`).
    pub method: Method,
    /// Its weight (`-w`).
    pub weight: u32,
}

/// A virtual service (`ipvsadm -A`) with its real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualService {
    /// TCP or UDP (`-t`, `-u`).
    pub proto: Proto,
    /// The virtual address.
    pub vip: Ipv4Addr,
    /// The virtual port.
    pub port: u16,
    /// The scheduler (`-s`): any but mh, lblc and lblcr, which need table storage the
    /// firmware does not reserve.
    pub sched: SchedKind,
    /// The real servers.
    pub reals: &'static [Real],
}

/// The UDP control port ([`crate::control`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// Its UDP port.
    pub port: u16,
    /// Who may use it: commands from outside this prefix are ignored.
    pub from: (Ipv4Addr, u8),
}

/// Everything the firmware is told at build time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The director's own addresses on its port, with prefix lengths (the smoltcp
    /// Interface answers ARP and ping for them, and serves the stats port on them).
    pub addrs: &'static [(Ipv4Addr, u8)],
    /// The default gateway, if the clients are beyond a router.
    pub gateway: Option<Ipv4Addr>,
    /// The virtual services.
    pub services: &'static [VirtualService],
    /// The control port, if the rules may change at run time.
    pub control: Option<Control>,
}

const fn real(last: u8, port: u16, method: Method) -> Real {
    Real {
        addr: Ipv4Addr::new(198, 51, 100, last),
        port,
        method,
        weight: 1,
    }
}

const NAT_REALS: [Real; 3] = [
    real(11, 8080, Method::Masq),
    real(12, 8080, Method::Masq),
    real(13, 8080, Method::Masq),
];
const DR_REALS: [Real; 3] = [
    real(11, 80, Method::DirectRoute),
    real(12, 80, Method::DirectRoute),
    real(13, 80, Method::DirectRoute),
];
const UDP_REALS: [Real; 3] = [
    real(11, 5353, Method::Masq),
    real(12, 5353, Method::Masq),
    real(13, 5353, Method::Masq),
];

/// The default rules (see the module docs).
pub const RULES: Rules = Rules {
    addrs: &[
        (Ipv4Addr::new(192, 0, 2, 1), 24),
        (Ipv4Addr::new(198, 51, 100, 1), 24),
    ],
    gateway: None,
    services: &[
        VirtualService {
            proto: Proto::Tcp,
            vip: Ipv4Addr::new(192, 0, 2, 10),
            port: 80,
            sched: SchedKind::Rr,
            reals: &NAT_REALS,
        },
        VirtualService {
            proto: Proto::Tcp,
            vip: Ipv4Addr::new(192, 0, 2, 20),
            port: 80,
            sched: SchedKind::Rr,
            reals: &DR_REALS,
        },
        VirtualService {
            proto: Proto::Udp,
            vip: Ipv4Addr::new(192, 0, 2, 10),
            port: 5353,
            sched: SchedKind::Rr,
            reals: &UDP_REALS,
        },
    ],
    control: Some(Control {
        port: 9998,
        from: (Ipv4Addr::new(192, 0, 2, 0), 24),
    }),
};

/// The director's key for a service.
pub fn key(s: &VirtualService) -> ServiceKey {
    ServiceKey::Addr {
        proto: s.proto,
        addr: IpAddr::V4(s.vip),
        port: s.port,
    }
}

/// Adds every service of `rules` and its real servers to `director`.
pub fn apply<const D: usize>(
    director: &mut Director<'_, D>,
    rules: &Rules,
    now: Instant,
) -> Result<(), ControlError> {
    for s in rules.services {
        director.add_service(
            ServiceSpec {
                key: key(s),
                sched: s.sched,
                flags: SchedFlags::default(),
                persistence: None,
                one_packet: false,
            },
            now,
        )?;
        for r in s.reals {
            director.add_dest(
                &key(s),
                DestSpec {
                    addr: IpAddr::V4(r.addr),
                    port: r.port,
                    method: r.method,
                    weight: r.weight,
                    u_threshold: 0,
                    l_threshold: 0,
                },
                now,
            )?;
        }
    }
    Ok(())
}
