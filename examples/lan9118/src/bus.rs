//! Register access: the [`Bus`] trait, and [`Mmio`], the crate's only `unsafe` code.

/// 32-bit access to the chip's registers, by byte offset from its base. Reads take
/// `&mut self`: reading a FIFO port pops it.
pub trait Bus {
    /// Reads the register at `offset`.
    fn read(&mut self, offset: usize) -> u32;
    /// Writes the register at `offset`.
    fn write(&mut self, offset: usize, value: u32);
}

/// The chip's registers, memory-mapped at a base address.
#[derive(Debug)]
pub struct Mmio {
    base: usize,
}

#[allow(unsafe_code)]
impl Mmio {
    /// The register block at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a LAN9118 register block (256 bytes, 32-bit
    /// accesses), mapped as device memory, and nothing else may access it while this
    /// value lives: the driver assumes it alone moves the FIFOs.
    pub const unsafe fn new(base: usize) -> Mmio {
        Mmio { base }
    }
}

#[allow(unsafe_code)]
impl Bus for Mmio {
    #[inline]
    fn read(&mut self, offset: usize) -> u32 {
        debug_assert!(offset < 0x100 && offset.is_multiple_of(4));
        // SAFETY: `new`'s contract: base..base+0x100 is the chip's register block, ours
        // alone. The driver only passes the aligned offsets of `regs` (all < 0x100).
        // Volatile, since every read may have an effect (FIFO pops) and must happen.
        unsafe { core::ptr::read_volatile((self.base + (offset & 0xfc)) as *const u32) }
    }

    #[inline]
    fn write(&mut self, offset: usize, value: u32) {
        debug_assert!(offset < 0x100 && offset.is_multiple_of(4));
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + (offset & 0xfc)) as *mut u32, value) }
    }
}
