//! Building the director from the flags: its storage on the heap (allocated once at
//! start and leaked, so it lives as long as the process, as `lvs-core`'s caller storage
//! wants), the FULLNAT local addresses, the tunnel sources, and the rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use lvs_core::conn::table::{Conn, ConnTable, FlowAddr, index_len_for};
use lvs_core::director::{Config, DestMeta, Director, SchedStorage, Service, Storage};
use lvs_core::sched::SchedFlags;
use lvs_core::sched::lblc::{Lblc, LblcEntry};
use lvs_core::sched::lblcr::{Lblcr, LblcrEntry};
use lvs_core::sched::mh::{MH_DEFAULT_SIZE, Mh};
use lvs_core::service::RealServer;
use lvs_core::time::Instant;

use crate::flags::Args;
use crate::ipvsadm;

/// Real servers per service (the director's `D`).
pub const DESTS_PER_SERVICE: usize = 64;

/// The director the binaries run.
pub type LvsDirector = Director<'static, DESTS_PER_SERVICE>;

/// Entries of each service slot's lblc and lblcr tables.
pub const LBLC_ENTRIES: usize = 1024;

/// FULLNAT local address slots.
pub const LADDR_SLOTS: usize = 64;

/// Storage sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Connection entries per address family.
    pub conns: usize,
    /// Virtual service slots.
    pub services: usize,
    /// Real server slots.
    pub dests: usize,
}

fn leak<T>(v: Vec<T>) -> &'static mut [T] {
    Box::leak(v.into_boxed_slice())
}

fn table<A: FlowAddr>(cap: usize, seed: [u8; 16]) -> Result<ConnTable<'static, A>, String> {
    let entries = leak((0..cap).map(|_| Conn::<A>::empty()).collect());
    let n = index_len_for(cap);
    ConnTable::new(entries, leak(vec![0u32; n]), leak(vec![0u32; n]), seed)
        .map_err(|e| format!("connection table of {cap} entries: {e:?}"))
}

fn sched_storage() -> Result<SchedStorage<'static>, String> {
    let mh = Mh::new(leak(vec![0u16; MH_DEFAULT_SIZE]), SchedFlags::default())
        .map_err(|e| format!("mh table: {e:?}"))?;
    Ok(SchedStorage {
        mh: Some(Box::leak(Box::new(mh))),
        lblc: Some(Box::leak(Box::new(Lblc::new(leak(vec![
            LblcEntry::EMPTY;
            LBLC_ENTRIES
        ]))))),
        lblcr: Some(Box::leak(Box::new(Lblcr::new(leak(vec![
            LblcrEntry::EMPTY;
            LBLC_ENTRIES
        ]))))),
    })
}

/// A director over leaked heap storage of these sizes; `seed` keys the connection
/// tables' hash (and is mixed into `cfg.seed` by the caller if wanted).
pub fn new_director(
    caps: Caps,
    cfg: Config,
    now: Instant,
    seed: u64,
) -> Result<LvsDirector, String> {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..].copy_from_slice(&(!seed).rotate_left(17).to_le_bytes());
    let sched = (0..caps.services)
        .map(|_| sched_storage())
        .collect::<Result<Vec<_>, _>>()?;
    let storage = Storage {
        services: leak(
            (0..caps.services)
                .map(|_| None::<Service<'static, DESTS_PER_SERVICE>>)
                .collect(),
        ),
        sched: leak(sched),
        dests: leak(vec![None::<RealServer>; caps.dests]),
        dest_meta: leak(vec![DestMeta::EMPTY; caps.dests]),
        laddrs: leak(vec![None::<IpAddr>; LADDR_SLOTS]),
        v4: table::<Ipv4Addr>(caps.conns, key)?,
        v6: table::<Ipv6Addr>(caps.conns, key.map(|b| b ^ 0xa5))?,
    };
    Ok(Director::new(cfg, now, storage))
}

/// A seed from the operating system's random source, else the clock.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ u64::from(std::process::id()).rotate_left(32)
}

/// The director's configuration from the flags: the tunnel sources are the first IPv4
/// and IPv6 addresses of the port that answers for the VIPs (else of any port), the
/// tunnel MTU that port's.
pub fn config(args: &Args, seed: u64) -> Config {
    let vip = args.vip_port();
    let ordered = args.ifaces.get(vip).into_iter().chain(args.ifaces.iter());
    let mut cfg = Config {
        seed,
        ..Config::default()
    };
    for i in ordered {
        for c in &i.addrs {
            match c.addr {
                IpAddr::V4(a) if cfg.tun_src_v4.is_none() => cfg.tun_src_v4 = Some(a),
                IpAddr::V6(a) if cfg.tun_src_v6.is_none() => cfg.tun_src_v6 = Some(a),
                _ => {}
            }
        }
    }
    if let Some(i) = args.ifaces.get(vip) {
        cfg.tun_mtu = u16::try_from(i.mtu()).unwrap_or(u16::MAX);
    }
    cfg
}

/// The director the flags describe: storage, `--laddr`s, then the `--rules` file. The
/// error is one line naming what is wrong (for a rule, `FILE:LINE: why`).
pub fn build(args: &Args, now: Instant, seed: u64) -> Result<LvsDirector, String> {
    let caps = Caps {
        conns: args.conns as usize,
        services: args.services as usize,
        dests: args.dests as usize,
    };
    let mut d = new_director(caps, config(args, seed), now, seed)?;
    for l in &args.laddrs {
        d.add_laddr(*l).map_err(|e| format!("--laddr {l}: {e}"))?;
    }
    if let Some(path) = &args.rules {
        load_rules(&mut d, path, now)?;
    }
    Ok(d)
}

/// Reads and restores a rule file; the error is `FILE:LINE: why` (or `FILE: why` when
/// it cannot be read).
pub fn load_rules(d: &mut LvsDirector, path: &Path, now: Instant) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    ipvsadm::restore(d, &text, now).map_err(|e| {
        let e = e.in_file(path.display().to_string());
        // The director's refusals read as libipvs words them for the line's operation.
        if let ipvsadm::RuleErrorKind::Apply(ipvsadm::ApplyError::Control(c)) = e.kind
            && let Some(Ok(Some(cmd))) = text
                .lines()
                .nth(e.line.saturating_sub(1))
                .map(ipvsadm::parse_line)
        {
            return format!(
                "{}:{}: {}",
                path.display(),
                e.line,
                crate::control::refusal_message(&cmd, c)
            );
        }
        e.to_string()
    })
}
