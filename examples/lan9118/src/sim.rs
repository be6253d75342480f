//! A simulated LAN9118 register file for the tests: FIFOs that pack frames the way the
//! chip does (little-endian words, the FCS after the data), the indirect MAC CSRs and
//! the MII-attached PHY, and knobs to make it misbehave.

extern crate std;

use std::collections::VecDeque;
use std::vec::Vec;

use crate::bus::Bus;
use crate::regs::*;

#[derive(Default)]
pub struct Sim {
    pub byte_test: u32,
    /// MAC CSR accesses stay busy forever.
    pub csr_stuck: bool,
    pub mac_cr: u32,
    pub mac_addrh: u32,
    pub mac_addrl: u32,
    mii_acc: u32,
    mii_data: u32,
    csr_cmd: u32,
    csr_data: u32,
    pub phy_bcr: u32,
    pub phy_anar: u32,
    /// Reads of PHY_BCR left before a PHY reset completes.
    phy_reset_reads: u32,
    pub link: bool,
    pub tx_cfg: u32,
    pub hw_cfg: u32,
    /// Pending receive frames: status word, data words (with the FCS).
    rx: VecDeque<(u32, VecDeque<u32>)>,
    /// Data words of the frame whose status was popped.
    rx_current: VecDeque<u32>,
    /// Data words read when no frame was current (a driver bug if ever non-zero).
    pub rx_underflows: u32,
    pub rx_drop: u32,
    /// Frames written to the TX FIFO, as (command A, command B, bytes).
    pub tx: Vec<(u32, u32, Vec<u8>)>,
    tx_words: Vec<u32>,
    pub tx_free: u32,
    pub tx_status: VecDeque<u32>,
    /// Every register write, in order.
    pub writes: Vec<(usize, u32)>,
}

impl Sim {
    pub fn new() -> Sim {
        Sim {
            byte_test: BYTE_TEST_VALUE,
            link: true,
            tx_free: 4608,
            ..Sim::default()
        }
    }

    /// Queues a received frame the way the chip stores it.
    pub fn push_rx(&mut self, frame: &[u8]) {
        let len = (frame.len() + 4) as u32;
        self.push_rx_status(len << 16, frame);
    }

    /// Queues a frame with an explicit status word (its length field is not checked).
    pub fn push_rx_status(&mut self, status: u32, frame: &[u8]) {
        let mut bytes = frame.to_vec();
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // stand-in FCS
        let words = bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect();
        self.rx.push_back((status, words));
    }

    /// RX data words not yet read by the driver.
    pub fn rx_words_left(&self) -> usize {
        self.rx_current.len() + self.rx.iter().map(|(_, w)| w.len()).sum::<usize>()
    }

    fn mac_csr(&mut self, cmd: u32) {
        let reg = cmd & 0xff;
        if cmd & MAC_CSR_READ != 0 {
            self.csr_data = match reg {
                MAC_CR => self.mac_cr,
                MAC_ADDRH => self.mac_addrh,
                MAC_ADDRL => self.mac_addrl,
                MAC_MII_ACC => self.mii_acc,
                MAC_MII_DATA => self.mii_data,
                _ => 0,
            };
            return;
        }
        let v = self.csr_data;
        match reg {
            MAC_CR => self.mac_cr = v,
            MAC_ADDRH => self.mac_addrh = v,
            MAC_ADDRL => self.mac_addrl = v,
            MAC_MII_DATA => self.mii_data = v,
            MAC_MII_ACC => {
                assert_eq!((v >> 11) & 0x1f, PHY_ADDR, "internal PHY address");
                let phy_reg = (v >> 6) & 0x1f;
                if v & MII_ACC_WRITE != 0 {
                    self.phy_write(phy_reg, self.mii_data);
                } else {
                    self.mii_data = self.phy_read(phy_reg);
                }
                self.mii_acc = v & !MII_ACC_BUSY;
            }
            _ => panic!("sim: write to MAC CSR {reg}"),
        }
    }

    fn phy_read(&mut self, reg: u32) -> u32 {
        match reg {
            PHY_BCR => {
                if self.phy_reset_reads > 0 {
                    self.phy_reset_reads -= 1;
                    if self.phy_reset_reads == 0 {
                        self.phy_bcr &= !PHY_BCR_RESET;
                    }
                }
                self.phy_bcr
            }
            PHY_BSR => 0x7809 | if self.link { 0x24 } else { 0 },
            PHY_ID1 => 0x0007,
            PHY_ID2 => 0xc0d1,
            PHY_ANAR => self.phy_anar,
            _ => 0,
        }
    }

    fn phy_write(&mut self, reg: u32, v: u32) {
        match reg {
            PHY_BCR => {
                self.phy_bcr = v;
                if v & PHY_BCR_RESET != 0 {
                    self.phy_reset_reads = 3;
                }
            }
            PHY_ANAR => self.phy_anar = v,
            _ => panic!("sim: write to PHY register {reg}"),
        }
    }

    fn tx_push(&mut self, w: u32) {
        self.tx_words.push(w);
        let a = self.tx_words[0];
        let len = (a & 0x7ff) as usize;
        if self.tx_words.len() == 2 + len.div_ceil(4) {
            assert_eq!(
                a & (TX_CMD_A_FIRST | TX_CMD_A_LAST),
                TX_CMD_A_FIRST | TX_CMD_A_LAST
            );
            let b = self.tx_words[1];
            let bytes: Vec<u8> = self.tx_words[2..]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .take(len)
                .collect();
            self.tx.push((a, b, bytes));
            self.tx_status.push_back(b & 0xffff_0000);
            self.tx_words.clear();
        }
    }
}

impl Bus for Sim {
    fn read(&mut self, offset: usize) -> u32 {
        match offset {
            RX_DATA_FIFO => match self.rx_current.pop_front() {
                Some(w) => w,
                None => {
                    self.rx_underflows += 1;
                    0
                }
            },
            RX_STATUS_FIFO => match self.rx.pop_front() {
                Some((status, words)) => {
                    assert!(
                        self.rx_current.is_empty(),
                        "sim: previous frame not read out"
                    );
                    self.rx_current = words;
                    status
                }
                None => 0,
            },
            TX_STATUS_FIFO => self.tx_status.pop_front().unwrap_or(0),
            ID_REV => 0x0118_0001,
            BYTE_TEST => self.byte_test,
            HW_CFG => self.hw_cfg,
            TX_CFG => self.tx_cfg,
            PMT_CTRL => PMT_CTRL_READY,
            RX_FIFO_INF => ((self.rx.len() as u32) << 16) | ((self.rx_current.len() as u32) * 4),
            TX_FIFO_INF => ((self.tx_status.len() as u32) << 16) | self.tx_free,
            RX_DROP => core::mem::take(&mut self.rx_drop),
            MAC_CSR_CMD => {
                if self.csr_stuck {
                    self.csr_cmd | MAC_CSR_BUSY
                } else {
                    self.csr_cmd
                }
            }
            MAC_CSR_DATA => self.csr_data,
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, value: u32) {
        self.writes.push((offset, value));
        match offset {
            TX_DATA_FIFO => self.tx_push(value),
            HW_CFG => self.hw_cfg = value & !HW_CFG_SRST,
            TX_CFG => self.tx_cfg = value & TX_CFG_TX_ON,
            RX_CFG if value & RX_CFG_RX_DUMP != 0 => {
                self.rx.clear();
                self.rx_current.clear();
            }
            MAC_CSR_DATA => self.csr_data = value,
            MAC_CSR_CMD => {
                self.csr_cmd = value & !MAC_CSR_BUSY;
                if value & MAC_CSR_BUSY != 0 && !self.csr_stuck {
                    self.mac_csr(value);
                }
            }
            _ => {}
        }
    }
}
