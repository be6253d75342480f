//! The stats port's reply: one `name value` line per counter, plain text, so a shell
//! script reads it with `awk`. Real servers get one line each:
//! `rs ADDR:PORT conns N active N inactive N inpkts N outpkts N`.

use core::fmt::{self, Write};

use crate::{Board, FwAdapter};

/// The longest reply (one UDP datagram without IP fragmentation).
pub const MAX_REPLY: usize = 1400;

/// A `fmt::Write` into a byte buffer that keeps only whole lines: a line that does not
/// fit is dropped, and everything after it fails.
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Where the line being written began.
    line: usize,
    full: bool,
}

impl<'b> Writer<'b> {
    /// An empty writer over `buf`.
    pub fn new(buf: &'b mut [u8]) -> Writer<'b> {
        Writer {
            buf,
            len: 0,
            line: 0,
            full: false,
        }
    }

    /// Bytes of whole lines written.
    pub fn len(&self) -> usize {
        if self.full { self.line } else { self.len }
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.full {
            return Err(fmt::Error);
        }
        let end = self.len + s.len();
        let Some(dst) = self.buf.get_mut(self.len..end) else {
            self.full = true;
            return Err(fmt::Error);
        };
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        if s.ends_with('\n') {
            self.line = end;
        } else if let Some(i) = s.rfind('\n') {
            self.line = end - s.len() + i + 1;
        }
        Ok(())
    }
}

/// Writes the board's, the director's and the adapter's counters.
pub fn render(
    w: &mut dyn Write,
    board: &Board,
    uptime_ms: u64,
    requests: u64,
    adapter: &FwAdapter,
) -> fmt::Result {
    let d = &adapter.director;
    writeln!(w, "board {}", board.name)?;
    writeln!(w, "uptime_ms {uptime_ms}")?;
    writeln!(w, "stats_requests {requests}")?;
    writeln!(w, "conns {}", d.conns_v4().len() + d.conns_v6().len())?;
    writeln!(w, "conns_capacity {}", d.conns_v4().capacity())?;
    let t = d.totals();
    writeln!(w, "total_conns {}", t.conns)?;
    writeln!(w, "total_inpkts {}", t.inpkts)?;
    writeln!(w, "total_outpkts {}", t.outpkts)?;
    writeln!(w, "total_inbytes {}", t.inbytes)?;
    writeln!(w, "total_outbytes {}", t.outbytes)?;
    writeln!(w, "drops {}", d.drops().total())?;
    for (reason, n) in d.drops().iter() {
        if n != 0 {
            writeln!(w, "drop_{} {n}", reason.name())?;
        }
    }
    let a = adapter.stats();
    let lines: [(&str, u64); 12] = [
        ("rx", a.rx),
        ("forwarded", a.forwarded),
        ("local", a.local),
        ("dropped", a.dropped),
        ("replies", a.replies),
        ("not_ours", a.not_ours),
        ("malformed", a.malformed),
        ("no_route", a.no_route),
        ("tx_busy", a.tx_busy),
        ("held", a.held),
        ("unresolved", a.unresolved),
        ("local_lost", a.local_lost),
    ];
    for (name, v) in lines {
        writeln!(w, "adapter_{name} {v}")?;
    }
    for (_, svc) in d.services() {
        for &id in svc.members() {
            if let Some((rs, meta)) = d.dest(id) {
                writeln!(
                    w,
                    "rs {}:{} conns {} active {} inactive {} inpkts {} outpkts {}",
                    rs.addr,
                    rs.port,
                    meta.stats.conns,
                    rs.active_conns,
                    rs.inactive_conns,
                    meta.stats.inpkts,
                    meta.stats.outpkts
                )?;
            }
        }
    }
    Ok(())
}
