//! Virtual services and their real servers, in IPVS's terms.
//!
//! A real server ("destination" in the kernel's sources) carries what the schedulers and
//! the connection accounting read: address, port, forwarding method, weight, connection
//! thresholds with IPVS's overload hysteresis, and active/inactive connection counts.

use core::net::IpAddr;

/// How packets reach a real server (ipvsadm's `-m`, `-g`, `-i`, and DPVS's `-b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// `-m`, masquerading (NAT): the destination is rewritten, replies come back through
    /// the director.
    Masq,
    /// `-g`, direct routing (the ipvsadm default): only the destination MAC changes.
    DirectRoute,
    /// `-i`, IP-in-IP tunnelling.
    Tunnel,
    /// `-b`, full NAT (DPVS): source and destination rewritten.
    FullNat,
}

impl Method {
    /// The word `ipvsadm -L` prints in its `Forward` column.
    pub const fn ipvsadm_name(self) -> &'static str {
        match self {
            Method::Masq => "Masq",
            Method::DirectRoute => "Route",
            Method::Tunnel => "Tunnel",
            Method::FullNat => "FullNat",
        }
    }
}

/// Index of a real server in the director's real-server storage; stable while it exists.
pub type DestId = u16;

/// A real server of a virtual service (the kernel's `ip_vs_dest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RealServer {
    /// Its address (RIP).
    pub addr: IpAddr,
    /// Its port (for DR and TUN the virtual port is used on the wire, as in IPVS).
    pub port: u16,
    /// How packets reach it.
    pub method: Method,
    /// Weight, 0..=65535 as ipvsadm accepts; 0 quiesces: no new connections, existing
    /// ones continue.
    pub weight: u32,
    /// Upper connection threshold (`-x`): at or above it the server is overloaded and
    /// gets no new connections. 0 means none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`): an overloaded server is available again below
    /// it. 0 means three quarters of the upper threshold, as IPVS does.
    pub l_threshold: u32,
    /// Connections in a state the kernel counts as active (ipvsadm's ActiveConn): see
    /// [`TcpState::is_active`](crate::conn::state::TcpState::is_active).
    pub active_conns: u32,
    /// All other connections, UDP included (ipvsadm's InActConn).
    pub inactive_conns: u32,
    /// Persistence templates pointing at this server (ipvsadm's PersistConn).
    pub persist_conns: u32,
    /// Set when the upper threshold was reached; cleared below the lower threshold.
    pub overloaded: bool,
}

impl RealServer {
    /// A real server with no thresholds and no connections.
    pub const fn new(addr: IpAddr, port: u16, method: Method, weight: u32) -> RealServer {
        RealServer {
            addr,
            port,
            method,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            overloaded: false,
        }
    }

    /// The kernel's `ip_vs_dest_conn_overhead`: active connections weigh 256 times an
    /// inactive one (lc, wlc, lblc, lblcr).
    #[inline]
    pub const fn conn_overhead(&self) -> u32 {
        // Saturating where the kernel's int would wrap (at 2^24 active connections).
        self.active_conns
            .saturating_mul(256)
            .saturating_add(self.inactive_conns)
    }

    /// Whether a scheduler may give it a new connection: weight above 0, not overloaded.
    #[inline]
    pub const fn is_available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }

    /// Connections that count against the thresholds (active + inactive), as IPVS's
    /// `ip_vs_dest_totalconns`.
    #[inline]
    pub const fn total_conns(&self) -> u32 {
        self.active_conns.saturating_add(self.inactive_conns)
    }

    /// Re-evaluates the overload flag with IPVS's hysteresis (`ip_vs_bind_dest` /
    /// `ip_vs_unbind_dest`): overloaded at or above the upper threshold; available again
    /// below the lower threshold, or below 3/4 of the upper one when no lower is set.
    pub fn update_overload(&mut self) {
        if self.u_threshold == 0 {
            self.overloaded = false;
            return;
        }
        let conns = self.total_conns();
        if conns >= self.u_threshold {
            self.overloaded = true;
        } else if self.overloaded {
            let available = if self.l_threshold != 0 {
                conns < self.l_threshold
            } else {
                // The kernel's test, exact for thresholds not divisible by 4.
                (conns as u64) * 4 < (self.u_threshold as u64) * 3
            };
            if available {
                self.overloaded = false;
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn test_overload_hysteresis() {
        let mut d = RealServer::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80, Method::Masq, 1);
        d.u_threshold = 8;
        d.inactive_conns = 7;
        d.update_overload();
        assert!(!d.overloaded);
        d.inactive_conns = 8;
        d.update_overload();
        assert!(d.overloaded && !d.is_available());
        // 3/4 of 8 is 6: still overloaded at 6, available at 5.
        d.inactive_conns = 6;
        d.update_overload();
        assert!(d.overloaded);
        d.inactive_conns = 5;
        d.update_overload();
        assert!(!d.overloaded);
        // u = 7: available when conns * 4 < 21, i.e. at 5 (not only below 5).
        d.u_threshold = 7;
        d.inactive_conns = 7;
        d.update_overload();
        d.inactive_conns = 5;
        d.update_overload();
        assert!(!d.overloaded);
        d.u_threshold = 8;
        // An explicit lower threshold.
        d.l_threshold = 2;
        d.inactive_conns = 8;
        d.update_overload();
        d.inactive_conns = 2;
        d.update_overload();
        assert!(d.overloaded);
        d.inactive_conns = 1;
        d.update_overload();
        assert!(!d.overloaded);
    }

    #[test]
    fn test_conn_overhead_weighs_active_256() {
        let mut d = RealServer::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 80, Method::DirectRoute, 1);
        d.active_conns = 2;
        d.inactive_conns = 3;
        assert_eq!(d.conn_overhead(), 515);
    }
}
