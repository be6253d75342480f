//! The few system calls the director's loop needs beyond std: the SIGINT/SIGTERM
//! handlers and `poll(2)`. Each `unsafe` block is one call and says why it is sound.

use std::ffi::c_int;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set by SIGINT / SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Whether SIGINT or SIGTERM has arrived since [`install_signal_handlers`].
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Makes SIGINT and SIGTERM set the flag [`stop_requested`] reads, and interrupt a
/// waiting [`poll`] (no `SA_RESTART`).
pub fn install_signal_handlers() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero sigaction is valid (empty mask, no flags); the handler
        // only stores to an atomic, which is async-signal-safe.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What to wait for on one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// The descriptor.
    pub fd: RawFd,
    /// Wait until it can be written (else: read).
    pub write: bool,
}

/// Waits until one of `fds` is ready, a signal arrives, or `timeout` passes (`None`:
/// no limit). Returns whether anything was ready (an interruption is `Ok(false)`).
/// `scratch` is reused between calls.
pub fn poll(
    fds: &[Wait],
    timeout: Option<Duration>,
    scratch: &mut Vec<libc::pollfd>,
) -> io::Result<bool> {
    scratch.clear();
    scratch.extend(fds.iter().map(|w| libc::pollfd {
        fd: w.fd,
        events: if w.write { libc::POLLOUT } else { libc::POLLIN },
        revents: 0,
    }));
    let ms: c_int = match timeout {
        None => -1,
        // Round up, so a wake-up is never early by a fraction of a millisecond.
        Some(t) => c_int::try_from(t.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX),
    };
    // SAFETY: `scratch` holds `scratch.len()` initialised pollfds the kernel may write
    // (revents) during the call.
    let r = unsafe { libc::poll(scratch.as_mut_ptr(), scratch.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

/// Asks the kernel to back `len` bytes from `p` with transparent huge pages (2 MiB,
/// `madvise(MADV_HUGEPAGE)`), before they are first touched: a million-entry
/// connection table spans tens of thousands of 4 KiB pages, and every lookup would
/// otherwise walk the page tables too. Advice only: an error (huge pages disabled, an
/// old kernel) changes nothing, and is ignored.
pub fn advise_huge_pages(p: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    let start = (p as usize).next_multiple_of(PAGE);
    let end = (p as usize).saturating_add(len) / PAGE * PAGE;
    if end > start {
        // SAFETY: advice about whole pages inside an allocation this process owns;
        // MADV_HUGEPAGE changes neither contents nor mappings the program relies on.
        let _ =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}
