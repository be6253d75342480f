//! The embedded LVS director on QEMU's `mps2-an386`: the shared firmware
//! (`lvs-firmware`) over the board's LAN9118, with SysTick as the clock.
//!
//! ```text
//! qemu-system-arm -M mps2-an386 -nographic -semihosting-config enable=on,target=native \
//!     -nic tap,ifname=TAP,script=no,downscript=no,model=lan9118 -kernel qemu-director
//! ```
//! Logs go out through semihosting; a panic or a hard fault prints its cause and ends
//! QEMU with a failure status, so a test sees it.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::panic::PanicInfo;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use lan9118::{Bus, Lan9118, Mmio};
use lvs_firmware::clock::{self, Clock};
use lvs_firmware::{Board, Firmware, RULES};

/// The LAN9220 (LAN9118-compatible) of the AN385/AN386 FPGA images.
const LAN9118_BASE: usize = 0x4020_0000;
/// The MPS2's system clock, which drives the core and SysTick (QEMU models 25 MHz).
const SYSCLK_HZ: u32 = 25_000_000;
/// Connection table: 4096 IPv4 entries (the goal of issue 5), a few IPv6 ones.
const CONNS_V4: usize = 4096;
const CONNS_V6: usize = 16;
/// The director's MAC address (locally administered).
const MAC: [u8; 6] = [0x02, 0x4c, 0x56, 0x53, 0x00, 0x01];
/// The LAN9118's free-running 25 MHz counter (`FREE_RUN`): the only entropy this
/// board has, mixed into the hash seed.
const FREE_RUN: usize = 0x9c;

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().expect("first and only take");
    clock::start(&mut cp.SYST, SYSCLK_HZ);
    let mut clk = Clock::new();

    // SAFETY: the AN386 maps the LAN9220's 256-byte register block at LAN9118_BASE,
    // and this is the only code that touches it.
    #[allow(unsafe_code)]
    let bus = unsafe { Mmio::new(LAN9118_BASE) };
    let mut nic = Lan9118::new(
        bus,
        lan9118::Config {
            mac: MAC,
            ..lan9118::Config::default()
        },
    );
    if let Err(e) = nic.init() {
        hprintln!("lan9118: {}", e);
        fail();
    }
    let id = nic.id_rev();
    let phy = nic.phy_id();
    let seed = u64::from(nic.bus_mut().read(FREE_RUN)) << 32 | 0x4c56_5321;

    let storage = lvs_firmware::storage!(conns_v4 = CONNS_V4, conns_v6 = CONNS_V6);
    let mut devs = [nic];
    let board = Board {
        name: "qemu-mps2-an386",
        mac: MAC,
        seed,
    };
    let mut fw = match Firmware::new(storage, board, &RULES, &mut devs, clk.now()) {
        Ok(fw) => fw,
        Err(e) => {
            hprintln!("firmware: {}", e);
            fail()
        }
    };
    hprintln!(
        "lvs qemu-director up: LAN9118 id {:#010x} phy {:#010x}, {} services, {} conns, stats on udp/{}",
        id,
        phy,
        RULES.services.len(),
        CONNS_V4,
        lvs_firmware::STATS_PORT
    );

    loop {
        let before = devs[0].rx_frames();
        let forwarded = fw.adapter.stats().forwarded;
        let now = clk.now();
        fw.poll(now, &mut devs, &mut |w, devs| {
            nic_lines(w, &devs[0].counters())
        });
        // Busy while frames arrive; otherwise sleep to the next SysTick (1 ms), so an
        // idle director does not spin QEMU's host CPU.
        match devs[0].rx_frames() - before {
            0 => {
                round_idle();
                cortex_m::asm::wfi();
            }
            1 if fw.adapter.stats().forwarded == forwarded + 1 => round_one_forwarded(),
            1 => round_one_frame(),
            _ => round_frames(),
        }
    }
}

// Round markers: every main-loop round ends in exactly one of these, so an instruction
// trace (`-d in_asm,exec,nochain`, see insn.py) cuts into rounds and knows what each
// handled: nothing, one frame forwarded, one frame for the local stack, or more. Out of line and distinct, or they would fold into one address.
#[inline(never)]
fn round_idle() {
    core::hint::black_box(0);
}

#[inline(never)]
fn round_one_frame() {
    core::hint::black_box(1);
}

#[inline(never)]
fn round_one_forwarded() {
    core::hint::black_box(3);
}

#[inline(never)]
fn round_frames() {
    core::hint::black_box(2);
}

/// The driver's counters, as stats reply lines.
fn nic_lines(w: &mut dyn core::fmt::Write, c: &lan9118::Counters) -> core::fmt::Result {
    writeln!(w, "nic_rx_frames {}", c.rx_frames)?;
    writeln!(w, "nic_rx_errors {}", c.rx_errors + c.rx_length_errors)?;
    writeln!(w, "nic_rx_fifo_drops {}", c.rx_fifo_drops)?;
    writeln!(w, "nic_tx_frames {}", c.tx_frames)?;
    writeln!(w, "nic_tx_errors {}", c.tx_errors)?;
    writeln!(w, "nic_tx_dropped {}", c.tx_dropped)
}

#[exception]
fn SysTick() {
    clock::tick();
}

#[exception]
#[allow(unsafe_code)]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    hprintln!("HARD FAULT at pc {:#010x}: {:?}", ef.pc(), ef);
    fail()
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    hprintln!("PANIC: {}", info);
    fail()
}

/// Ends QEMU with a failure status (under a debugger: stops there).
fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
