//! The Linux director's pieces shared by its binaries: ipvsadm's rule format and
//! listings ([`ipvsadm`]), `lvs-director`'s flags ([`flags`]) and setup ([`setup`]),
//! the control protocol `lvsadm` speaks ([`control`]), the tap device ([`tap`]), the
//! capture devices ([`pcap`]), and the real server's decapsulation ([`realserver`]).
//!
//! `unsafe` is denied but in [`tap`] and [`sys`], where the operating system needs it
//! (ioctls, signal handlers, `poll`); each block there says why it is sound.
#![deny(unsafe_code)]

pub mod control;
pub mod flags;
pub mod ipvsadm;
pub mod pcap;
pub mod realserver;
pub mod run;
pub mod setup;
#[allow(unsafe_code)]
pub mod sys;
#[allow(unsafe_code)]
pub mod tap;
