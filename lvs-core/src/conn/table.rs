//! The IPVS connection table: fixed capacity, storage from the caller.
//!
//! A [`ConnTable`] holds [`Conn`] entries in a slice the caller provides and finds them
//! through two open-addressing indexes, also caller slices:
//!
//! - the **in** index, keyed by the client side `(proto, caddr, cport, vaddr, vport)`
//!   (the kernel's `ip_vs_conn_in_get`), which also holds persistence templates under
//!   their own key (see below);
//! - the **out** index, keyed by the real-server side `(proto, daddr, dport, laddr,
//!   lport)` (the kernel's `ip_vs_conn_out_get`), for the replies of NAT and FULLNAT.
//!   Only entries inserted with [`ConnFlags::OUT_INDEXED`] are in it. An out key is
//!   placed by its local end `laddr:lport` (see below): a NAT connection's is the
//!   client's own end, a FULLNAT one's the director's local address and port.
//!
//! ## Design
//! - **Keyed hash.** Every key is hashed with SipHash-1-3 under the 128-bit seed given
//!   to [`ConnTable::new`] (the caller draws it from a random source), so a client
//!   cannot choose ports that pile its flows onto one slot. Never unkeyed.
//! - **Index slots** are `u32`: the top 4 bits of the hash as a tag, 5 bits for the
//!   slot's distance from its key's home slot, the low 23 bits `entry id + 1`; 0 for an
//!   empty slot. A probe compares a slot's tag and distance with the key's first, so
//!   more than 15 of 16 mismatches are rejected without touching the entry. The
//!   distance also lets a removal move the following slots back without reading their
//!   entries (see below).
//! - **Linear probing with a bound**: an entry sits at most [`MAX_PROBE`]` - 1` slots
//!   after its home slot. An insert that finds no empty slot within the window fails with
//!   [`InsertError::ProbeWindowFull`] instead of probing further; a lookup reads at most
//!   [`MAX_PROBE`] slots.
//! - **Deletion by backward shift** (no tombstones): the entries after a removed slot
//!   move back towards their home slots, which keeps every entry within its window and
//!   keeps probe lengths short however long the table has run. Whether a slot may move
//!   is decided from the distance it holds: the shift reads only the index, never the
//!   entries (in a large table each of those reads was a cache miss, and a rehash).
//! - **Free list** threaded through the free entries (an internal flag marks them, their
//!   `control` field links them), so an insert never scans for room.
//! - **Hash once.** A key's hash is fed to SipHash as whole words (the same hash as its
//!   bytes), and a lookup that misses can keep it in [`Hints`] for the insert of the
//!   same key ([`ConnTable::lookup_in_with`], [`ConnTable::insert_with`]).
//! - **Address filters**: per table, 64 counters of the virtual addresses of the
//!   in-indexed entries and 64 of the real-server addresses of the out-indexed ones
//!   (an unkeyed bucket of the address). A lookup whose address falls in an empty
//!   bucket misses without hashing: a reply skips the client-side lookup, a new
//!   client's packet the reply lookup. The counters follow every insert and removal.
//! - **Out keys placed by their local end.** An out key's home slot is in the cache
//!   line of index that the keyed hash of its local end alone (protocol, `laddr`,
//!   `lport`) names, as the kernel hashes a connection by its client end; the slot
//!   within that line of 16, and the tag bits, are mixed with the real-server pair
//!   (`Key::out_hash`). That line is so known before the real server is scheduled:
//!   for a NAT connection it is the client end's, for a FULLNAT one the line of the
//!   local end the director will try first, and [`ConnTable::prepare_out_end`] reads
//!   it then, so that the read overlaps the scheduling instead of waiting after it.
//!   Keys of one local end towards different real servers (a NAT client with
//!   connections to several services, a FULLNAT local port reused towards several
//!   real servers) mostly differ in home slot and in tag, so they neither pile up
//!   behind one slot nor need their entries read to be told apart. From
//!   [`MAX_PROBE`] to [`MAX_PROBE`]` + 15` of them fit their windows, and a further
//!   one gets [`InsertError::ProbeWindowFull`] (the director's FULLNAT port choice
//!   then moves to another port, [`ConnTable::out_vacant_with`]).
//! - **In-place updates**: [`ConnTable::entry_mut`] changes the non-key fields of an
//!   entry with one access.
//! - **Amortised expiry**: [`ConnTable::sweep`] and [`ConnTable::find_victim`] walk the
//!   storage from a cursor, round and round, examining at most `budget` entries a call.
//!
//! ## Templates
//! A persistence template (flag [`ConnFlags::TEMPLATE`]) is indexed in the in index
//! under `(TEMPLATE, proto, caddr, vaddr, vport)`: its `cport` is not part of the key, and
//! the TEMPLATE marker is hashed and compared, so a template never collides with a flow
//! (and [`ConnTable::lookup_in`] never returns one). The caller masks `caddr` with the
//! service's persistence netmask before inserting and before
//! [`ConnTable::lookup_template`], and passes `vport` 0 for a port-zero ("all ports")
//! service, as IPVS does. A template cannot be out-indexed.
//!
//! ## Control links
//! `control` says which entry controls a connection (its persistence template, or an
//! FTP control connection); `n_control` counts the entries an entry controls. The table
//! keeps the two in step, as the kernel's `ip_vs_control_add` / `ip_vs_control_del`:
//! [`ConnTable::insert`] links a connection to the live entry named in its `control`
//! (incrementing that entry's `n_control`), removal unlinks it, and `n_control` is the
//! table's alone (it is reset on insert and cannot be changed through
//! [`ConnTable::update`]). As in the kernel's `ip_vs_conn_expire` ("do I control
//! anybody?"), an entry with `n_control > 0` is never removed: [`ConnTable::remove`]
//! refuses it, [`ConnTable::sweep`] keeps it even if told to remove it, and
//! [`ConnTable::find_victim`] never picks it. Links therefore never dangle, and a
//! `ConnId` held in `control` always names the live controller.
//!
//! ## Guarantees
//! - No allocation, no `unsafe`, no panic on any input (every slice access is checked;
//!   an invariant violation degrades to "not found", never to a panic).
//! - Every loop is bounded: by [`MAX_PROBE`] for a probe, by the index length for a
//!   backward shift, by `budget` for a sweep.
//! - Key fields (`proto`, the four address/port pairs, `TEMPLATE` and `OUT_INDEXED`)
//!   never change while an entry is indexed: they are only written by `insert`.
//! - Capacity is fixed at construction: at most [`MAX_CAPACITY`] entries.
//! - A [`ConnId`] is the entry's index in the storage: stable while the entry lives,
//!   reused after it is removed (the free list is LIFO).
//! - The table is `Send` and `Sync`: lookups take `&self`, changes `&mut self` (the
//!   caller shares it as it likes: a lock, or one table per core).
//!
//! ## Complexity
//! `new` and `clear` are O(capacity + index length). `lookup_*`, `insert`, `remove`,
//! `get` and `update` are O(1) expected (at most one SipHash and at most [`MAX_PROBE`]
//! slot reads per index; `remove` hashes the removed entry's keys, and its backward
//! shift reads only index slots).
//! `sweep` and `find_victim` are O(`budget`) plus O(1) expected per removal. `iter` is
//! O(capacity).
//!
//! ## Memory per entry
//! With each index at the minimum 2 slots per entry (4 bytes a slot):
//!
//! | family | `Conn` | in index | out index | total per entry |
//! |---|---|---|---|---|
//! | IPv4 | 44 bytes | 8 bytes | 8 bytes | **60 bytes** |
//! | IPv6 | 92 bytes | 8 bytes | 8 bytes | **108 bytes** |
//!
//! (When the capacity is not a power of two, [`index_len_for`] rounds the index up.)
//! One million IPv4 connections take 60 MiB; 4,096 take 240 KiB. The expiry is a 32-bit
//! [`Deadline`] (4 bytes, not 8): see its docs for how the director keeps it comparable.

use core::fmt;
use core::hash::Hasher;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::{BitAnd, BitOr, BitOrAssign};
use core::sync::atomic::{AtomicU32, Ordering};

use siphasher::sip::SipHasher13;

use crate::service::{DestId, Method};
use crate::time::{Deadline, Instant};

/// The longest probe: an entry sits at most `MAX_PROBE - 1` slots after its home slot.
///
/// 32 slots are 128 bytes of index, two or three cache lines. Measured with random keys
/// in a full table of 2^20 IPv4 entries (index load 1/2), remove-one-insert-one churn
/// gives [`InsertError::ProbeWindowFull`] for 0.014 % of inserts with 32, and 0.6 % with
/// 16; lookups cost the same (a miss stops at the first empty slot).
pub const MAX_PROBE: usize = 32;

/// The largest capacity a table accepts (index slots hold `id + 1` in 23 bits):
/// 8,388,606 entries.
pub const MAX_CAPACITY: usize = (1 << ID_BITS) - 2;

/// The identifier of an entry: its index in the entry storage, stable while it lives.
/// After removal the same id may be given to a new connection.
pub type ConnId = u32;

/// "No connection", for [`Conn::control`].
pub const NO_CONN: ConnId = u32::MAX;

/// Bits of an index slot that hold `id + 1` (the low ones).
const ID_BITS: u32 = 23;
const ID_MASK: u32 = (1 << ID_BITS) - 1;
/// Bits of an index slot that hold its distance from its key's home slot (the next
/// ones): up to `MAX_PROBE - 1`.
const DIST_BITS: u32 = 5;
const DIST_MASK: u32 = ((1 << DIST_BITS) - 1) << ID_BITS;
/// Bits of an index slot that hold the tag, the hash's top bits (the rest, at the top).
const TAG_BITS: u32 = 32 - ID_BITS - DIST_BITS;
/// Index slots in a 64-byte cache line.
const LINE_SLOTS: u64 = 16;
const _: () = assert!(MAX_PROBE <= 1 << DIST_BITS && TAG_BITS >= 4);

/// The smallest valid index length for `capacity` entries: the next power of two at
/// least `2 * capacity` (0 if that does not fit a `usize`).
pub const fn index_len_for(capacity: usize) -> usize {
    match capacity.saturating_mul(2).checked_next_power_of_two() {
        Some(n) => n,
        None => 0,
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for core::net::Ipv4Addr {}
    impl Sealed for core::net::Ipv6Addr {}
}

/// An address family usable in a connection: [`Ipv4Addr`] and [`Ipv6Addr`].
///
/// Sealed: a table is monomorphic in its family, so an IPv4 table stores 4-byte
/// addresses, not a 17-byte `IpAddr`.
pub trait FlowAddr: Copy + Eq + fmt::Debug + sealed::Sealed {
    /// The unspecified address (`0.0.0.0` or `::`).
    const UNSPECIFIED: Self;
    /// The address's bytes, as hashed.
    type Octets: AsRef<[u8]> + Copy;
    /// The address as an [`IpAddr`].
    fn to_ip(self) -> IpAddr;
    /// The address of this family in `a`, `None` for the other family (an IPv4-mapped
    /// IPv6 address is not converted).
    fn from_ip(a: &IpAddr) -> Option<Self>;
    /// The address's bytes in network order, the form the table hashes.
    fn key_octets(self) -> Self::Octets;
}

impl FlowAddr for Ipv4Addr {
    const UNSPECIFIED: Self = Ipv4Addr::UNSPECIFIED;
    type Octets = [u8; 4];
    #[inline]
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(self)
    }
    #[inline]
    fn from_ip(a: &IpAddr) -> Option<Self> {
        match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        }
    }
    #[inline]
    fn key_octets(self) -> [u8; 4] {
        self.octets()
    }
}

impl FlowAddr for Ipv6Addr {
    const UNSPECIFIED: Self = Ipv6Addr::UNSPECIFIED;
    type Octets = [u8; 16];
    #[inline]
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(self)
    }
    #[inline]
    fn from_ip(a: &IpAddr) -> Option<Self> {
        match a {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        }
    }
    #[inline]
    fn key_octets(self) -> [u8; 16] {
        self.octets()
    }
}

/// The transport protocol of a connection (its IP protocol number).
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Proto {
    /// TCP (6).
    Tcp = 6,
    /// UDP (17).
    Udp = 17,
}

impl Proto {
    /// The protocol for an IP protocol number, `None` if IPVS does not balance it here.
    #[inline]
    pub const fn from_u8(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }

    /// The IP protocol number.
    #[inline]
    pub const fn number(self) -> u8 {
        self as u8
    }
}

/// Flags of a connection (a small subset of the kernel's `IP_VS_CONN_F_*`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnFlags(pub u8);

impl ConnFlags {
    /// No flag.
    pub const NONE: ConnFlags = ConnFlags(0);
    /// A persistence template (indexed under the template key; see the module docs).
    /// Fixed at insert.
    pub const TEMPLATE: ConnFlags = ConnFlags(0x01);
    /// Counted as inactive at its real server (the kernel's `IP_VS_CONN_F_INACTIVE`).
    pub const INACTIVE: ConnFlags = ConnFlags(0x02);
    /// Also indexed from the real-server side, for NAT and FULLNAT replies. Fixed at
    /// insert.
    pub const OUT_INDEXED: ConnFlags = ConnFlags(0x04);
    /// UDP one-packet scheduling (`ipvsadm -o`).
    pub const ONE_PACKET: ConnFlags = ConnFlags(0x08);
    /// Reserved for the table (it marks free entries): `insert` and `update` clear it,
    /// and no entry the table hands out has it.
    pub const RESERVED: ConnFlags = ConnFlags(0x80);

    /// Flags that only `insert` sets.
    const PROTECTED: ConnFlags = ConnFlags(0x01 | 0x04 | 0x80);

    /// Whether every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: ConnFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags and those of `other`.
    #[inline]
    pub const fn union(self, other: ConnFlags) -> ConnFlags {
        ConnFlags(self.0 | other.0)
    }

    /// These flags without those of `other`.
    #[inline]
    pub const fn difference(self, other: ConnFlags) -> ConnFlags {
        ConnFlags(self.0 & !other.0)
    }

    /// Sets the flags of `other`.
    #[inline]
    pub fn insert(&mut self, other: ConnFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    #[inline]
    pub fn remove(&mut self, other: ConnFlags) {
        self.0 &= !other.0;
    }

    /// Sets or clears the flags of `other`.
    #[inline]
    pub fn set(&mut self, other: ConnFlags, on: bool) {
        if on {
            self.insert(other);
        } else {
            self.remove(other);
        }
    }
}

impl BitOr for ConnFlags {
    type Output = ConnFlags;
    #[inline]
    fn bitor(self, rhs: ConnFlags) -> ConnFlags {
        self.union(rhs)
    }
}

impl BitOrAssign for ConnFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: ConnFlags) {
        self.insert(rhs);
    }
}

impl BitAnd for ConnFlags {
    type Output = ConnFlags;
    #[inline]
    fn bitand(self, rhs: ConnFlags) -> ConnFlags {
        ConnFlags(self.0 & rhs.0)
    }
}

/// One connection (or persistence template): the kernel's `ip_vs_conn`, reduced to what
/// the data plane needs. 44 bytes for IPv4, 92 for IPv6.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Conn<A: FlowAddr> {
    /// Transport protocol. Key field.
    pub proto: Proto,
    /// Flags; `TEMPLATE` and `OUT_INDEXED` are fixed at insert.
    pub flags: ConnFlags,
    /// `conn::state`'s `TcpState` as `u8`; 0 for UDP.
    pub state: u8,
    /// How packets reach the real server.
    pub method: Method,
    /// Client address. Key field.
    pub caddr: A,
    /// Client port (not part of a template's key). Key field.
    pub cport: u16,
    /// Virtual service address. Key field.
    pub vaddr: A,
    /// Virtual service port. Key field.
    pub vport: u16,
    /// Real server address. Key field.
    pub daddr: A,
    /// Real server port. Key field.
    pub dport: u16,
    /// The client as the real server sees it: the FULLNAT local address; for other
    /// methods equal to `caddr`. Key field.
    pub laddr: A,
    /// The FULLNAT local port; for other methods equal to `cport`. Key field.
    pub lport: u16,
    /// The virtual service's index in the caller's service storage.
    pub service: u16,
    /// The real server's index.
    pub dest: DestId,
    /// The entry controlling this one (its persistence template), [`NO_CONN`] for none.
    /// Linked by `insert`, unlinked by removal; see the module docs.
    pub control: ConnId,
    /// How many live entries this one controls. Kept by the table.
    pub n_control: u16,
    /// When it expires (the caller's clock, in 32 bits: see [`Deadline`]).
    pub expires: Deadline,
}

impl<A: FlowAddr> Conn<A> {
    /// An empty value, for initialising storage (`[Conn::empty(); N]`): TCP, no flags,
    /// unspecified addresses, port 0, method `Masq`, no control, expiring at zero.
    pub const fn empty() -> Self {
        Conn {
            proto: Proto::Tcp,
            flags: ConnFlags::NONE,
            state: 0,
            method: Method::Masq,
            caddr: A::UNSPECIFIED,
            cport: 0,
            vaddr: A::UNSPECIFIED,
            vport: 0,
            daddr: A::UNSPECIFIED,
            dport: 0,
            laddr: A::UNSPECIFIED,
            lport: 0,
            service: 0,
            dest: 0,
            control: NO_CONN,
            n_control: 0,
            expires: Deadline::ZERO,
        }
    }

    /// Whether it is a persistence template.
    #[inline]
    pub const fn is_template(&self) -> bool {
        self.flags.contains(ConnFlags::TEMPLATE)
    }

    /// Whether it is indexed from the real-server side.
    #[inline]
    pub const fn is_out_indexed(&self) -> bool {
        self.flags.contains(ConnFlags::OUT_INDEXED)
    }

    /// A free entry (the table's mark).
    #[inline]
    const fn is_free(&self) -> bool {
        self.flags.contains(ConnFlags::RESERVED)
    }

    /// A free entry linking to `next`.
    const fn free_entry(next: ConnId) -> Self {
        let mut c = Self::empty();
        c.flags = ConnFlags::RESERVED;
        c.control = next;
        c
    }
}

impl<A: FlowAddr> Default for Conn<A> {
    fn default() -> Self {
        Self::empty()
    }
}

/// The fields [`ConnTable::update`] may change: none of them is part of a key.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnData {
    /// The state machine's state.
    pub state: u8,
    /// Flags; changes to `TEMPLATE`, `OUT_INDEXED` and `RESERVED` are ignored.
    pub flags: ConnFlags,
    /// Forwarding method.
    pub method: Method,
    /// Virtual service index.
    pub service: u16,
    /// Real server index.
    pub dest: DestId,
    /// Expiry.
    pub expires: Deadline,
}

impl ConnData {
    fn of<A: FlowAddr>(c: &Conn<A>) -> ConnData {
        ConnData {
            state: c.state,
            flags: c.flags,
            method: c.method,
            service: c.service,
            dest: c.dest,
            expires: c.expires,
        }
    }

    fn apply<A: FlowAddr>(&self, c: &mut Conn<A>) {
        c.state = self.state;
        c.flags = self
            .flags
            .difference(ConnFlags::PROTECTED)
            .union(c.flags & ConnFlags::PROTECTED);
        c.method = self.method;
        c.service = self.service;
        c.dest = self.dest;
        c.expires = self.expires;
    }
}

/// What [`ConnTable::sweep`]'s callback decides for an expired entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Expire {
    /// Remove it (the callback has updated the caller's counters).
    Remove,
    /// Keep it (the callback re-armed `expires`, e.g. a template that still controls
    /// connections).
    Keep,
}

/// Why [`ConnTable::new`] refused its storage.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TableError {
    /// The entry storage is empty.
    ZeroCapacity,
    /// The entry storage is longer than [`MAX_CAPACITY`].
    CapacityTooLarge,
    /// The in index is not a power of two at least twice the capacity.
    InIndexLen,
    /// The out index is not a power of two at least twice the capacity.
    OutIndexLen,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TableError::ZeroCapacity => "connection table: no entry storage",
            TableError::CapacityTooLarge => "connection table: more than 2^23 - 2 entries",
            TableError::InIndexLen => {
                "connection table: in index not a power of two >= 2 x capacity"
            }
            TableError::OutIndexLen => {
                "connection table: out index not a power of two >= 2 x capacity"
            }
        })
    }
}

impl core::error::Error for TableError {}

/// Why [`ConnTable::insert`] gave a connection back.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InsertError {
    /// Every entry is in use (see [`ConnTable::find_victim`]).
    Full,
    /// No empty index slot within [`MAX_PROBE`] of the key's home slot.
    ProbeWindowFull,
    /// An entry with the same key (in key, or out key when out-indexed) is present.
    Duplicate,
    /// `TEMPLATE` and `OUT_INDEXED` together: a template is never out-indexed.
    TemplateOutIndexed,
    /// `control` names no live entry.
    BadControl,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InsertError::Full => "connection table full",
            InsertError::ProbeWindowFull => "connection table probe window full",
            InsertError::Duplicate => "connection already in the table",
            InsertError::TemplateOutIndexed => "a template cannot be out-indexed",
            InsertError::BadControl => "controlling connection not in the table",
        })
    }
}

impl core::error::Error for InsertError {}

/// What is hashed and compared, and how.
#[derive(Copy, Clone, PartialEq, Eq)]
enum KeyKind {
    Flow = 0,
    Template = 1,
    /// An out key. Hashed by its local end ([`Key::out_hash`]).
    Out = 2,
    /// Only hashed, never stored: the kind of a local end's hash ([`Key::end_hash`]).
    OutEnd = 3,
}

/// A lookup key: the kind, the protocol and two address/port pairs.
#[derive(Copy, Clone, PartialEq, Eq)]
struct Key<A> {
    kind: KeyKind,
    proto: Proto,
    a1: A,
    p1: u16,
    a2: A,
    p2: u16,
}

impl<A: FlowAddr> Key<A> {
    /// The in-index key of `c` (a template's or a flow's).
    #[inline]
    fn of_in(c: &Conn<A>) -> Self {
        if c.is_template() {
            Key::template(c.proto, c.caddr, c.vaddr, c.vport)
        } else {
            Key::flow(c.proto, c.caddr, c.cport, c.vaddr, c.vport)
        }
    }

    /// The out-index key of `c`.
    #[inline]
    fn of_out(c: &Conn<A>) -> Self {
        Key::out(c.proto, c.daddr, c.dport, c.laddr, c.lport)
    }

    /// The key whose hash is that of local end `laddr:lport`
    /// ([`KeyKind::OutEnd`], the real-server pair zero): the hash that places every out
    /// key with that local end, whatever its real server.
    #[inline]
    fn local_end(proto: Proto, laddr: A, lport: u16) -> Self {
        Key {
            kind: KeyKind::OutEnd,
            proto,
            a1: A::UNSPECIFIED,
            p1: 0,
            a2: laddr,
            p2: lport,
        }
    }

    /// Whether this out key has local end `end`'s address and port (and protocol).
    #[inline(always)]
    fn same_end(&self, end: &Key<A>) -> bool {
        self.proto == end.proto && self.p2 == end.p2 && self.a2 == end.a2
    }

    #[inline]
    fn flow(proto: Proto, caddr: A, cport: u16, vaddr: A, vport: u16) -> Self {
        Key {
            kind: KeyKind::Flow,
            proto,
            a1: caddr,
            p1: cport,
            a2: vaddr,
            p2: vport,
        }
    }

    #[inline]
    fn template(proto: Proto, caddr: A, vaddr: A, vport: u16) -> Self {
        Key {
            kind: KeyKind::Template,
            proto,
            a1: caddr,
            p1: 0,
            a2: vaddr,
            p2: vport,
        }
    }

    #[inline]
    fn out(proto: Proto, daddr: A, dport: u16, laddr: A, lport: u16) -> Self {
        Key {
            kind: KeyKind::Out,
            proto,
            a1: daddr,
            p1: dport,
            a2: laddr,
            p2: lport,
        }
    }

    /// Whether the live entry `c` has this key. Inlined into every probe, where the
    /// key's kind is known, so that only its own comparison is compiled there.
    #[inline(always)]
    fn matches(&self, c: &Conn<A>) -> bool {
        if c.is_free() || c.proto != self.proto {
            return false;
        }
        match self.kind {
            KeyKind::Flow => {
                !c.is_template()
                    && c.cport == self.p1
                    && c.vport == self.p2
                    && c.caddr == self.a1
                    && c.vaddr == self.a2
            }
            KeyKind::Template => {
                c.is_template() && c.vport == self.p2 && c.caddr == self.a1 && c.vaddr == self.a2
            }
            KeyKind::Out | KeyKind::OutEnd => {
                c.is_out_indexed()
                    && c.dport == self.p1
                    && c.lport == self.p2
                    && c.daddr == self.a1
                    && c.laddr == self.a2
            }
        }
    }

    /// The keyed hash of this out key's local end ([`Key::local_end`]): it places
    /// the key (see [`Key::out_hash`]).
    #[inline(always)]
    fn end_hash(&self, hasher: &SipHasher13) -> u64 {
        Key::local_end(self.proto, self.a2, self.p2).hash(hasher)
    }

    /// The hash an out key is indexed under: its local end's keyed hash
    /// ([`Key::end_hash`], given as `end_hash`), with two small parts mixed with the
    /// real-server pair: the tag bits (the top ones), and the home slot's place among
    /// the [`LINE_SLOTS`] slots of its aligned group (one cache line of index). Keys of
    /// one local end towards different real servers so start in the cache line the
    /// end's hash names, which [`ConnTable::prepare_out_end`] reads before the real
    /// server is known, but mostly not in the same slot nor with the same tag: they do
    /// not pile up behind one home slot, and a probe tells them apart without reading
    /// their entries.
    #[inline(always)]
    fn out_hash(&self, end_hash: u64) -> u64 {
        let o = self.a1.key_octets();
        let mut x = u32::from(self.p1);
        for w in o.as_ref().chunks_exact(4) {
            x ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
        // A multiplicative hash's top bits; unkeyed, as the real-server pair is the
        // director's configuration, not a client's choice.
        // Its top 8 bits, rotated so that 4 land on the tag and 4 on the slot's place
        // in its line.
        let m = u64::from(x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mix = !(u64::MAX >> TAG_BITS) | (LINE_SLOTS - 1);
        end_hash ^ (m.rotate_left(LINE_SLOTS.trailing_zeros()) & mix)
    }

    /// The keyed hash: SipHash-1-3 over kind, protocol, then each address and port in
    /// network order.
    #[inline(always)]
    fn hash(self, hasher: &SipHasher13) -> u64 {
        // The key's bytes fed as whole little-endian words: the same byte stream (and so
        // the same hash) as a write per field, without the hasher's buffering of slices.
        let (a1, a2) = (self.a1.key_octets(), self.a2.key_octets());
        let (a1, a2) = (a1.as_ref(), a2.as_ref());
        if let (Ok(a1), Ok(a2)) = (<[u8; 4]>::try_from(a1), <[u8; 4]>::try_from(a2)) {
            // IPv4, 14 bytes: one 8-byte block and a 6-byte tail, straight from the
            // fields, through SipHash-1-3 written out for that length.
            // The bytes kind, proto, a1, p1 (network order) as a little-endian u64.
            let m0 = u64::from(self.kind as u8)
                | u64::from(self.proto as u8) << 8
                | u64::from(u32::from_le_bytes(a1)) << 16
                | u64::from(self.p1.swap_bytes()) << 48;
            let tail = u64::from(u32::from_le_bytes(a2)) | u64::from(self.p2.swap_bytes()) << 32;
            let (k0, k1) = hasher.keys();
            return siphash13_14_outlined(k0, k1, m0, tail);
        }
        self.hash_long(hasher)
    }

    /// [`Key::hash`] of an IPv6 key (38 bytes), out of line: `hash` is inlined into
    /// every lookup, and only its IPv4 part is worth a copy at each (this one would add
    /// about 8 KiB of flash on thumbv7em).
    #[inline(never)]
    fn hash_long(&self, hasher: &SipHasher13) -> u64 {
        let (a1, a2) = (self.a1.key_octets(), self.a2.key_octets());
        let (a1, a2) = (a1.as_ref(), a2.as_ref());
        let mut buf = [0u8; 2 + 16 + 2 + 16 + 2];
        let n = a1.len();
        buf[0] = self.kind as u8;
        buf[1] = self.proto as u8;
        buf[2..2 + n].copy_from_slice(a1);
        buf[2 + n..4 + n].copy_from_slice(&self.p1.to_be_bytes());
        buf[4 + n..4 + 2 * n].copy_from_slice(a2);
        buf[4 + 2 * n..6 + 2 * n].copy_from_slice(&self.p2.to_be_bytes());
        // IPv6, 38 bytes: 4 × 8 + 4 + 2.
        let mut h = *hasher;
        let mut words = buf[..6 + 2 * n].chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            h.write_u64(u64::from_le_bytes(b));
        }
        let mut rest = words.remainder();
        if let Some((b, r)) = rest.split_first_chunk::<4>() {
            h.write_u32(u32::from_le_bytes(*b));
            rest = r;
        }
        if let Some((b, r)) = rest.split_first_chunk::<2>() {
            h.write_u16(u16::from_le_bytes(*b));
            rest = r;
        }
        if let Some(&b) = rest.first() {
            h.write_u8(b);
        }
        h.finish()
    }
}

/// [`siphash13_14`] out of line: the key's words travel in registers, and the caller
/// (a lookup, inlined into the packet path) keeps its own registers for the rest.
#[inline(never)]
fn siphash13_14_outlined(k0: u64, k1: u64, m0: u64, tail: u64) -> u64 {
    siphash13_14(k0, k1, m0, tail)
}

/// SipHash-1-3 (keys `k0`, `k1`) of exactly 14 bytes: the first eight as the
/// little-endian `m0`, the last six as the little-endian `tail` (below 2^48). The value
/// `SipHasher13` gives for the same bytes, without its streaming buffer: one
/// compression round per 8-byte block (the second holds the tail and the length), three
/// finalization rounds.
///
/// This is the hash of every IPv4 key of a [`ConnTable`] (the key's bytes: kind,
/// protocol, address, port, address, port, addresses and ports in network order).
/// Public so that a benchmark's baseline can run the very same code.
#[inline(always)]
pub fn siphash13_14(k0: u64, k1: u64, m0: u64, tail: u64) -> u64 {
    let mut v0 = k0 ^ 0x736f_6d65_7073_6575;
    let mut v1 = k1 ^ 0x646f_7261_6e64_6f6d;
    let mut v2 = k0 ^ 0x6c79_6765_6e65_7261;
    let mut v3 = k1 ^ 0x7465_6462_7974_6573;
    macro_rules! round {
        () => {
            v0 = v0.wrapping_add(v1);
            v1 = v1.rotate_left(13) ^ v0;
            v0 = v0.rotate_left(32);
            v2 = v2.wrapping_add(v3);
            v3 = v3.rotate_left(16) ^ v2;
            v0 = v0.wrapping_add(v3);
            v3 = v3.rotate_left(21) ^ v0;
            v2 = v2.wrapping_add(v1);
            v1 = v1.rotate_left(17) ^ v2;
            v2 = v2.rotate_left(32);
        };
    }
    v3 ^= m0;
    round!();
    v0 ^= m0;
    let b = (14u64 << 56) | tail;
    v3 ^= b;
    round!();
    v0 ^= b;
    v2 ^= 0xff;
    round!();
    round!();
    round!();
    v0 ^ v1 ^ v2 ^ v3
}

/// Which index an operation is on.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Side {
    In,
    Out,
}

impl Side {
    /// The hash `c` is indexed under on this side of `t`.
    #[cfg(test)]
    fn hash_of<A: FlowAddr>(self, c: &Conn<A>, t: &ConnTable<'_, A>) -> u64 {
        match self {
            Side::In => Key::of_in(c).hash(&t.hasher),
            Side::Out => {
                let k = Key::of_out(c);
                t.out_h(&k, k.end_hash(&t.hasher))
            }
        }
    }

    /// The address a side's filter counts: the virtual address of an in key (a flow's
    /// or a template's), the real server's address of an out key.
    #[inline]
    fn filter_addr<A: FlowAddr>(self, k: &Key<A>) -> A {
        match self {
            Side::In => k.a2,
            Side::Out => k.a1,
        }
    }
}

/// Buckets of a table's address filters.
const FILTER_BUCKETS: usize = 64;

/// The filter bucket of an address: its 32-bit words folded, then a multiplicative
/// hash. Not keyed: a bucket only decides whether a lookup is worth hashing (a client
/// whose address shares a virtual address's bucket pays one hash more, nothing else).
#[inline]
fn filter_bucket<A: FlowAddr>(a: A) -> usize {
    let o = a.key_octets();
    let mut x = 0u32;
    for w in o.as_ref().chunks_exact(4) {
        x ^= u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
    }
    (x.wrapping_mul(0x9e37_79b1) >> 26) as usize
}

/// Hashes that lookups computed, kept for an insert of the same keys
/// ([`ConnTable::insert_with`]), so that a new connection hashes each key once: one
/// in key, and one local end (whose hash places every out key with that end), each
/// with its keyed hash.
#[derive(Copy, Clone)]
pub struct Hints<A: FlowAddr> {
    in_key: Option<(Key<A>, u64)>,
    out_end: Option<(Key<A>, u64)>,
}

impl<A: FlowAddr> Hints<A> {
    /// No hash yet.
    pub const fn new() -> Self {
        Hints {
            in_key: None,
            out_end: None,
        }
    }

    /// Keeps the hash `prepared` holds when it is a client-side one, as the hash of
    /// the flow key `(proto, caddr, cport, vaddr, vport)`: a burst's packet whose
    /// read-ahead hashed its key is then not hashed again by
    /// [`ConnTable::lookup_in_with`] and [`ConnTable::insert_with`]. `prepared` must
    /// come from [`ConnTable::prepare`] for this very packet tuple (the caller compares
    /// them): a hash of another key would misplace the insert.
    #[inline]
    pub(crate) fn keep_prepared(
        &mut self,
        prepared: &Prepared,
        proto: Proto,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
    ) {
        if prepared.side == Side::In {
            let key = Key::flow(proto, caddr, cport, vaddr, vport);
            self.keep_in(&key, prepared.hash);
        }
    }

    /// Keeps `h`, the hash of local end `laddr:lport` ([`ConnTable::end_hash`]).
    #[inline]
    pub(crate) fn keep_end(&mut self, proto: Proto, laddr: A, lport: u16, h: u64) {
        self.out_end = Some((Key::local_end(proto, laddr, lport), h));
    }

    /// Keeps the hash `h` of in key `key` (a flow's or a template's).
    #[inline(always)]
    fn keep_in(&mut self, key: &Key<A>, h: u64) {
        self.in_key = Some((*key, h));
    }

    /// The hash of in key `key` if a lookup computed it.
    #[inline(always)]
    fn get_in(&self, key: &Key<A>) -> Option<u64> {
        match &self.in_key {
            Some((k, h)) if k == key => Some(*h),
            _ => None,
        }
    }

    /// The hash of out key `key`'s local end if a lookup computed it: it is that of
    /// every key with the same local end.
    #[inline(always)]
    fn get_end(&self, key: &Key<A>) -> Option<u64> {
        match &self.out_end {
            Some((k, h)) if key.same_end(k) => Some(*h),
            _ => None,
        }
    }
}

impl<A: FlowAddr> Default for Hints<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: FlowAddr> fmt::Debug for Hints<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the hashes: they say something about the seed.
        f.debug_struct("Hints")
            .field("in", &self.in_key.is_some())
            .field("out_end", &self.out_end.is_some())
            .finish()
    }
}

/// A packet's key hashed ahead of its lookup ([`ConnTable::prepare`]): the hash, and
/// which index (client side or real-server side) it is for. Sixteen bytes, so that a
/// burst keeps one per packet at little cost.
#[derive(Copy, Clone)]
pub struct Prepared {
    hash: u64,
    side: Side,
}

impl Prepared {
    /// The hash, when it is a client-side key's (the hash [`ConnTable::in_hash`]
    /// gives for the same key).
    #[inline]
    pub fn in_hash(&self) -> Option<u64> {
        (self.side == Side::In).then_some(self.hash)
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the hash: it says something about the seed.
        let side = match self.side {
            Side::In => "in",
            Side::Out => "out",
        };
        f.debug_struct("Prepared").field("side", &side).finish()
    }
}

/// A live entry, borrowed to change its non-key fields in place
/// ([`ConnTable::entry_mut`]); it reads as the [`Conn`] it is.
pub struct EntryMut<'t, A: FlowAddr> {
    c: &'t mut Conn<A>,
}

impl<A: FlowAddr> core::ops::Deref for EntryMut<'_, A> {
    type Target = Conn<A>;
    #[inline]
    fn deref(&self) -> &Conn<A> {
        self.c
    }
}

impl<A: FlowAddr> EntryMut<'_, A> {
    /// Sets the state machine's state.
    #[inline]
    pub fn set_state(&mut self, state: u8) {
        self.c.state = state;
    }

    /// Sets the flags; changes to `TEMPLATE`, `OUT_INDEXED` and `RESERVED` are ignored,
    /// as in [`ConnTable::update`].
    #[inline]
    pub fn set_flags(&mut self, flags: ConnFlags) {
        self.c.flags = flags
            .difference(ConnFlags::PROTECTED)
            .union(self.c.flags & ConnFlags::PROTECTED);
    }

    /// Sets the expiry.
    #[inline]
    pub fn set_expires(&mut self, expires: Deadline) {
        self.c.expires = expires;
    }
}

/// The tag of a hash: its top bits, in a slot's tag bits.
#[inline]
const fn tag_bits(h: u64) -> u32 {
    ((h >> (64 - TAG_BITS)) as u32) << (32 - TAG_BITS)
}

/// The slot value for entry `id` under hash `h`, `dist` slots after its home slot.
#[inline]
const fn slot_value(h: u64, id: ConnId, dist: usize) -> u32 {
    tag_bits(h) | ((dist as u32) << ID_BITS) & DIST_MASK | (id.wrapping_add(1) & ID_MASK)
}

/// Whether occupied `slot`, `dist` slots after the home slot of hash `h`, may hold a
/// key with that hash: its tag and its distance fit (the id is not compared). A key's
/// slot always fits; 15 of 16 others are told apart by the tag, and most of the rest
/// by the distance.
#[inline]
const fn fits(slot: u32, h: u64, dist: usize) -> bool {
    slot & !ID_MASK == slot_value(h, 0, dist) & !ID_MASK
}

/// How far an occupied slot is from its key's home slot.
#[inline]
const fn slot_dist(slot: u32) -> usize {
    ((slot & DIST_MASK) >> ID_BITS) as usize
}

/// The entry id in an occupied slot (`u32::MAX` for a corrupt zero id field).
#[inline]
const fn slot_id(slot: u32) -> ConnId {
    (slot & ID_MASK).wrapping_sub(1)
}

/// The home slot of hash `h` in an index of `mask + 1` slots.
#[inline]
const fn home_of(h: u64, mask: usize) -> usize {
    (h as usize) & mask
}

/// The value of the home slot of hash `h` in `index` (0 for an empty index).
#[inline]
fn home_value(index: &[u32], h: u64) -> u32 {
    index
        .get(home_of(h, index.len().wrapping_sub(1)))
        .copied()
        .unwrap_or(0)
}

/// The probe window of an index of `len` slots.
#[inline]
const fn window(len: usize) -> usize {
    if len < MAX_PROBE { len } else { MAX_PROBE }
}

/// The result of probing an index for a key.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Probe {
    /// The entry with the key.
    Found(ConnId),
    /// Not present; this is the first empty slot of the window.
    Vacant(usize),
    /// Not present, and no empty slot in the window.
    WindowFull,
}

/// Probes `index` for `key` (whose hash is `h`). Stops at the first empty slot: with
/// backward-shift deletion every slot between an entry's home and the entry is occupied.
#[inline(always)]
fn probe<A: FlowAddr>(index: &[u32], entries: &[Conn<A>], h: u64, key: &Key<A>) -> Probe {
    let mask = index.len().wrapping_sub(1);
    let mut pos = home_of(h, mask);
    for dist in 0..window(index.len()) {
        let Some(&slot) = index.get(pos) else {
            break;
        };
        if slot == 0 {
            return Probe::Vacant(pos);
        }
        if fits(slot, h, dist) {
            let id = slot_id(slot);
            if let Some(c) = entries.get(id as usize)
                && key.matches(c)
            {
                return Probe::Found(id);
            }
        }
        pos = (pos + 1) & mask;
    }
    Probe::WindowFull
}

/// The position of entry `id`'s slot (hash `h`) in `index`.
fn find_slot(index: &[u32], h: u64, id: ConnId) -> Option<usize> {
    let mask = index.len().wrapping_sub(1);
    let mut pos = home_of(h, mask);
    for dist in 0..window(index.len()) {
        match index.get(pos) {
            Some(&s) if s == slot_value(h, id, dist) => return Some(pos),
            Some(&0) | None => return None,
            Some(_) => {}
        }
        pos = (pos + 1) & mask;
    }
    None
}

/// Empties slot `pos` and shifts the following entries back towards their home slots,
/// so that no probe stops early at the hole. Only entries within [`MAX_PROBE`] of the
/// hole can move, so the scan stops there (or at an empty slot). Each slot's home is
/// its position less the distance it holds: no entry is read, no key hashed.
fn delete_slot(index: &mut [u32], pos: usize) {
    let len = index.len();
    let mask = len.wrapping_sub(1);
    let win = window(len);
    let mut hole = pos;
    match index.get_mut(hole) {
        Some(s) => *s = 0,
        None => return,
    }
    let mut j = hole;
    for _ in 0..len {
        j = (j + 1) & mask;
        let gap = j.wrapping_sub(hole) & mask;
        if gap == 0 || gap >= win {
            break;
        }
        let slot = match index.get(j) {
            Some(&s) if s != 0 => s,
            _ => break,
        };
        // Movable iff the hole lies in [home, j) (cyclically), home = j - dist: iff the
        // hole is at most `dist` slots back. It then sits `dist - gap` from home.
        let dist = slot_dist(slot);
        if gap <= dist {
            if let Some(s) = index.get_mut(hole) {
                *s = slot & !DIST_MASK | (((dist - gap) as u32) << ID_BITS);
            }
            if let Some(s) = index.get_mut(j) {
                *s = 0;
            }
            hole = j;
        }
    }
}

/// The IPVS connection table over caller storage. See the module docs.
pub struct ConnTable<'a, A: FlowAddr> {
    entries: &'a mut [Conn<A>],
    in_index: &'a mut [u32],
    out_index: &'a mut [u32],
    hasher: SipHasher13,
    /// Per bucket of a virtual address ([`filter_bucket`]), how many in-indexed entries
    /// have it: a lookup in a bucket of 0 misses without hashing. Replies (whose
    /// destination is a client) so skip the client-side lookup they would miss.
    in_filter: [u32; FILTER_BUCKETS],
    /// The same for out-indexed entries by real-server address: a new connection's
    /// packet (whose source is a client) skips the reply lookup.
    out_filter: [u32; FILTER_BUCKETS],
    /// Slots from the start of the out index to its first 64-byte boundary (0 to
    /// `LINE_SLOTS - 1`), added to every out key's hash ([`ConnTable::out_h`]).
    out_line: u64,
    /// Head of the free list, [`NO_CONN`] when full.
    free: ConnId,
    len: u32,
    sweep_cursor: u32,
    /// When the sweep cursor last started a lap of the storage (see
    /// [`ConnTable::lap_overdue`]).
    lap_start: Instant,
    /// `find_victim` takes `&self`; an atomic (plain loads and stores) keeps the table
    /// `Sync`.
    victim_cursor: AtomicU32,
}

impl<A: FlowAddr> fmt::Debug for ConnTable<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the seed, nor a million entries.
        f.debug_struct("ConnTable")
            .field("capacity", &self.entries.len())
            .field("len", &self.len)
            .field("in_index", &self.in_index.len())
            .field("out_index", &self.out_index.len())
            .finish_non_exhaustive()
    }
}

impl<'a, A: FlowAddr> ConnTable<'a, A> {
    /// A table over `entries` (its length is the capacity, 1 to [`MAX_CAPACITY`]) and two
    /// index slices, each a power of two at least `2 * entries.len()` long
    /// ([`index_len_for`]). `seed` is the per-instance SipHash key: draw it from a random
    /// source. Every slice is overwritten (O(capacity + index length)).
    pub fn new(
        entries: &'a mut [Conn<A>],
        in_index: &'a mut [u32],
        out_index: &'a mut [u32],
        seed: [u8; 16],
    ) -> Result<Self, TableError> {
        let cap = entries.len();
        if cap == 0 {
            return Err(TableError::ZeroCapacity);
        }
        if cap > MAX_CAPACITY {
            return Err(TableError::CapacityTooLarge);
        }
        let valid = |n: usize| n.is_power_of_two() && n >= cap.saturating_mul(2);
        if !valid(in_index.len()) {
            return Err(TableError::InIndexLen);
        }
        if !valid(out_index.len()) {
            return Err(TableError::OutIndexLen);
        }
        // The slots before the out index's first 64-byte boundary (its slots are 4
        // bytes, so the address is a multiple of 4): only the address is read.
        let out_line = (64 - out_index.as_ptr() as usize % 64) % 64 / 4;
        let mut t = ConnTable {
            entries,
            in_index,
            out_index,
            hasher: SipHasher13::new_with_key(&seed),
            in_filter: [0; FILTER_BUCKETS],
            out_filter: [0; FILTER_BUCKETS],
            out_line: out_line as u64,
            free: NO_CONN,
            len: 0,
            sweep_cursor: 0,
            lap_start: Instant::ZERO,
            victim_cursor: AtomicU32::new(0),
        };
        t.clear();
        Ok(t)
    }

    /// Removes every entry at once (a flush), without regard to control links.
    /// O(capacity + index length).
    pub fn clear(&mut self) {
        self.in_index.fill(0);
        self.out_index.fill(0);
        self.in_filter = [0; FILTER_BUCKETS];
        self.out_filter = [0; FILTER_BUCKETS];
        let cap = self.entries.len();
        for (i, e) in self.entries.iter_mut().enumerate() {
            let next = i + 1;
            *e = Conn::free_entry(if next < cap { next as ConnId } else { NO_CONN });
        }
        self.free = 0;
        self.len = 0;
        self.sweep_cursor = 0;
        self.victim_cursor.store(0, Ordering::Relaxed);
    }

    /// How many entries it can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// How many entries it holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it holds no entry.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every entry is in use.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.free == NO_CONN
    }

    /// Client-side lookup of a flow (never a template): `(proto, caddr, cport, vaddr,
    /// vport)`.
    pub fn lookup_in(
        &self,
        proto: Proto,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
    ) -> Option<ConnId> {
        self.lookup(Side::In, &Key::flow(proto, caddr, cport, vaddr, vport))
    }

    /// The connection a packet `src:sport -> dst:dport` belongs to, as the director's
    /// fast path looks it up: a client-side flow first ([`ConnTable::lookup_in`]), then
    /// a real-server-side one ([`ConnTable::lookup_out`]); `true` with the id when it is
    /// a reply. `prepared`, from [`ConnTable::prepare`] for the same packet, gives the
    /// hash of the key it was made for, which is then not hashed again. Its key is not
    /// compared: a `Prepared` of another packet can only make this lookup miss (a probe
    /// compares every candidate's key), never find another key's entry, and nothing
    /// changes. Without one, each key is hashed as its lookup needs it.
    #[inline(always)]
    pub fn lookup_prepared(
        &self,
        prepared: Option<Prepared>,
        proto: Proto,
        src: A,
        sport: u16,
        dst: A,
        dport: u16,
    ) -> Option<(ConnId, bool)> {
        let key_in = Key::flow(proto, src, sport, dst, dport);
        if let Some(id) = self.lookup_in_prepared(&key_in, prepared) {
            return Some((id, false));
        }
        let key_out = Key::out(proto, src, sport, dst, dport);
        self.lookup_out_key(&key_out, &Hints::new(), prepared)
            .map(|id| (id, true))
    }

    /// A client-side lookup that takes the hash from `prepared` when it was made for
    /// that side. It repeats the filter and probe of [`ConnTable::lookup_hinted`] on
    /// purpose: one helper for both, taking the hash from a closure, cost every
    /// established packet 57 more instructions (callgrind), as the compiler then
    /// inlined the hashing into the fast path.
    #[inline(always)]
    fn lookup_in_prepared(&self, key: &Key<A>, prepared: Option<Prepared>) -> Option<ConnId> {
        if !self.may_hold(Side::In, key) {
            return None;
        }
        let h = match prepared {
            Some(p) if p.side == Side::In => p.hash,
            _ => key.hash(&self.hasher),
        };
        match probe(self.in_index, self.entries, h, key) {
            Probe::Found(id) => Some(id),
            Probe::Vacant(_) | Probe::WindowFull => None,
        }
    }

    /// The real-server-side lookup of out key `key`. The hash comes from `prepared`
    /// when it was made for the out side, else from `hints` when that holds its local
    /// end's. Nothing is kept: a reply's local end is never that of a new connection's
    /// out key (the virtual address's, against the client's or a local address's).
    #[inline(always)]
    fn lookup_out_key(
        &self,
        key: &Key<A>,
        hints: &Hints<A>,
        prepared: Option<Prepared>,
    ) -> Option<ConnId> {
        if !self.may_hold(Side::Out, key) {
            return None;
        }
        let h = match prepared {
            Some(p) if p.side == Side::Out => p.hash,
            _ => self.out_h(key, self.end_hash_with(key, hints)),
        };
        match probe(self.out_index, self.entries, h, key) {
            Probe::Found(id) => Some(id),
            Probe::Vacant(_) | Probe::WindowFull => None,
        }
    }

    /// Readies [`ConnTable::lookup_prepared`] for a packet ahead of it: hashes the key
    /// it will probe first (the client-side one, or the real-server-side one when the
    /// client-side filter rules that out); `None` when the filters rule out both.
    /// Nothing changes: a burst calls this for all its packets, then
    /// [`ConnTable::home_slot`] for all of them, then [`ConnTable::touch_entry`], so
    /// that their memory reads overlap, before it processes them.
    #[inline]
    pub fn prepare(
        &self,
        proto: Proto,
        src: A,
        sport: u16,
        dst: A,
        dport: u16,
    ) -> Option<Prepared> {
        let key_in = Key::flow(proto, src, sport, dst, dport);
        if self.may_hold(Side::In, &key_in) {
            return Some(Prepared {
                hash: key_in.hash(&self.hasher),
                side: Side::In,
            });
        }
        let key_out = Key::out(proto, src, sport, dst, dport);
        if !self.may_hold(Side::Out, &key_out) {
            return None;
        }
        Some(Prepared {
            hash: self.out_h(&key_out, key_out.end_hash(&self.hasher)),
            side: Side::Out,
        })
    }

    /// The hash of local end `laddr:lport`, which places every out key with that end
    /// (see the module docs).
    #[inline]
    pub(crate) fn end_hash(&self, proto: Proto, laddr: A, lport: u16) -> u64 {
        Key::local_end(proto, laddr, lport).hash(&self.hasher)
    }

    /// The hash out key `key` is indexed under, given its local end's: its
    /// [`Key::out_hash`], moved by [`ConnTable::out_line`] slots so that the groups of
    /// [`LINE_SLOTS`] slots that `out_hash` moves a key within are the out index's
    /// cache lines, wherever the caller's slice starts.
    #[inline(always)]
    fn out_h(&self, key: &Key<A>, end_hash: u64) -> u64 {
        key.out_hash(end_hash).wrapping_add(self.out_line)
    }

    /// The hash of the flow key `(proto, caddr, cport, vaddr, vport)` ([`Prepared`]'s
    /// for the client side): from `hints` when a lookup computed it, else computed and
    /// kept there for the insert. The director draws a FULLNAT connection's first
    /// local end from it ([`ConnTable::prepare_out_end`]).
    #[inline]
    pub fn in_hash(
        &self,
        hints: &mut Hints<A>,
        proto: Proto,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
    ) -> u64 {
        let key = Key::flow(proto, caddr, cport, vaddr, vport);
        if let Some(h) = hints.get_in(&key) {
            return h;
        }
        let h = key.hash(&self.hasher);
        hints.keep_in(&key, h);
        h
    }

    /// Whether a connection with out key `(proto, daddr, dport, laddr, lport)` could
    /// be inserted on the out side now: no entry has the key, and its window has an
    /// empty slot. Keeps the local end's hash in `hints`. The director's FULLNAT port
    /// choice asks it of each candidate.
    pub fn out_vacant_with(
        &self,
        hints: &mut Hints<A>,
        proto: Proto,
        daddr: A,
        dport: u16,
        laddr: A,
        lport: u16,
    ) -> bool {
        let key = Key::out(proto, daddr, dport, laddr, lport);
        let end = match hints.get_end(&key) {
            Some(h) => h,
            None => {
                let h = key.end_hash(&self.hasher);
                hints.keep_end(proto, laddr, lport, h);
                h
            }
        };
        matches!(
            probe(self.out_index, self.entries, self.out_h(&key, end), &key),
            Probe::Vacant(_)
        )
    }

    /// The value of the slot that local end hash `h` names in the out index (only a
    /// read): in the cache line where every out key with that end starts.
    #[inline]
    pub(crate) fn out_home_slot(&self, h: u64) -> u32 {
        home_value(self.out_index, h.wrapping_add(self.out_line))
    }

    /// Readies the insert of a connection whose out key will have local end
    /// `laddr:lport`, before its real server is scheduled: keeps in `hints` the hash of
    /// that end, which places the out key whatever its real server (see the module
    /// docs), for [`ConnTable::insert_with`], and reads that hash's home slot in the
    /// out index, whose value it returns (only a read, as [`ConnTable::home_slot`]).
    /// The director calls it once the client-side lookup has missed: with the client's
    /// own end for a service with NAT real servers, with the first local end it will
    /// try for one with FULLNAT real servers. The read is then under way while it
    /// schedules, instead of after.
    #[inline]
    pub fn prepare_out_end(&self, hints: &mut Hints<A>, proto: Proto, laddr: A, lport: u16) -> u32 {
        let h = self.end_hash_with(&Key::local_end(proto, laddr, lport), hints);
        hints.keep_end(proto, laddr, lport, h);
        self.out_home_slot(h)
    }

    /// Reads the home slot, in its index, of the key `prepared` was made for, and
    /// returns the slot's value. Only a read: a burst makes these for all its packets
    /// in one short loop, so that they are all under way together, before
    /// [`ConnTable::touch_entry`].
    #[inline]
    pub fn home_slot(&self, prepared: &Prepared) -> u32 {
        home_value(self.index(prepared.side), prepared.hash)
    }

    /// Reads the entry that a lookup of the key `prepared` was made for will compare
    /// first: the first slot from the key's home whose tag and distance fit the key
    /// (not always the home slot: at half load about a quarter of the keys sit further
    /// on). Returns a byte from each end of it (an entry may straddle two cache lines;
    /// `test_entry_sizes` checks that `caddr` and `method` are its ends), 0 when there
    /// is none: a burst's last round of reads, once the slots have arrived.
    #[inline]
    pub fn touch_entry(&self, prepared: &Prepared) -> u8 {
        self.first_candidate(prepared)
            .and_then(|id| self.entries.get(id as usize))
            .map_or(0, |c| {
                c.caddr.key_octets().as_ref().first().copied().unwrap_or(0) ^ c.method as u8
            })
    }

    /// The entry of the first slot from the home of the key `prepared` was made for
    /// whose tag and distance fit the key: the first entry its lookup compares.
    #[inline]
    fn first_candidate(&self, prepared: &Prepared) -> Option<ConnId> {
        let (index, h) = (self.index(prepared.side), prepared.hash);
        let mask = index.len().wrapping_sub(1);
        let mut pos = home_of(h, mask);
        for dist in 0..window(index.len()) {
            let slot = match index.get(pos) {
                Some(&s) if s != 0 => s,
                _ => return None,
            };
            if fits(slot, h, dist) {
                return Some(slot_id(slot));
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Lookup of a persistence template: `(proto, caddr, vaddr, vport)` with `caddr`
    /// already masked by the persistence netmask and `vport` 0 for a port-zero service.
    pub fn lookup_template(&self, proto: Proto, caddr: A, vaddr: A, vport: u16) -> Option<ConnId> {
        self.lookup(Side::In, &Key::template(proto, caddr, vaddr, vport))
    }

    /// Real-server-side lookup (replies in NAT and FULLNAT) among out-indexed entries:
    /// `(proto, daddr, dport, laddr, lport)`.
    pub fn lookup_out(
        &self,
        proto: Proto,
        daddr: A,
        dport: u16,
        laddr: A,
        lport: u16,
    ) -> Option<ConnId> {
        let key = Key::out(proto, daddr, dport, laddr, lport);
        self.lookup_out_key(&key, &Hints::new(), None)
    }

    /// [`ConnTable::lookup_in`] that keeps the key's hash in `hints` for an insert of
    /// the same key ([`ConnTable::insert_with`]) when the lookup misses.
    pub fn lookup_in_with(
        &self,
        hints: &mut Hints<A>,
        proto: Proto,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
    ) -> Option<ConnId> {
        let key = Key::flow(proto, caddr, cport, vaddr, vport);
        self.lookup_hinted(Side::In, &key, hints)
    }

    /// [`ConnTable::lookup_out`] that takes the hash of the key's local end from
    /// `hints` when they hold it ([`ConnTable::prepare_out_end`]). Nothing is kept: a
    /// reply's local end (a virtual address) is not a new connection's.
    pub fn lookup_out_with(
        &self,
        hints: &Hints<A>,
        proto: Proto,
        daddr: A,
        dport: u16,
        laddr: A,
        lport: u16,
    ) -> Option<ConnId> {
        let key = Key::out(proto, daddr, dport, laddr, lport);
        self.lookup_out_key(&key, hints, None)
    }

    /// Whether an entry with `key` may be in `side`'s index: false when no indexed
    /// entry has the key's filtered address in its bucket.
    #[inline]
    fn may_hold(&self, side: Side, key: &Key<A>) -> bool {
        let f = match side {
            Side::In => &self.in_filter,
            Side::Out => &self.out_filter,
        };
        f.get(filter_bucket(side.filter_addr(key)))
            .is_some_and(|&n| n != 0)
    }

    /// Counts (`add`) or uncounts an indexed key in `side`'s filter.
    #[inline]
    fn filter_add(&mut self, side: Side, key: &Key<A>, add: bool) {
        let f = match side {
            Side::In => &mut self.in_filter,
            Side::Out => &mut self.out_filter,
        };
        if let Some(n) = f.get_mut(filter_bucket(side.filter_addr(key))) {
            *n = if add {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            };
        }
    }

    /// A client-side lookup (a flow's or a template's key).
    #[inline]
    fn lookup(&self, side: Side, key: &Key<A>) -> Option<ConnId> {
        self.lookup_hinted(side, key, &mut Hints::new())
    }

    /// A client-side lookup that keeps the key's hash in `hints` when it misses.
    #[inline(always)]
    fn lookup_hinted(&self, side: Side, key: &Key<A>, hints: &mut Hints<A>) -> Option<ConnId> {
        if !self.may_hold(side, key) {
            return None;
        }
        let h = self.in_hash_with(key, hints);
        match probe(self.index(side), self.entries, h, key) {
            Probe::Found(id) => Some(id),
            Probe::Vacant(_) | Probe::WindowFull => {
                hints.keep_in(key, h);
                None
            }
        }
    }

    /// The hash of in key `key`, from `hints` when a lookup computed it.
    #[inline(always)]
    fn in_hash_with(&self, key: &Key<A>, hints: &Hints<A>) -> u64 {
        match hints.get_in(key) {
            Some(h) => h,
            None => key.hash(&self.hasher),
        }
    }

    /// The hash of out key `key`'s local end, from `hints` when it holds it.
    #[inline(always)]
    fn end_hash_with(&self, key: &Key<A>, hints: &Hints<A>) -> u64 {
        match hints.get_end(key) {
            Some(h) => h,
            None => key.end_hash(&self.hasher),
        }
    }

    #[inline]
    fn index(&self, side: Side) -> &[u32] {
        match side {
            Side::In => self.in_index,
            Side::Out => self.out_index,
        }
    }

    /// Inserts `conn`, indexed from the client side (under the template key when
    /// `TEMPLATE` is set) and from the real-server side when `OUT_INDEXED` is set.
    ///
    /// If `conn.control` is not [`NO_CONN`] it must name a live entry, whose `n_control`
    /// grows by one (past 65535 controlled entries the new one is stored unlinked, with
    /// `control` = [`NO_CONN`]). The stored `n_control` starts at 0 and the `RESERVED`
    /// flag is cleared.
    ///
    /// On error the table is unchanged and `conn` comes back. Checked in this order:
    /// [`InsertError::TemplateOutIndexed`], [`InsertError::BadControl`],
    /// [`InsertError::Full`], then the in index and the out index, each giving
    /// [`InsertError::Duplicate`] or [`InsertError::ProbeWindowFull`].
    pub fn insert(&mut self, conn: Conn<A>) -> Result<ConnId, (Conn<A>, InsertError)> {
        self.insert_with(conn, &Hints::new())
    }

    /// [`ConnTable::insert`] that takes the hash of each key from `hints` when a lookup
    /// of the same key computed it ([`ConnTable::lookup_in_with`],
    /// [`ConnTable::lookup_out_with`]): a new connection's keys are hashed once. A hint
    /// for another key is ignored (the key is hashed), so hints never change the result.
    pub fn insert_with(
        &mut self,
        conn: Conn<A>,
        hints: &Hints<A>,
    ) -> Result<ConnId, (Conn<A>, InsertError)> {
        if conn.is_template() && conn.is_out_indexed() {
            return Err((conn, InsertError::TemplateOutIndexed));
        }
        if conn.control != NO_CONN && self.get(conn.control).is_none() {
            return Err((conn, InsertError::BadControl));
        }
        let id = self.free;
        let next_free = match self.entries.get(id as usize) {
            Some(e) if e.is_free() => e.control,
            _ => return Err((conn, InsertError::Full)),
        };
        let mut new = conn;
        new.flags.remove(ConnFlags::RESERVED);
        new.n_control = 0;

        let in_key = Key::of_in(&new);
        let in_h = self.in_hash_with(&in_key, hints);
        let in_pos = match probe(self.in_index, self.entries, in_h, &in_key) {
            Probe::Vacant(p) => p,
            Probe::Found(_) => return Err((conn, InsertError::Duplicate)),
            Probe::WindowFull => return Err((conn, InsertError::ProbeWindowFull)),
        };
        let out = if new.is_out_indexed() {
            let out_key = Key::of_out(&new);
            let out_h = self.out_h(&out_key, self.end_hash_with(&out_key, hints));
            let pos = match probe(self.out_index, self.entries, out_h, &out_key) {
                Probe::Vacant(p) => p,
                Probe::Found(_) => return Err((conn, InsertError::Duplicate)),
                Probe::WindowFull => return Err((conn, InsertError::ProbeWindowFull)),
            };
            Some((pos, out_h, out_key))
        } else {
            None
        };

        // Nothing below can fail: commit.
        if new.control != NO_CONN {
            match self.entries.get_mut(new.control as usize) {
                Some(ct) if ct.n_control < u16::MAX => ct.n_control += 1,
                _ => new.control = NO_CONN,
            }
        }
        if let Some(e) = self.entries.get_mut(id as usize) {
            *e = new;
        }
        self.free = next_free;
        let in_mask = self.in_index.len().wrapping_sub(1);
        let in_dist = in_pos.wrapping_sub(home_of(in_h, in_mask)) & in_mask;
        if let Some(s) = self.in_index.get_mut(in_pos) {
            *s = slot_value(in_h, id, in_dist);
        }
        self.filter_add(Side::In, &in_key, true);
        if let Some((p, h, out_key)) = out {
            let mask = self.out_index.len().wrapping_sub(1);
            let dist = p.wrapping_sub(home_of(h, mask)) & mask;
            if let Some(s) = self.out_index.get_mut(p) {
                *s = slot_value(h, id, dist);
            }
            self.filter_add(Side::Out, &out_key, true);
        }
        self.len += 1;
        Ok(id)
    }

    /// The live entry `id`.
    #[inline]
    pub fn get(&self, id: ConnId) -> Option<&Conn<A>> {
        self.entries.get(id as usize).filter(|c| !c.is_free())
    }

    /// The live entry `id`, to change its non-key fields in place: one access where
    /// [`ConnTable::get`] then [`ConnTable::update`] make two.
    #[inline]
    pub fn entry_mut(&mut self, id: ConnId) -> Option<EntryMut<'_, A>> {
        match self.entries.get_mut(id as usize) {
            Some(c) if !c.is_free() => Some(EntryMut { c }),
            _ => None,
        }
    }

    /// Changes the non-key fields of entry `id` through `f` (see [`ConnData`]); `false`
    /// if `id` is not live. Key fields, `control` and `n_control` cannot change here.
    pub fn update(&mut self, id: ConnId, f: impl FnOnce(&mut ConnData)) -> bool {
        match self.entries.get_mut(id as usize) {
            Some(c) if !c.is_free() => {
                let mut d = ConnData::of(c);
                f(&mut d);
                d.apply(c);
                true
            }
            _ => false,
        }
    }

    /// Removes entry `id` and returns it, unlinking it from its controller (whose
    /// `n_control` drops by one). `None` if `id` is not live, or if it still controls
    /// entries (`n_control > 0`): remove those first, as IPVS does.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn<A>> {
        let c = *self.get(id)?;
        if c.n_control > 0 {
            return None;
        }
        let in_key = Key::of_in(&c);
        let in_h = in_key.hash(&self.hasher);
        if let Some(pos) = find_slot(self.in_index, in_h, id) {
            delete_slot(self.in_index, pos);
        }
        self.filter_add(Side::In, &in_key, false);
        if c.is_out_indexed() {
            let out_key = Key::of_out(&c);
            let out_h = self.out_h(&out_key, out_key.end_hash(&self.hasher));
            if let Some(pos) = find_slot(self.out_index, out_h, id) {
                delete_slot(self.out_index, pos);
            }
            self.filter_add(Side::Out, &out_key, false);
        }
        if c.control != NO_CONN
            && let Some(ct) = self.entries.get_mut(c.control as usize)
            && !ct.is_free()
        {
            ct.n_control = ct.n_control.saturating_sub(1);
        }
        if let Some(e) = self.entries.get_mut(id as usize) {
            *e = Conn::free_entry(self.free);
        }
        self.free = id;
        self.len = self.len.saturating_sub(1);
        Some(c)
    }

    /// Amortised expiry. Examines at most `budget` entries (free or live; at most one lap
    /// of the storage) from a cursor that walks the storage round and round. For each
    /// live entry with `expires <= now` it calls `on_expire(id, &mut conn)` with a copy:
    /// - [`Expire::Remove`]: the entry is removed (the callback updated the caller's
    ///   counters), unless it still controls entries (`n_control > 0`, visible to the
    ///   callback): such an entry is kept, as in the kernel, and the callback should
    ///   return [`Expire::Keep`] and re-arm it instead;
    /// - [`Expire::Keep`]: the callback's changes to the non-key fields (those of
    ///   [`ConnData`]) are stored; changes to key fields are ignored.
    ///
    /// Returns how many entries were removed.
    pub fn sweep(
        &mut self,
        now: Instant,
        budget: usize,
        on_expire: impl FnMut(ConnId, &mut Conn<A>) -> Expire,
    ) -> usize {
        self.sweep_from_cursor(now, budget, false, on_expire)
    }

    /// Treats every live entry as expired, once round the storage: for a clock that
    /// jumped so far that the entries' 32-bit [`Deadline`]s can no longer be compared
    /// with it (all of them are then past). Otherwise as [`ConnTable::sweep`].
    pub fn sweep_all(
        &mut self,
        now: Instant,
        on_expire: impl FnMut(ConnId, &mut Conn<A>) -> Expire,
    ) -> usize {
        let cap = self.entries.len();
        self.sweep_from_cursor(now, cap, true, on_expire)
    }

    /// Whether the sweep cursor has been on its current lap for more than 2^29 ms
    /// (6.2 days). A caller that sweeps a small budget rarely calls
    /// `sweep(now, capacity, ..)` then, so that every entry is looked at well within the
    /// 24.8 days a [`Deadline`] can be compared over.
    pub fn lap_overdue(&self, now: Instant) -> bool {
        now.saturating_since(self.lap_start).total_millis() > 1 << 29
    }

    fn sweep_from_cursor(
        &mut self,
        now: Instant,
        budget: usize,
        all: bool,
        mut on_expire: impl FnMut(ConnId, &mut Conn<A>) -> Expire,
    ) -> usize {
        let cap = self.entries.len();
        let mut removed = 0;
        for _ in 0..budget.min(cap) {
            let id = self.sweep_cursor;
            let next = id as usize + 1;
            self.sweep_cursor = if next < cap {
                next as u32
            } else {
                self.lap_start = now;
                0
            };
            let Some(c) = self.get(id).copied() else {
                continue;
            };
            if !all && c.expires > now {
                continue;
            }
            let mut seen = c;
            let verdict = on_expire(id, &mut seen);
            // `remove` refuses an entry that controls others: it is then kept.
            if verdict == Expire::Remove && self.remove(id).is_some() {
                removed += 1;
            } else if let Some(e) = self.entries.get_mut(id as usize) {
                ConnData::of(&seen).apply(e);
            }
        }
        removed
    }

    /// A victim to make room when full. Examines at most `budget` entries (at most one
    /// lap) from its own cursor, which then moves past them. The first expired entry
    /// wins; otherwise the one with the earliest `expires` among those for which
    /// `evictable` is true (the caller passes "embryonic and not a template"). An entry
    /// that controls others is never a victim. `None` if none qualifies. The caller
    /// updates its counters and calls [`ConnTable::remove`].
    pub fn find_victim(
        &self,
        now: Instant,
        budget: usize,
        evictable: impl Fn(&Conn<A>) -> bool,
    ) -> Option<ConnId> {
        let cap = self.entries.len();
        let mut i = self.victim_cursor.load(Ordering::Relaxed) as usize;
        if i >= cap {
            i = 0;
        }
        let mut best: Option<(ConnId, Deadline)> = None;
        for _ in 0..budget.min(cap) {
            let id = i as ConnId;
            i = if i + 1 < cap { i + 1 } else { 0 };
            let Some(c) = self.get(id) else {
                continue;
            };
            if c.n_control > 0 {
                continue;
            }
            if c.expires <= now {
                best = Some((id, c.expires));
                break;
            }
            if evictable(c) && best.is_none_or(|(_, e)| c.expires < e) {
                best = Some((id, c.expires));
            }
        }
        self.victim_cursor.store(i as u32, Ordering::Relaxed);
        best.map(|(id, _)| id)
    }

    /// Every live entry with its id, in storage order. O(capacity).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn<A>)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_free())
            .map(|(i, c)| (i as ConnId, c))
    }
}

#[cfg(test)]
impl<A: FlowAddr> ConnTable<'_, A> {
    /// Checks every invariant; panics on the first broken one.
    fn check(&self) {
        use std::vec;
        let cap = self.entries.len();
        let mut live = 0usize;
        let mut out_live = 0usize;
        let mut controlled = vec![0u32; cap];
        for (i, c) in self.entries.iter().enumerate() {
            if c.is_free() {
                continue;
            }
            let id = i as ConnId;
            live += 1;
            assert!(
                !(c.is_template() && c.is_out_indexed()),
                "out-indexed template {id}"
            );
            // Reachable, and the first match of its own key (so keys are unique).
            let k = Key::of_in(c);
            let h = k.hash(&self.hasher);
            assert!(
                find_slot(self.in_index, h, id).is_some(),
                "{id} not in the in index"
            );
            assert_eq!(probe(self.in_index, self.entries, h, &k), Probe::Found(id));
            if c.is_out_indexed() {
                out_live += 1;
                let k = Key::of_out(c);
                let h = self.out_h(&k, k.end_hash(&self.hasher));
                assert!(
                    find_slot(self.out_index, h, id).is_some(),
                    "{id} not in the out index"
                );
                assert_eq!(probe(self.out_index, self.entries, h, &k), Probe::Found(id));
                // A reply's lookup finds it.
                assert_eq!(
                    self.lookup_out(c.proto, c.daddr, c.dport, c.laddr, c.lport),
                    Some(id),
                    "{id} not found by its out key"
                );
            }
            if c.control != NO_CONN {
                assert!(
                    self.get(c.control).is_some(),
                    "{id} controlled by dead {}",
                    c.control
                );
                controlled[c.control as usize] += 1;
            }
        }
        assert_eq!(live, self.len(), "len");
        // The address filters count exactly the indexed keys.
        let (mut fin, mut fout) = ([0u32; FILTER_BUCKETS], [0u32; FILTER_BUCKETS]);
        for c in self.entries.iter().filter(|c| !c.is_free()) {
            fin[filter_bucket(Side::In.filter_addr(&Key::of_in(c)))] += 1;
            if c.is_out_indexed() {
                fout[filter_bucket(Side::Out.filter_addr(&Key::of_out(c)))] += 1;
            }
        }
        assert_eq!(fin, self.in_filter, "in filter");
        assert_eq!(fout, self.out_filter, "out filter");
        for (i, c) in self.entries.iter().enumerate() {
            if !c.is_free() {
                assert_eq!(u32::from(c.n_control), controlled[i], "n_control of {i}");
            }
        }
        // The free list: every free entry once, nothing else.
        let mut seen = vec![false; cap];
        let mut n_free = 0;
        let mut f = self.free;
        while f != NO_CONN {
            let e = &self.entries[f as usize];
            assert!(e.is_free(), "live {f} on the free list");
            assert!(!seen[f as usize], "free list cycle at {f}");
            seen[f as usize] = true;
            n_free += 1;
            f = e.control;
        }
        assert_eq!(n_free, cap - live, "free list length");
        assert_eq!(self.is_full(), live == cap);
        // The indexes: each slot names a live entry within the window of its home slot,
        // with every slot from home to it occupied.
        for (index, side, expect) in [
            (&*self.in_index, Side::In, live),
            (&*self.out_index, Side::Out, out_live),
        ] {
            let mask = index.len() - 1;
            let mut n = 0;
            for (pos, &slot) in index.iter().enumerate() {
                if slot == 0 {
                    continue;
                }
                n += 1;
                let id = slot_id(slot);
                let c = self.get(id).expect("slot names a free entry");
                let h = side.hash_of(c, self);
                let home = home_of(h, mask);
                let dist = pos.wrapping_sub(home) & mask;
                assert!(dist < MAX_PROBE, "entry {id} {dist} slots from home");
                assert_eq!(slot, slot_value(h, id, dist), "tag and distance");
                for d in 0..dist {
                    assert_ne!(index[(home + d) & mask], 0, "hole before {id}");
                }
            }
            assert_eq!(n, expect, "slot count");
        }
    }

    /// The in-index home slot of `c`'s key.
    fn home_in(&self, c: &Conn<A>) -> usize {
        home_of(Key::of_in(c).hash(&self.hasher), self.in_index.len() - 1)
    }

    /// Where entry `id` sits in the in index.
    fn pos_in(&self, id: ConnId) -> Option<usize> {
        let c = self.get(id)?;
        find_slot(self.in_index, Key::of_in(c).hash(&self.hasher), id)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;

    const SEED: [u8; 16] = *b"lvs-conn-table-0";

    /// The key hashed in one write equals the key hashed field by field (so changing how
    /// it is fed never changes where entries live).
    #[test]
    fn single_write_hash_equals_per_field() {
        fn per_field<A: FlowAddr>(k: &Key<A>, h: &SipHasher13) -> u64 {
            let mut h = *h;
            h.write(&[k.kind as u8, k.proto as u8]);
            h.write(k.a1.key_octets().as_ref());
            h.write(&k.p1.to_be_bytes());
            h.write(k.a2.key_octets().as_ref());
            h.write(&k.p2.to_be_bytes());
            h.finish()
        }
        let h = SipHasher13::new_with_key(&SEED);
        let k4 = Key::flow(
            Proto::Tcp,
            Ipv4Addr::new(198, 51, 100, 7),
            40000,
            Ipv4Addr::new(203, 0, 113, 10),
            80,
        );
        assert_eq!(k4.hash(&h), per_field(&k4, &h));
        let k6 = Key::out(
            Proto::Udp,
            "2001:db8::11".parse::<Ipv6Addr>().unwrap(),
            53,
            "2001:db8::1".parse().unwrap(),
            61000,
        );
        assert_eq!(k6.hash(&h), per_field(&k6, &h));
        // An out key's local end hashes the first pair as zeros, with its own kind.
        fn end_zeroed<A: FlowAddr>(k: Key<A>, h: &SipHasher13) {
            let zeroed = Key {
                kind: KeyKind::OutEnd,
                a1: A::UNSPECIFIED,
                p1: 0,
                ..k
            };
            assert_eq!(k.end_hash(h), per_field(&zeroed, h));
            assert_ne!(k.end_hash(h), k.hash(h));
            // The out hash changes only the tag bits and the slot in the line, by the
            // real-server pair.
            let e = k.end_hash(h);
            let kept = !(LINE_SLOTS - 1) << TAG_BITS >> TAG_BITS;
            assert_eq!(k.out_hash(e) & kept, e & kept);
            let other = Key { p1: k.p1 ^ 1, ..k };
            assert_ne!(k.out_hash(e), other.out_hash(e));
        }
        end_zeroed(Key::out(Proto::Tcp, v4(9), 8080, v4(1), 1000), &h);
        end_zeroed(k6, &h);
    }

    /// Owned storage for a table.
    struct Store<A: FlowAddr> {
        entries: Vec<Conn<A>>,
        in_index: Vec<u32>,
        out_index: Vec<u32>,
    }

    impl<A: FlowAddr> Store<A> {
        fn new(cap: usize) -> Self {
            Self::with_index(cap, index_len_for(cap))
        }
        fn with_index(cap: usize, index: usize) -> Self {
            Store {
                entries: vec![Conn::empty(); cap],
                in_index: vec![0; index],
                out_index: vec![0; index],
            }
        }
        fn table(&mut self, seed: [u8; 16]) -> ConnTable<'_, A> {
            ConnTable::new(
                &mut self.entries,
                &mut self.in_index,
                &mut self.out_index,
                seed,
            )
            .unwrap()
        }
    }

    fn v4(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    /// A NAT flow 10.0.0.c:cport -> 10.0.0.100:80 -> 10.0.1.d:8080, out-indexed.
    fn nat(c: u8, cport: u16, d: u8) -> Conn<Ipv4Addr> {
        Conn {
            proto: Proto::Tcp,
            flags: ConnFlags::OUT_INDEXED,
            caddr: v4(c),
            cport,
            vaddr: v4(100),
            vport: 80,
            daddr: Ipv4Addr::new(10, 0, 1, d),
            dport: 8080,
            laddr: v4(c),
            lport: cport,
            expires: Deadline::at(Instant::from_secs(10)),
            ..Conn::empty()
        }
    }

    fn template(c: u8, d: u8) -> Conn<Ipv4Addr> {
        Conn {
            flags: ConnFlags::TEMPLATE,
            caddr: v4(c),
            vaddr: v4(100),
            vport: 80,
            daddr: Ipv4Addr::new(10, 0, 1, d),
            dport: 8080,
            expires: Deadline::at(Instant::from_secs(300)),
            ..Conn::empty()
        }
    }

    #[test]
    fn test_entry_sizes() {
        assert_eq!(core::mem::size_of::<Conn<Ipv4Addr>>(), 44);
        assert_eq!(core::mem::size_of::<Conn<Ipv6Addr>>(), 92);
        // Entry + two indexes at two 4-byte slots per entry: a 4,096-connection IPv4
        // table in 240 KiB.
        assert_eq!(core::mem::size_of::<Conn<Ipv4Addr>>() + 2 * 2 * 4, 60);
        assert!(4096 * (core::mem::size_of::<Conn<Ipv4Addr>>() + 2 * 2 * 4) < 256 * 1024);
        // `touch_entry` reads `caddr` and `method` as the entry's two ends (the compiler
        // chooses the field order): they must be in its first and last 8 bytes, so
        // that an entry straddling two cache lines has both read.
        type C4 = Conn<Ipv4Addr>;
        assert!(core::mem::offset_of!(C4, caddr) < 8);
        assert!(core::mem::offset_of!(C4, method) >= core::mem::size_of::<C4>() - 8);
        // A burst's read-ahead keeps one of these a packet.
        assert_eq!(core::mem::size_of::<Option<Prepared>>(), 16);
        fn send_sync<T: Send + Sync>() {}
        send_sync::<ConnTable<'static, Ipv4Addr>>();
        send_sync::<ConnTable<'static, Ipv6Addr>>();
    }

    #[test]
    fn test_index_len_for() {
        assert_eq!(index_len_for(1), 2);
        assert_eq!(index_len_for(3), 8);
        assert_eq!(index_len_for(4), 8);
        assert_eq!(index_len_for(1 << 20), 1 << 21);
        assert_eq!(index_len_for(usize::MAX), 0);
    }

    #[test]
    fn test_new_validates_storage() {
        let mut e = vec![Conn::<Ipv4Addr>::empty(); 4];
        let (mut i8, mut o8, mut i4, mut o6) = (vec![0; 8], vec![0; 8], vec![0; 4], vec![0; 12]);
        assert_eq!(
            ConnTable::new(&mut e[..0], &mut i8, &mut o8, SEED).unwrap_err(),
            TableError::ZeroCapacity
        );
        assert_eq!(
            ConnTable::new(&mut e, &mut i4, &mut o8, SEED).unwrap_err(),
            TableError::InIndexLen
        );
        assert_eq!(
            ConnTable::new(&mut e, &mut i8, &mut o6, SEED).unwrap_err(),
            TableError::OutIndexLen
        );
        let t = ConnTable::new(&mut e, &mut i8, &mut o8, SEED).unwrap();
        assert_eq!(
            (t.capacity(), t.len(), t.is_empty(), t.is_full()),
            (4, 0, true, false)
        );
        t.check();
    }

    #[test]
    fn test_insert_lookup_both_sides_remove() {
        let mut s = Store::new(8);
        let mut t = s.table(SEED);
        let a = t.insert(nat(1, 1000, 1)).unwrap();
        let mut dr = nat(2, 2000, 2);
        dr.flags = ConnFlags::NONE; // DR: not out-indexed
        let b = t.insert(dr).unwrap();
        t.check();
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup_in(Proto::Tcp, v4(1), 1000, v4(100), 80), Some(a));
        assert_eq!(t.lookup_in(Proto::Udp, v4(1), 1000, v4(100), 80), None);
        assert_eq!(t.lookup_in(Proto::Tcp, v4(1), 1001, v4(100), 80), None);
        assert_eq!(
            t.lookup_out(Proto::Tcp, Ipv4Addr::new(10, 0, 1, 1), 8080, v4(1), 1000),
            Some(a)
        );
        assert_eq!(t.lookup_in(Proto::Tcp, v4(2), 2000, v4(100), 80), Some(b));
        assert_eq!(
            t.lookup_out(Proto::Tcp, Ipv4Addr::new(10, 0, 1, 2), 8080, v4(2), 2000),
            None
        );
        assert_eq!(t.get(a), Some(&nat(1, 1000, 1)));
        assert_eq!(t.iter().count(), 2);

        assert_eq!(t.remove(a), Some(nat(1, 1000, 1)));
        assert_eq!(t.remove(a), None);
        assert_eq!(t.get(a), None);
        assert_eq!(t.lookup_in(Proto::Tcp, v4(1), 1000, v4(100), 80), None);
        assert_eq!(
            t.lookup_out(Proto::Tcp, Ipv4Addr::new(10, 0, 1, 1), 8080, v4(1), 1000),
            None
        );
        assert_eq!(t.get(99), None);
        assert_eq!(t.remove(NO_CONN), None);
        t.check();
    }

    /// Hints carry a missed lookup's hash to the insert of the same key; a hint for
    /// another key is ignored; the filters make lookups of unknown addresses miss
    /// without hashing, and follow inserts and removals.
    #[test]
    fn test_hints_filters_and_entry_mut() {
        let mut s = Store::new(8);
        let mut t = s.table(SEED);
        let c = nat(1, 1000, 1);
        let mut hints = Hints::new();
        // Nothing indexed: both filters are empty, no hash is kept.
        assert_eq!(
            t.lookup_in_with(&mut hints, Proto::Tcp, v4(1), 1000, v4(100), 80),
            None
        );
        assert!(hints.in_key.is_none());
        let other = t.insert(nat(2, 2000, 2)).unwrap();
        // Now the virtual address is indexed: the miss keeps its hash, which is the key's.
        assert_eq!(
            t.lookup_in_with(&mut hints, Proto::Tcp, v4(1), 1000, v4(100), 80),
            None
        );
        let key = Key::of_in(&c);
        assert_eq!(hints.get_in(&key), Some(key.hash(&t.hasher)));
        assert_eq!(hints.get_in(&Key::of_in(&nat(3, 3000, 3))), None);
        // A real server address that is indexed: the out lookup hashes too.
        assert_eq!(
            t.lookup_out_with(
                &hints,
                Proto::Tcp,
                Ipv4Addr::new(10, 0, 1, 2),
                8080,
                v4(1),
                1000
            ),
            None
        );
        assert!(hints.out_end.is_none(), "a reply's lookup keeps nothing");
        let out_key = Key::of_out(&c);
        let h = out_key.end_hash(&t.hasher);
        // Before the real server is known, a NAT connection's out key is placed by its
        // local end (the client's), and that hash's home slot read.
        let mut hints2 = Hints::new();
        let slot = t.prepare_out_end(&mut hints2, Proto::Tcp, v4(1), 1000);
        assert_eq!(hints2.get_end(&out_key), Some(h));
        assert_eq!(hints2.get_end(&Key::of_out(&nat(1, 1001, 1))), None);
        let mask = t.out_index.len() - 1;
        assert_eq!(slot, t.out_index[home_of(h.wrapping_add(t.out_line), mask)]);
        let a = t.insert_with(c, &hints).unwrap();
        t.check();
        assert_eq!(t.lookup_in(Proto::Tcp, v4(1), 1000, v4(100), 80), Some(a));
        // A hint for other keys changes nothing.
        let d = nat(4, 4000, 4);
        let b = t.insert_with(d, &hints).unwrap();
        t.check();
        assert_eq!(t.lookup_in(Proto::Tcp, v4(4), 4000, v4(100), 80), Some(b));
        assert_eq!(
            t.lookup_out(Proto::Tcp, Ipv4Addr::new(10, 0, 1, 4), 8080, v4(4), 4000),
            Some(b)
        );
        // entry_mut changes the non-key fields only.
        let mut e = t.entry_mut(a).unwrap();
        assert_eq!(e.cport, 1000);
        e.set_state(3);
        e.set_expires(Instant::from_secs(77).into());
        e.set_flags(ConnFlags::INACTIVE | ConnFlags::TEMPLATE);
        let g = *t.get(a).unwrap();
        assert_eq!((g.state, g.expires), (3, Instant::from_secs(77).into()));
        assert_eq!(g.flags, ConnFlags::INACTIVE | ConnFlags::OUT_INDEXED);
        t.check();
        assert!(t.entry_mut(99).is_none());
        // Removals empty the filters again.
        for id in [a, b, other] {
            assert!(t.remove(id).is_some());
            t.check();
        }
        assert!(
            t.in_filter
                .iter()
                .chain(t.out_filter.iter())
                .all(|&n| n == 0)
        );
        assert!(t.entry_mut(a).is_none());
    }

    /// A burst's read-ahead reads the entry the lookup will compare first, also for the
    /// keys that do not sit in their home slot.
    #[test]
    fn test_read_ahead_finds_the_entry() {
        let mut s = Store::new(512);
        let mut t = s.table(SEED);
        let mut ids = Vec::new();
        for i in 0..512u16 {
            let c = nat((i % 250) as u8, 1000 + i, 1);
            ids.push((c, t.insert(c).unwrap()));
        }
        let (mut right, mut off_home) = (0, 0);
        for &(c, id) in &ids {
            let p = t
                .prepare(c.proto, c.caddr, c.cport, c.vaddr, c.vport)
                .unwrap();
            let key = Key::of_in(&c);
            let h = key.hash(&t.hasher);
            assert!(p.side == Side::In && p.hash == h);
            let home = t.in_index[home_of(h, t.in_index.len() - 1)];
            assert_eq!(t.home_slot(&p), home);
            let found = t.first_candidate(&p);
            right += usize::from(found == Some(id));
            if slot_id(home) != id {
                off_home += 1;
                // A slot before the key's own can fit its tag and distance (1 in 16).
                assert!(found.is_some());
            }
            // The lookup from it finds the entry, as one without it does.
            let hit = Some((id, false));
            assert_eq!(
                t.lookup_prepared(Some(p), c.proto, c.caddr, c.cport, c.vaddr, c.vport),
                hit
            );
            assert_eq!(
                t.lookup_prepared(None, c.proto, c.caddr, c.cport, c.vaddr, c.vport),
                hit
            );
        }
        // At full load (half the index) many keys sit past their home slot; the
        // read-ahead finds nearly all of them.
        assert!(off_home > 100, "{off_home} keys off their home slot");
        assert!(right >= 512 - 512 / 16, "{right} of 512 found");
        // A packet of no connection: nothing to read ahead when the filters rule it out.
        assert!(t.prepare(Proto::Udp, v4(1), 1, v4(2), 2).is_none());
        // Another packet's `Prepared` makes a lookup miss (or, by chance, find the
        // packet's own entry), never find a wrong entry.
        let mut missed = 0;
        for w in ids.windows(2) {
            let ((c0, id0), (c1, _)) = (w[0], w[1]);
            let p1 = t.prepare(c1.proto, c1.caddr, c1.cport, c1.vaddr, c1.vport);
            let r = t.lookup_prepared(p1, c0.proto, c0.caddr, c0.cport, c0.vaddr, c0.vport);
            assert!(r.is_none() || r == Some((id0, false)));
            missed += usize::from(r.is_none());
        }
        assert!(missed > 400, "{missed} of 511 missed");
        t.check();
    }

    #[test]
    fn test_full_duplicate_and_flag_errors() {
        let mut s = Store::new(3);
        let mut t = s.table(SEED);
        t.insert(nat(1, 1, 1)).unwrap();
        assert_eq!(
            t.insert(nat(1, 1, 2)).unwrap_err(),
            (nat(1, 1, 2), InsertError::Duplicate)
        );
        // Same out key (daddr, dport, laddr, lport), other in key.
        let mut c = nat(1, 1, 1);
        c.vport = 443;
        assert_eq!(t.insert(c).unwrap_err().1, InsertError::Duplicate);
        // Not out-indexed: the out key is not checked.
        c.flags = ConnFlags::NONE;
        t.insert(c).unwrap();
        let mut bad = template(1, 1);
        bad.flags |= ConnFlags::OUT_INDEXED;
        assert_eq!(
            t.insert(bad).unwrap_err().1,
            InsertError::TemplateOutIndexed
        );
        let mut orphan = nat(9, 9, 9);
        orphan.control = 2;
        assert_eq!(t.insert(orphan).unwrap_err().1, InsertError::BadControl);
        t.insert(nat(3, 3, 3)).unwrap();
        assert!(t.is_full());
        assert_eq!(
            t.insert(nat(4, 4, 4)).unwrap_err(),
            (nat(4, 4, 4), InsertError::Full)
        );
        t.check();
        assert_eq!(t.len(), 3);
        // The reserved flag never gets in.
        let id = t.lookup_in(Proto::Tcp, v4(3), 3, v4(100), 80).unwrap();
        t.remove(id).unwrap();
        let mut r = nat(5, 5, 5);
        r.flags |= ConnFlags::RESERVED;
        let id = t.insert(r).unwrap();
        assert_eq!(t.get(id).unwrap().flags, ConnFlags::OUT_INDEXED);
        t.check();
    }

    /// NAT and FULLNAT out keys are placed by their local end: found, prepared for
    /// and removed; one out key is never in the table twice, whatever the kind of
    /// connection that holds it.
    #[test]
    fn test_out_keys_placed_by_local_end() {
        let mut s = Store::new(64);
        let mut t = s.table(SEED);
        let rs = Ipv4Addr::new(10, 0, 1, 1);
        let local = Ipv4Addr::new(10, 9, 0, 1);
        let fullnat = |c: u8, lport: u16| Conn {
            laddr: local,
            lport,
            ..nat(c, 40000 + u16::from(c), 1)
        };
        let (n, f) = (nat(7, 1234, 1), fullnat(8, 5555));
        let (a, b) = (t.insert(n).unwrap(), t.insert(f).unwrap());
        t.check();
        let mask = t.out_index.len() - 1;
        for (c, id) in [(n, a), (f, b)] {
            let k = Key::of_out(&c);
            let end_h = t.end_hash(c.proto, c.laddr, c.lport);
            assert_eq!(end_h, k.end_hash(&t.hasher));
            assert!(find_slot(t.out_index, t.out_h(&k, end_h), id).is_some());
            // Replies: found one packet at a time and from a `Prepared`.
            let reply = (c.proto, rs, 8080, c.laddr, c.lport);
            assert_eq!(
                t.lookup_out(reply.0, reply.1, reply.2, reply.3, reply.4),
                Some(id)
            );
            let p = t
                .prepare(reply.0, reply.1, reply.2, reply.3, reply.4)
                .unwrap();
            assert!(p.side == Side::Out && p.hash == t.out_h(&k, end_h));
            let r = t.lookup_prepared(Some(p), reply.0, reply.1, reply.2, reply.3, reply.4);
            assert_eq!(r, Some((id, true)));
            // A `Prepared` of another packet only makes the lookup miss.
            let other = Prepared {
                hash: !p.hash,
                side: Side::Out,
            };
            let r = t.lookup_prepared(Some(other), reply.0, reply.1, reply.2, reply.3, reply.4);
            assert_eq!(r, None);
        }
        // The same local end towards another real server: the same line of the index.
        let other_rs = t.out_h(
            &Key::of_out(&fullnat(8, 5555)),
            t.end_hash(Proto::Tcp, local, 5555),
        );
        let f2 = Conn {
            daddr: Ipv4Addr::new(10, 0, 1, 2),
            ..fullnat(9, 5555)
        };
        let k2 = t.out_h(&Key::of_out(&f2), t.end_hash(Proto::Tcp, local, 5555));
        // Groups of `LINE_SLOTS` from slot `out_line`, which starts a cache line.
        assert_eq!(
            (t.out_index.as_ptr() as usize + 4 * t.out_line as usize) % 64,
            0
        );
        let line = |h: u64| (home_of(h, mask).wrapping_sub(t.out_line as usize) & mask) / 16;
        let end = t.end_hash(Proto::Tcp, local, 5555).wrapping_add(t.out_line);
        assert_eq!(line(other_rs), line(end));
        assert_eq!(line(k2), line(end));
        let c2 = t.insert(f2).unwrap();
        t.check();
        assert_eq!(
            t.lookup_out(Proto::Tcp, f2.daddr, f2.dport, local, 5555),
            Some(c2)
        );
        // The same out key from a NAT client at the FULLNAT local end, and from a
        // FULLNAT local end at a NAT client's: duplicates.
        let spoof = Conn {
            caddr: local,
            cport: 5555,
            laddr: local,
            lport: 5555,
            ..nat(9, 1, 1)
        };
        assert_eq!(t.insert(spoof).unwrap_err().1, InsertError::Duplicate);
        let clash = Conn {
            laddr: v4(7),
            lport: 1234,
            ..fullnat(10, 1)
        };
        assert_eq!(t.insert(clash).unwrap_err().1, InsertError::Duplicate);
        let mut hints = Hints::new();
        assert!(!t.out_vacant_with(&mut hints, Proto::Tcp, rs, 8080, v4(7), 1234));
        assert!(t.out_vacant_with(&mut hints, Proto::Tcp, rs, 8080, v4(7), 1235));
        t.check();
        // Removals find each entry's slot by the hash it was inserted under.
        assert!(t.remove(a).is_some() && t.remove(b).is_some());
        t.check();
        // With the other entries gone, neither is a duplicate any more.
        let (c, d) = (t.insert(spoof).unwrap(), t.insert(clash).unwrap());
        t.check();
        assert_eq!(t.lookup_out(Proto::Tcp, rs, 8080, local, 5555), Some(c));
        assert_eq!(t.lookup_out(Proto::Tcp, rs, 8080, v4(7), 1234), Some(d));
    }

    /// Connections of one local end start in one cache line of the out index (NAT
    /// ones of one client end, FULLNAT ones of one local address and port): their
    /// windows end at most `LINE_SLOTS - 1` slots apart, so from `MAX_PROBE` to
    /// `MAX_PROBE + LINE_SLOTS - 1` of them fit, the next is refused, and
    /// `out_vacant_with` says so beforehand.
    #[test]
    fn test_one_local_end_fills_one_window() {
        /// Inserts `conn(0)`, `conn(1)`, ... until one is refused; how many fit.
        fn fill(t: &mut ConnTable<'_, Ipv4Addr>, conn: impl Fn(u8) -> Conn<Ipv4Addr>) -> usize {
            let mut hints = Hints::new();
            for n in 0..=u8::MAX {
                let c = conn(n);
                let vacant =
                    t.out_vacant_with(&mut hints, c.proto, c.daddr, c.dport, c.laddr, c.lport);
                match t.insert(c) {
                    Ok(_) => assert!(vacant, "connection {n} fits"),
                    Err((_, e)) => {
                        assert_eq!(e, InsertError::ProbeWindowFull);
                        assert!(!vacant, "connection {n} does not fit");
                        return usize::from(n);
                    }
                }
            }
            panic!("no window filled");
        }
        let mut s = Store::new(512);
        let mut t = s.table(SEED);
        // To another service and another real server each: the out keys differ.
        let n = fill(&mut t, |v| Conn {
            vport: 1000 + u16::from(v),
            daddr: Ipv4Addr::new(10, 0, 1, v),
            ..nat(7, 1234, 1)
        });
        t.check();
        let fit = MAX_PROBE..MAX_PROBE + LINE_SLOTS as usize;
        assert!(fit.contains(&n), "{n} NAT connections of one client end");
        let local = Ipv4Addr::new(10, 9, 0, 1);
        let n = fill(&mut t, |d| Conn {
            laddr: local,
            lport: 5555,
            daddr: Ipv4Addr::new(10, 0, 2, d),
            ..nat(d, 3000 + u16::from(d), 1)
        });
        t.check();
        assert!(fit.contains(&n), "{n} FULLNAT connections of one local end");
        let mut hints = Hints::new();
        let rs = Ipv4Addr::new(10, 0, 2, 200);
        assert!(t.out_vacant_with(&mut hints, Proto::Tcp, rs, 8080, local, 5556));
    }

    #[test]
    fn test_templates_and_flows_never_collide() {
        let mut s = Store::new(8);
        let mut t = s.table(SEED);
        let mut flow = nat(1, 0, 1);
        flow.flags = ConnFlags::NONE; // cport 0, same addresses as the template
        let f = t.insert(flow).unwrap();
        let tp = t.insert(template(1, 1)).unwrap();
        assert_eq!(t.lookup_in(Proto::Tcp, v4(1), 0, v4(100), 80), Some(f));
        assert_eq!(t.lookup_template(Proto::Tcp, v4(1), v4(100), 80), Some(tp));
        assert_eq!(t.lookup_template(Proto::Udp, v4(1), v4(100), 80), None);
        assert_eq!(t.lookup_template(Proto::Tcp, v4(1), v4(100), 0), None);
        // A template's cport is not in its key.
        let mut other = template(1, 2);
        other.cport = 1234;
        assert_eq!(t.insert(other).unwrap_err().1, InsertError::Duplicate);
        t.check();
    }

    #[test]
    fn test_control_links() {
        let mut s = Store::new(8);
        let mut t = s.table(SEED);
        let mut tp = template(1, 1);
        tp.n_control = 7; // the table's to keep: reset
        let tp = t.insert(tp).unwrap();
        assert_eq!(t.get(tp).unwrap().n_control, 0);
        let mut a = nat(1, 1, 1);
        a.control = tp;
        let a = t.insert(a).unwrap();
        let mut b = nat(1, 2, 1);
        b.control = tp;
        let b = t.insert(b).unwrap();
        assert_eq!(t.get(tp).unwrap().n_control, 2);
        t.check();
        // A template that controls connections is not removed...
        assert_eq!(t.remove(tp), None);
        assert!(t.find_victim(Instant::from_secs(1000), 8, |_| true) != Some(tp));
        let mut calls = 0;
        let n = t.sweep(Instant::from_secs(5), 8, |id, _| {
            assert_eq!(id, tp);
            calls += 1;
            Expire::Remove
        });
        // (only the template: both flows expire at 10 s, but it at 300 s; make it expired)
        assert_eq!((n, calls), (0, 0));
        t.update(tp, |d| d.expires = Deadline::ZERO);
        let n = t.sweep(Instant::from_secs(5), 8, |id, _| {
            assert_eq!(id, tp);
            calls += 1;
            Expire::Remove
        });
        assert_eq!((n, calls), (0, 1));
        assert!(t.get(tp).is_some());
        // ...until they are gone.
        t.remove(a).unwrap();
        assert_eq!(t.get(tp).unwrap().n_control, 1);
        t.remove(b).unwrap();
        assert_eq!(t.get(tp).unwrap().n_control, 0);
        t.check();
        assert!(t.remove(tp).is_some());
        t.check();
    }

    #[test]
    fn test_update_touches_only_non_key_fields() {
        let mut s = Store::new(4);
        let mut t = s.table(SEED);
        let id = t.insert(nat(1, 1, 1)).unwrap();
        assert!(t.update(id, |d| {
            d.state = 3;
            d.expires = Instant::from_secs(99).into();
            d.dest = 7;
            d.flags = ConnFlags::INACTIVE | ConnFlags::TEMPLATE | ConnFlags::RESERVED;
        }));
        let c = t.get(id).unwrap();
        assert_eq!(
            (c.state, c.dest, c.expires),
            (3, 7, Instant::from_secs(99).into())
        );
        assert_eq!(c.flags, ConnFlags::INACTIVE | ConnFlags::OUT_INDEXED);
        assert!(!t.update(3, |_| {}));
        t.check();
    }

    #[test]
    fn test_sweep_removes_keeps_and_walks_round() {
        let mut s = Store::new(8);
        let mut t = s.table(SEED);
        let mut ids = Vec::new();
        for i in 0..6u8 {
            let mut c = nat(i, u16::from(i), i);
            c.expires = Instant::from_secs(u64::from(i)).into();
            ids.push(t.insert(c).unwrap());
        }
        // At 3 s, entries 0..=3 are expired; keep the odd ones (re-armed), and try to
        // change a key field, which is ignored.
        let mut seen = Vec::new();
        let removed = t.sweep(Instant::from_secs(3), 4, |id, c| {
            seen.push(id);
            if id % 2 == 1 {
                c.expires = Instant::from_secs(100).into();
                c.cport = 9999;
                Expire::Keep
            } else {
                Expire::Remove
            }
        });
        assert_eq!(seen, [0, 1, 2, 3]);
        assert_eq!(removed, 2);
        assert_eq!(t.len(), 4);
        assert_eq!(t.get(1).unwrap().expires, Instant::from_secs(100));
        assert_eq!(t.get(1).unwrap().cport, 1);
        t.check();
        // The cursor goes on from 4, round to 0.
        let mut seen = Vec::new();
        t.sweep(Instant::from_secs(200), 6, |id, _| {
            seen.push(id);
            Expire::Keep
        });
        assert_eq!(seen, [4, 5, 1]);
        // A budget of 0 does nothing.
        assert_eq!(
            t.sweep(Instant::from_secs(500), 0, |_, _| Expire::Remove),
            0
        );
        // A huge budget does one lap.
        assert_eq!(
            t.sweep(Instant::from_secs(500), usize::MAX, |_, _| Expire::Remove),
            4
        );
        assert!(t.is_empty());
        t.check();
    }

    #[test]
    fn test_find_victim() {
        let mut s = Store::new(4);
        let mut t = s.table(SEED);
        for (i, secs, state) in [(0u8, 50u64, 1u8), (1, 30, 0), (2, 20, 1), (3, 40, 0)] {
            let mut c = nat(i, u16::from(i), i);
            c.expires = Instant::from_secs(secs).into();
            c.state = state;
            t.insert(c).unwrap();
        }
        assert!(t.is_full());
        let embryonic = |c: &Conn<Ipv4Addr>| c.state == 0 && !c.is_template();
        // Nothing expired: the earliest evictable (1, at 30 s), not 2 (established).
        assert_eq!(t.find_victim(Instant::from_secs(1), 4, embryonic), Some(1));
        // Nothing evictable in the window.
        assert_eq!(t.find_victim(Instant::from_secs(1), 4, |_| false), None);
        // Expired wins, whatever evictable says: the first expired from the cursor.
        assert_eq!(t.find_victim(Instant::from_secs(45), 4, |_| false), Some(1));
        // The cursor moved past 1: next from 2.
        assert_eq!(t.find_victim(Instant::from_secs(45), 4, |_| false), Some(2));
        // Budget bounds the window: from 3, one entry, 3 not evictable, not expired.
        assert_eq!(t.find_victim(Instant::from_secs(1), 1, |_| false), None);
        assert_eq!(t.find_victim(Instant::from_secs(1), 0, |_| true), None);
        // Expiring exactly now counts as expired (from 0: 2 expires at 20 s).
        assert_eq!(t.find_victim(Instant::from_secs(20), 4, |_| false), Some(2));
        t.check();
    }

    /// Flows whose in-index home slot is `home`, found by brute force over client ports.
    fn colliding(t: &ConnTable<'_, Ipv4Addr>, home: usize, n: usize) -> Vec<Conn<Ipv4Addr>> {
        (0..=u16::MAX)
            .map(|p| nat(1, p, 1))
            .filter(|c| t.home_in(c) == home)
            .take(n)
            .collect()
    }

    #[test]
    fn test_backward_shift_with_colliding_keys() {
        // 8 entries, 16 slots: force a cluster at slot 14 that wraps round to 0.
        let mut s = Store::new(8);
        let mut t = s.table(SEED);
        let at14 = colliding(&t, 14, 3);
        let at15 = colliding(&t, 15, 2);
        let at0 = colliding(&t, 0, 1);
        let a = t.insert(at14[0]).unwrap(); // 14
        let b = t.insert(at14[1]).unwrap(); // 15
        let c = t.insert(at15[0]).unwrap(); // 0
        let d = t.insert(at14[2]).unwrap(); // 1
        let e = t.insert(at0[0]).unwrap(); // 2
        let f = t.insert(at15[1]).unwrap(); // 3
        let pos = |t: &ConnTable<'_, Ipv4Addr>, id| t.pos_in(id).unwrap();
        assert_eq!(
            [a, b, c, d, e, f].map(|id| pos(&t, id)),
            [14, 15, 0, 1, 2, 3]
        );
        t.check();
        // Remove b (15): each following entry moves back one slot, since the hole is
        // always within [home, position): c to 15, d to 0, e to 1, f to 2.
        t.remove(b).unwrap();
        t.check();
        assert_eq!([a, c, d, e, f].map(|id| pos(&t, id)), [14, 15, 0, 1, 2]);
        // Remove a (14): d (home 14) moves back to 14; c stays at its home 15.
        t.remove(a).unwrap();
        t.check();
        assert_eq!([c, d, e, f].map(|id| pos(&t, id)), [15, 14, 0, 1]);
        for id in [c, d, e, f] {
            let k = *t.get(id).unwrap();
            assert_eq!(
                t.lookup_in(k.proto, k.caddr, k.cport, k.vaddr, k.vport),
                Some(id)
            );
        }
        for id in [c, d, e, f] {
            t.remove(id).unwrap();
            t.check();
        }
        assert!(t.is_empty());
        assert!(s.in_index.iter().all(|&x| x == 0));
    }

    #[test]
    fn test_probe_window_is_bounded() {
        // MAX_PROBE + 1 keys with one home near the end of the index (so the window
        // wraps): the last does not fit.
        let mut s = Store::new(4 * MAX_PROBE);
        let mut t = s.table(SEED);
        let home = index_len_for(4 * MAX_PROBE) - 4;
        let keys = colliding(&t, home, MAX_PROBE + 1);
        for k in &keys[..MAX_PROBE] {
            t.insert(*k).unwrap();
        }
        let last = keys[MAX_PROBE];
        assert_eq!(
            t.insert(last).unwrap_err(),
            (last, InsertError::ProbeWindowFull)
        );
        assert_eq!(
            t.lookup_in(Proto::Tcp, last.caddr, last.cport, last.vaddr, last.vport),
            None
        );
        assert_eq!(t.len(), MAX_PROBE);
        t.check();
        // Removing one in the middle makes room again.
        let mid = t
            .lookup_in(Proto::Tcp, keys[5].caddr, keys[5].cport, v4(100), 80)
            .unwrap();
        t.remove(mid).unwrap();
        t.check();
        t.insert(last).unwrap();
        t.check();
    }

    #[test]
    fn test_tiny_table_smaller_than_window() {
        // 1 entry, 2 slots: the window is the whole index.
        let mut s = Store::new(1);
        let mut t = s.table(SEED);
        let a = t.insert(nat(1, 1, 1)).unwrap();
        assert_eq!(t.insert(nat(2, 2, 2)).unwrap_err().1, InsertError::Full);
        assert_eq!(t.lookup_in(Proto::Tcp, v4(2), 2, v4(100), 80), None);
        t.remove(a).unwrap();
        t.insert(nat(2, 2, 2)).unwrap();
        t.check();
    }

    #[test]
    fn test_ipv6() {
        let mut s = Store::<Ipv6Addr>::new(4);
        let mut t = s.table(SEED);
        let c6 = |x: u16| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, x);
        let c = Conn {
            proto: Proto::Udp,
            flags: ConnFlags::OUT_INDEXED,
            method: Method::FullNat,
            caddr: c6(1),
            cport: 5353,
            vaddr: c6(100),
            vport: 53,
            daddr: c6(200),
            dport: 53,
            laddr: c6(50),
            lport: 40000,
            ..Conn::empty()
        };
        let id = t.insert(c).unwrap();
        assert_eq!(t.lookup_in(Proto::Udp, c6(1), 5353, c6(100), 53), Some(id));
        assert_eq!(
            t.lookup_out(Proto::Udp, c6(200), 53, c6(50), 40000),
            Some(id)
        );
        assert_eq!(t.lookup_out(Proto::Udp, c6(200), 53, c6(1), 5353), None);
        t.check();
        assert_eq!(t.remove(id), Some(c));
        t.check();
        assert_eq!(Ipv6Addr::from_ip(&IpAddr::V4(v4(1))), None);
        assert_eq!(Ipv4Addr::from_ip(&v4(1).to_ip()), Some(v4(1)));
        assert_eq!(c6(1).to_ip(), IpAddr::V6(c6(1)));
    }

    #[test]
    fn test_seed_changes_placement() {
        let mut s1 = Store::new(64);
        let mut s2 = Store::new(64);
        let t1 = s1.table(SEED);
        let t2 = s2.table([7; 16]);
        let differs = (0..64u16)
            .filter(|&p| t1.home_in(&nat(1, p, 1)) != t2.home_in(&nat(1, p, 1)))
            .count();
        assert!(differs > 32, "{differs}");
    }

    #[test]
    fn test_clear_and_proto_flags_helpers() {
        let mut s = Store::new(4);
        let mut t = s.table(SEED);
        t.insert(nat(1, 1, 1)).unwrap();
        t.clear();
        assert!(t.is_empty());
        t.check();
        assert_eq!(Proto::from_u8(6), Some(Proto::Tcp));
        assert_eq!(Proto::from_u8(1), None);
        assert_eq!(Proto::Udp.number(), 17);
        let mut f = ConnFlags::NONE;
        f.set(ConnFlags::INACTIVE, true);
        assert!(f.contains(ConnFlags::INACTIVE) && !f.contains(ConnFlags::TEMPLATE));
        f.set(ConnFlags::INACTIVE, false);
        assert_eq!(f, ConnFlags::NONE);
        assert!(std::format!("{t:?}").contains("capacity: 4"));
    }

    // ---- model-based property test ----

    const CAP: usize = 12;

    #[derive(Clone, Debug)]
    struct Spec {
        udp: bool,
        c: u8,
        cport: u8,
        v: u8,
        vport: u8,
        d: u8,
        dport: u8,
        l: u8,
        lport: u8,
    }

    impl Spec {
        fn proto(&self) -> Proto {
            if self.udp { Proto::Udp } else { Proto::Tcp }
        }
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (
            any::<bool>(),
            0..3u8,
            0..3u8,
            0..2u8,
            0..2u8,
            0..2u8,
            0..2u8,
            0..3u8,
            0..3u8,
        )
            .prop_map(|(udp, c, cport, v, vport, d, dport, l, lport)| Spec {
                udp,
                c,
                cport,
                v,
                vport,
                d,
                dport,
                l,
                lport,
            })
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert {
            k: Spec,
            template: bool,
            out: bool,
            control: Option<u8>,
            ttl: u8,
            state: u8,
        },
        LookupIn(Spec),
        LookupTemplate(Spec),
        LookupOut(Spec),
        Remove {
            pick: u8,
            raw: bool,
        },
        Sweep {
            dt: u8,
            budget: u8,
            keep: u8,
        },
        Victim {
            budget: u8,
        },
        Update {
            pick: u8,
            flags: u8,
            ttl: u8,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (
                spec(),
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(any::<u8>()),
                any::<u8>(),
                0..2u8,
            )
                .prop_map(|(k, template, out, control, ttl, state)| Op::Insert {
                    k,
                    // Now and then both flags, which insert refuses.
                    template: template && (!out || ttl % 8 == 0),
                    out,
                    control,
                    ttl,
                    state
                }),
            1 => spec().prop_map(Op::LookupIn),
            1 => spec().prop_map(Op::LookupTemplate),
            1 => spec().prop_map(Op::LookupOut),
            2 => (any::<u8>(), any::<bool>()).prop_map(|(pick, raw)| Op::Remove { pick, raw }),
            2 => (any::<u8>(), any::<u8>(), any::<u8>())
                .prop_map(|(dt, budget, keep)| Op::Sweep { dt, budget, keep }),
            1 => any::<u8>().prop_map(|budget| Op::Victim { budget }),
            1 => (any::<u8>(), any::<u8>(), any::<u8>())
                .prop_map(|(pick, flags, ttl)| Op::Update { pick, flags, ttl }),
        ]
    }

    fn addr(x: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, x)
    }

    fn conn_of(k: &Spec, template: bool, out: bool) -> Conn<Ipv4Addr> {
        let mut flags = ConnFlags::NONE;
        flags.set(ConnFlags::TEMPLATE, template);
        flags.set(ConnFlags::OUT_INDEXED, out);
        Conn {
            proto: k.proto(),
            flags,
            caddr: addr(k.c),
            cport: 1000 + u16::from(k.cport),
            vaddr: addr(100 + k.v),
            vport: 80 + u16::from(k.vport),
            daddr: addr(200 + k.d),
            dport: 8080 + u16::from(k.dport),
            laddr: addr(k.l),
            lport: 1000 + u16::from(k.lport),
            ..Conn::empty()
        }
    }

    type Model = BTreeMap<ConnId, Conn<Ipv4Addr>>;

    fn same_in(a: &Conn<Ipv4Addr>, b: &Conn<Ipv4Addr>) -> bool {
        a.is_template() == b.is_template()
            && a.proto == b.proto
            && a.caddr == b.caddr
            && a.vaddr == b.vaddr
            && a.vport == b.vport
            && (a.is_template() || a.cport == b.cport)
    }

    fn same_out(a: &Conn<Ipv4Addr>, b: &Conn<Ipv4Addr>) -> bool {
        a.is_out_indexed()
            && b.is_out_indexed()
            && a.proto == b.proto
            && a.daddr == b.daddr
            && a.dport == b.dport
            && a.laddr == b.laddr
            && a.lport == b.lport
    }

    fn model_remove(m: &mut Model, id: ConnId) {
        let c = m.remove(&id).unwrap();
        if c.control != NO_CONN {
            m.get_mut(&c.control).unwrap().n_control -= 1;
        }
    }

    fn pick(m: &Model, p: u8) -> Option<ConnId> {
        if m.is_empty() {
            None
        } else {
            m.keys().nth(usize::from(p) % m.len()).copied()
        }
    }

    fn agree(t: &ConnTable<'_, Ipv4Addr>, m: &Model) {
        t.check();
        assert_eq!(t.len(), m.len());
        assert!(t.len() <= t.capacity());
        for (&id, c) in m {
            assert_eq!(t.get(id), Some(c));
            if c.is_template() {
                assert_eq!(
                    t.lookup_template(c.proto, c.caddr, c.vaddr, c.vport),
                    Some(id)
                );
            } else {
                assert_eq!(
                    t.lookup_in(c.proto, c.caddr, c.cport, c.vaddr, c.vport),
                    Some(id)
                );
            }
            if c.is_out_indexed() {
                assert_eq!(
                    t.lookup_out(c.proto, c.daddr, c.dport, c.laddr, c.lport),
                    Some(id)
                );
            }
        }
        assert!(t.iter().all(|(id, c)| m.get(&id) == Some(c)));
    }

    fn run_model(seed: [u8; 16], ops: Vec<Op>) {
        let mut s = Store::new(CAP);
        let mut t = s.table(seed);
        let mut m = Model::new();
        let mut now = Instant::from_secs(1000);
        for op in ops {
            match op {
                Op::Insert {
                    k,
                    template,
                    out,
                    control,
                    ttl,
                    state,
                } => {
                    let mut c = conn_of(&k, template, out);
                    c.expires =
                        (now + crate::time::Duration::from_secs(u64::from(ttl % 32))).into();
                    c.state = state;
                    c.control = match control {
                        None => NO_CONN,
                        Some(200..) => 200, // never live (CAP is 12)
                        Some(p) => pick(&m, p).unwrap_or(NO_CONN),
                    };
                    let expect = if template && out {
                        Some(InsertError::TemplateOutIndexed)
                    } else if c.control != NO_CONN && !m.contains_key(&c.control) {
                        Some(InsertError::BadControl)
                    } else if m.len() == CAP {
                        Some(InsertError::Full)
                    } else if m.values().any(|x| same_in(x, &c)) {
                        Some(InsertError::Duplicate)
                    } else {
                        None
                    };
                    let out_dup = m.values().any(|x| same_out(x, &c));
                    match t.insert(c) {
                        Ok(id) => {
                            assert_eq!(expect, None);
                            assert!(!out_dup);
                            assert!(!m.contains_key(&id));
                            if c.control != NO_CONN {
                                m.get_mut(&c.control).unwrap().n_control += 1;
                            }
                            m.insert(id, c);
                        }
                        Err((back, e)) => {
                            assert_eq!(back, c);
                            match expect {
                                Some(x) => assert_eq!(e, x),
                                None if out_dup => {
                                    assert!(matches!(
                                        e,
                                        InsertError::Duplicate | InsertError::ProbeWindowFull
                                    ))
                                }
                                None => assert_eq!(e, InsertError::ProbeWindowFull),
                            }
                        }
                    }
                }
                Op::LookupIn(k) => {
                    let c = conn_of(&k, false, false);
                    let want = m.iter().find(|(_, x)| same_in(x, &c)).map(|(&id, _)| id);
                    assert_eq!(
                        t.lookup_in(c.proto, c.caddr, c.cport, c.vaddr, c.vport),
                        want
                    );
                }
                Op::LookupTemplate(k) => {
                    let c = conn_of(&k, true, false);
                    let want = m.iter().find(|(_, x)| same_in(x, &c)).map(|(&id, _)| id);
                    assert_eq!(t.lookup_template(c.proto, c.caddr, c.vaddr, c.vport), want);
                }
                Op::LookupOut(k) => {
                    let c = conn_of(&k, false, true);
                    let want = m.iter().find(|(_, x)| same_out(x, &c)).map(|(&id, _)| id);
                    assert_eq!(
                        t.lookup_out(c.proto, c.daddr, c.dport, c.laddr, c.lport),
                        want
                    );
                }
                Op::Remove { pick: p, raw } => {
                    let id = if raw {
                        ConnId::from(p) % (CAP as u32 + 2)
                    } else {
                        pick(&m, p).unwrap_or(0)
                    };
                    let got = t.remove(id);
                    match m.get(&id) {
                        Some(c) if c.n_control == 0 => {
                            assert_eq!(got, Some(*c));
                            model_remove(&mut m, id);
                        }
                        _ => assert_eq!(got, None),
                    }
                }
                Op::Sweep { dt, budget, keep } => {
                    now += crate::time::Duration::from_secs(u64::from(dt % 16));
                    let budget = usize::from(budget % 16);
                    let mut calls = Vec::new();
                    let removed = t.sweep(now, budget, |id, c| {
                        calls.push((id, *c));
                        if keep & (1 << (id % 8)) != 0 {
                            c.expires = (now + crate::time::Duration::from_secs(5)).into();
                            c.cport ^= 0x5555; // ignored
                            c.n_control = 999; // ignored
                            Expire::Keep
                        } else {
                            Expire::Remove
                        }
                    });
                    assert!(calls.len() <= budget);
                    let mut n = 0;
                    for (id, c) in calls {
                        assert!(c.expires <= now);
                        assert_eq!(m.get(&id), Some(&c), "stale callback view of {id}");
                        if keep & (1 << (id % 8)) != 0 {
                            m.get_mut(&id).unwrap().expires =
                                (now + crate::time::Duration::from_secs(5)).into();
                        } else if c.n_control == 0 {
                            model_remove(&mut m, id);
                            n += 1;
                        }
                    }
                    assert_eq!(removed, n);
                }
                Op::Victim { budget } => {
                    let evictable = |c: &Conn<Ipv4Addr>| c.state == 0 && !c.is_template();
                    if let Some(id) = t.find_victim(now, usize::from(budget % 16), evictable) {
                        let c = m[&id];
                        assert_eq!(c.n_control, 0);
                        assert!(c.expires <= now || evictable(&c));
                        assert_eq!(t.remove(id), Some(c));
                        model_remove(&mut m, id);
                    }
                }
                Op::Update {
                    pick: p,
                    flags,
                    ttl,
                } => {
                    let id = pick(&m, p).unwrap_or(0);
                    let ok = t.update(id, |d| {
                        d.flags = ConnFlags(flags);
                        d.expires =
                            (now + crate::time::Duration::from_secs(u64::from(ttl % 32))).into();
                        d.state = flags & 1;
                    });
                    assert_eq!(ok, m.contains_key(&id));
                    if let Some(c) = m.get_mut(&id) {
                        c.flags = ConnFlags(flags)
                            .difference(ConnFlags::PROTECTED)
                            .union(c.flags & ConnFlags::PROTECTED);
                        c.expires =
                            (now + crate::time::Duration::from_secs(u64::from(ttl % 32))).into();
                        c.state = flags & 1;
                    }
                }
            }
            agree(&t, &m);
        }
    }

    /// Keys crowded onto two neighbouring home slots, then arbitrary keys: every insert
    /// either fits within MAX_PROBE of its home (`check` verifies every distance) or fails
    /// with ProbeWindowFull and leaves the table as it was.
    fn run_crowd(seed: [u8; 16], home: usize, extra: &[(u32, u16, u32, u16)]) {
        let mut s = Store::new(64);
        let mut t = s.table(seed);
        let mut keys: Vec<Conn<Ipv4Addr>> = (0..=u16::MAX)
            .map(|p| nat(1, p, 1))
            .filter(|c| {
                let h = t.home_in(c);
                h == home || h == (home + 1) % 128
            })
            .take(2 * MAX_PROBE)
            .collect();
        keys.extend(extra.iter().map(|&(c, cport, v, vport)| Conn {
            caddr: Ipv4Addr::from(c),
            cport,
            vaddr: Ipv4Addr::from(v),
            vport,
            flags: ConnFlags::NONE,
            ..nat(0, 0, 0)
        }));
        let mut ok = 0;
        for &k in &keys {
            let before = t.len();
            match t.insert(k) {
                Ok(_) => ok += 1,
                Err((_, InsertError::ProbeWindowFull)) => {
                    assert_eq!(t.len(), before);
                    let got = t.lookup_in(k.proto, k.caddr, k.cport, k.vaddr, k.vport);
                    assert_eq!(got, None);
                }
                Err((_, InsertError::Duplicate | InsertError::Full)) => {}
                Err((_, e)) => panic!("{e:?}"),
            }
            t.check();
        }
        assert!(ok >= MAX_PROBE);
        // Backward shifts inside the crowded cluster (longer than the window), then
        // the keys again: each is present once, or refused.
        let ids: Vec<ConnId> = t.iter().map(|(id, _)| id).collect();
        for (i, id) in ids.into_iter().enumerate() {
            if !(i + home).is_multiple_of(3) {
                t.remove(id).unwrap();
                t.check();
            }
        }
        for &k in &keys {
            let _ = t.insert(k);
            t.check();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The 14-byte SipHash-1-3 written out equals `SipHasher13` fed the same bytes,
        /// for any key and seed.
        #[test]
        fn prop_siphash13_14_equals_siphasher(
            seed in any::<[u8; 16]>(),
            bytes in any::<[u8; 14]>(),
        ) {
            let h = SipHasher13::new_with_key(&seed);
            let mut s = h;
            s.write(&bytes);
            let mut m0 = [0u8; 8];
            m0.copy_from_slice(&bytes[..8]);
            let mut tail = [0u8; 8];
            tail[..6].copy_from_slice(&bytes[8..]);
            let (k0, k1) = h.keys();
            prop_assert_eq!(
                siphash13_14(k0, k1, u64::from_le_bytes(m0), u64::from_le_bytes(tail)),
                s.finish()
            );
        }

        #[test]
        fn prop_table_matches_model(
            seed in any::<[u8; 16]>(),
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            run_model(seed, ops);
        }

        #[test]
        fn prop_probe_never_exceeds_window(
            seed in any::<[u8; 16]>(),
            home in 0..128usize,
            extra in proptest::collection::vec(any::<(u32, u16, u32, u16)>(), 0..40),
        ) {
            run_crowd(seed, home, &extra);
        }
    }

    /// Fill rates and costs. Run:
    /// `cargo test -p lvs-core --lib --release conn::table::test::measure -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn measure() {
        measure_at(1 << 12, 1 << 12); // index and entries in cache
        measure_at(1 << 20, 1 << 20); // full: index load 1/2
        measure_at(1 << 20, 1 << 19); // half full: index load 1/4
    }

    fn measure_at(cap: usize, fill: usize) {
        use std::time::Instant as Clock;
        let per = |d: std::time::Duration, n: usize| d.as_nanos() as f64 / n.max(1) as f64;
        let mut s = Store::new(cap);
        let mut t = s.table(SEED);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut fresh = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut c = nat(0, x as u16, 1);
            c.caddr = Ipv4Addr::from((x >> 16) as u32);
            c.laddr = c.caddr;
            c.lport = c.cport;
            c
        };
        let mut keys = Vec::with_capacity(fill);
        let mut window_full = 0;
        let start = Clock::now();
        while keys.len() < fill && window_full <= fill {
            let c = fresh();
            match t.insert(c) {
                Ok(id) => keys.push((id, c)),
                Err((_, InsertError::ProbeWindowFull)) => window_full += 1,
                Err(_) => {}
            }
        }
        let ins = start.elapsed();
        std::println!(
            "{cap} entries, {fill} filled, MAX_PROBE {MAX_PROBE}: fill {:.1} ns/insert, \
             ProbeWindowFull {window_full}",
            per(ins, keys.len())
        );
        let start = Clock::now();
        let mut hits = 0;
        for (id, c) in &keys {
            let got = t.lookup_in(c.proto, c.caddr, c.cport, c.vaddr, c.vport);
            hits += usize::from(got == Some(*id));
        }
        let hit = start.elapsed();
        let start = Clock::now();
        let mut found = 0;
        for (_, c) in &keys {
            let got = t.lookup_in(c.proto, c.caddr, c.cport ^ 1, v4(101), c.vport);
            found += usize::from(got.is_some());
        }
        let miss = start.elapsed();
        let start = Clock::now();
        for (id, c) in &keys {
            let got = t.lookup_out(c.proto, c.daddr, c.dport, c.laddr, c.lport);
            hits += usize::from(got == Some(*id));
        }
        let out = start.elapsed();
        assert_eq!((hits, found), (2 * keys.len(), 0));
        std::println!(
            "  lookup_in hit {:.1} ns, miss {:.1} ns; lookup_out hit {:.1} ns",
            per(hit, keys.len()),
            per(miss, keys.len()),
            per(out, keys.len()),
        );
        // Churn at this load: remove one, insert a fresh one.
        let rounds = keys.len();
        let mut churn_full = 0;
        let start = Clock::now();
        for slot in keys.iter_mut() {
            t.remove(slot.0).unwrap();
            loop {
                let c = fresh();
                match t.insert(c) {
                    Ok(nid) => {
                        *slot = (nid, c);
                        break;
                    }
                    Err((_, InsertError::ProbeWindowFull)) => churn_full += 1,
                    Err(_) => {}
                }
            }
        }
        std::println!(
            "  churn {:.1} ns per remove + insert, ProbeWindowFull {churn_full} in {rounds} \
             ({:.4} %)",
            per(start.elapsed(), rounds),
            100.0 * churn_full as f64 / rounds as f64
        );
        let start = Clock::now();
        let removed = t.sweep(Instant::from_secs(100), cap, |_, _| Expire::Remove);
        std::println!(
            "  sweep {:.1} ns per removal",
            per(start.elapsed(), removed)
        );
        assert!(t.is_empty());
    }
}
