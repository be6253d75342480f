//! The smoltcp adapter for `lvs-core`.
//!
//! Not built yet: this crate will wrap one or more `smoltcp::phy::Device`s, hand every
//! received frame to `lvs_core`, transmit what it forwards, resolve next hops (ARP/NDP)
//! and give everything else to a normal smoltcp `Interface`. Until then it only proves
//! that the two crates build together (no_std, no alloc).
#![no_std]
#![forbid(unsafe_code)]

pub use lvs_core;
pub use smoltcp;
