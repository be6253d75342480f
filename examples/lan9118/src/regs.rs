//! Register offsets and bits of the LAN9118 (SMSC datasheet, "System Control and
//! Status Registers", "MAC Control and Status Registers", "PHY Registers"). Only what
//! the driver uses.

/// RX data FIFO port (any offset in 0x00..0x20 reads it).
pub const RX_DATA_FIFO: usize = 0x00;
/// TX data FIFO port (any offset in 0x20..0x40 writes it).
pub const TX_DATA_FIFO: usize = 0x20;
/// RX status FIFO port (pops).
pub const RX_STATUS_FIFO: usize = 0x40;
/// TX status FIFO port (pops).
pub const TX_STATUS_FIFO: usize = 0x48;
/// Chip identifier and revision.
pub const ID_REV: usize = 0x50;
/// Interrupt pin configuration.
pub const IRQ_CFG: usize = 0x54;
/// Interrupt status (write 1 to clear).
pub const INT_STS: usize = 0x58;
/// Interrupt enable.
pub const INT_EN: usize = 0x5c;
/// Reads [`BYTE_TEST_VALUE`] when the bus works.
pub const BYTE_TEST: usize = 0x64;
/// Receive configuration.
pub const RX_CFG: usize = 0x6c;
/// Transmit configuration.
pub const TX_CFG: usize = 0x70;
/// Hardware configuration.
pub const HW_CFG: usize = 0x74;
/// RX FIFO levels.
pub const RX_FIFO_INF: usize = 0x7c;
/// TX FIFO levels.
pub const TX_FIFO_INF: usize = 0x80;
/// Power management control.
pub const PMT_CTRL: usize = 0x84;
/// Frames dropped for a full RX FIFO (clears on read).
pub const RX_DROP: usize = 0xa0;
/// Indirect MAC CSR command.
pub const MAC_CSR_CMD: usize = 0xa4;
/// Indirect MAC CSR data.
pub const MAC_CSR_DATA: usize = 0xa8;
/// Automatic flow control configuration.
pub const AFC_CFG: usize = 0xac;

/// The value of [`BYTE_TEST`].
pub const BYTE_TEST_VALUE: u32 = 0x8765_4321;

/// `HW_CFG`: soft reset (self-clearing).
pub const HW_CFG_SRST: u32 = 1 << 0;
/// `HW_CFG`: must be one.
pub const HW_CFG_MBO: u32 = 1 << 20;
/// `HW_CFG`: TX FIFO size in KiB, bits 19:16.
pub const HW_CFG_TX_FIF_SZ_SHIFT: u32 = 16;
/// `PMT_CTRL`: the chip is ready after reset.
pub const PMT_CTRL_READY: u32 = 1 << 0;
/// `RX_CFG`: empty the RX data and status FIFOs.
pub const RX_CFG_RX_DUMP: u32 = 1 << 15;
/// `TX_CFG`: empty the TX status FIFO.
pub const TX_CFG_TXS_DUMP: u32 = 1 << 15;
/// `TX_CFG`: empty the TX data FIFO.
pub const TX_CFG_TXD_DUMP: u32 = 1 << 14;
/// `TX_CFG`: transmitter on.
pub const TX_CFG_TX_ON: u32 = 1 << 1;
/// `RX_FIFO_INF`: used RX status entries, bits 23:16.
pub const RX_FIFO_INF_RXSUSED_MASK: u32 = 0x00ff_0000;
/// `TX_FIFO_INF`: used TX status entries, bits 23:16.
pub const TX_FIFO_INF_TXSUSED_MASK: u32 = 0x00ff_0000;
/// `TX_FIFO_INF`: free bytes of the TX data FIFO, bits 15:0.
pub const TX_FIFO_INF_TDFREE_MASK: u32 = 0x0000_ffff;

/// RX status: frame length including the FCS, bits 29:16.
pub const RX_STS_LEN_MASK: u32 = 0x3fff_0000;
/// RX status: shift of the length field.
pub const RX_STS_LEN_SHIFT: u32 = 16;
/// RX status: error summary.
pub const RX_STS_ES: u32 = 1 << 15;
/// TX status: error summary.
pub const TX_STS_ES: u32 = 1 << 15;
/// TX command A: first segment of a frame.
pub const TX_CMD_A_FIRST: u32 = 1 << 13;
/// TX command A: last segment of a frame.
pub const TX_CMD_A_LAST: u32 = 1 << 12;

/// `MAC_CSR_CMD`: busy; set to start an access, clears when done.
pub const MAC_CSR_BUSY: u32 = 1 << 31;
/// `MAC_CSR_CMD`: read (else write).
pub const MAC_CSR_READ: u32 = 1 << 30;

/// MAC CSR: control.
pub const MAC_CR: u32 = 1;
/// MAC CSR: station address, bytes 4 and 5.
pub const MAC_ADDRH: u32 = 2;
/// MAC CSR: station address, bytes 0 to 3.
pub const MAC_ADDRL: u32 = 3;
/// MAC CSR: MII access.
pub const MAC_MII_ACC: u32 = 6;
/// MAC CSR: MII data.
pub const MAC_MII_DATA: u32 = 7;

/// `MAC_CR`: receive all frames.
pub const MAC_CR_PRMS: u32 = 1 << 18;
/// `MAC_CR`: pass all multicast.
pub const MAC_CR_MCPAS: u32 = 1 << 19;
/// `MAC_CR`: full duplex.
pub const MAC_CR_FDPX: u32 = 1 << 20;
/// `MAC_CR`: transmitter enable.
pub const MAC_CR_TXEN: u32 = 1 << 3;
/// `MAC_CR`: receiver enable.
pub const MAC_CR_RXEN: u32 = 1 << 2;

/// `MII_ACC`: busy.
pub const MII_ACC_BUSY: u32 = 1 << 0;
/// `MII_ACC`: write (else read).
pub const MII_ACC_WRITE: u32 = 1 << 1;
/// The internal PHY's address on the MII bus.
pub const PHY_ADDR: u32 = 1;

/// PHY: basic control.
pub const PHY_BCR: u32 = 0;
/// PHY: basic status.
pub const PHY_BSR: u32 = 1;
/// PHY: identifier 1.
pub const PHY_ID1: u32 = 2;
/// PHY: identifier 2.
pub const PHY_ID2: u32 = 3;
/// PHY: autonegotiation advertisement.
pub const PHY_ANAR: u32 = 4;
/// `PHY_BCR`: reset (self-clearing).
pub const PHY_BCR_RESET: u32 = 1 << 15;
/// `PHY_BCR`: autonegotiation enable.
pub const PHY_BCR_ANEN: u32 = 1 << 12;
/// `PHY_BCR`: restart autonegotiation.
pub const PHY_BCR_ANRESTART: u32 = 1 << 9;
/// `PHY_BSR`: link up.
pub const PHY_BSR_LINK: u32 = 1 << 2;
/// `PHY_ANAR`: 10BASE-T and 100BASE-TX, half and full duplex.
pub const PHY_ANAR_10_100: u32 = 0x01e0;
/// `PHY_ANAR`: selector field, IEEE 802.3.
pub const PHY_ANAR_802_3: u32 = 0x0001;
