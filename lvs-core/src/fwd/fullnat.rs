//! FULLNAT (`-b` in DPVS's ipvsadm): source and destination both rewritten, so the real
//! server needs no route back through the director and may sit in any network.
//!
//! - Inbound: CIP:cport → VIP:vport becomes LIP:lport → RIP:rport (LIP:lport from the
//!   director's local address pool).
//! - Outbound: RIP:rport → LIP:lport becomes VIP:vport → CIP:cport.
//! - ICMP errors either way: [`inbound_icmp`], [`outbound_icmp`].
//!
//! The real server sees the local address, not the client's.

use super::icmp::{self, IcmpRewrite};
use super::{Endpoint, Error, rewrite_tuple};
use crate::wire::FrameInfo;

/// CIP:cport → VIP:vport becomes `local` (LIP:lport) → `real` (RIP:rport).
#[inline(always)]
pub fn inbound(
    frame: &mut [u8],
    info: &FrameInfo,
    local: Endpoint,
    real: Endpoint,
) -> Result<(), Error> {
    rewrite_tuple(frame, info, Some(local), Some(real))
}

/// RIP:rport → LIP:lport becomes `virt` (VIP:vport) → `client` (CIP:cport).
#[inline(always)]
pub fn outbound(
    frame: &mut [u8],
    info: &FrameInfo,
    virt: Endpoint,
    client: Endpoint,
) -> Result<(), Error> {
    rewrite_tuple(frame, info, Some(virt), Some(client))
}

/// An ICMP error from the client side about a packet the director sent (quoting
/// VIP:vport → CIP:cport): to the real server from LIP, quoting RIP:rport → LIP:lport.
#[inline]
pub fn inbound_icmp(
    frame: &mut [u8],
    info: &FrameInfo,
    local: Endpoint,
    real: Endpoint,
) -> Result<(), Error> {
    icmp::rewrite_error(
        frame,
        info,
        &IcmpRewrite {
            outer_src: Some(local.addr),
            outer_dst: Some(real.addr),
            inner_src: Some(real),
            inner_dst: Some(local),
        },
    )
}

/// An ICMP error from the real-server side about a packet the director forwarded
/// (quoting LIP:lport → RIP:rport): to the client from VIP, quoting CIP:cport → VIP:vport.
#[inline]
pub fn outbound_icmp(
    frame: &mut [u8],
    info: &FrameInfo,
    virt: Endpoint,
    client: Endpoint,
) -> Result<(), Error> {
    icmp::rewrite_error(
        frame,
        info,
        &IcmpRewrite {
            outer_src: Some(virt.addr),
            outer_dst: Some(client.addr),
            inner_src: Some(client),
            inner_dst: Some(virt),
        },
    )
}
