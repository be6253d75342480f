//! The embedded LVS director on NUCLEO-F429ZI (`--features f429zi`) and NUCLEO-H743ZI
//! (`--features h743zi`): the shared firmware (`lvs-firmware`) over embassy-stm32's
//! Ethernet driver, through lvs-firmware's embassy-net-driver -> smoltcp glue.
//!
//! Both boards wire the on-board LAN8742A PHY the same way (RMII): REF_CLK PA1,
//! MDIO PA2, CRS_DV PA7, MDC PC1, RXD0 PC4, RXD1 PC5, TX_EN PG11, TXD0 PG13, TXD1 PB13.
//! The firmware polls (no executor, no time driver), sleeping in WFI when a round found
//! nothing: SysTick is its clock, the RNG seeds the connection table's hash, and defmt
//! logs over RTT.
#![no_std]
#![no_main]

use defmt::{error, info};
use defmt_rtt as _;
use panic_probe as _;

use cortex_m_rt::{entry, exception};
use embassy_stm32::eth::{self, Ethernet, PacketQueue};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::{bind_interrupts, peripherals};
use lvs_firmware::clock::{self, Clock};
use lvs_firmware::driver::DriverDevice;
use lvs_firmware::{Board, Firmware, RULES};
use static_cell::StaticCell;

/// The director's MAC address (locally administered; give each board its own).
const MAC: [u8; 6] = [0x02, 0x4c, 0x56, 0x53, 0x00, 0x02];

#[cfg(feature = "f429zi")]
mod board {
    //! NUCLEO-F429ZI: 8 MHz HSE from the ST-LINK (bypass), 180 MHz core.
    use embassy_stm32::time::Hertz;

    pub const NAME: &str = "nucleo-f429zi";
    pub const CORE_HZ: u32 = 180_000_000;
    /// 1024 IPv4 connections: 80 KiB with their indexes, of the 192 KiB SRAM.
    pub const CONNS_V4: usize = 1024;
    pub const CONNS_V6: usize = 16;

    pub fn config() -> embassy_stm32::Config {
        use embassy_stm32::rcc::*;
        let mut config = embassy_stm32::Config::default();
        config.rcc.hse = Some(Hse {
            freq: Hertz(8_000_000),
            mode: HseMode::Bypass,
        });
        config.rcc.pll_src = PllSource::HSE;
        config.rcc.pll = Some(Pll {
            prediv: PllPreDiv::DIV4,
            mul: PllMul::MUL180,
            divp: Some(PllPDiv::DIV2),
            divq: Some(PllQDiv::DIV8),
            divr: None,
        });
        config.rcc.ahb_pre = AHBPrescaler::DIV1;
        config.rcc.apb1_pre = APBPrescaler::DIV4;
        config.rcc.apb2_pre = APBPrescaler::DIV2;
        config.rcc.sys = Sysclk::PLL1_P;
        config
    }
}

#[cfg(feature = "h743zi")]
mod board {
    //! NUCLEO-H743ZI: HSI through PLL1, 400 MHz core; HSI48 for the RNG.

    pub const NAME: &str = "nucleo-h743zi";
    pub const CORE_HZ: u32 = 400_000_000;
    /// 4096 IPv4 connections: 256 KiB with their indexes, of the 512 KiB AXI SRAM.
    pub const CONNS_V4: usize = 4096;
    pub const CONNS_V6: usize = 64;

    pub fn config() -> embassy_stm32::Config {
        use embassy_stm32::rcc::*;
        let mut config = embassy_stm32::Config::default();
        config.rcc.hsi = Some(HSIPrescaler::DIV1);
        config.rcc.csi = true;
        config.rcc.hsi48 = Some(Default::default());
        config.rcc.pll1 = Some(Pll {
            source: PllSource::HSI,
            prediv: PllPreDiv::DIV4,
            mul: PllMul::MUL50,
            fracn: None,
            divp: Some(PllDiv::DIV2),
            divq: None,
            divr: None,
        });
        config.rcc.sys = Sysclk::PLL1_P;
        config.rcc.ahb_pre = AHBPrescaler::DIV2;
        config.rcc.apb1_pre = APBPrescaler::DIV2;
        config.rcc.apb2_pre = APBPrescaler::DIV2;
        config.rcc.apb3_pre = APBPrescaler::DIV2;
        config.rcc.apb4_pre = APBPrescaler::DIV2;
        config.rcc.voltage_scale = VoltageScale::Scale1;
        config
    }
}

#[cfg(all(feature = "f429zi", feature = "h743zi"))]
compile_error!("pick one board: --features f429zi or --features h743zi");

#[cfg(feature = "f429zi")]
bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    HASH_RNG => rng::InterruptHandler<peripherals::RNG>;
});

#[cfg(feature = "h743zi")]
bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<peripherals::RNG>;
});

/// The Ethernet DMA descriptors and buffers: 4 frames each way.
static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();

#[entry]
fn main() -> ! {
    let p = embassy_stm32::init(board::config());
    let mut cp = cortex_m::Peripherals::take().expect("first and only take");
    clock::start(&mut cp.SYST, board::CORE_HZ);
    let mut clk = Clock::new();

    let mut rng = Rng::new(p.RNG, Irqs);
    let seed = rng.next_u64();

    let eth = Ethernet::new(
        PACKETS.init(PacketQueue::new()),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        MAC,
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );
    let mut devs = [DriverDevice::new(eth)];

    let storage = lvs_firmware::storage!(conns_v4 = board::CONNS_V4, conns_v6 = board::CONNS_V6);
    let b = Board {
        name: board::NAME,
        mac: MAC,
        seed,
    };
    let mut fw = match Firmware::new(storage, b, &RULES, &mut devs, clk.now()) {
        Ok(fw) => fw,
        Err(e) => {
            error!("firmware: {}", defmt::Display2Format(&e));
            panic!("cannot start");
        }
    };
    info!(
        "lvs stm32-director up on {}: {} services, {} conns, stats on udp/{}",
        board::NAME,
        RULES.services.len(),
        board::CONNS_V4,
        lvs_firmware::STATS_PORT
    );

    let mut link = false;
    loop {
        let now = clk.now();
        let rx = fw.adapter.stats().rx;
        fw.poll(now, &mut devs, &mut |w, devs| {
            writeln!(w, "link {}", u8::from(devs[0].link_up()))
        });
        let up = devs[0].link_up();
        if up != link {
            link = up;
            info!("link {}", if up { "up" } else { "down" });
        }
        // Nothing came in: sleep until the next interrupt, the Ethernet DMA's (a frame)
        // or SysTick's (a millisecond), rather than spin.
        if fw.adapter.stats().rx == rx {
            cortex_m::asm::wfi();
        }
    }
}

#[exception]
fn SysTick() {
    clock::tick();
}
