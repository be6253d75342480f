//! A millisecond clock from the Cortex-M SysTick: the exception counts milliseconds in
//! an atomic, [`Clock::now`] extends it to 64 bits. Real time, not a loop count: QEMU
//! runs SysTick from its virtual clock, which follows the host's.
//!
//! The board's `#[exception] fn SysTick()` calls [`tick`] (the handler lives in the
//! binary, where cortex-m-rt's vector table is sure to see it).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use smoltcp::time::Instant;

static MILLIS: AtomicU32 = AtomicU32::new(0);

/// Starts SysTick interrupting every millisecond, for a core clocked at `core_hz`.
pub fn start(syst: &mut SYST, core_hz: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(core_hz / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// One millisecond more: call from the SysTick exception.
#[inline]
pub fn tick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// Milliseconds since [`start`], wrapping every 49.7 days (see [`Clock`]).
pub fn millis32() -> u32 {
    MILLIS.load(Ordering::Relaxed)
}

/// A monotonic 64-bit millisecond clock over the 32-bit tick count. Call
/// [`Clock::now`] at least once per 49 days (a main loop does).
#[derive(Debug, Default)]
pub struct Clock {
    last: u32,
    high: u64,
}

impl Clock {
    /// A clock reading from the tick count.
    pub const fn new() -> Clock {
        Clock { last: 0, high: 0 }
    }

    /// Now, for smoltcp and the adapter.
    pub fn now(&mut self) -> Instant {
        let ms = millis32();
        if ms < self.last {
            self.high += 1 << 32;
        }
        self.last = ms;
        Instant::from_millis((self.high | u64::from(ms)) as i64)
    }
}
