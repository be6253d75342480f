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

/// `n` copies of `v`, the memory advised for huge pages before it is first written
/// ([`crate::sys::advise_huge_pages`]) when it is large enough to hold one.
fn big<T: Clone>(n: usize, v: T) -> Vec<T> {
    const HUGE: usize = 2 << 20;
    let mut x: Vec<T> = Vec::with_capacity(n);
    let bytes = n.saturating_mul(size_of::<T>());
    if bytes >= HUGE {
        crate::sys::advise_huge_pages(x.as_mut_ptr().cast(), bytes);
    }
    x.resize(n, v);
    x
}

fn table<A: FlowAddr>(cap: usize, seed: [u8; 16]) -> Result<ConnTable<'static, A>, String> {
    let entries = leak(big(cap, Conn::<A>::empty()));
    let n = index_len_for(cap);
    ConnTable::new(entries, leak(big(n, 0u32)), leak(big(n, 0u32)), seed)
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

#[cfg(test)]
mod test {
    use super::*;

    /// The `VmFlags` of the mapping of `/proc/self/smaps` that holds `addr`.
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let range = line
                .split_whitespace()
                .next()
                .and_then(|r| r.split_once('-'));
            if let Some((lo, hi)) = range
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
            } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.to_string();
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    fn large_tables_are_advised_for_huge_pages_small_ones_not() {
        // `hg`: the kernel's mark of MADV_HUGEPAGE, set whether or not huge pages were
        // available to back it.
        let large = big(4 << 20, 0u32); // 16 MiB
        let mid = large.as_ptr() as usize + large.len() * 2;
        assert!(
            vm_flags(mid).split_whitespace().any(|f| f == "hg"),
            "16 MiB table not advised: {}",
            vm_flags(mid)
        );
        let small = big(1024, 0u32);
        let at = small.as_ptr() as usize;
        assert!(!vm_flags(at).split_whitespace().any(|f| f == "hg"));
        assert!(large.iter().all(|&x| x == 0) && small.len() == 1024);
    }
}
