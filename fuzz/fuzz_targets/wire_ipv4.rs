//! IPv4 view on arbitrary bytes: no panic; a checked header's lengths hold.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::wire::Ipv4Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        assert!(p.header_len() >= 20 && p.header_len() <= p.total_len() as usize);
        assert!(p.total_len() as usize <= data.len());
        let _ = (
            p.src_addr(),
            p.dst_addr(),
            p.next_header(),
            p.frag_offset(),
            p.more_frags(),
        );
        let _ = (
            p.dont_frag(),
            p.dscp(),
            p.ecn(),
            p.ident(),
            p.hop_limit(),
            p.verify_checksum(),
        );
        assert_eq!(p.payload().len(), p.total_len() as usize - p.header_len());
        let _ = p.options();
    }
});
