//! Captures: `--pcap FILE` (every frame in and out of every port, [`Traced`]) and
//! `--replay IN.pcap --write OUT.pcap` (frames from a capture instead of a tap,
//! [`ReplayPort`]). Both write the classic libpcap format, linktype Ethernet.
//!
//! smoltcp's `PcapWriter` wraps one device with one sink, writes a file header per
//! device and panics when a write fails; the director has several ports and one file, so
//! [`PcapOut`] is shared between them and counts failed writes instead.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::tap::ETHERNET_HEADER;

/// A pcap file being written; failed writes are counted, not fatal.
pub struct PcapOut {
    writer: PcapWriter<BufWriter<File>>,
    /// Frames written.
    pub frames: u64,
    /// Frames that could not be written.
    pub errors: u64,
}

impl PcapOut {
    /// Creates (truncates) `path` and writes the file header.
    pub fn create(path: &Path) -> io::Result<PcapOut> {
        let file = File::create(path).map_err(|e| ctx(path, e))?;
        let writer = PcapWriter::new(BufWriter::new(file))
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        Ok(PcapOut {
            writer,
            frames: 0,
            errors: 0,
        })
    }

    /// Appends a frame with this timestamp (since the Unix epoch, or since the
    /// capture's start).
    pub fn write(&mut self, ts: Duration, frame: &[u8]) {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        match self.writer.write_packet(&PcapPacket::new(ts, len, frame)) {
            Ok(_) => self.frames += 1,
            Err(_) => self.errors += 1,
        }
    }

    /// Writes out what is buffered and closes the file (dropping it does the same but
    /// cannot report a failure).
    pub fn finish(self) -> io::Result<()> {
        self.writer.into_writer().flush()
    }
}

fn ctx(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The frames of a capture, with their timestamps. Only Ethernet captures are taken.
pub fn read_capture(path: &Path) -> io::Result<Vec<(Duration, Vec<u8>)>> {
    let file = File::open(path).map_err(|e| ctx(path, e))?;
    let bad = |e: pcap_file::PcapError| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a pcap capture: {e}", path.display()),
        )
    };
    let mut reader = PcapReader::new(BufReader::new(file)).map_err(bad)?;
    let link = reader.header().datalink;
    if link != DataLink::ETHERNET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: linktype {link:?}: only Ethernet captures can be replayed",
                path.display()
            ),
        ));
    }
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.map_err(bad)?;
        out.push((p.timestamp, p.data.into_owned()));
    }
    Ok(out)
}

/// The wall clock as a pcap timestamp.
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A device whose received and transmitted frames also go to a shared [`PcapOut`]
/// (when there is one), stamped with the wall clock.
pub struct Traced<D> {
    inner: D,
    trace: Option<Rc<RefCell<PcapOut>>>,
}

impl<D> Traced<D> {
    /// Wraps `inner`; `trace: None` traces nothing.
    pub fn new(inner: D, trace: Option<Rc<RefCell<PcapOut>>>) -> Traced<D> {
        Traced { inner, trace }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

fn trace(t: Option<&Rc<RefCell<PcapOut>>>, frame: &[u8]) {
    if let Some(t) = t
        && let Ok(mut t) = t.try_borrow_mut()
    {
        t.write(wall_clock(), frame);
    }
}

/// [`Traced`]'s receive token.
pub struct TracedRx<'a, T> {
    inner: T,
    trace: Option<&'a Rc<RefCell<PcapOut>>>,
}

impl<T: phy::RxToken> phy::RxToken for TracedRx<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let trace_to = self.trace;
        self.inner.consume(|buf| {
            trace(trace_to, buf);
            f(buf)
        })
    }
}

/// [`Traced`]'s transmit token.
pub struct TracedTx<'a, T> {
    inner: T,
    trace: Option<&'a Rc<RefCell<PcapOut>>>,
}

impl<T: phy::TxToken> phy::TxToken for TracedTx<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let trace_to = self.trace;
        self.inner.consume(len, |buf| {
            let r = f(buf);
            trace(trace_to, buf);
            r
        })
    }
}

impl<D: Device> Device for Traced<D> {
    type RxToken<'a>
        = TracedRx<'a, D::RxToken<'a>>
    where
        D: 'a;
    type TxToken<'a>
        = TracedTx<'a, D::TxToken<'a>>
    where
        D: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let trace = self.trace.as_ref();
        self.inner
            .receive(now)
            .map(|(rx, tx)| (TracedRx { inner: rx, trace }, TracedTx { inner: tx, trace }))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let trace = self.trace.as_ref();
        self.inner
            .transmit(now)
            .map(|tx| TracedTx { inner: tx, trace })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

// --------------------------------------------------------------------------- replay

/// What the replay ports share: the frame waiting to be received on port 0, the output
/// capture, and the timestamp transmitted frames get.
pub struct ReplayIo {
    /// The next frame port 0 yields (taken by the receive).
    pub pending: Option<Vec<u8>>,
    /// Where every transmitted frame goes.
    pub out: PcapOut,
    /// The timestamp of transmitted frames: the input frame's being processed.
    pub now: Duration,
    /// Transmitted frames per port.
    pub sent: Vec<u64>,
    buf: Vec<u8>,
    rx: Vec<u8>,
}

impl ReplayIo {
    /// Shared state for `ports` ports writing to `out`.
    pub fn new(out: PcapOut, ports: usize) -> Rc<RefCell<ReplayIo>> {
        Rc::new(RefCell::new(ReplayIo {
            pending: None,
            out,
            now: Duration::ZERO,
            sent: vec![0; ports],
            buf: Vec::new(),
            rx: Vec::new(),
        }))
    }
}

/// A port under `--replay`: port 0 yields the frames put in [`ReplayIo::pending`]; no
/// other port yields any; every port's transmissions go to [`ReplayIo::out`].
pub struct ReplayPort {
    io: Rc<RefCell<ReplayIo>>,
    port: usize,
    mtu: usize,
}

impl ReplayPort {
    /// Port `port` (IP MTU `mtu`) over the shared state.
    pub fn new(io: Rc<RefCell<ReplayIo>>, port: usize, mtu: usize) -> ReplayPort {
        ReplayPort { io, port, mtu }
    }
}

/// A replayed frame.
pub struct ReplayRx<'a> {
    io: &'a RefCell<ReplayIo>,
}

impl phy::RxToken for ReplayRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        // The frame is moved out first: `f` may transmit, which borrows the state.
        let frame = std::mem::take(&mut self.io.borrow_mut().rx);
        let r = f(&frame);
        self.io.borrow_mut().rx = frame;
        r
    }
}

/// A transmission into the output capture.
pub struct ReplayTx<'a> {
    io: &'a RefCell<ReplayIo>,
    port: usize,
}

impl phy::TxToken for ReplayTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = std::mem::take(&mut self.io.borrow_mut().buf);
        buf.clear();
        buf.resize(len, 0);
        let r = f(&mut buf);
        let mut io = self.io.borrow_mut();
        let ts = io.now;
        io.out.write(ts, &buf);
        if let Some(n) = io.sent.get_mut(self.port) {
            *n += 1;
        }
        io.buf = buf;
        r
    }
}

impl Device for ReplayPort {
    type RxToken<'a> = ReplayRx<'a>;
    type TxToken<'a> = ReplayTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(ReplayRx<'_>, ReplayTx<'_>)> {
        if self.port != 0 {
            return None;
        }
        {
            let mut io = self.io.borrow_mut();
            let frame = io.pending.take()?;
            io.rx = frame;
        }
        Some((
            ReplayRx { io: &self.io },
            ReplayTx {
                io: &self.io,
                port: self.port,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<ReplayTx<'_>> {
        Some(ReplayTx {
            io: &self.io,
            port: self.port,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + ETHERNET_HEADER;
        caps
    }
}
