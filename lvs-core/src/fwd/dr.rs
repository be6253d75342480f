//! DR (`ipvsadm -g`, direct routing, `droute`): the frame goes to the real server's MAC
//! on the same link; nothing in the IP packet changes. The real server holds the VIP on a
//! non-ARPing interface and replies to the client directly.

use super::{Error, set_macs};
use crate::wire::EthernetAddress;

/// Readdresses the frame to the real server `real_mac`, from the director's `own_mac`.
/// The IP packet is untouched, so its checksums stay valid.
#[inline]
pub fn forward(
    frame: &mut [u8],
    own_mac: EthernetAddress,
    real_mac: EthernetAddress,
) -> Result<(), Error> {
    set_macs(frame, own_mac, real_mac)
}
