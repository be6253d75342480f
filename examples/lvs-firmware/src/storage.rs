//! Static storage: every table of the firmware lives in a `static`, sized by constants,
//! and is handed out once as `&'static mut`. The [`crate::storage!`] macro declares
//! them (the connection table's size is the board's choice; the rest is fixed here).
//!
//! The statics are [`StaticCell`]s, which start uninitialised: they land in `.bss`
//! (zeroed at boot, no flash image) whatever the value they are filled with, and
//! [`fill`] writes them element by element in place, so a 200 KiB table never passes
//! through the stack.

use core::mem::MaybeUninit;

pub use static_cell::StaticCell;

/// Virtual service slots.
pub const SERVICES: usize = 8;
/// Real server slots (all services together).
pub const DESTS: usize = 32;
/// FULLNAT local address slots.
pub const LADDRS: usize = 2;
/// Neighbour cache entries: the real servers, gateways and a few clients.
pub const NEIGHBOURS: usize = 32;
/// Frames held while their next hop is resolved.
pub const HELD: usize = 8;
/// The largest frame the adapter handles (MTU 1500, Ethernet header and an 802.1Q
/// tag).
pub const MAX_FRAME: usize = 1518;
/// Bytes of one hold-queue slot.
pub const HELD_SLOT: usize = MAX_FRAME + lvs_smoltcp::HEADROOM;
/// Bytes of the adapter's working buffer.
pub const SCRATCH: usize = lvs_smoltcp::HEADROOM + MAX_FRAME + 40;
/// smoltcp socket slots (the UDP stats and control ports).
pub const SOCKETS: usize = 2;
/// Datagrams the stats and control sockets queue each way.
pub const STATS_PACKETS: usize = 4;
/// Bytes the stats and control sockets buffer each way.
pub const STATS_BYTES: usize = 2 * 1472;

/// Fills the uninitialised array in `cell` with `f()` element by element, in place, and
/// hands it out as a slice. Panics if `cell` was handed out before.
// The `&'static mut` comes out of a shared `&'static StaticCell`: that is the cell's
// purpose (it checks at run time that it is handed out once).
#[allow(clippy::mut_from_ref)]
pub fn fill<T, const N: usize>(
    cell: &'static StaticCell<[T; N]>,
    mut f: impl FnMut() -> T,
) -> &'static mut [T] {
    let slot: &'static mut MaybeUninit<[T; N]> = cell.uninit();
    let first = slot.as_mut_ptr().cast::<T>();
    for i in 0..N {
        // SAFETY: `slot` is ours alone (StaticCell hands it out once) and holds N
        // elements of T, so `first.add(i)` for i < N is in bounds and aligned; `write`
        // neither reads nor drops the uninitialised value it replaces.
        #[allow(unsafe_code)]
        unsafe {
            first.add(i).write(f())
        };
    }
    // SAFETY: the loop above initialised all N elements; the memory is 'static and,
    // through `slot`, exclusively ours, which the returned borrow takes over.
    #[allow(unsafe_code)]
    unsafe {
        core::slice::from_raw_parts_mut(first, N)
    }
}

/// Declares the firmware's statics and returns them as a [`crate::Storage`]:
/// `storage!(conns_v4 = 4096, conns_v6 = 64)`. Call it once (a second call of the same
/// expansion panics).
#[macro_export]
macro_rules! storage {
    (conns_v4 = $v4:expr, conns_v6 = $v6:expr $(,)?) => {{
        use $crate::__private::*;
        const __FW_V4: usize = $v4;
        const __FW_V6: usize = $v6;
        static __FW_CONNS_V4: StaticCell<[Conn<Ipv4Addr>; __FW_V4]> = StaticCell::new();
        static __FW_IN_V4: StaticCell<[u32; index_len_for(__FW_V4)]> = StaticCell::new();
        static __FW_OUT_V4: StaticCell<[u32; index_len_for(__FW_V4)]> = StaticCell::new();
        static __FW_CONNS_V6: StaticCell<[Conn<Ipv6Addr>; __FW_V6]> = StaticCell::new();
        static __FW_IN_V6: StaticCell<[u32; index_len_for(__FW_V6)]> = StaticCell::new();
        static __FW_OUT_V6: StaticCell<[u32; index_len_for(__FW_V6)]> = StaticCell::new();
        static __FW_SERVICES: StaticCell<
            [Option<Service<'static, DESTS_PER_SERVICE>>; SERVICES_N],
        > = StaticCell::new();
        static __FW_DESTS: StaticCell<[Option<RealServer>; DESTS_N]> = StaticCell::new();
        static __FW_DEST_META: StaticCell<[DestMeta; DESTS_N]> = StaticCell::new();
        static __FW_LADDRS: StaticCell<[Option<IpAddr>; LADDRS_N]> = StaticCell::new();
        static __FW_NEIGHBOURS: StaticCell<[Neighbour; NEIGHBOURS_N]> = StaticCell::new();
        static __FW_HELD: StaticCell<[Held; HELD_N]> = StaticCell::new();
        static __FW_HELD_BYTES: StaticCell<[u8; HELD_N * HELD_SLOT]> = StaticCell::new();
        static __FW_SCRATCH: StaticCell<[u8; SCRATCH_N]> = StaticCell::new();
        static __FW_SOCKETS: StaticCell<[SocketStorage<'static>; SOCKETS_N]> = StaticCell::new();
        static __FW_STATS_RX_META: StaticCell<[PacketMetadata; STATS_PACKETS]> = StaticCell::new();
        static __FW_STATS_TX_META: StaticCell<[PacketMetadata; STATS_PACKETS]> = StaticCell::new();
        static __FW_STATS_RX: StaticCell<[u8; STATS_BYTES]> = StaticCell::new();
        static __FW_STATS_TX: StaticCell<[u8; STATS_BYTES]> = StaticCell::new();
        static __FW_CONTROL_RX_META: StaticCell<[PacketMetadata; STATS_PACKETS]> =
            StaticCell::new();
        static __FW_CONTROL_TX_META: StaticCell<[PacketMetadata; STATS_PACKETS]> =
            StaticCell::new();
        static __FW_CONTROL_RX: StaticCell<[u8; STATS_BYTES]> = StaticCell::new();
        static __FW_CONTROL_TX: StaticCell<[u8; STATS_BYTES]> = StaticCell::new();
        Storage {
            conns_v4: fill(&__FW_CONNS_V4, Conn::empty),
            in_v4: fill(&__FW_IN_V4, || 0),
            out_v4: fill(&__FW_OUT_V4, || 0),
            conns_v6: fill(&__FW_CONNS_V6, Conn::empty),
            in_v6: fill(&__FW_IN_V6, || 0),
            out_v6: fill(&__FW_OUT_V6, || 0),
            services: fill(&__FW_SERVICES, || None),
            dests: fill(&__FW_DESTS, || None),
            dest_meta: fill(&__FW_DEST_META, || DestMeta::EMPTY),
            laddrs: fill(&__FW_LADDRS, || None),
            neighbours: fill(&__FW_NEIGHBOURS, || Neighbour::EMPTY),
            held: fill(&__FW_HELD, || Held::EMPTY),
            held_bytes: fill(&__FW_HELD_BYTES, || 0),
            scratch: fill(&__FW_SCRATCH, || 0),
            sockets: fill(&__FW_SOCKETS, || SocketStorage::EMPTY),
            stats_rx_meta: fill(&__FW_STATS_RX_META, || PacketMetadata::EMPTY),
            stats_tx_meta: fill(&__FW_STATS_TX_META, || PacketMetadata::EMPTY),
            stats_rx: fill(&__FW_STATS_RX, || 0),
            stats_tx: fill(&__FW_STATS_TX, || 0),
            control_rx_meta: fill(&__FW_CONTROL_RX_META, || PacketMetadata::EMPTY),
            control_tx_meta: fill(&__FW_CONTROL_TX_META, || PacketMetadata::EMPTY),
            control_rx: fill(&__FW_CONTROL_RX, || 0),
            control_tx: fill(&__FW_CONTROL_TX, || 0),
        }
    }};
}

/// Bytes of static RAM [`crate::storage!`] takes for `v4` IPv4 and `v6` IPv6
/// connection entries and everything else (the figure BENCHMARKS.md reports).
pub const fn ram_bytes(v4: usize, v6: usize) -> usize {
    use core::mem::size_of;
    use lvs_core::conn::table::{Conn, index_len_for};
    use lvs_core::director::{DestMeta, Service};
    use lvs_core::service::RealServer;
    let conns = v4 * size_of::<Conn<core::net::Ipv4Addr>>()
        + 2 * 4 * index_len_for(v4)
        + v6 * size_of::<Conn<core::net::Ipv6Addr>>()
        + 2 * 4 * index_len_for(v6);
    let services = SERVICES * size_of::<Option<Service<'static, { crate::DESTS_PER_SERVICE }>>>()
        + DESTS * (size_of::<Option<RealServer>>() + size_of::<DestMeta>())
        + LADDRS * size_of::<Option<core::net::IpAddr>>();
    let adapter = NEIGHBOURS * size_of::<lvs_smoltcp::Neighbour>()
        + HELD * (size_of::<lvs_smoltcp::Held>() + HELD_SLOT)
        + SCRATCH;
    let sockets = SOCKETS * size_of::<smoltcp::iface::SocketStorage<'static>>()
        + 4 * STATS_PACKETS * size_of::<smoltcp::socket::udp::PacketMetadata>()
        + 4 * STATS_BYTES;
    conns + services + adapter + sockets
}

/// Bytes per connection entry: the entry and its two index slots (at the index's
/// minimum of two slots per entry, when the capacity is a power of two).
pub const fn bytes_per_conn_v4() -> usize {
    core::mem::size_of::<lvs_core::conn::table::Conn<core::net::Ipv4Addr>>() + 2 * 2 * 4
}
