//! Any `embassy-net-driver` 0.2 [`Driver`] as a smoltcp 0.14 [`Device`]: the glue the
//! STM32 firmware puts between embassy-stm32's Ethernet driver and lvs-smoltcp (rather
//! than embassy-net, which brings its own, older smoltcp).
//!
//! The two traits have the same shape (token pairs; a transmit token lends a buffer of
//! the asked length). embassy's take a `Context` to register a waker for when the
//! driver becomes ready; a polled firmware passes a no-op waker and simply asks again
//! on its next round.

use core::task::{Context, Waker};

use embassy_net_driver::{Checksum as EChecksum, Driver, HardwareAddress, LinkState};
use smoltcp::phy::{Checksum, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// An embassy-net-driver driver as a smoltcp device.
pub struct DriverDevice<D: Driver> {
    inner: D,
}

impl<D: Driver> DriverDevice<D> {
    /// Wraps `inner`.
    pub fn new(inner: D) -> DriverDevice<D> {
        DriverDevice { inner }
    }

    /// The driver.
    pub fn inner(&mut self) -> &mut D {
        &mut self.inner
    }

    /// The driver's MAC address, if it is an Ethernet driver.
    pub fn mac(&self) -> Option<[u8; 6]> {
        match self.inner.hardware_address() {
            HardwareAddress::Ethernet(m) => Some(m),
            _ => None,
        }
    }

    /// Whether the link is up (polled, no waker kept).
    pub fn link_up(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.inner.link_state(&mut cx) == LinkState::Up
    }
}

/// A received frame of the wrapped driver.
pub struct RxToken<T>(T);

/// A transmit buffer of the wrapped driver.
pub struct TxToken<T>(T);

impl<T: embassy_net_driver::RxToken> smoltcp::phy::RxToken for RxToken<T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        self.0.consume(|buf| f(buf))
    }
}

impl<T: embassy_net_driver::TxToken> smoltcp::phy::TxToken for TxToken<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.0.consume(len, f)
    }
}

fn checksum(c: EChecksum) -> Checksum {
    match c {
        EChecksum::Both => Checksum::Both,
        EChecksum::Rx => Checksum::Rx,
        EChecksum::Tx => Checksum::Tx,
        EChecksum::None => Checksum::None,
    }
}

impl<D: Driver> Device for DriverDevice<D> {
    type RxToken<'a>
        = RxToken<D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let mut cx = Context::from_waker(Waker::noop());
        self.inner
            .receive(&mut cx)
            .map(|(rx, tx)| (RxToken(rx), TxToken(tx)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let mut cx = Context::from_waker(Waker::noop());
        self.inner.transmit(&mut cx).map(TxToken)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let c = self.inner.capabilities();
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = c.max_transmission_unit;
        caps.max_burst_size = c.max_burst_size;
        let mut cs = ChecksumCapabilities::default();
        cs.ipv4 = checksum(c.checksum.ipv4);
        cs.udp = checksum(c.checksum.udp);
        cs.tcp = checksum(c.checksum.tcp);
        cs.icmpv4 = checksum(c.checksum.icmpv4);
        cs.icmpv6 = checksum(c.checksum.icmpv6);
        caps.checksum = cs;
        caps
    }
}

#[cfg(test)]
mod test {
    extern crate std;
    use std::collections::VecDeque;
    use std::vec::Vec;

    use super::*;
    use smoltcp::phy::{RxToken as _, TxToken as _};

    /// A driver with a receive queue, a sent list and a transmit-ready switch.
    #[derive(Default)]
    struct Fake {
        rx: VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
        tx_ready: bool,
        link: bool,
        wakers_registered: usize,
    }

    struct FRx<'a>(&'a mut VecDeque<Vec<u8>>);
    struct FTx<'a>(&'a mut Vec<Vec<u8>>);

    impl embassy_net_driver::RxToken for FRx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
            let mut p = self.0.pop_front().expect("token implies a frame");
            f(&mut p)
        }
    }
    impl embassy_net_driver::TxToken for FTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut p = std::vec![0u8; len];
            let r = f(&mut p);
            self.0.push(p);
            r
        }
    }

    impl Driver for Fake {
        type RxToken<'a> = FRx<'a>;
        type TxToken<'a> = FTx<'a>;
        fn receive(&mut self, cx: &mut Context) -> Option<(FRx<'_>, FTx<'_>)> {
            let _ = cx.waker();
            self.wakers_registered += 1;
            if self.rx.is_empty() || !self.tx_ready {
                return None;
            }
            Some((FRx(&mut self.rx), FTx(&mut self.sent)))
        }
        fn transmit(&mut self, _cx: &mut Context) -> Option<FTx<'_>> {
            self.tx_ready.then_some(FTx(&mut self.sent))
        }
        fn link_state(&mut self, _cx: &mut Context) -> LinkState {
            if self.link {
                LinkState::Up
            } else {
                LinkState::Down
            }
        }
        fn capabilities(&self) -> embassy_net_driver::Capabilities {
            let mut c = embassy_net_driver::Capabilities::default();
            c.max_transmission_unit = 1514;
            c.max_burst_size = Some(4);
            c.checksum.tcp = EChecksum::Tx;
            c
        }
        fn hardware_address(&self) -> HardwareAddress {
            HardwareAddress::Ethernet([2, 0, 0, 0, 0, 9])
        }
    }

    #[test]
    fn test_frames_pass_both_ways() {
        let mut dev = DriverDevice::new(Fake {
            tx_ready: true,
            ..Fake::default()
        });
        dev.inner().rx.push_back(std::vec![1, 2, 3, 4]);
        let (rx, tx) = dev.receive(Instant::ZERO).expect("a frame");
        let got = rx.consume(|b| b.to_vec());
        assert_eq!(got, [1, 2, 3, 4]);
        tx.consume(3, |b| b.copy_from_slice(&[9, 8, 7]));
        assert!(dev.receive(Instant::ZERO).is_none());
        dev.transmit(Instant::ZERO)
            .unwrap()
            .consume(2, |b| b.copy_from_slice(&[5, 6]));
        assert_eq!(dev.inner().sent, [std::vec![9, 8, 7], std::vec![5, 6]]);
        assert_eq!(dev.inner().wakers_registered, 2);
    }

    #[test]
    fn test_no_tx_room_means_no_tokens() {
        let mut dev = DriverDevice::new(Fake::default());
        dev.inner().rx.push_back(std::vec![1]);
        assert!(dev.receive(Instant::ZERO).is_none());
        assert!(dev.transmit(Instant::ZERO).is_none());
        // The frame stays queued for when the driver can transmit again.
        assert_eq!(dev.inner().rx.len(), 1);
    }

    #[test]
    fn test_capabilities_link_and_address() {
        let mut dev = DriverDevice::new(Fake {
            link: true,
            ..Fake::default()
        });
        let caps = dev.capabilities();
        assert_eq!(caps.medium, Medium::Ethernet);
        assert_eq!(caps.max_transmission_unit, 1514);
        assert_eq!(caps.max_burst_size, Some(4));
        assert!(matches!(caps.checksum.tcp, Checksum::Tx));
        assert!(matches!(caps.checksum.udp, Checksum::Both));
        assert_eq!(dev.mac(), Some([2, 0, 0, 0, 0, 9]));
        assert!(dev.link_up());
        dev.inner().link = false;
        assert!(!dev.link_up());
    }
}
