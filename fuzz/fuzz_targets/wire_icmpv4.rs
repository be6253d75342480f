//! ICMPv4 view on arbitrary bytes: no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::wire::{IcmpQuote, Icmpv4Packet};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Icmpv4Packet::new_checked(data) {
        let _ = (
            m.msg_type(),
            m.msg_code(),
            m.checksum(),
            m.echo_ident(),
            m.echo_seq_no(),
        );
        let _ = (m.next_hop_mtu(), m.verify_checksum());
        if m.is_error() {
            if let Ok(q) = IcmpQuote::new_checked(m.data()) {
                let _ = (q.src_addr(), q.dst_addr(), q.ports(), q.protocol());
            }
        }
    }
});
