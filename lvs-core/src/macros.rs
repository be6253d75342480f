//! Trace macros that expand to `log::`, `defmt::` or nothing.
//!
//! Per-packet code uses `lvs_trace!` only (never a level above trace on the data path).
//! With no back-end the arguments are still evaluated, so enabling a feature cannot
//! change what the code does.

#[cfg(feature = "log")]
macro_rules! lvs_trace {
    ($($arg:expr),* $(,)?) => { log::trace!($($arg),*) };
}

#[cfg(feature = "defmt")]
macro_rules! lvs_trace {
    ($($arg:expr),* $(,)?) => { defmt::trace!($($arg),*) };
}

#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! lvs_trace {
    ($fmt:expr $(, $arg:expr)* $(,)?) => {{
        let _ = $fmt;
        $( let _ = &$arg; )*
    }};
}
