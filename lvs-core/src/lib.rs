//! # lvs-core
//!
//! The data plane of Linux Virtual Server (LVS/IPVS) as a `no_std`, allocation-free,
//! `unsafe`-free library. It knows bytes, tables and the time values it is given; it has
//! no clock, no device and no I/O of its own.
//!
//! Layers, bottom up:
//! - [`wire`]: zero-copy views over Ethernet (with one 802.1Q tag), IPv4, IPv6 (with its
//!   extension headers), TCP, UDP, ICMPv4 and ICMPv6 (with the datagram quoted in an
//!   error) and IP-in-IP, plus [`wire::FrameInfo`], the one parse a forwarding decision needs.
//! - [`checksum`]: RFC 1071 sums and RFC 1624 incremental updates, so a rewrite fixes
//!   every checksum without reading the payload.
//! - [`fwd`]: the four IPVS forwarding methods as pure functions over a frame: NAT
//!   (`masq`), FULLNAT, DR (`droute`) and TUN (`tunnel`), and the ICMP-error rewrite.
//!
//! ## Guarantees
//! - No panic on any input: every view is checked before use (see the contract in
//!   [`wire`]); the crate is written for `panic = "abort"`.
//! - No allocation: the crate does not link `alloc`.
//! - `#![forbid(unsafe_code)]`.
//!
//! ## Features
//! - `log`: trace per-packet decisions through the `log` crate.
//! - `defmt`: the same through `defmt`, for firmware.
//!
//! Enabling both is a compile error. With neither, the trace macros compile to nothing
//! (their arguments are still evaluated, so a build never changes behaviour with logging).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(all(feature = "log", feature = "defmt"))]
compile_error!("the `log` and `defmt` features of lvs-core are mutually exclusive");

#[cfg(test)]
extern crate std;

#[macro_use]
mod macros;

pub mod checksum;
pub mod conn;
pub mod director;
pub mod fwd;
pub mod sched;
pub mod service;
pub mod stats;
pub mod time;
pub mod wire;
