//! Connections: the fixed-capacity table and IPVS's per-protocol state machines.
//!
//! - [`table`]: the connection table in caller storage, keyed by a per-instance-seeded
//!   SipHash, indexed from both sides (client side, and real-server side for NAT and
//!   FULLNAT replies), with bounded probes and amortised expiry.
//! - [`state`]: the TCP and UDP state machines with IPVS's states, transitions (input,
//!   output, input-only) and default timeouts.

pub mod state;
pub mod table;
