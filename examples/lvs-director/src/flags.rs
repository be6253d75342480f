//! `lvs-director`'s command line: the flags, their value syntax, and the checks that
//! need more than one flag (names that refer to an `--iface`, families that must agree).
//!
//! ```text
//! lvs-director --iface NAME[,ip=ADDR/PREFIX]...[,mac=MAC][,mtu=N]   (repeatable)
//!              --route PREFIX,via=ADDR[,iface=NAME]                  (repeatable)
//!              --neigh ADDR=MAC                                      (repeatable)
//!              --laddr ADDR                                          (repeatable)
//!              --rules FILE  --control PATH  --vip-iface NAME  --conns N
//!              --pcap FILE   --check   --replay IN.pcap --write OUT.pcap
//! ```
//!
//! Values are numeric, as the rules are: addresses, prefixes and MACs (`02:00:5e:00:53:01`
//! or `02-00-5e-00-53-01`). Every error names the flag, the value and why.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;

/// Where the control socket is when neither `--control` nor `LVS_CONTROL` says.
pub const DEFAULT_CONTROL: &str = "/run/lvs-director.sock";

/// The environment variable `lvsadm` (and `lvs-director`) read the socket path from.
pub const CONTROL_ENV: &str = "LVS_CONTROL";

/// The longest interface name Linux takes (`IFNAMSIZ` less the NUL).
pub const MAX_IFNAME: usize = 15;

/// The most addresses one interface carries (the adapter's `PortConfig` holds four).
pub const MAX_ADDRS: usize = 4;

/// The default IP MTU of a port.
pub const DEFAULT_MTU: usize = 1500;

/// The userspace IPVS director on tap devices: forwards to real servers by NAT, DR,
/// TUN and FULLNAT as the rules say; controlled with `lvsadm` (ipvsadm's flags) over a
/// Unix socket.
#[derive(Debug, Clone, Parser)]
#[command(name = "lvs-director", version)]
pub struct Args {
    /// A port: the tap device NAME (created if absent, brought up), its addresses
    /// (`ip=ADDR/PREFIX`, repeatable, IPv4 and IPv6), MAC (default: 02:... derived from
    /// the name) and IP MTU (default 1500). Repeatable; the first is port 0.
    #[arg(
        long = "iface",
        value_name = "NAME[,ip=ADDR/PREFIX]...[,mac=MAC][,mtu=N]"
    )]
    pub ifaces: Vec<IfaceSpec>,
    /// A route: PREFIX (0.0.0.0/0 and ::/0 for defaults) through the gateway ADDR, out
    /// of the port NAME (default: the port whose subnet holds ADDR). Repeatable.
    #[arg(long = "route", value_name = "PREFIX,via=ADDR[,iface=NAME]")]
    pub routes: Vec<RouteSpec>,
    /// A static neighbour: ADDR is at MAC (no ARP/NDP for it). Repeatable.
    #[arg(long = "neigh", value_name = "ADDR=MAC")]
    pub neighs: Vec<NeighSpec>,
    /// A FULLNAT local address (DPVS's `--laddr`): the source of connections to `-b`
    /// real servers; answered for ARP/NDP on the port whose subnet holds it. Repeatable.
    #[arg(long = "laddr", value_name = "ADDR")]
    pub laddrs: Vec<IpAddr>,
    /// The rules, in `ipvsadm -S -n` format (plus DPVS's `-b` for FULLNAT).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// The control socket `lvsadm` talks to [default: $LVS_CONTROL, else
    /// /run/lvs-director.sock].
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// The port that answers ARP/NDP for the virtual addresses [default: the first
    /// --iface].
    #[arg(long, value_name = "NAME")]
    pub vip_iface: Option<String>,
    /// Connection entries per address family (`ipvsadm -L` shows twice this as size).
    #[arg(long, value_name = "N", default_value_t = 32768,
          value_parser = clap::value_parser!(u32).range(1..=16_000_000))]
    pub conns: u32,
    /// Virtual service slots.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub services: u32,
    /// Real server slots (all services together).
    #[arg(long, value_name = "N", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub dests: u32,
    /// Write every frame received and transmitted on every port to this pcap file
    /// (linktype Ethernet), for tcpdump or Wireshark.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Validate the flags and the rules, print the table as `ipvsadm -L -n` would, and
    /// exit (0 if all is well). Opens no device and no socket.
    #[arg(long)]
    pub check: bool,
    /// Offline: run every frame of this capture through the director as if received on
    /// the first --iface, write what it transmits to --write, and exit.
    #[arg(long, value_name = "IN.pcap", requires = "write")]
    pub replay: Option<PathBuf>,
    /// Where --replay writes the transmitted frames.
    #[arg(long, value_name = "OUT.pcap", requires = "replay")]
    pub write: Option<PathBuf>,
    /// The seed of the director's random choices (FULLNAT ports, the twos scheduler) and
    /// of the connection table's hash [default: random; fixed under --replay].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

impl Args {
    /// The checks across flags: no more ports, routes and local addresses than the
    /// adapter takes, unique interface names, routes and `--vip-iface` naming an
    /// `--iface`, a gateway of the prefix's family, at least one `--iface` unless
    /// `--check`. The message names the flag and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.ifaces.is_empty() && !self.check {
            return Err("at least one --iface is needed (only --check runs without)".into());
        }
        let limits = [
            ("--iface", self.ifaces.len(), lvs_smoltcp::MAX_PORTS),
            ("--route", self.routes.len(), lvs_smoltcp::MAX_ROUTES),
            ("--laddr", self.laddrs.len(), lvs_smoltcp::MAX_LADDRS),
        ];
        for (flag, n, max) in limits {
            if n > max {
                return Err(format!(
                    "{flag}: {n} given, the director takes at most {max}"
                ));
            }
        }
        let mut names = HashSet::new();
        for i in &self.ifaces {
            if !names.insert(i.name.as_str()) {
                return Err(format!("--iface {}: given twice", i.name));
            }
        }
        for r in &self.routes {
            if r.prefix.addr.is_ipv4() != r.via.is_ipv4() {
                return Err(format!(
                    "--route {r}: the gateway {} is not of the prefix's family",
                    r.via
                ));
            }
            if let Some(n) = &r.iface
                && !names.contains(n.as_str())
            {
                return Err(format!("--route {r}: iface={n} is not an --iface"));
            }
            if r.iface.is_none() && !self.ifaces.is_empty() && self.port_for(r.via).is_none() {
                return Err(format!(
                    "--route {r}: no --iface has a subnet holding the gateway {} (add iface=NAME)",
                    r.via
                ));
            }
        }
        if let Some(v) = &self.vip_iface
            && !names.contains(v.as_str())
        {
            return Err(format!("--vip-iface {v}: not an --iface"));
        }
        let mut laddrs = HashSet::new();
        for l in &self.laddrs {
            if !laddrs.insert(l) {
                return Err(format!("--laddr {l}: given twice"));
            }
        }
        let mut neighs = HashSet::new();
        for n in &self.neighs {
            if !neighs.insert(n.ip) {
                return Err(format!("--neigh {n}: {} given twice", n.ip));
            }
        }
        Ok(())
    }

    /// The control socket: `--control`, else `$LVS_CONTROL`, else [`DEFAULT_CONTROL`].
    pub fn control_path(&self) -> PathBuf {
        self.control.clone().unwrap_or_else(default_control_path)
    }

    /// The index of the port that answers ARP/NDP for the virtual addresses.
    pub fn vip_port(&self) -> usize {
        self.vip_iface
            .as_ref()
            .and_then(|n| self.ifaces.iter().position(|i| &i.name == n))
            .unwrap_or(0)
    }

    /// The first port with a subnet holding `addr`.
    pub fn port_for(&self, addr: IpAddr) -> Option<usize> {
        self.ifaces
            .iter()
            .position(|i| i.addrs.iter().any(|c| c.contains(addr)))
    }

    /// The port a route leaves by: its `iface=`, else the port whose subnet holds the
    /// gateway, else port 0.
    pub fn route_port(&self, r: &RouteSpec) -> usize {
        r.iface
            .as_ref()
            .and_then(|n| self.ifaces.iter().position(|i| &i.name == n))
            .or_else(|| self.port_for(r.via))
            .unwrap_or(0)
    }
}

/// `$LVS_CONTROL`, else [`DEFAULT_CONTROL`].
pub fn default_control_path() -> PathBuf {
    match std::env::var_os(CONTROL_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_CONTROL),
    }
}

/// An address with its prefix length (`192.0.2.1/24`, `2001:db8::1/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `a` is in this subnet.
    pub fn contains(&self, a: IpAddr) -> bool {
        fn bits(a: IpAddr) -> u128 {
            match a {
                IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
                IpAddr::V6(v) => u128::from(v),
            }
        }
        if self.addr.is_ipv4() != a.is_ipv4() {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        // IPv4 addresses sit in the top 32 bits, so one mask serves both families.
        let mask = u128::MAX << (128 - u32::from(self.prefix));
        bits(self.addr) & mask == bits(a) & mask
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` has no /PREFIX"))?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p.parse::<u8>() {
            Ok(p) if p <= max => p,
            _ => return Err(format!("`{p}` is not a prefix length from 0 to {max}")),
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A locally administered unicast MAC derived from an interface name (`02:` then
    /// five bytes of its FNV-1a hash): stable across runs, so captures and neighbours'
    /// caches stay valid.
    pub fn from_name(name: &str) -> Mac {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let b = h.to_be_bytes();
        Mac([0x02, b[3], b[4], b[5], b[6], b[7]])
    }
}

impl FromStr for Mac {
    type Err = String;

    fn from_str(s: &str) -> Result<Mac, String> {
        let bad = || format!("`{s}` is not a MAC address (six hex bytes, e.g. 02:00:5e:00:53:01)");
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(&parts) {
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if out[0] & 1 != 0 {
            return Err(format!("`{s}` is a multicast MAC address"));
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// One `--iface`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceSpec {
    /// The tap device's name.
    pub name: String,
    /// Its addresses.
    pub addrs: Vec<Cidr>,
    /// Its MAC, if given.
    pub mac: Option<Mac>,
    /// Its IP MTU, if given.
    pub mtu: Option<usize>,
}

impl IfaceSpec {
    /// The MAC: given, or [`Mac::from_name`].
    pub fn mac(&self) -> Mac {
        self.mac.unwrap_or_else(|| Mac::from_name(&self.name))
    }

    /// The IP MTU: given, or [`DEFAULT_MTU`].
    pub fn mtu(&self) -> usize {
        self.mtu.unwrap_or(DEFAULT_MTU)
    }
}

impl FromStr for IfaceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<IfaceSpec, String> {
        let mut parts = s.split(',');
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            return Err("no interface name before the first `,`".into());
        }
        if name.len() > MAX_IFNAME {
            return Err(format!(
                "interface name `{name}` is longer than {MAX_IFNAME} bytes"
            ));
        }
        if name.contains(['=', '/', ' ', '\0']) || name == "." || name == ".." {
            return Err(format!("`{name}` is not an interface name"));
        }
        let mut spec = IfaceSpec {
            name: name.to_string(),
            addrs: Vec::new(),
            mac: None,
            mtu: None,
        };
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("`{p}`: expected ip=, mac= or mtu="))?;
            match k {
                "ip" => {
                    let c: Cidr = v.parse()?;
                    if spec.addrs.iter().any(|a| a.addr == c.addr) {
                        return Err(format!("ip={c}: given twice"));
                    }
                    if spec.addrs.len() == MAX_ADDRS {
                        return Err(format!("ip={c}: at most {MAX_ADDRS} addresses a port"));
                    }
                    spec.addrs.push(c);
                }
                "mac" if spec.mac.is_some() => return Err("mac= given twice".into()),
                "mac" => spec.mac = Some(v.parse()?),
                "mtu" if spec.mtu.is_some() => return Err("mtu= given twice".into()),
                "mtu" => match v.parse::<usize>() {
                    Ok(m) if (576..=65521).contains(&m) => spec.mtu = Some(m),
                    _ => return Err(format!("mtu={v}: not a number from 576 to 65521")),
                },
                _ => return Err(format!("`{k}=`: expected ip=, mac= or mtu=")),
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for IfaceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for a in &self.addrs {
            write!(f, ",ip={a}")?;
        }
        if let Some(m) = self.mac {
            write!(f, ",mac={m}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, ",mtu={m}")?;
        }
        Ok(())
    }
}

/// One `--route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The destinations (the address's bits past the prefix are ignored).
    pub prefix: Cidr,
    /// The gateway.
    pub via: IpAddr,
    /// The port, by name.
    pub iface: Option<String>,
}

impl FromStr for RouteSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<RouteSpec, String> {
        let mut parts = s.split(',');
        let prefix: Cidr = parts.next().unwrap_or_default().parse()?;
        let (mut via, mut iface) = (None, None);
        for p in parts {
            match p.split_once('=') {
                Some(("via", v)) if via.is_none() => {
                    via = Some(
                        v.parse::<IpAddr>()
                            .map_err(|_| format!("via={v}: not an IP address"))?,
                    );
                }
                Some(("iface", v)) if iface.is_none() => {
                    if v.is_empty() || v.len() > MAX_IFNAME {
                        return Err(format!("iface={v}: not an interface name"));
                    }
                    iface = Some(v.to_string());
                }
                Some(("via" | "iface", _)) => return Err(format!("`{p}`: given twice")),
                _ => return Err(format!("`{p}`: expected via= or iface=")),
            }
        }
        let via = via.ok_or("no via=ADDR (the gateway)")?;
        Ok(RouteSpec { prefix, via, iface })
    }
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},via={}", self.prefix, self.via)?;
        if let Some(i) = &self.iface {
            write!(f, ",iface={i}")?;
        }
        Ok(())
    }
}

/// One `--neigh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighSpec {
    /// The neighbour's address.
    pub ip: IpAddr,
    /// Its MAC.
    pub mac: Mac,
}

impl FromStr for NeighSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<NeighSpec, String> {
        let (a, m) = s.split_once('=').ok_or("expected ADDR=MAC")?;
        let ip = a
            .parse::<IpAddr>()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        Ok(NeighSpec {
            ip,
            mac: m.parse()?,
        })
    }
}

impl fmt::Display for NeighSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.ip, self.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let c: Cidr = "192.0.2.1/24".parse().unwrap();
        assert!(c.contains("192.0.2.200".parse().unwrap()));
        assert!(!c.contains("192.0.3.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let d: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(d.contains("8.8.8.8".parse().unwrap()));
        let e: Cidr = "2001:db8::1/64".parse().unwrap();
        assert!(e.contains("2001:db8::ffff".parse().unwrap()));
        assert!(!e.contains("2001:db8:1::1".parse().unwrap()));
        let h: Cidr = "10.0.0.1/32".parse().unwrap();
        assert!(h.contains("10.0.0.1".parse().unwrap()));
        assert!(!h.contains("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn mac_from_name_is_local_unicast() {
        let m = Mac::from_name("lvs0");
        assert_eq!(m.0[0], 0x02);
        assert_ne!(m, Mac::from_name("lvs1"));
        assert_eq!(m, Mac::from_name("lvs0"));
    }
}
