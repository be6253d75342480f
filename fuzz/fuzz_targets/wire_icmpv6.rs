//! ICMPv6 view on arbitrary bytes: no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::wire::{IcmpQuote, Icmpv6Packet};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Icmpv6Packet::new_checked(data) {
        let _ = (
            m.msg_type(),
            m.msg_code(),
            m.checksum(),
            m.pkt_too_big_mtu(),
        );
        let a = core::net::Ipv6Addr::LOCALHOST;
        let _ = m.verify_checksum(&a, &a);
        if m.is_error() {
            if let Ok(q) = IcmpQuote::new_checked(m.data()) {
                let _ = (q.src_addr(), q.dst_addr(), q.ports(), q.protocol());
            }
        }
    }
});
