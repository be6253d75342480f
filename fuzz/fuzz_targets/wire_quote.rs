//! The ICMP-error quote view on arbitrary bytes: no panic; header inside the quote.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::wire::IcmpQuote;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = IcmpQuote::new_checked(data) {
        assert!(q.header_len() <= data.len());
        let _ = (
            q.src_addr(),
            q.dst_addr(),
            q.ports(),
            q.protocol(),
            q.l4(),
            q.version(),
        );
    }
});
