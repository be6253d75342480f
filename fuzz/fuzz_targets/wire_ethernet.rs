//! Ethernet (+802.1Q) view on arbitrary bytes: no panic; accessors consistent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::wire::EthernetFrame;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = EthernetFrame::new_checked(data) {
        let _ = (
            f.dst_addr(),
            f.src_addr(),
            f.outer_ethertype(),
            f.ethertype(),
            f.vlan_id(),
        );
        assert!(f.header_len() <= data.len());
        assert_eq!(f.payload().len(), data.len() - f.header_len());
    }
});
