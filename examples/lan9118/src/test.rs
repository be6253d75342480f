use smoltcp::phy::{Device, RxToken as _, TxToken as _};
use smoltcp::time::Instant;

use crate::regs::*;
use crate::sim::Sim;
use crate::{Config, Error, Lan9118, MAX_FRAME};

extern crate std;
use std::vec::Vec;

const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

fn up() -> Lan9118<Sim> {
    let mut nic = Lan9118::new(
        Sim::new(),
        Config {
            mac: MAC,
            ..Config::default()
        },
    );
    nic.init().expect("init");
    nic
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn recv(nic: &mut Lan9118<Sim>) -> Option<Vec<u8>> {
    let (rx, _tx) = nic.receive(Instant::ZERO)?;
    Some(rx.consume(|b| b.to_vec()))
}

#[test]
fn test_init_programs_mac_and_phy() {
    let mut nic = up();
    let sim = nic.bus_mut();
    assert_eq!(sim.mac_addrl, 0x3322_1102);
    assert_eq!(sim.mac_addrh, 0x5544);
    assert_eq!(
        sim.mac_cr,
        MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX | MAC_CR_MCPAS
    );
    assert_eq!(sim.phy_anar, 0x01e1);
    assert_eq!(sim.phy_bcr, PHY_BCR_ANEN | PHY_BCR_ANRESTART);
    assert_eq!(sim.tx_cfg, TX_CFG_TX_ON);
    // Interrupts are off: the driver polls.
    assert!(sim.writes.contains(&(INT_EN, 0)));
    // A soft reset came first after the byte test.
    assert_eq!(sim.writes[0], (HW_CFG, HW_CFG_SRST));
    assert_eq!(nic.phy_id(), 0x0007_c0d1);
    assert_eq!(nic.id_rev() >> 16, 0x0118);
    assert!(nic.link_up());
    nic.bus_mut().link = false;
    assert!(!nic.link_up());
}

#[test]
fn test_init_promiscuous() {
    let mut nic = Lan9118::new(
        Sim::new(),
        Config {
            promiscuous: true,
            all_multicast: false,
            full_duplex: false,
            ..Config::default()
        },
    );
    nic.init().unwrap();
    assert_eq!(
        nic.bus_mut().mac_cr,
        MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_PRMS
    );
}

#[test]
fn test_init_errors() {
    let mut sim = Sim::new();
    sim.byte_test = 0x4321_8765;
    let mut nic = Lan9118::new(sim, Config::default());
    assert_eq!(nic.init(), Err(Error::NotFound(0x4321_8765)));

    let mut sim = Sim::new();
    sim.csr_stuck = true;
    let mut nic = Lan9118::new(sim, Config::default());
    assert_eq!(nic.init(), Err(Error::Timeout("MAC CSR")));
}

#[test]
fn test_receive_every_length_byte_exact() {
    let mut nic = up();
    let lens = [14, 60, 61, 62, 63, 64, 1000, 1513, 1514, MAX_FRAME];
    for (i, &len) in lens.iter().enumerate() {
        nic.bus_mut().push_rx(&frame(len, i as u8));
    }
    for (i, &len) in lens.iter().enumerate() {
        assert_eq!(recv(&mut nic).as_deref(), Some(&frame(len, i as u8)[..]));
    }
    assert_eq!(recv(&mut nic), None);
    assert_eq!(nic.bus_mut().rx_words_left(), 0);
    assert_eq!(nic.bus_mut().rx_underflows, 0);
    let c = nic.counters();
    assert_eq!(c.rx_frames, lens.len() as u64);
    assert_eq!(c.rx_bytes, lens.iter().sum::<usize>() as u64);
    assert_eq!(c.rx_errors + c.rx_length_errors, 0);
}

#[test]
fn test_receive_discards_bad_frames() {
    let mut nic = up();
    let good = frame(100, 1);
    // An error-summary frame, a frame too long, a runt: each read out and dropped.
    nic.bus_mut()
        .push_rx_status(((64 + 4) << 16) | RX_STS_ES, &frame(64, 9));
    nic.bus_mut().push_rx(&frame(MAX_FRAME + 1, 2));
    nic.bus_mut().push_rx(&frame(10, 3));
    nic.bus_mut().push_rx(&good);
    assert_eq!(recv(&mut nic), Some(good));
    assert_eq!(nic.bus_mut().rx_words_left(), 0);
    assert_eq!(nic.bus_mut().rx_underflows, 0);
    nic.bus_mut().rx_drop = 5;
    let c = nic.counters();
    assert_eq!((c.rx_frames, c.rx_errors, c.rx_length_errors), (1, 1, 2));
    assert_eq!(c.rx_fifo_drops, 5);
    // RX_DROP clears on read; the driver accumulates.
    nic.bus_mut().rx_drop = 2;
    assert_eq!(nic.counters().rx_fifo_drops, 7);
}

#[test]
fn test_transmit_packs_commands_and_data() {
    let mut nic = up();
    for (i, len) in [60usize, 61, 62, 63, 1514].into_iter().enumerate() {
        let f = frame(len, i as u8);
        let tok = nic.transmit(Instant::ZERO).expect("room");
        tok.consume(len, |b| b.copy_from_slice(&f));
        let (a, b, bytes) = nic.bus_mut().tx.last().cloned().unwrap();
        assert_eq!(a, TX_CMD_A_FIRST | TX_CMD_A_LAST | len as u32);
        assert_eq!(b & 0x7ff, len as u32);
        assert_eq!(b >> 16, i as u32 + 1, "tags count up");
        assert_eq!(bytes, f);
    }
    let c = nic.counters();
    assert_eq!(c.tx_frames, 5);
    assert_eq!(c.tx_bytes, 60 + 61 + 62 + 63 + 1514);
    // counters() drained the status FIFO.
    assert!(nic.bus_mut().tx_status.is_empty());
}

#[test]
fn test_reply_through_the_receive_tx_token() {
    let mut nic = up();
    nic.bus_mut().push_rx(&frame(70, 4));
    let (rx, tx) = nic.receive(Instant::ZERO).unwrap();
    let got = rx.consume(|b| b.to_vec());
    tx.consume(got.len(), |b| b.copy_from_slice(&got));
    assert_eq!(nic.bus_mut().tx[0].2, frame(70, 4));
}

#[test]
fn test_transmit_without_room() {
    let mut nic = up();
    nic.bus_mut().tx_free = 1000;
    assert!(nic.transmit(Instant::ZERO).is_none());
    // A token taken while there was room, then the FIFO filled: dropped and counted.
    nic.bus_mut().tx_free = 4608;
    let tok = nic.transmit(Instant::ZERO).unwrap();
    tok.tx.bus.tx_free = 100;
    tok.consume(200, |b| b.fill(1));
    assert!(nic.bus_mut().tx.is_empty());
    // Asking for more than a frame: the closure still runs, nothing is sent.
    nic.bus_mut().tx_free = 4608;
    let tok = nic.transmit(Instant::ZERO).unwrap();
    let n = tok.consume(5000, |b| b.len());
    assert!(n < 5000);
    assert!(nic.bus_mut().tx.is_empty());
    assert_eq!(nic.counters().tx_dropped, 2);
}

#[test]
fn test_transmit_errors_counted() {
    let mut nic = up();
    nic.bus_mut().tx_status.push_back(TX_STS_ES | 0x0001_0000);
    nic.bus_mut().tx_status.push_back(0x0002_0000);
    let c = nic.counters();
    assert_eq!(c.tx_errors, 1);
    assert_eq!(nic.counters().tx_errors, 1, "each status counted once");
}
