//! The smoltcp device a port's `Interface` polls: the real device with the director in
//! front of its receive side.

use smoltcp::phy::{Device, DeviceCapabilities, RxToken};
use smoltcp::time::Instant;

use crate::{Adapter, Step};

/// Port `port` of an [`Adapter`] as a smoltcp device (from [`Adapter::device`]).
///
/// `receive` takes frames from the real device and runs each through the director:
/// forwarded, answered and dropped frames are dealt with on the spot (at most
/// [`Adapter::burst`] of them per call), and the first frame for the local stack is
/// returned. `transmit` is the real device's.
pub struct PortDevice<'x, 'a, Dev: Device, const D: usize> {
    adapter: &'x mut Adapter<'a, D>,
    devs: &'x mut [Dev],
    port: usize,
}

impl<'x, 'a, Dev: Device, const D: usize> PortDevice<'x, 'a, Dev, D> {
    pub(crate) fn new(
        adapter: &'x mut Adapter<'a, D>,
        devs: &'x mut [Dev],
        port: usize,
    ) -> PortDevice<'x, 'a, Dev, D> {
        PortDevice {
            adapter,
            devs,
            port,
        }
    }
}

/// A frame for the local stack, lent from the adapter's buffer.
pub struct LocalRxToken<'t> {
    frame: &'t [u8],
}

impl RxToken for LocalRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

impl<Dev: Device, const D: usize> Device for PortDevice<'_, '_, Dev, D> {
    type RxToken<'t>
        = LocalRxToken<'t>
    where
        Self: 't;
    type TxToken<'t>
        = Dev::TxToken<'t>
    where
        Self: 't;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        for _ in 0..self.adapter.burst.max(1) {
            match self.adapter.receive_one(timestamp, self.devs, self.port) {
                Step::Empty => return None,
                Step::Consumed => {}
                Step::Local(range) => {
                    let PortDevice {
                        adapter,
                        devs,
                        port,
                    } = self;
                    let Some(tx) = devs.get_mut(*port).and_then(|d| d.transmit(timestamp)) else {
                        adapter.stats.local_lost += 1;
                        return None;
                    };
                    let frame = adapter.scratch.get(range).unwrap_or(&[]);
                    return Some((LocalRxToken { frame }, tx));
                }
            }
        }
        None
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.devs.get_mut(self.port)?.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.devs
            .get(self.port)
            .map(|d| d.capabilities())
            .unwrap_or_default()
    }
}
