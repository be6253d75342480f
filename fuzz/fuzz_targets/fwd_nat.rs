//! NAT rewrites (both directions, ICMP errors included) on arbitrary frames: no panic;
//! a rewritten frame parses, carries the new address and port, and keeps valid
//! checksums valid; a refused frame is left untouched.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::fwd::nat;
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
    let ep = endpoint(&params[1..], info.ip.version);
    let inbound = params[0] & 1 == 0;
    let icmp_error = matches!(info.l4, L4Info::Icmp(i) if i.is_error);
    let valid = l4_valid(&frame, &info);
    let original = frame.clone();
    let r = match (icmp_error, inbound) {
        (false, true) => nat::inbound(&mut frame, &info, ep),
        (false, false) => nat::outbound(&mut frame, &info, ep),
        (true, true) => nat::inbound_icmp(&mut frame, &info, ep),
        (true, false) => nat::outbound_icmp(&mut frame, &info, ep),
    };
    match r {
        Ok(()) => {
            let after = check_rewritten(&frame, &info, valid);
            if !icmp_error {
                let (addr, port) = if inbound {
                    (after.ip.dst, after.l4.ports().map(|p| p.1))
                } else {
                    (after.ip.src, after.l4.ports().map(|p| p.0))
                };
                assert_eq!(addr, ep.addr);
                if let Some(port) = port {
                    assert_eq!(port, ep.port);
                }
            }
        }
        Err(_) => assert_eq!(
            frame, original,
            "a refused rewrite must not touch the frame"
        ),
    }
});
