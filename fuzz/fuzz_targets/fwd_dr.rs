//! DR on arbitrary frames: no panic; only the two MAC addresses change.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lvs_core::fwd::dr;
use lvs_core::wire::EthernetAddress;

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let (params, frame) = data.split_at(12);
    let mut frame = frame.to_vec();
    let own = EthernetAddress::from_bytes(&params[..6]).unwrap();
    let real = EthernetAddress::from_bytes(&params[6..]).unwrap();
    let original = frame.clone();
    match dr::forward(&mut frame, own, real) {
        Ok(()) => {
            assert_eq!(&frame[..6], real.as_bytes());
            assert_eq!(&frame[6..12], own.as_bytes());
            assert_eq!(&frame[12..], &original[12..]);
        }
        Err(_) => assert_eq!(frame, original),
    }
});
