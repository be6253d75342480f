//! The whole one-pass parse on arbitrary frames: no panic; every offset inside the frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::wire::{FrameInfo, L4Info};

fuzz_target!(|data: &[u8]| {
    for parsed in [FrameInfo::parse(data), FrameInfo::parse_ip(data)] {
        if let Ok(info) = parsed {
            assert!(info.l4_offset() <= info.ip_end());
            assert!(info.ip_end() <= data.len());
            if let L4Info::Icmp(i) = info.l4 {
                if let Some(inner) = i.inner {
                    assert!(inner.offset + inner.header_len <= info.ip_end());
                }
            }
        }
    }
});
