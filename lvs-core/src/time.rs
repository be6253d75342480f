//! Time as the caller gives it: a monotonic instant in milliseconds.
//!
//! lvs-core has no clock. Every call that needs time takes an [`Instant`]; the caller
//! reads its own monotonic clock (SysTick on an MCU, `CLOCK_MONOTONIC` on Linux). Only
//! differences matter; the origin is the caller's.

use core::cmp::Ordering;
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

/// A connection's expiry in 32 bits: the low 32 bits of the caller's millisecond clock.
///
/// It is compared with an [`Instant`] (and with another deadline) by wrapping difference,
/// which is exact while the two are less than 2^31 ms (24.8 days) apart. The director
/// keeps it so: no deadline is set more than [`Deadline::MAX_AHEAD`] ahead of its clock,
/// and when its clock jumps by more than that between calls it sweeps the whole table
/// first, so no entry is left to be compared from too far. 4 bytes instead of 8 make an
/// IPv4 connection entry 44 bytes instead of 48.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Deadline {
    low: u32,
}

impl Deadline {
    /// The deadline at the clock's origin.
    pub const ZERO: Deadline = Deadline { low: 0 };

    /// The longest a deadline may lie ahead of the clock: 2^30 ms (about 12.4 days).
    /// Longer timeouts are cut to it.
    pub const MAX_AHEAD: Duration = Duration::from_millis(1 << 30);

    /// The deadline at `at`.
    #[inline]
    pub const fn at(at: Instant) -> Deadline {
        Deadline {
            low: at.millis as u32,
        }
    }

    /// The deadline `after` from `now` (at most [`Deadline::MAX_AHEAD`]).
    #[inline]
    pub fn after(now: Instant, after: Duration) -> Deadline {
        let d = if after.millis > Self::MAX_AHEAD.millis {
            Self::MAX_AHEAD.millis
        } else {
            after.millis
        };
        // Only the low 32 bits are kept, so the sum is taken there (wrapping, as every
        // comparison of deadlines is).
        Deadline {
            low: (now.millis as u32).wrapping_add(d as u32),
        }
    }

    /// Signed milliseconds from `now` to the deadline.
    #[inline]
    const fn ahead_of(self, now: Instant) -> i32 {
        self.low.wrapping_sub(now.millis as u32) as i32
    }

    /// Whether the deadline has come (`deadline <= now`).
    #[inline]
    pub const fn has_passed(self, now: Instant) -> bool {
        self.ahead_of(now) <= 0
    }

    /// Time left until the deadline, zero once it has passed.
    #[inline]
    pub const fn remaining(self, now: Instant) -> Duration {
        let d = self.ahead_of(now);
        Duration {
            millis: if d > 0 { d as u64 } else { 0 },
        }
    }

    /// The deadline as an instant of the caller's clock, given a `now` within 24.8 days
    /// of it.
    #[inline]
    pub const fn instant(self, now: Instant) -> Instant {
        let d = self.ahead_of(now) as i64;
        Instant {
            millis: now.millis.saturating_add_signed(d),
        }
    }
}

impl From<Instant> for Deadline {
    #[inline]
    fn from(at: Instant) -> Deadline {
        Deadline::at(at)
    }
}

impl PartialEq<Instant> for Deadline {
    #[inline]
    fn eq(&self, at: &Instant) -> bool {
        *self == Deadline::at(*at)
    }
}

impl PartialOrd<Instant> for Deadline {
    /// By wrapping difference: exact within 24.8 days of each other.
    #[inline]
    fn partial_cmp(&self, now: &Instant) -> Option<Ordering> {
        Some(self.ahead_of(*now).cmp(&0))
    }
}

impl PartialOrd for Deadline {
    /// By wrapping difference: exact within 24.8 days of each other (not a total order
    /// across a wider span).
    #[inline]
    fn partial_cmp(&self, other: &Deadline) -> Option<Ordering> {
        Some((self.low.wrapping_sub(other.low) as i32).cmp(&0))
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

    #[test]
    fn test_deadline_compares_across_the_wrap() {
        // Just below 2^32 ms, so deadlines wrap.
        let now = Instant::from_millis((1u64 << 32) - 100);
        let soon = Deadline::after(now, Duration::from_millis(300));
        assert!(soon > now && !soon.has_passed(now));
        assert_eq!(soon.remaining(now), Duration::from_millis(300));
        assert_eq!(soon.instant(now), now + Duration::from_millis(300));
        let later = now + Duration::from_millis(300);
        assert!(soon <= later && soon.has_passed(later) && soon == later);
        assert!(Deadline::at(now) < soon);
        assert_eq!(
            soon.remaining(later + Duration::from_secs(5)),
            Duration::ZERO
        );
        // An expired deadline from before the origin of the low bits.
        let past = Deadline::at(Instant::from_millis((1u64 << 32) - 500));
        assert!(past.has_passed(now) && past < now);
        assert_eq!(past.instant(now), Instant::from_millis((1u64 << 32) - 500));
    }

    #[test]
    fn test_deadline_is_cut_to_max_ahead() {
        let now = Instant::from_secs(10);
        let far = Deadline::after(now, Duration::from_secs(100 * 86_400));
        assert_eq!(far.remaining(now), Deadline::MAX_AHEAD);
        assert!(!far.has_passed(now + Duration::from_secs(12 * 86_400)));
    }
}
