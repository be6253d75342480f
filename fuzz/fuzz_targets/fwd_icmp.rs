//! ICMP error rewrite with arbitrary changes on arbitrary frames: no panic; a rewritten
//! error parses, its ICMP checksum stays valid if it was, and the quoted header changes
//! as asked; a refused rewrite touches nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::fwd::icmp::{self, IcmpRewrite};
use lvs_core::wire::{FrameInfo, L4Info};

#[path = "common.rs"]
mod common;
use common::*;

fuzz_target!(|data: &[u8]| {
    if data.len() < PARAMS {
        return;
    }
    let (params, frame) = data.split_at(PARAMS);
    let mut frame = frame.to_vec();
    let Ok(info) = FrameInfo::parse(&frame) else {
        return;
    };
    let L4Info::Icmp(i) = info.l4 else { return };
    let iv = i.inner.map(|n| n.version).unwrap_or(info.ip.version);
    let m = params[0];
    let rw = IcmpRewrite {
        outer_src: (m & 1 != 0).then(|| addr(&params[1..], info.ip.version)),
        outer_dst: (m & 2 != 0).then(|| addr(&params[17..], info.ip.version)),
        inner_src: (m & 4 != 0).then(|| endpoint(&params[33..], iv)),
        inner_dst: (m & 8 != 0).then(|| endpoint(&params[44..], iv)),
    };
    let valid = l4_valid(&frame, &info);
    let original = frame.clone();
    match icmp::rewrite_error(&mut frame, &info, &rw) {
        Ok(()) => {
            let after = check_rewritten(&frame, &info, valid);
            let L4Info::Icmp(j) = after.l4 else {
                panic!("no longer ICMP")
            };
            let inner = j.inner.expect("quote still parses");
            if let Some(e) = rw.inner_src {
                assert_eq!(inner.src, e.addr);
            }
            if let Some(e) = rw.inner_dst {
                assert_eq!(inner.dst, e.addr);
            }
        }
        Err(_) => assert_eq!(
            frame, original,
            "a refused rewrite must not touch the frame"
        ),
    }
});
