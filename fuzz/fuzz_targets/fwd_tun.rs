//! TUN on arbitrary frames: encapsulation (with and without headroom) parses as IP-in-IP
//! with a valid outer header; decapsulation gives back the original IP packet byte for
//! byte; a packet over the MTU with DF becomes a valid ICMP "too big" answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::fwd::{Error, icmp, tun};
use lvs_core::wire::{FrameInfo, IpVersion, L4Info};

#[path = "common.rs"]
mod common;
use common::*;

fuzz_target!(|data: &[u8]| {
    if data.len() < PARAMS {
        return;
    }
    let (params, frame) = data.split_at(PARAMS);
    let Ok(info) = FrameInfo::parse(frame) else {
        return;
    };
    let outer_v = if params[0] & 1 == 0 {
        IpVersion::V4
    } else {
        IpVersion::V6
    };
    let headroom = if params[0] & 2 == 0 {
        64
    } else {
        params[1] as usize % 64
    };
    let mtu = u16::from_be_bytes([params[2], params[3]]);
    let p = tun::TunParams {
        src: addr(&params[4..], outer_v),
        dst: addr(&params[20..], outer_v),
        ident: u16::from_be_bytes([params[36], params[37]]),
        flow_label: u32::from_be_bytes([0, params[38], params[39], params[40]]),
        mtu,
    };
    let mut buf = vec![0u8; headroom + frame.len() + 64];
    buf[headroom..headroom + frame.len()].copy_from_slice(frame);
    let range = headroom..headroom + frame.len();
    let inner_ip = frame[info.l3_offset..info.ip_end()].to_vec();
    match tun::encap(&mut buf, range.clone(), &info, &p) {
        Ok(out) => {
            let enc = FrameInfo::parse(&buf[out.clone()]).expect("encapsulated frame parses");
            assert_eq!(enc.l4, L4Info::IpIp(info.ip.version));
            assert_eq!((enc.ip.src, enc.ip.dst), (p.src, p.dst));
            assert!(enc.ip.total_len <= mtu as usize);
            let (inner, dec) = tun::decap(&mut buf, out.clone(), &enc).expect("decapsulates");
            assert_eq!(&buf[inner.start + info.l3_offset..inner.end], &inner_ip[..]);
            let again = FrameInfo::parse(&buf[inner]).expect("decapsulated frame parses");
            assert_eq!(again.ip, info.ip);
            // decap's own FrameInfo is exactly what a parse of its output says.
            assert_eq!(dec, again);
        }
        Err(Error::FragNeeded { mtu: m }) => {
            let src = info.ip.dst;
            if let Ok(r) = icmp::too_big_reply(&mut buf, range, &info, src, m, 0) {
                let reply = FrameInfo::parse(&buf[r.clone()]).expect("ICMP reply parses");
                assert_eq!(reply.ip.dst, info.ip.src);
                assert_eq!(l4_valid(&buf[r], &reply), Some(true));
            }
        }
        Err(_) => {}
    }
});
