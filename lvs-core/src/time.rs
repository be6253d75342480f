//! Time as the caller gives it: a monotonic instant in milliseconds.
//!
//! lvs-core has no clock. Every call that needs time takes an [`Instant`]; the caller
//! reads its own monotonic clock (SysTick on an MCU, `CLOCK_MONOTONIC` on Linux). Only
//! differences matter; the origin is the caller's.

use core::ops::{Add, AddAssign, Sub};

/// A point in monotonic time, in milliseconds from the caller's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant {
    millis: u64,
}

/// A span of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration {
    millis: u64,
}

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant { millis: 0 };

    /// An instant `millis` milliseconds after the origin.
    #[inline]
    pub const fn from_millis(millis: u64) -> Instant {
        Instant { millis }
    }

    /// An instant `secs` seconds after the origin.
    #[inline]
    pub const fn from_secs(secs: u64) -> Instant {
        Instant {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Milliseconds since the origin.
    #[inline]
    pub const fn total_millis(self) -> u64 {
        self.millis
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    #[inline]
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration {
            millis: self.millis.saturating_sub(earlier.millis),
        }
    }
}

impl Duration {
    /// No time.
    pub const ZERO: Duration = Duration { millis: 0 };

    /// `millis` milliseconds.
    #[inline]
    pub const fn from_millis(millis: u64) -> Duration {
        Duration { millis }
    }

    /// `secs` seconds.
    #[inline]
    pub const fn from_secs(secs: u64) -> Duration {
        Duration {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Whole milliseconds.
    #[inline]
    pub const fn total_millis(self) -> u64 {
        self.millis
    }

    /// Whole seconds (rounded down).
    #[inline]
    pub const fn secs(self) -> u64 {
        self.millis / 1000
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    #[inline]
    fn add(self, d: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_add(d.millis),
        }
    }
}

impl AddAssign<Duration> for Instant {
    #[inline]
    fn add_assign(&mut self, d: Duration) {
        self.millis = self.millis.saturating_add(d.millis);
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an earlier minus a later instant is zero.
    #[inline]
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}

impl Add for Duration {
    type Output = Duration;
    #[inline]
    fn add(self, d: Duration) -> Duration {
        Duration {
            millis: self.millis.saturating_add(d.millis),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_arithmetic_saturates() {
        let t = Instant::from_secs(2);
        assert_eq!((t + Duration::from_millis(500)).total_millis(), 2500);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!((t - Instant::from_millis(500)).total_millis(), 1500);
        assert_eq!(
            (Instant::from_millis(u64::MAX) + Duration::from_secs(1)).total_millis(),
            u64::MAX
        );
        assert_eq!(Duration::from_millis(2999).secs(), 2);
    }
}
