//! UDP view on arbitrary bytes: no panic; length field within the buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::wire::UdpPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(u) = UdpPacket::new_checked(data) {
        assert!(u.len() as usize >= 8 && u.len() as usize <= data.len());
        let _ = (u.src_port(), u.dst_port(), u.checksum(), u.payload());
        let a = core::net::IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]);
        let _ = u.verify_checksum(&a, &a);
    }
});
