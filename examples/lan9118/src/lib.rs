//! A `no_std` driver for the SMSC LAN9118 (and the register-compatible LAN9220 of the
//! ARM MPS2 boards, which QEMU's `mps2-an385`/`mps2-an386` emulate) as a
//! [`smoltcp::phy::Device`].
//!
//! The chip has no DMA: the CPU moves every frame through its FIFOs with 32-bit
//! register accesses. [`Lan9118::init`] resets the chip, checks that it is there
//! (`BYTE_TEST`), programs the MAC through the indirect MAC CSRs and the internal PHY
//! through the MII management registers (reset, advertise 10/100, restart
//! autonegotiation), then turns the transmitter and receiver on. After that the device
//! is polled: [`Device::receive`] pops a receive status and copies the frame out of the
//! RX data FIFO, [`TxToken::consume`](smoltcp::phy::TxToken::consume) writes the two TX
//! command words and the frame into the TX data FIFO. Every error is counted in
//! [`Counters`], none panics.
//!
//! Register access goes through the [`Bus`] trait: [`Mmio`] is the real one (the only
//! `unsafe` code of the crate, in one small module), and the tests drive the driver
//! against a simulated register file.
//!
//! ```no_run
//! use lan9118::{Config, Lan9118, Mmio};
//! // SAFETY: 0x4020_0000 is the LAN9220 of the MPS2 AN385/AN386 images, owned by us alone.
//! let bus = unsafe { Mmio::new(0x4020_0000) };
//! let mut nic = Lan9118::new(bus, Config { mac: [0x02, 0, 0, 0, 0, 1], ..Config::default() });
//! nic.init().expect("no LAN9118 at that address");
//! ```
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod bus;
pub mod regs;

pub use bus::{Bus, Mmio};

use regs::*;
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// The largest frame the driver moves, without the FCS (1500-byte MTU, Ethernet header;
/// 802.1Q-tagged frames get 4 more).
pub const MAX_FRAME: usize = 1518;

/// How many times a busy bit is polled before giving up (each poll is a bus read: far
/// longer than the chip's documented worst cases, a few microseconds).
const SPIN_LIMIT: u32 = 100_000;

/// The transmit buffer: a maximal frame, rounded up.
const TX_BUF: usize = 2048;

/// How the driver sets the chip up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The station address (written to `ADDRH`/`ADDRL`).
    pub mac: [u8; 6],
    /// Receive every frame, whatever its destination (`MAC_CR.PRMS`).
    pub promiscuous: bool,
    /// Receive every multicast frame (`MAC_CR.MCPAS`): IPv6 neighbour discovery needs it.
    pub all_multicast: bool,
    /// Full duplex (`MAC_CR.FDPX`). The PHY autonegotiates; set this to what the link is.
    pub full_duplex: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
            promiscuous: false,
            all_multicast: true,
            full_duplex: true,
        }
    }
}

/// Why [`Lan9118::init`] failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `BYTE_TEST` did not read `0x87654321`: no chip there, or the bus is not 32 bits.
    NotFound(u32),
    /// A busy bit (reset, MAC CSR, MII) did not clear.
    Timeout(&'static str),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NotFound(v) => write!(f, "no LAN9118: BYTE_TEST reads {v:#010x}"),
            Error::Timeout(what) => write!(f, "LAN9118: {what} stayed busy"),
        }
    }
}

impl core::error::Error for Error {}

/// What the driver counted. Every frame received or sent is counted once, in exactly
/// one of the `rx_*`/`tx_*` outcome counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Frames handed to the stack.
    pub rx_frames: u64,
    /// Their bytes (without the FCS).
    pub rx_bytes: u64,
    /// Frames the chip flagged as bad (error summary: CRC, runt, too long, collision,
    /// MII error, dribbling), discarded.
    pub rx_errors: u64,
    /// Frames longer than [`MAX_FRAME`] or shorter than an Ethernet header, discarded.
    pub rx_length_errors: u64,
    /// Frames the chip dropped because its RX FIFO was full (`RX_DROP`).
    pub rx_fifo_drops: u64,
    /// Frames written to the TX FIFO.
    pub tx_frames: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Transmit statuses with the error summary bit (carrier loss, collisions, ...).
    pub tx_errors: u64,
    /// Frames not sent: longer than [`MAX_FRAME`], or no room left in the TX FIFO.
    pub tx_dropped: u64,
}

/// A LAN9118 on the bus `B`. See the crate docs.
pub struct Lan9118<B: Bus> {
    cfg: Config,
    rx_buf: [u8; MAX_FRAME + 4],
    tx: TxSide<B>,
    rx_counters: RxCounters,
    /// The PHY's identifier (`PHY_ID1 << 16 | PHY_ID2`), read by `init`.
    phy_id: u32,
}

/// What a transmit token borrows: the bus (the TX FIFO), a frame buffer, the counters.
struct TxSide<B: Bus> {
    bus: B,
    buf: [u8; TX_BUF],
    counters: TxCounters,
    tag: u16,
}

#[derive(Debug, Clone, Copy, Default)]
struct RxCounters {
    frames: u64,
    bytes: u64,
    errors: u64,
    length_errors: u64,
    fifo_drops: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct TxCounters {
    frames: u64,
    bytes: u64,
    errors: u64,
    dropped: u64,
}

impl<B: Bus> Lan9118<B> {
    /// A driver over `bus`; nothing is touched until [`Lan9118::init`].
    pub const fn new(bus: B, cfg: Config) -> Lan9118<B> {
        Lan9118 {
            cfg,
            rx_buf: [0; MAX_FRAME + 4],
            tx: TxSide {
                bus,
                buf: [0; TX_BUF],
                counters: TxCounters {
                    frames: 0,
                    bytes: 0,
                    errors: 0,
                    dropped: 0,
                },
                tag: 0,
            },
            rx_counters: RxCounters {
                frames: 0,
                bytes: 0,
                errors: 0,
                length_errors: 0,
                fifo_drops: 0,
            },
            phy_id: 0,
        }
    }

    /// Resets and sets up the chip: soft reset, MAC address and MAC control, PHY reset
    /// and autonegotiation, FIFOs, interrupts off (the driver is polled), TX and RX on.
    pub fn init(&mut self) -> Result<(), Error> {
        let bus = &mut self.tx.bus;
        let test = bus.read(BYTE_TEST);
        if test != BYTE_TEST_VALUE {
            return Err(Error::NotFound(test));
        }
        // Soft reset; the chip is ready again when SRST clears and PMT_CTRL.READY is set.
        bus.write(HW_CFG, HW_CFG_SRST);
        spin(bus, HW_CFG, HW_CFG_SRST, 0, "soft reset")?;
        spin(
            bus,
            PMT_CTRL,
            PMT_CTRL_READY,
            PMT_CTRL_READY,
            "PMT_CTRL.READY",
        )?;

        // Interrupts off and cleared: this driver polls.
        bus.write(INT_EN, 0);
        bus.write(INT_STS, u32::MAX);
        bus.write(IRQ_CFG, 0);
        // 5 KiB of the 16 KiB FIFO memory for TX (the reset value), must-be-one bit set.
        bus.write(HW_CFG, HW_CFG_MBO | (5 << HW_CFG_TX_FIF_SZ_SHIFT));
        // Flow control thresholds as the datasheet suggests for the default FIFO split.
        bus.write(AFC_CFG, 0x006e_3740);

        let m = self.cfg.mac;
        mac_write(bus, MAC_ADDRL, u32::from_le_bytes([m[0], m[1], m[2], m[3]]))?;
        mac_write(bus, MAC_ADDRH, u32::from_le_bytes([m[4], m[5], 0, 0]))?;

        // The internal PHY: reset, advertise 10/100 half/full, restart autonegotiation.
        phy_write(bus, PHY_BCR, PHY_BCR_RESET)?;
        let mut n = 0;
        while phy_read(bus, PHY_BCR)? & PHY_BCR_RESET != 0 {
            n += 1;
            if n > SPIN_LIMIT {
                return Err(Error::Timeout("PHY reset"));
            }
        }
        self.phy_id = (phy_read(bus, PHY_ID1)? << 16) | phy_read(bus, PHY_ID2)?;
        phy_write(bus, PHY_ANAR, PHY_ANAR_10_100 | PHY_ANAR_802_3)?;
        phy_write(bus, PHY_BCR, PHY_BCR_ANEN | PHY_BCR_ANRESTART)?;

        // Empty FIFOs, default alignment (no offset, 4-byte end padding), TX on.
        bus.write(RX_CFG, RX_CFG_RX_DUMP);
        bus.write(TX_CFG, TX_CFG_TXS_DUMP | TX_CFG_TXD_DUMP);
        bus.write(TX_CFG, TX_CFG_TX_ON);

        let mut cr = MAC_CR_TXEN | MAC_CR_RXEN;
        if self.cfg.full_duplex {
            cr |= MAC_CR_FDPX;
        }
        if self.cfg.promiscuous {
            cr |= MAC_CR_PRMS;
        }
        if self.cfg.all_multicast {
            cr |= MAC_CR_MCPAS;
        }
        mac_write(bus, MAC_CR, cr)?;
        Ok(())
    }

    /// The configuration the driver was given.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The station address.
    pub fn mac(&self) -> [u8; 6] {
        self.cfg.mac
    }

    /// The PHY's identifier as read by `init` (`0x0007c0d1` for the LAN9118's own PHY).
    pub fn phy_id(&self) -> u32 {
        self.phy_id
    }

    /// Whether the PHY reports the link up (`PHY_BSR.LINK`).
    pub fn link_up(&mut self) -> bool {
        // The link bit latches low: read twice for the current state.
        let _ = phy_read(&mut self.tx.bus, PHY_BSR);
        matches!(phy_read(&mut self.tx.bus, PHY_BSR), Ok(v) if v & PHY_BSR_LINK != 0)
    }

    /// The chip's `ID_REV` register (`0x0118_xxxx` for a LAN9118).
    pub fn id_rev(&mut self) -> u32 {
        self.tx.bus.read(ID_REV)
    }

    /// The counters so far (reading `RX_DROP` into them first).
    pub fn counters(&mut self) -> Counters {
        self.collect_rx_drops();
        self.tx.collect_tx_status();
        let (rx, tx) = (self.rx_counters, self.tx.counters);
        Counters {
            rx_frames: rx.frames,
            rx_bytes: rx.bytes,
            rx_errors: rx.errors,
            rx_length_errors: rx.length_errors,
            rx_fifo_drops: rx.fifo_drops,
            tx_frames: tx.frames,
            tx_bytes: tx.bytes,
            tx_errors: tx.errors,
            tx_dropped: tx.dropped,
        }
    }

    /// Frames handed to the stack so far (cheap: no register access).
    pub fn rx_frames(&self) -> u64 {
        self.rx_counters.frames
    }

    /// The bus, for board code that needs a register the driver does not cover.
    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.tx.bus
    }

    fn collect_rx_drops(&mut self) {
        // Clears on read; counts frames lost to a full RX FIFO.
        let dropped = self.tx.bus.read(RX_DROP);
        self.rx_counters.fifo_drops += u64::from(dropped);
    }

    /// Pops the next good frame into `rx_buf`, discarding (and counting) bad ones.
    /// Returns its length without the FCS.
    fn pop_frame(&mut self) -> Option<usize> {
        let bus = &mut self.tx.bus;
        loop {
            let used = (bus.read(RX_FIFO_INF) & RX_FIFO_INF_RXSUSED_MASK) >> 16;
            if used == 0 {
                return None;
            }
            let status = bus.read(RX_STATUS_FIFO);
            // The length includes the 4-byte FCS, which the chip leaves in the FIFO.
            let len = ((status & RX_STS_LEN_MASK) >> RX_STS_LEN_SHIFT) as usize;
            let words = len.div_ceil(4);
            let bad = status & RX_STS_ES != 0;
            if bad || !(14 + 4..=MAX_FRAME + 4).contains(&len) {
                if bad {
                    self.rx_counters.errors += 1;
                } else {
                    self.rx_counters.length_errors += 1;
                }
                discard(bus, words);
                continue;
            }
            for chunk in self.rx_buf.chunks_mut(4).take(words) {
                let w = bus.read(RX_DATA_FIFO).to_le_bytes();
                chunk.copy_from_slice(&w[..chunk.len()]);
            }
            let frame = len - 4;
            self.rx_counters.frames += 1;
            self.rx_counters.bytes += frame as u64;
            return Some(frame);
        }
    }
}

/// Reads and throws away `words` words of the RX data FIFO. (The chip's fast-forward,
/// `RX_DP_CTRL.RX_FFWD`, saves bus cycles only for long frames, and QEMU's model of it
/// loses track of the FIFO level; reading is right everywhere.)
fn discard<B: Bus>(bus: &mut B, words: usize) {
    for _ in 0..words {
        let _ = bus.read(RX_DATA_FIFO);
    }
}

/// Polls `reg` until `reg & mask == want`, at most [`SPIN_LIMIT`] times.
fn spin<B: Bus>(
    bus: &mut B,
    reg: usize,
    mask: u32,
    want: u32,
    what: &'static str,
) -> Result<(), Error> {
    for _ in 0..SPIN_LIMIT {
        if bus.read(reg) & mask == want {
            return Ok(());
        }
    }
    Err(Error::Timeout(what))
}

/// Writes a MAC control and status register through `MAC_CSR_CMD`/`MAC_CSR_DATA`.
fn mac_write<B: Bus>(bus: &mut B, reg: u32, val: u32) -> Result<(), Error> {
    spin(bus, MAC_CSR_CMD, MAC_CSR_BUSY, 0, "MAC CSR")?;
    bus.write(MAC_CSR_DATA, val);
    bus.write(MAC_CSR_CMD, MAC_CSR_BUSY | (reg & 0xff));
    spin(bus, MAC_CSR_CMD, MAC_CSR_BUSY, 0, "MAC CSR")
}

/// Reads a MAC control and status register.
fn mac_read<B: Bus>(bus: &mut B, reg: u32) -> Result<u32, Error> {
    spin(bus, MAC_CSR_CMD, MAC_CSR_BUSY, 0, "MAC CSR")?;
    bus.write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | (reg & 0xff));
    spin(bus, MAC_CSR_CMD, MAC_CSR_BUSY, 0, "MAC CSR")?;
    Ok(bus.read(MAC_CSR_DATA))
}

/// Waits until the MII management interface is idle.
fn mii_idle<B: Bus>(bus: &mut B) -> Result<(), Error> {
    for _ in 0..SPIN_LIMIT {
        if mac_read(bus, MAC_MII_ACC)? & MII_ACC_BUSY == 0 {
            return Ok(());
        }
    }
    Err(Error::Timeout("MII"))
}

/// Reads an internal PHY register (PHY address 1) through `MII_ACC`/`MII_DATA`.
fn phy_read<B: Bus>(bus: &mut B, reg: u32) -> Result<u32, Error> {
    mii_idle(bus)?;
    mac_write(bus, MAC_MII_ACC, mii_acc(reg, false))?;
    mii_idle(bus)?;
    Ok(mac_read(bus, MAC_MII_DATA)? & 0xffff)
}

/// Writes an internal PHY register.
fn phy_write<B: Bus>(bus: &mut B, reg: u32, val: u32) -> Result<(), Error> {
    mii_idle(bus)?;
    mac_write(bus, MAC_MII_DATA, val & 0xffff)?;
    mac_write(bus, MAC_MII_ACC, mii_acc(reg, true))?;
    mii_idle(bus)
}

const fn mii_acc(reg: u32, write: bool) -> u32 {
    (PHY_ADDR << 11) | ((reg & 0x1f) << 6) | if write { MII_ACC_WRITE } else { 0 } | MII_ACC_BUSY
}

impl<B: Bus> TxSide<B> {
    /// Pops every pending TX status, counting those with the error summary bit.
    fn collect_tx_status(&mut self) {
        let used = (self.bus.read(TX_FIFO_INF) & TX_FIFO_INF_TXSUSED_MASK) >> 16;
        for _ in 0..used {
            if self.bus.read(TX_STATUS_FIFO) & TX_STS_ES != 0 {
                self.counters.errors += 1;
            }
        }
    }

    /// Free bytes in the TX data FIFO.
    fn free(&mut self) -> usize {
        (self.bus.read(TX_FIFO_INF) & TX_FIFO_INF_TDFREE_MASK) as usize
    }

    /// Sends `buf[..len]` as one frame: command A (first and last segment, length),
    /// command B (a tag, length), then the data words.
    fn send(&mut self, len: usize) {
        // Status words pile up otherwise (the FIFO holds 512 before the chip stalls).
        self.collect_tx_status();
        let words = len.div_ceil(4);
        if len > MAX_FRAME || self.free() < words * 4 + 8 {
            self.counters.dropped += 1;
            return;
        }
        let len32 = len as u32;
        self.tag = self.tag.wrapping_add(1);
        self.bus
            .write(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len32);
        self.bus
            .write(TX_DATA_FIFO, (u32::from(self.tag) << 16) | len32);
        for chunk in self.buf[..len].chunks(4) {
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            self.bus.write(TX_DATA_FIFO, u32::from_le_bytes(w));
        }
        self.counters.frames += 1;
        self.counters.bytes += len as u64;
    }
}

/// A received frame, already copied out of the RX FIFO.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl smoltcp::phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Room for one frame in the TX FIFO.
pub struct TxToken<'a, B: Bus> {
    tx: &'a mut TxSide<B>,
}

impl<B: Bus> smoltcp::phy::TxToken for TxToken<'_, B> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // The capabilities promise at most a 1514-byte frame; a caller asking for more
        // than the buffer gets the whole buffer, and the frame is dropped and counted.
        let Some(buf) = self.tx.buf.get_mut(..len) else {
            self.tx.counters.dropped += 1;
            return f(&mut self.tx.buf[..]);
        };
        let r = f(buf);
        self.tx.send(len);
        r
    }
}

impl<B: Bus> Device for Lan9118<B> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, B>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_, B>)> {
        let len = self.pop_frame()?;
        Some((
            RxToken {
                frame: &self.rx_buf[..len],
            },
            TxToken { tx: &mut self.tx },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_, B>> {
        if self.tx.free() < MAX_FRAME + 8 {
            self.tx.collect_tx_status();
            return None;
        }
        Some(TxToken { tx: &mut self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        // One frame per poll from the FIFO; the chip buffers the rest.
        caps.max_burst_size = Some(1);
        caps
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod test;
