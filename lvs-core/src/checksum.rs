//! Internet checksums: RFC 1071 sums and RFC 1624 incremental updates.
//!
//! A forwarding rewrite changes a handful of header fields (an address, a port) and must
//! leave every checksum valid without reading the payload. [`Delta`] accumulates the
//! difference between the old and the new value of each changed 16-bit, 32-bit or
//! 128-bit field once, then [`Delta::apply`] fixes each checksum that covers those fields
//! (the IPv4 header checksum for an address, the TCP/UDP/ICMPv6 checksum for an address
//! through the pseudo-header and for a port directly).
//!
//! RFC 1624 equation 3 is used throughout: `HC' = ~(~HC + ~m + m')`. It is exact: for any
//! header whose data is not all zero (every IP header), the updated checksum equals the
//! one a full recomputation gives, bit for bit (the proptests in this module check it).
//!
//! UDP over IPv4 may carry checksum 0 ("none computed"): [`Delta::apply_udp`] leaves 0
//! alone, and writes a computed 0 as `0xffff` as RFC 768 asks.
//!
//! Everything here is `const`-friendly arithmetic on integers and slices: no allocation,
//! no panic.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Folds a 32-bit accumulator into a 16-bit ones' complement sum (end-around carry).
#[inline]
pub const fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Ones' complement addition of two folded sums.
#[inline]
pub const fn combine(a: u16, b: u16) -> u16 {
    fold(a as u32 + b as u32)
}

/// The folded ones' complement sum of `data` taken as big-endian 16-bit words (RFC 1071);
/// an odd trailing byte is padded with a zero byte. Not complemented.
///
/// Sums of consecutive pieces may be [`combine`]d only when every piece but the last has
/// an even length.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    // 32-bit big-endian words into a 64-bit accumulator: congruent modulo 0xffff to the
    // sum of 16-bit words, and cannot overflow for any slice shorter than 2^34 bytes.
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u32::from_be_bytes(tail) as u64;
    while acc > 0xffff_ffff {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    fold((acc as u32 & 0xffff) + (acc as u32 >> 16))
}

/// The Internet checksum of `data`: the complement of [`sum`]. Stored as-is in a header
/// field that was zero while summing; a header that includes its own valid checksum sums
/// to `0xffff`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// Sum of the IPv4 pseudo-header (RFC 793/768): source, destination, protocol, length.
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let acc = u16::from_be_bytes([s[0], s[1]]) as u32
        + u16::from_be_bytes([s[2], s[3]]) as u32
        + u16::from_be_bytes([d[0], d[1]]) as u32
        + u16::from_be_bytes([d[2], d[3]]) as u32
        + protocol as u32
        + length as u32;
    fold(acc)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, upper-layer
/// length (32 bits), next header.
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let acc = sum(&src.octets()) as u32
        + sum(&dst.octets()) as u32
        + (length >> 16)
        + (length & 0xffff)
        + next_header as u32;
    fold(acc)
}

/// Sum of the pseudo-header for either family; `None` when the two addresses are not of
/// the same family.
#[inline]
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, length: u32) -> Option<u16> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(pseudo_header_v4(
            s,
            d,
            protocol,
            u16::try_from(length).ok()?,
        )),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(pseudo_header_v6(s, d, protocol, length)),
        _ => None,
    }
}

/// The accumulated change `sum(~m) + sum(m')` of every rewritten field (RFC 1624).
///
/// Build one per set of fields a checksum covers, then [`apply`](Delta::apply) it to that
/// checksum. Applying to several checksums, or merging deltas, costs a few additions.
///
/// The accumulator holds unfolded 16-bit words and is folded only when applied (two
/// end-around carries, no loop). It has room for 32,768 changed 16-bit words, far more
/// than any header rewrite makes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delta(u32);

/// Folds any 32-bit accumulator of 16-bit words into their 16-bit ones' complement sum:
/// two end-around carries, no loop. A nonzero sum stays nonzero, so the
/// result is exactly what 16-bit ones' complement addition gives.
#[inline(always)]
const fn fold32(x: u32) -> u16 {
    let x = (x >> 16) + (x & 0xffff); // <= 0x1fffe
    ((x >> 16) + (x & 0xffff)) as u16 // <= 0xffff
}

impl Delta {
    /// No change.
    pub const ZERO: Delta = Delta(0);

    /// Adds the change of one 16-bit field from `old` to `new`.
    #[inline(always)]
    pub fn add16(&mut self, old: u16, new: u16) {
        self.0 += (!old) as u32 + new as u32;
    }

    /// Adds the change of one 32-bit field (an IPv4 address), in network byte order.
    #[inline(always)]
    pub fn add32(&mut self, old: [u8; 4], new: [u8; 4]) {
        let (o, n) = (!u32::from_be_bytes(old), u32::from_be_bytes(new));
        self.0 += (o >> 16) + (o & 0xffff) + (n >> 16) + (n & 0xffff);
    }

    /// Adds the change of one 128-bit field (an IPv6 address), in network byte order.
    #[inline(always)]
    pub fn add128(&mut self, old: &[u8; 16], new: &[u8; 16]) {
        // Eight 16-bit words of each side summed two lanes at a time in 64-bit registers:
        // each 32-bit lane collects at most eight words, so nothing carries across lanes.
        const M: u64 = 0x0000_ffff_0000_ffff;
        let (o, n) = (!u128::from_be_bytes(*old), u128::from_be_bytes(*new));
        let mut lanes = 0u64;
        for x in [(o >> 64) as u64, o as u64, (n >> 64) as u64, n as u64] {
            lanes += (x & M) + ((x >> 16) & M);
        }
        self.0 += ((lanes >> 32) + (lanes & 0xffff_ffff)) as u32;
    }

    /// Adds the change of an address of either family. Mixed families are not a field
    /// change and are ignored (the caller checks families before rewriting).
    #[inline]
    pub fn add_addr(&mut self, old: &IpAddr, new: &IpAddr) {
        match (old, new) {
            (IpAddr::V4(o), IpAddr::V4(n)) => self.add32(o.octets(), n.octets()),
            (IpAddr::V6(o), IpAddr::V6(n)) => self.add128(&o.octets(), &n.octets()),
            _ => {}
        }
    }

    /// Adds the change of an even-length run of bytes; an odd last byte counts as the
    /// high byte of a word, as it would in the header.
    #[inline]
    pub fn add_bytes(&mut self, old: &[u8], new: &[u8]) {
        self.add16(sum(old), sum(new));
    }

    /// The sum of both changes.
    #[inline(always)]
    #[must_use]
    pub fn merge(self, other: Delta) -> Delta {
        Delta(self.0 + other.0)
    }

    /// Whether applying this delta leaves any checksum as it is.
    #[inline]
    pub fn is_zero(self) -> bool {
        matches!(fold32(self.0), 0 | 0xffff)
    }

    /// The updated checksum: `~(~csum + delta)` (RFC 1624 equation 3).
    #[inline(always)]
    #[must_use]
    pub fn apply(self, csum: u16) -> u16 {
        !fold32(self.0 + (!csum) as u32)
    }

    /// As [`apply`](Delta::apply) for a UDP checksum over IPv4: 0 means "none" and stays
    /// 0; a result of 0 is sent as `0xffff` (RFC 768).
    #[inline(always)]
    #[must_use]
    pub fn apply_udp(self, csum: u16) -> u16 {
        // Written to compile to conditional moves: the zero checks are data, not control.
        let c = self.apply(csum);
        let c = if c == 0 { 0xffff } else { c };
        if csum == 0 { 0 } else { c }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    // RFC 1071 §3 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    #[test]
    fn test_rfc1071_example() {
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn test_odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    // A real IPv4 header (from a capture) whose checksum is 0xb861.
    const IPV4_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn test_ipv4_header_verifies() {
        assert_eq!(sum(&IPV4_HEADER), 0xffff);
        let mut h = IPV4_HEADER;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
    }

    #[test]
    fn test_address_rewrite_incremental() {
        let mut h = IPV4_HEADER;
        let new = [10, 1, 2, 3];
        let mut d = Delta::ZERO;
        d.add32([h[16], h[17], h[18], h[19]], new);
        h[16..20].copy_from_slice(&new);
        let c = d.apply(u16::from_be_bytes([h[10], h[11]]));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(sum(&h), 0xffff);
    }

    #[test]
    fn test_udp_zero_stays_zero() {
        let mut d = Delta::ZERO;
        d.add16(80, 8080);
        assert_eq!(d.apply_udp(0), 0);
        // A checksum whose update computes to 0 is sent as all ones.
        let mut d = Delta::ZERO;
        d.add16(0x0000, 0x0001);
        assert_eq!(d.apply(0x0001), 0x0000);
        assert_eq!(d.apply_udp(0x0001), 0xffff);
    }

    #[test]
    fn test_pseudo_headers() {
        let s = Ipv4Addr::new(192, 168, 0, 1);
        let d = Ipv4Addr::new(192, 168, 0, 199);
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&s.octets());
        bytes[4..8].copy_from_slice(&d.octets());
        bytes[9] = 17;
        bytes[10..].copy_from_slice(&95u16.to_be_bytes());
        assert_eq!(pseudo_header_v4(&s, &d, 17, 95), sum(&bytes));

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "2001:db8::ffff:2".parse().unwrap();
        let mut b6 = [0u8; 40];
        b6[..16].copy_from_slice(&s6.octets());
        b6[16..32].copy_from_slice(&d6.octets());
        b6[32..36].copy_from_slice(&70000u32.to_be_bytes());
        b6[39] = 6;
        assert_eq!(pseudo_header_v6(&s6, &d6, 6, 70000), sum(&b6));
        assert_eq!(pseudo_header(&IpAddr::V4(s), &IpAddr::V6(d6), 6, 0), None);
    }

    fn words(v: &[u8]) -> impl Iterator<Item = u16> + '_ {
        v.chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
    }

    proptest! {
        // The fast 32-bit-word sum equals the textbook 16-bit-word sum.
        #[test]
        fn prop_sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut acc: u32 = 0;
            for w in words(&data) { acc = fold(acc + w as u32) as u32; }
            prop_assert_eq!(sum(&data), acc as u16);
        }

        // Sums of even-length pieces combine.
        #[test]
        fn prop_sum_combines(a in proptest::collection::vec(any::<u8>(), 0..200),
                             b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut a = a;
            if a.len() % 2 == 1 { a.pop(); }
            let mut whole = a.clone();
            whole.extend_from_slice(&b);
            // 0 and 0xffff are the same number in ones' complement.
            let l = combine(sum(&a), sum(&b));
            let r = sum(&whole);
            prop_assert!(l == r || (l % 0xffff == r % 0xffff));
        }

        // Incremental update of any set of 16/32/128-bit fields equals full recomputation,
        // bit for bit, for data that is not all zero (every real header).
        #[test]
        fn prop_incremental_equals_full(
            data in proptest::collection::vec(any::<u8>(), 40..600),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..3, any::<[u8; 16]>()), 1..6),
        ) {
            let mut data = data;
            if data.len() % 2 == 1 { data.push(0); }
            data[0] |= 0x40; // never all zero, like an IP header's version nibble
            // the checksum field lives at bytes 2..4
            data[2] = 0; data[3] = 0;
            let c0 = checksum(&data);
            data[2..4].copy_from_slice(&c0.to_be_bytes());
            let mut delta = Delta::ZERO;
            for (idx, kind, val) in edits {
                let width = [2usize, 4, 16][kind];
                // a field that does not overlap the version byte or the checksum
                let slots = (data.len() - 4) / width;
                if slots == 0 { continue; }
                let off = 4 + idx.index(slots) * width;
                let old = &data[off..off + width];
                match width {
                    2 => delta.add16(u16::from_be_bytes([old[0], old[1]]), u16::from_be_bytes([val[0], val[1]])),
                    4 => delta.add32([old[0], old[1], old[2], old[3]], [val[0], val[1], val[2], val[3]]),
                    _ => delta.add128(old.try_into().unwrap(), &val),
                }
                data[off..off + width].copy_from_slice(&val[..width]);
            }
            let inc = delta.apply(u16::from_be_bytes([data[2], data[3]]));
            data[2] = 0; data[3] = 0;
            let full = checksum(&data);
            prop_assert_eq!(inc, full);
        }
    }
}
