//! Maglev hashing (`mh`), the kernel's `ip_vs_mh.c`, with `mh-fallback` and `mh-port`.
//!
//! A lookup table of `M` entries (`M` a prime from [`MH_PRIMES`], 4093 by default, as
//! the kernel's `CONFIG_IP_VS_MH_TAB_INDEX` 12) maps a hash of the client's address (and,
//! with [`SchedFlags::port`], its port) to a real server. The table lives in storage the
//! caller hands to [`Mh::new`]; an entry is a [`DestId`], [`MH_EMPTY`] when unset.
//!
//! ## The fill (`update`), as `ip_vs_mh_permutate` + `ip_vs_mh_populate`
//! - Each server gets a permutation of the table: `offset = h1 % M`,
//!   `skip = h2 % (M - 1) + 1`, where `h1`, `h2` hash the server's address and port.
//!   `M` is prime, so `offset, offset + skip, offset + 2*skip, ...` visits every entry.
//! - Weights become turns: `turns = (w / gcd) >> shift`, at least 1 for `w > 0`, where
//!   `gcd` is the gcd of the servers' weights and `shift` keeps the largest
//!   `w_max / gcd` within `IP_VS_MH_TAB_BITS = (index of M in MH_PRIMES + 8) / 2` bits
//!   (6 bits, turns up to 63, for 4093). A server of weight 0 takes no entry.
//! - In list order, wrapping, each server takes `turns` entries in a row: for each, the
//!   next free entry of its permutation. This repeats until every entry is set, so the
//!   table has no hole as soon as one server has a weight, and servers of equal weight
//!   own `⌊M/n⌋` or `⌈M/n⌉` entries each.
//! - The weight used is the kernel's `last_weight`: the latest weight that was not 0 (or
//!   0 for a server added with weight 0). Quiescing a server (weight set to 0) therefore
//!   leaves the table as it is; lookups that land on it find it unavailable. `Mh`
//!   remembers the weights of the last `update` for this (see "Deviations").
//!
//! ## The lookup (`schedule`), as `ip_vs_mh_get` / `ip_vs_mh_get_fallback`
//! The entry is `hash(address + port) % M` (port 0 without `mh-port`; IPv6 addresses
//! folded by xor). An empty entry gives no server. An unavailable server (weight 0 or
//! overloaded) gives no server, or with `mh-fallback` the kernel's walk: for
//! `k = 0..M`, the entry `hash(address + port + (k + e) % M) % M`, where `e` is the first
//! entry, until an available server; an empty entry ends the walk.
//!
//! ## The hash
//! The kernel hashes `offset + port + address` (a `u32`) with `hsiphash` and the fixed
//! keys `(2654435761, 2654435761)` for `h1` and lookups and `(2654446892, 2654446892)`
//! for `h2`. On 64-bit kernels `hsiphash` is SipHash-1-3 with those 64-bit key words and
//! the result truncated to 32 bits; it is implemented here exactly (the 4-byte message
//! read little-endian), so on a little-endian 64-bit Linux director (x86-64, arm64) the
//! same servers in the same order give the same table, entry for entry. (32-bit kernels
//! use HalfSipHash-1-3 and get other tables.) It is a keyed PRF, well mixed in all 32
//! bits, so offsets, skips and entries are uniform.
//!
//! ## Deviations, all at the edges
//! - `last_weight` is not part of [`RealServer`], so `Mh`
//!   keeps the last weight it saw per [`DestId`], from one `update` to the next (the
//!   trait calls `update` after every change). A server that is already at weight 0 when
//!   `Mh` first sees it counts as added with weight 0.
//! - Only the first `min(MH_MAX_DESTS, M)` servers in list order take part; later ones
//!   get no entry. (The kernel refuses more than `M` servers and keeps its old table.)
//!   A server whose id is [`MH_EMPTY`] (`u16::MAX`) cannot be stored and takes no entry.
//! - An entry naming a server that is no longer a member of the `Dests` given to
//!   `schedule` counts as unavailable (the kernel's table cannot go stale).
//! - The kernel folds a server's address by the *service's* family; here by the
//!   address's own (they differ only for mixed-family tunnel services).
//!
//! ## Guarantees
//! - No allocation: the table is the caller's; the per-server state is three fixed
//!   arrays of [`MH_MAX_DESTS`] entries inside `Mh` (10 bytes per server, 10 KiB).
//! - No panic; every loop is bounded (the fill by `M` rounds of at most `M` probes).
//! - `schedule` never returns a server that is not a member of the `Dests` it is given,
//!   nor one that is unavailable.
//!
//! ## Complexity
//! `update`: `O(M log M)` expected probes (`O(M²)` worst case, as Maglev), plus `O(n)`
//! hashes. `schedule`: one hash and one entry, plus the membership check of
//! [`Dests::by_id`] (O(n)); with fallback at most `M + 1` hashes and entries.

use core::net::IpAddr;

use super::{Dests, SchedFlags, SchedInput, Scheduler, addr_key};
use crate::service::{DestId, RealServer};

/// The table sizes the kernel allows (`CONFIG_IP_VS_MH_TAB_INDEX` 8 to 17).
pub const MH_PRIMES: [usize; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];

/// The kernel's default table size (`CONFIG_IP_VS_MH_TAB_INDEX` 12).
pub const MH_DEFAULT_SIZE: usize = 4093;

/// How many servers (in list order) take part in the table.
pub const MH_MAX_DESTS: usize = 1024;

/// An entry that names no server.
pub const MH_EMPTY: u16 = u16::MAX;

/// The kernel's `hash1` key words (`generate_hash_secret`): offsets and lookups.
const HASH1_KEY: u64 = 2_654_435_761;
/// The kernel's `hash2` key words: skips.
const HASH2_KEY: u64 = 2_654_446_892;

/// Why [`Mh::new`] refused a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MhError {
    /// The table's length (given) is not one of [`MH_PRIMES`].
    BadTableSize(usize),
}

impl core::fmt::Display for MhError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MhError::BadTableSize(n) => {
                write!(f, "mh table size {n} is not one of the kernel's primes")
            }
        }
    }
}

/// One SipHash round.
#[inline(always)]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// The 64-bit kernel's `hsiphash(&v, 4, {key, key})`: SipHash-1-3 of the four bytes of
/// `v` (little-endian), truncated to 32 bits.
#[inline]
fn hsiphash_u32(v: u32, key: u64) -> u32 {
    let mut s = [
        0x736f_6d65_7073_6575 ^ key,
        0x646f_7261_6e64_6f6d ^ key,
        0x6c79_6765_6e65_7261 ^ key,
        0x7465_6462_7974_6573 ^ key,
    ];
    let b = (4u64 << 56) | v as u64;
    s[3] ^= b;
    sipround(&mut s);
    s[0] ^= b;
    s[2] ^= 0xff;
    sipround(&mut s);
    sipround(&mut s);
    sipround(&mut s);
    (s[0] ^ s[1] ^ s[2] ^ s[3]) as u32
}

/// The kernel's `ip_vs_mh_hashkey`: `hsiphash(offset + port + folded address)`.
#[inline]
fn mh_hashkey(addr: &IpAddr, port: u16, key: u64, offset: u32) -> u32 {
    hsiphash_u32(
        offset
            .wrapping_add(port as u32)
            .wrapping_add(addr_key(addr)),
        key,
    )
}

/// The kernel's `fls`: the 1-based position of the highest set bit, 0 for 0.
#[inline]
const fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// The Maglev hashing scheduler over a lookup table in caller storage.
pub struct Mh<'a> {
    table: &'a mut [u16],
    flags: SchedFlags,
    /// `IP_VS_MH_TAB_BITS` for this table size.
    bits: u32,
    /// How many of `ids` / `last_weights` the last `update` filled.
    known: usize,
    /// The servers that took part in the last `update`, in list order.
    ids: [DestId; MH_MAX_DESTS],
    /// Their `last_weight`s.
    last_weights: [u32; MH_MAX_DESTS],
    /// Scratch for `update`: each server's position in its permutation.
    perm: [u32; MH_MAX_DESTS],
}

impl core::fmt::Debug for Mh<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mh")
            .field("size", &self.table.len())
            .field("flags", &self.flags)
            .field("servers", &self.known)
            .finish_non_exhaustive()
    }
}

impl<'a> Mh<'a> {
    /// A scheduler over `table`, whose length must be one of [`MH_PRIMES`]
    /// ([`MH_DEFAULT_SIZE`] unless the service wants another), with the service's flags
    /// (`mh-fallback`, `mh-port`). The table is cleared: every lookup fails until the
    /// first [`update`](Scheduler::update).
    pub fn new(table: &'a mut [u16], flags: SchedFlags) -> Result<Mh<'a>, MhError> {
        let index = MH_PRIMES
            .iter()
            .position(|&p| p == table.len())
            .ok_or(MhError::BadTableSize(table.len()))?;
        table.fill(MH_EMPTY);
        Ok(Mh {
            table,
            flags,
            // IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2, the index being 8..=17.
            bits: (index as u32 + 8) / 2,
            known: 0,
            ids: [0; MH_MAX_DESTS],
            last_weights: [0; MH_MAX_DESTS],
            perm: [0; MH_MAX_DESTS],
        })
    }

    /// The flags it was built with.
    pub const fn flags(&self) -> SchedFlags {
        self.flags
    }

    /// Forgets every server and takes new flags, so the same storage can serve another
    /// virtual service: the table is cleared until the next
    /// [`update`](Scheduler::update).
    pub fn reset(&mut self, flags: SchedFlags) {
        self.table.fill(MH_EMPTY);
        self.flags = flags;
        self.known = 0;
    }

    /// The lookup table, as the last `update` filled it ([`MH_EMPTY`] for no server).
    pub fn table(&self) -> &[u16] {
        self.table
    }

    /// The first entry a client address and port hash to (pass port 0 when `mh-port`
    /// is off).
    #[inline]
    pub fn entry_of(&self, addr: &IpAddr, port: u16) -> usize {
        self.entry(addr, port, 0)
    }

    /// `ip_vs_mh_hashkey(addr, port, hash1, offset) % M`.
    #[inline]
    fn entry(&self, addr: &IpAddr, port: u16, offset: u32) -> usize {
        let m = self.table.len() as u32;
        (mh_hashkey(addr, port, HASH1_KEY, offset) % m.max(1)) as usize
    }

    /// The servers that take part, in list order.
    fn participants<'d>(
        dests: &Dests<'d>,
        cap: usize,
    ) -> impl Iterator<Item = (DestId, &'d RealServer)> + 'd {
        dests.iter().filter(|(id, _)| *id != MH_EMPTY).take(cap)
    }

    /// The weight the last `update` remembered for `id`, 0 if none. The search starts
    /// at `hint` (the server's new list position), where it usually is.
    fn remembered(&self, id: DestId, hint: usize) -> u32 {
        let known = self.known.min(MH_MAX_DESTS);
        for k in 0..known {
            let j = (hint + k) % known;
            if self.ids.get(j) == Some(&id) {
                return self.last_weights.get(j).copied().unwrap_or(0);
            }
        }
        0
    }

    /// The next free entry of server `i`'s permutation (advancing it past taken ones),
    /// `None` if there is none (impossible while the table has a free entry).
    fn probe(&mut self, i: usize, d: &RealServer) -> Option<usize> {
        let m = self.table.len();
        let mut c = *self.perm.get(i)? as usize;
        if *self.table.get(c)? == MH_EMPTY {
            return Some(c);
        }
        let skip = (mh_hashkey(&d.addr, d.port, HASH2_KEY, 0) as usize % (m - 1)) + 1;
        for _ in 0..m {
            c += skip;
            if c >= m {
                c -= m;
            }
            if *self.table.get(c)? == MH_EMPTY {
                *self.perm.get_mut(i)? = c as u32;
                return Some(c);
            }
        }
        None
    }

    /// The server in entry `e` if it is a member and available.
    #[inline]
    fn available(&self, dests: &Dests<'_>, e: usize) -> Slot {
        match self.table.get(e) {
            Some(&id) if id != MH_EMPTY => match dests.by_id(id) {
                Some(d) if d.is_available() => Slot::Available(id),
                _ => Slot::Unavailable,
            },
            _ => Slot::Empty,
        }
    }
}

/// What an entry holds, as a lookup sees it.
enum Slot {
    Empty,
    Unavailable,
    Available(DestId),
}

/// Turns of a server of weight `lw` (`ip_vs_mh_permutate`).
#[inline]
const fn turns(lw: u32, gcd: u32, rshift: u32) -> u32 {
    let t = (lw / gcd) >> rshift;
    if t == 0 { (lw != 0) as u32 } else { t }
}

const fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

impl Scheduler for Mh<'_> {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn update(&mut self, dests: Dests<'_>) {
        let m = self.table.len();
        let cap = MH_MAX_DESTS.min(m);

        // The last weights: the current weight, or the remembered one for a quiesced
        // server. Computed into `perm` first, because `remembered` reads the old ones.
        let mut n = 0;
        for (i, (id, d)) in Self::participants(&dests, cap).enumerate() {
            let lw = if d.weight > 0 {
                d.weight
            } else {
                self.remembered(id, i)
            };
            if let Some(p) = self.perm.get_mut(i) {
                *p = lw;
            }
            n = i + 1;
        }
        let mut g = 0;
        let mut max = 0;
        for (i, (id, _)) in Self::participants(&dests, cap).enumerate() {
            let lw = self.perm.get(i).copied().unwrap_or(0);
            if let (Some(slot_id), Some(slot_w)) =
                (self.ids.get_mut(i), self.last_weights.get_mut(i))
            {
                *slot_id = id;
                *slot_w = lw;
            }
            if lw > 0 {
                g = if g > 0 { gcd(lw, g) } else { lw };
                max = max.max(lw);
            }
        }
        self.known = n;

        self.table.fill(MH_EMPTY);
        if g == 0 {
            // No server, or none with a weight: an empty table (ip_vs_mh_reset).
            return;
        }
        let rshift = fls(max / g).saturating_sub(self.bits);

        // Permutations start at their offsets.
        for (i, (_, d)) in Self::participants(&dests, cap).enumerate() {
            if let Some(p) = self.perm.get_mut(i) {
                *p = mh_hashkey(&d.addr, d.port, HASH1_KEY, 0) % m as u32;
            }
        }

        // Populate: rounds over the list, each server taking `turns` entries in a row.
        // Every round fills at least one entry, so M rounds are enough.
        let mut filled = 0;
        for _ in 0..m {
            for (i, (id, d)) in Self::participants(&dests, cap).enumerate() {
                let lw = self.last_weights.get(i).copied().unwrap_or(0);
                for _ in 0..turns(lw, g, rshift) {
                    let Some(c) = self.probe(i, d) else { return };
                    if let Some(e) = self.table.get_mut(c) {
                        *e = id;
                    }
                    filled += 1;
                    if filled >= m {
                        return;
                    }
                }
            }
        }
    }

    fn schedule(&mut self, dests: Dests<'_>, input: &SchedInput) -> Option<DestId> {
        let port = if self.flags.port { input.src_port } else { 0 };
        let ihash = self.entry(&input.src, port, 0);
        match self.available(&dests, ihash) {
            Slot::Available(id) => {
                lvs_trace!("mh: {}:{} -> dest {}", input.src, port, id);
                return Some(id);
            }
            Slot::Empty => return None,
            Slot::Unavailable if !self.flags.fallback => return None,
            Slot::Unavailable => {}
        }
        // ip_vs_mh_get_fallback: rehash with offsets ihash, ihash + 1, ... (mod M).
        let m = self.table.len();
        for k in 0..m {
            let roffset = ((k + ihash) % m) as u32;
            match self.available(&dests, self.entry(&input.src, port, roffset)) {
                Slot::Available(id) => {
                    lvs_trace!(
                        "mh: {}:{} -> dest {} (fallback offset {})",
                        input.src,
                        port,
                        id,
                        roffset
                    );
                    return Some(id);
                }
                Slot::Empty => return None,
                Slot::Unavailable => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{input, table};
    use crate::service::Method;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const PLAIN: SchedFlags = SchedFlags {
        fallback: false,
        port: false,
    };
    const FALLBACK: SchedFlags = SchedFlags {
        fallback: true,
        port: false,
    };
    const PORT: SchedFlags = SchedFlags {
        fallback: false,
        port: true,
    };

    fn counts(t: &[u16], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &e in t {
            c[e as usize] += 1;
        }
        c
    }

    /// Servers 10.0.0.1:80, 10.0.0.2:80, ... (any number of them) and the member list.
    fn servers(weights: &[u32]) -> (Vec<Option<RealServer>>, Vec<DestId>) {
        let t = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0001 + i as u32));
                Some(RealServer::new(a, 80, Method::Masq, w))
            })
            .collect();
        (t, (0..weights.len() as DestId).collect())
    }

    /// The ring of size `m` over `servers(weights)`.
    fn ring(weights: &[u32], m: usize) -> Vec<u16> {
        let (t, ids) = servers(weights);
        let mut storage = vec![0u16; m];
        let mut mh = Mh::new(&mut storage, PLAIN).unwrap();
        mh.update(Dests::new(&t, &ids));
        mh.table().to_vec()
    }

    #[test]
    fn test_reset_forgets_servers_and_takes_flags() {
        let (t, m) = table(&[1, 2, 3]);
        let mut storage = [0u16; 251];
        let mut mh = Mh::new(&mut storage, SchedFlags::default()).unwrap();
        mh.update(Dests::new(&t, &m));
        assert!(mh.table().iter().all(|&e| e != MH_EMPTY));
        let flags = SchedFlags {
            fallback: true,
            port: true,
        };
        mh.reset(flags);
        assert_eq!(mh.flags(), flags);
        assert!(mh.table().iter().all(|&e| e == MH_EMPTY));
        assert_eq!(mh.schedule(Dests::new(&t, &m), &input(1, 1, 0)), None);
        mh.update(Dests::new(&t, &m));
        assert!(mh.schedule(Dests::new(&t, &m), &input(1, 1, 0)).is_some());
    }

    #[test]
    fn test_table_size_must_be_a_kernel_prime() {
        assert!(MH_PRIMES.contains(&MH_DEFAULT_SIZE));
        for bad in [0usize, 1, 2, 250, 252, 4092, 4094, 4096, 131072] {
            let mut t = vec![0u16; bad];
            assert_eq!(
                Mh::new(&mut t, PLAIN).unwrap_err(),
                MhError::BadTableSize(bad)
            );
        }
        for (i, &p) in MH_PRIMES.iter().enumerate() {
            let mut t = vec![0u16; p];
            let mh = Mh::new(&mut t, FALLBACK).unwrap();
            assert_eq!(mh.bits, (i as u32 + 8) / 2);
            assert_eq!(mh.flags(), FALLBACK);
            assert!(mh.table().iter().all(|&e| e == MH_EMPTY));
        }
        assert_eq!(
            std::format!("{}", MhError::BadTableSize(7)),
            "mh table size 7 is not one of the kernel's primes"
        );
    }

    #[test]
    fn test_hsiphash_matches_the_kernel() {
        // Values of the 64-bit kernel's hsiphash(&v, 4, key) with the mh keys, from the
        // kernel's lib/siphash.c built in user space.
        assert_eq!(hsiphash_u32(0, HASH1_KEY), 0x1d5a_77c2);
        assert_eq!(hsiphash_u32(0x0a00_0001, HASH1_KEY), 0x0308_0ce4);
        assert_eq!(hsiphash_u32(0x0a00_0051, HASH1_KEY), 0x439c_0cbe);
        assert_eq!(hsiphash_u32(0x0a00_0051, HASH2_KEY), 0x97b3_dc47);
        assert_eq!(hsiphash_u32(0xffff_ffff, HASH2_KEY), 0xf75a_0f5d);
        // The server hash adds the port: 10.0.0.1:80.
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(mh_hashkey(&a, 80, HASH1_KEY, 0), 0x439c_0cbe);
        assert_eq!(mh_hashkey(&a, 0, HASH1_KEY, 80), 0x439c_0cbe);
    }

    #[test]
    fn test_kernel_table() {
        // ip_vs_mh_permutate + ip_vs_mh_populate (the kernel's code built in user
        // space) for 10.0.0.1:80, 10.0.0.2:80, 10.0.0.3:80 with weights 1, 2, 3 and
        // M = 251: the first entries and an FNV-1a of the whole table.
        let t = ring(&[1, 2, 3], 251);
        assert_eq!(&t[..16], &[2, 1, 1, 1, 0, 0, 1, 1, 1, 2, 0, 0, 1, 1, 1, 1]);
        let fnv = t.iter().fold(0x811c_9dc5u32, |h, &e| {
            (h ^ e as u32).wrapping_mul(0x0100_0193)
        });
        assert_eq!(fnv, 0x991c_6015);
    }

    #[test]
    fn test_empty_ring() {
        let (t, ids) = table(&[1, 1]);
        let mut storage = vec![7u16; MH_DEFAULT_SIZE];
        let mut mh = Mh::new(&mut storage, FALLBACK).unwrap();
        assert_eq!(mh.name(), "mh");
        assert_eq!(mh.schedule(Dests::new(&t, &ids), &input(1, 1, 0)), None);
        mh.update(Dests::new(&t, &[]));
        assert!(mh.table().iter().all(|&e| e == MH_EMPTY));
        assert_eq!(mh.schedule(Dests::new(&t, &ids), &input(1, 1, 0)), None);
        // Servers added with weight 0 take no entry.
        let (t0, ids0) = table(&[0, 0, 0]);
        mh.update(Dests::new(&t0, &ids0));
        assert!(mh.table().iter().all(|&e| e == MH_EMPTY));
        assert_eq!(mh.schedule(Dests::new(&t0, &ids0), &input(1, 1, 0)), None);
        assert!(std::format!("{mh:?}").starts_with("Mh { size: 4093"));
    }

    #[test]
    fn test_one_server_fills_every_entry() {
        for &m in &MH_PRIMES[..6] {
            let t = ring(&[5], m);
            assert!(t.iter().all(|&e| e == 0), "m = {m}");
        }
        // Among servers of weight 0 too.
        let t = ring(&[0, 3, 0], 1021);
        assert!(t.iter().all(|&e| e == 1));
    }

    #[test]
    fn test_no_holes_and_deterministic() {
        let weights = [1, 0, 7, 3, 3, 100, 2];
        for &m in &MH_PRIMES[..7] {
            let a = ring(&weights, m);
            assert!(a.iter().all(|&e| e != MH_EMPTY && e != 1), "m = {m}");
            assert_eq!(a, ring(&weights, m));
        }
        // A rebuild from the same servers gives the same table.
        let (t, ids) = table(&weights);
        let mut storage = vec![0u16; 4093];
        let mut mh = Mh::new(&mut storage, PLAIN).unwrap();
        mh.update(Dests::new(&t, &ids));
        let first = mh.table().to_vec();
        mh.update(Dests::new(&t, &ids));
        assert_eq!(mh.table(), &first[..]);
    }

    #[test]
    fn test_weight_proportionality() {
        for &m in &[1021usize, 4093, 65521] {
            let c = counts(&ring(&[1, 2, 3], m), 3);
            for (i, &got) in c.iter().enumerate() {
                let want = m as f64 * (i + 1) as f64 / 6.0;
                // The fill goes round by round (1 + 2 + 3 entries): off by less than a round.
                assert!((got as f64 - want).abs() <= 6.0, "m = {m}: {c:?}");
            }
        }
        // Weights with a common divisor are the same as the reduced ones.
        assert_eq!(ring(&[10, 20, 30], 4093), ring(&[1, 2, 3], 4093));
    }

    #[test]
    fn test_large_weights_are_shifted_to_tab_bits() {
        // M = 251: IP_VS_MH_TAB_BITS = 4. Weights 1 and 65535: max/gcd has 16 bits, the
        // shift is 12, turns are 15 and 1 (at least 1 for a weight above 0).
        let m = 251;
        let g = 1;
        let rshift = fls(65535 / g).saturating_sub(4);
        assert_eq!(rshift, 12);
        assert_eq!(
            (
                turns(65535, g, rshift),
                turns(1, g, rshift),
                turns(0, g, rshift)
            ),
            (15, 1, 0)
        );
        let c = counts(&ring(&[1, 65535], m), 2);
        // 251 = 15 rounds of 16 + 11: 16 + 235.
        assert_eq!(c, vec![16, 235]);
        // M = 4093 (6 bits): weights 1 and 1000 give turns 1 and 62.
        assert_eq!(fls(1000).saturating_sub(6), 4);
        assert_eq!(turns(1000, 1, 4), 62);
    }

    #[test]
    fn test_balance_with_equal_weights() {
        // Katran's test: with equal weights the shares differ by at most one entry, so
        // with M over 100 times n each share is within 1% of M/n.
        for n in [2usize, 8, 13, 20, 32, 40] {
            let c = counts(&ring(&vec![1; n], MH_DEFAULT_SIZE), n);
            let (lo, hi) = (*c.iter().min().unwrap(), *c.iter().max().unwrap());
            assert!(hi - lo <= 1, "n = {n}: {c:?}");
            let fair = MH_DEFAULT_SIZE as f64 / n as f64;
            assert!(
                c.iter().all(|&x| (x as f64 - fair).abs() <= fair * 0.01),
                "n = {n}: {c:?}"
            );
        }
        let c = counts(&ring(&vec![7; 400], 131071), 400);
        assert!(c.iter().max().unwrap() - c.iter().min().unwrap() <= 1);
    }

    #[test]
    fn test_minimal_disruption_on_removal() {
        // Removing one of n servers moves its own entries (about M/n) and a few others:
        // measured worst cases over every removed server are 0.5%, 1.3%, 1.7% and 2.7%
        // of M = 4093 for n = 5, 10, 20, 40, and 0.4% of M = 65521 for n = 20.
        for (m, n, limit_pct) in [
            (4093usize, 5usize, 1),
            (4093, 10, 2),
            (4093, 20, 2),
            (4093, 40, 3),
            (65521, 20, 1),
        ] {
            let (t, ids) = servers(&vec![1; n]);
            let mut storage = vec![0u16; m];
            let mut mh = Mh::new(&mut storage, PLAIN).unwrap();
            mh.update(Dests::new(&t, &ids));
            let before = mh.table().to_vec();
            for gone in 0..n {
                let rest: Vec<DestId> = ids
                    .iter()
                    .copied()
                    .filter(|&id| id as usize != gone)
                    .collect();
                mh.update(Dests::new(&t, &rest));
                let after = mh.table();
                assert!(!after.contains(&(gone as u16)));
                let moved = before.iter().zip(after).filter(|(b, a)| b != a).count();
                let collateral = before
                    .iter()
                    .zip(after)
                    .filter(|(b, a)| b != a && **b as usize != gone)
                    .count();
                assert!(moved >= m / n - 1, "m = {m}, n = {n}");
                assert!(
                    collateral * 100 < m * limit_pct,
                    "m = {m}, n = {n}, gone = {gone}: {collateral} entries moved needlessly"
                );
            }
        }
    }

    #[test]
    fn test_quiesced_server_keeps_its_entries() {
        let (mut t, ids) = table(&[2, 3, 4, 5]);
        let mut storage = vec![0u16; 1021];
        let mut mh = Mh::new(&mut storage, PLAIN).unwrap();
        mh.update(Dests::new(&t, &ids));
        let before = mh.table().to_vec();
        t[1].as_mut().unwrap().weight = 0;
        mh.update(Dests::new(&t, &ids));
        // last_weight: the table does not change.
        assert_eq!(mh.table(), &before[..]);
        let on1 = (0u32..)
            .find(|&s| mh.schedule(Dests::new(&t, &ids), &input(s, 0, 0)).is_none())
            .unwrap();
        assert_eq!(before[mh.entry_of(&IpAddr::V4(Ipv4Addr::from(on1)), 0)], 1);
        // Back at its weight: the same table again.
        t[1].as_mut().unwrap().weight = 3;
        mh.update(Dests::new(&t, &ids));
        assert_eq!(mh.table(), &before[..]);
        assert_eq!(
            mh.schedule(Dests::new(&t, &ids), &input(on1, 0, 0)),
            Some(1)
        );
        // Quiesced, then another server removed: the quiesced one keeps its weight 3.
        t[1].as_mut().unwrap().weight = 0;
        mh.update(Dests::new(&t, &ids));
        mh.update(Dests::new(&t, &ids[1..]));
        let mut t3 = t.clone();
        t3[1].as_mut().unwrap().weight = 3;
        let mut storage3 = vec![0u16; 1021];
        let mut three = Mh::new(&mut storage3, PLAIN).unwrap();
        three.update(Dests::new(&t3, &ids[1..]));
        assert_eq!(mh.table(), three.table());
        assert!(!mh.table().contains(&0));
        // A fresh Mh sees it at weight 0 as added with weight 0.
        let mut storage2 = vec![0u16; 1021];
        let mut fresh = Mh::new(&mut storage2, PLAIN).unwrap();
        fresh.update(Dests::new(&t, &ids));
        assert!(!fresh.table().contains(&1));
    }

    /// The fallback walk written out from the kernel's loop.
    fn reference_fallback(
        mh: &Mh,
        t: &[Option<RealServer>],
        src: IpAddr,
        port: u16,
    ) -> Option<DestId> {
        let m = mh.table().len();
        let ok = |id: u16| id != MH_EMPTY && t[id as usize].unwrap().is_available();
        let ihash = (mh_hashkey(&src, port, HASH1_KEY, 0) as usize) % m;
        let first = mh.table()[ihash];
        if first == MH_EMPTY {
            return None;
        }
        if ok(first) {
            return Some(first);
        }
        for offset in 0..m {
            let roffset = ((offset + ihash) % m) as u32;
            let e = mh.table()[(mh_hashkey(&src, port, HASH1_KEY, roffset) as usize) % m];
            if e == MH_EMPTY {
                break;
            }
            if ok(e) {
                return Some(e);
            }
        }
        None
    }

    #[test]
    fn test_unavailable_and_fallback() {
        let (mut t, ids) = table(&[1, 1, 1, 1]);
        let mut storage = vec![0u16; 251];
        let mut plain_storage = vec![0u16; 251];
        let mut mh = Mh::new(&mut storage, FALLBACK).unwrap();
        let mut plain = Mh::new(&mut plain_storage, PLAIN).unwrap();
        mh.update(Dests::new(&t, &ids));
        plain.update(Dests::new(&t, &ids));
        t[2].as_mut().unwrap().overloaded = true;
        t[3].as_mut().unwrap().weight = 0;
        let mut fell_back = 0;
        for s in 0..512u32 {
            let src = 0x0a10_0000 + s * 131;
            let first = mh.table()[mh.entry_of(&IpAddr::V4(Ipv4Addr::from(src)), 0)];
            let a = mh.schedule(Dests::new(&t, &ids), &input(src, 0, 0));
            let p = plain.schedule(Dests::new(&t, &ids), &input(src, 0, 0));
            assert_eq!(
                a,
                reference_fallback(&mh, &t, IpAddr::V4(Ipv4Addr::from(src)), 0)
            );
            if first < 2 {
                assert_eq!((a, p), (Some(first), Some(first)));
            } else {
                assert_eq!(p, None);
                assert!(matches!(a, Some(0 | 1)));
                fell_back += 1;
            }
        }
        assert!(fell_back > 100);
        // Nothing available: the walk ends with none.
        t[0].as_mut().unwrap().overloaded = true;
        t[1].as_mut().unwrap().overloaded = true;
        assert_eq!(mh.schedule(Dests::new(&t, &ids), &input(5, 0, 0)), None);
    }

    #[test]
    fn test_port_flag_changes_the_mapping() {
        let (t, ids) = table(&[1; 8]);
        let mut s1 = vec![0u16; 4093];
        let mut s2 = vec![0u16; 4093];
        let mut plain = Mh::new(&mut s1, PLAIN).unwrap();
        let mut port = Mh::new(&mut s2, PORT).unwrap();
        plain.update(Dests::new(&t, &ids));
        port.update(Dests::new(&t, &ids));
        let src = 0xc633_6401;
        let base = plain.schedule(Dests::new(&t, &ids), &input(src, 0, 0));
        assert_eq!(port.schedule(Dests::new(&t, &ids), &input(src, 0, 0)), base);
        let mut seen = std::collections::BTreeSet::new();
        for p in 40000..40064u16 {
            assert_eq!(
                plain.schedule(Dests::new(&t, &ids), &input(src, p, 0)),
                base
            );
            seen.insert(
                port.schedule(Dests::new(&t, &ids), &input(src, p, 0))
                    .unwrap(),
            );
        }
        assert!(seen.len() >= 6, "{seen:?}");
        // The same client and port: the same server.
        let a = port.schedule(Dests::new(&t, &ids), &input(src, 40001, 0));
        assert_eq!(
            port.schedule(Dests::new(&t, &ids), &input(src, 40001, 9)),
            a
        );
    }

    #[test]
    fn test_more_servers_than_the_table_has_room_for() {
        let weights = vec![1u32; 300];
        let mut t: Vec<Option<RealServer>> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                Some(RealServer::new(
                    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32)),
                    80,
                    Method::Masq,
                    w,
                ))
            })
            .collect();
        let ids: Vec<DestId> = (0..300).collect();
        let mut storage = vec![0u16; 251];
        let mut mh = Mh::new(&mut storage, PLAIN).unwrap();
        mh.update(Dests::new(&t, &ids));
        // The first 251 take one entry each.
        let mut owned: Vec<u16> = mh.table().to_vec();
        owned.sort_unstable();
        assert_eq!(owned, (0..251).collect::<Vec<u16>>());
        // An id of u16::MAX cannot be stored.
        t.resize(65536, None);
        t[65535] = Some(RealServer::new(
            IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
            80,
            Method::Masq,
            1,
        ));
        mh.update(Dests::new(&t, &[65535]));
        assert!(mh.table().iter().all(|&e| e == MH_EMPTY));
    }

    proptest! {
        #[test]
        fn prop_deterministic(weights in proptest::collection::vec(0u32..300, 0..24), flags in any::<(bool, bool)>()) {
            let (t, ids) = table(&weights);
            let f = SchedFlags { fallback: flags.0, port: flags.1 };
            let mut s1 = vec![0u16; 509];
            let mut s2 = vec![1u16; 509];
            let mut a = Mh::new(&mut s1, f).unwrap();
            let mut b = Mh::new(&mut s2, f).unwrap();
            a.update(Dests::new(&t, &ids));
            b.update(Dests::new(&t, &ids));
            prop_assert_eq!(a.table(), b.table());
            let full = weights.iter().any(|&w| w > 0);
            prop_assert_eq!(a.table().iter().all(|&e| e != MH_EMPTY), full);
            prop_assert!(a.table().iter().all(|&e| e == MH_EMPTY || weights[e as usize] > 0));
            a.update(Dests::new(&t, &ids));
            prop_assert_eq!(a.table(), b.table());
        }

        #[test]
        fn prop_never_unavailable_or_foreign(
            weights in proptest::collection::vec(0u32..4, 0..12),
            overloaded in proptest::collection::vec(any::<bool>(), 12),
            keep in proptest::collection::vec(any::<bool>(), 12),
            flags in any::<(bool, bool)>(),
            srcs in proptest::collection::vec((any::<u32>(), any::<u16>()), 1..16),
        ) {
            let (mut t, ids) = table(&weights);
            let mut storage = vec![0u16; 251];
            let mut mh = Mh::new(&mut storage, SchedFlags { fallback: flags.0, port: flags.1 }).unwrap();
            mh.update(Dests::new(&t, &ids));
            for (d, o) in t.iter_mut().zip(&overloaded) {
                d.as_mut().unwrap().overloaded = *o;
            }
            let kept: Vec<DestId> = ids.iter().copied().zip(&keep).filter(|(_, k)| **k).map(|(id, _)| id).collect();
            for (src, port) in srcs {
                let a = mh.schedule(Dests::new(&t, &kept), &input(src, port, 0));
                if let Some(id) = a {
                    prop_assert!(kept.contains(&id));
                    prop_assert!(t[id as usize].unwrap().is_available());
                }
                prop_assert_eq!(a, mh.schedule(Dests::new(&t, &kept), &input(src, port, 0)));
            }
        }
    }
}
