//! IPv6 view and the extension-header walk on arbitrary bytes: no panic, bounded walk,
//! offsets inside the packet.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::wire::{IpProtocol, Ipv6Packet, ipv6};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Ipv6Packet::new_checked(data) {
        let _ = (
            p.src_addr(),
            p.dst_addr(),
            p.flow_label(),
            p.traffic_class(),
            p.hop_limit(),
        );
        assert_eq!(p.payload().len(), p.payload_len() as usize);
        if let Ok(w) = p.upper_layer() {
            assert!(w.offset <= p.total_len());
        }
    }
    // The lenient walk, from any start and any first header.
    if let [first, start, rest @ ..] = data {
        if let Ok(w) = ipv6::walk_ext(rest, IpProtocol::from(*first), *start as usize) {
            assert!(w.offset <= rest.len());
        }
    }
});
