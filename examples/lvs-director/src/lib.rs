//! The Linux director's pieces shared by its binaries: ipvsadm's rule format and
//! listings (`ipvsadm`), and (later) the control protocol and the tap driver.
#![forbid(unsafe_code)]

pub mod ipvsadm;
pub mod realserver;
