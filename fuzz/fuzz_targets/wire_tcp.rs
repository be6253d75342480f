//! TCP view on arbitrary bytes: no panic; header within the buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::wire::TcpPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = TcpPacket::new_checked(data) {
        assert!(t.header_len() >= 20 && t.header_len() <= data.len());
        let _ = (
            t.src_port(),
            t.dst_port(),
            t.seq_number(),
            t.ack_number(),
            t.flags(),
        );
        let _ = (t.window_len(), t.urgent_at(), t.options(), t.payload());
        let a = core::net::IpAddr::from([10, 0, 0, 1]);
        let _ = t.verify_checksum(&a, &a);
    }
});
