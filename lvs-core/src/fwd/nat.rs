//! NAT (`ipvsadm -m`, masquerading): the real server sees the client, and replies
//! through the director.
//!
//! - Inbound (client → VIP:vport): the destination becomes RIP:rport.
//! - Outbound (real server → client): the source RIP:rport becomes VIP:vport.
//! - ICMP errors about the connection, either way: see [`inbound_icmp`] and
//!   [`outbound_icmp`].
//!
//! IPv4 and IPv6; TCP, UDP, and ICMP errors. Checksums are updated incrementally.

use super::icmp::{self, IcmpRewrite};
use super::{Endpoint, Error, rewrite_tuple};
use crate::wire::FrameInfo;

/// Client → VIP:vport becomes client → `real` (RIP:rport).
#[inline(always)]
pub fn inbound(frame: &mut [u8], info: &FrameInfo, real: Endpoint) -> Result<(), Error> {
    rewrite_tuple(frame, info, None, Some(real))
}

/// RIP:rport → client becomes `virt` (VIP:vport) → client.
#[inline(always)]
pub fn outbound(frame: &mut [u8], info: &FrameInfo, virt: Endpoint) -> Result<(), Error> {
    rewrite_tuple(frame, info, Some(virt), None)
}

/// An ICMP error from the client side about a packet the director sent (it quotes
/// VIP:vport → CIP:cport): delivered to the real server as if about its own packet. The
/// outer destination becomes RIP and the quoted source RIP:rport.
#[inline]
pub fn inbound_icmp(frame: &mut [u8], info: &FrameInfo, real: Endpoint) -> Result<(), Error> {
    icmp::rewrite_error(
        frame,
        info,
        &IcmpRewrite {
            outer_dst: Some(real.addr),
            inner_src: Some(real),
            ..IcmpRewrite::NONE
        },
    )
}

/// An ICMP error from the real-server side about a packet the director forwarded (it
/// quotes CIP:cport → RIP:rport): sent to the client as if from the virtual service. The
/// outer source becomes VIP (as IPVS does, hiding the inside) and the quoted destination
/// VIP:vport.
#[inline]
pub fn outbound_icmp(frame: &mut [u8], info: &FrameInfo, virt: Endpoint) -> Result<(), Error> {
    icmp::rewrite_error(
        frame,
        info,
        &IcmpRewrite {
            outer_src: Some(virt.addr),
            inner_dst: Some(virt),
            ..IcmpRewrite::NONE
        },
    )
}
