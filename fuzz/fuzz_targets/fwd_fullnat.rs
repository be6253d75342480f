//! FULLNAT rewrites (both directions, ICMP errors included) on arbitrary frames: no
//! panic; both endpoints land; valid checksums stay valid; refusals touch nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::fwd::fullnat;
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
    let a = endpoint(&params[1..], info.ip.version);
    let b = endpoint(&params[20..], info.ip.version);
    let inbound = params[0] & 1 == 0;
    let icmp_error = matches!(info.l4, L4Info::Icmp(i) if i.is_error);
    let valid = l4_valid(&frame, &info);
    let original = frame.clone();
    let r = match (icmp_error, inbound) {
        (false, true) => fullnat::inbound(&mut frame, &info, a, b),
        (false, false) => fullnat::outbound(&mut frame, &info, a, b),
        (true, true) => fullnat::inbound_icmp(&mut frame, &info, a, b),
        (true, false) => fullnat::outbound_icmp(&mut frame, &info, a, b),
    };
    match r {
        Ok(()) => {
            let after = check_rewritten(&frame, &info, valid);
            if !icmp_error {
                assert_eq!((after.ip.src, after.ip.dst), (a.addr, b.addr));
                if let Some(ports) = after.l4.ports() {
                    assert_eq!(ports, (a.port, b.port));
                }
            } else {
                assert_eq!((after.ip.src, after.ip.dst), (a.addr, b.addr));
            }
        }
        Err(_) => assert_eq!(
            frame, original,
            "a refused rewrite must not touch the frame"
        ),
    }
});
