//! `lvs-director`'s two ways of running, over the same ports and the same code path:
//! [`live`] on tap devices with the control socket, and [`replay`] from a capture.
//!
//! # The loop
//! Each port is an `lvs_smoltcp` port with a smoltcp `Interface` of its own (the port's
//! MAC and addresses, routes through the port's gateways; it answers ARP, NDP and ping
//! for the director's own addresses). One round ([`Ports::poll`]) polls every port's
//! `Interface` through [`lvs_smoltcp::Adapter::device`], which runs every received frame
//! through lvs-core first and forwards what it forwards, then runs the adapter's timers.
//! Between rounds the live loop executes control requests and waits in `poll(2)` on the
//! taps and the control socket, no longer than the earliest timer.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration as StdDuration;

use lvs_smoltcp::{Adapter, PortConfig, Route};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::Device;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::control::{self, Server};
use crate::flags::{Args, Cidr};
use crate::pcap::{self, PcapOut, ReplayIo, ReplayPort, Traced};
use crate::setup::{self, DESTS_PER_SERVICE, LvsDirector};
use crate::sys::{self, Wait};
use crate::tap::Tap;

/// The adapter the director runs.
pub type LvsAdapter = Adapter<'static, DESTS_PER_SERVICE>;

/// Neighbour cache entries (real servers, gateways, clients on the link).
pub const NEIGHBOURS: usize = 1024;
/// Frames held while their next hop is resolved.
pub const HELD_FRAMES: usize = 256;
/// How often idle connections are expired and the rate estimators ticked when no frame
/// arrives to do it.
pub const MAINTAIN_EVERY: StdDuration = StdDuration::from_millis(500);

/// A clock in smoltcp's and lvs-core's units.
fn core_now(now: Instant) -> lvs_core::time::Instant {
    lvs_core::time::Instant::from_millis(now.total_millis().max(0) as u64)
}

fn cidr(c: &Cidr) -> IpCidr {
    IpCidr::new(IpAddress::from(c.addr), c.prefix)
}

/// The adapter the flags describe around `director`: ports, routes, static neighbours
/// and FULLNAT local addresses (the rules come after: `-b` real servers need the local
/// addresses).
pub fn adapter(args: &Args, director: LvsDirector) -> Result<LvsAdapter, String> {
    let max_mtu = args.ifaces.iter().map(|i| i.mtu()).max().unwrap_or(1500);
    let storage = lvs_smoltcp::Storage::leak(NEIGHBOURS, HELD_FRAMES, max_mtu + 18);
    let mut a = Adapter::new(director, storage);
    let vip = args.vip_port();
    for (p, i) in args.ifaces.iter().enumerate() {
        let mut cfg = PortConfig::new(EthernetAddress(i.mac().0));
        cfg.mtu = i.mtu();
        cfg.answer_vips = p == vip;
        for c in &i.addrs {
            cfg = cfg
                .with_addr(cidr(c))
                .map_err(|e| format!("--iface {}: ip={c}: {e}", i.name))?;
        }
        a.add_port(cfg)
            .map_err(|e| format!("--iface {}: {e}", i.name))?;
    }
    for r in &args.routes {
        a.add_route(Route {
            prefix: cidr(&r.prefix),
            via: r.via.into(),
            port: Some(args.route_port(r)),
        })
        .map_err(|e| format!("--route {r}: {e}"))?;
    }
    for n in &args.neighs {
        a.add_neighbour(n.ip.into(), EthernetAddress(n.mac.0))
            .map_err(|e| format!("--neigh {n}: {e}"))?;
    }
    for l in &args.laddrs {
        a.add_laddr(*l).map_err(|e| format!("--laddr {l}: {e}"))?;
    }
    Ok(a)
}

/// The ports at run time: the adapter, the devices, an `Interface` per port.
pub struct Ports<Dev> {
    /// The adapter (and its director).
    pub adapter: LvsAdapter,
    /// The devices, by port.
    pub devs: Vec<Dev>,
    /// The local stack, by port.
    pub ifaces: Vec<Interface>,
    /// The local stack's sockets (none: it answers ARP, NDP and ping by itself).
    pub sockets: SocketSet<'static>,
}

impl<Dev: Device> Ports<Dev> {
    /// One `Interface` per port over `devs`, with the port's MAC, addresses and the
    /// routes that leave by it.
    pub fn new(
        args: &Args,
        adapter: LvsAdapter,
        mut devs: Vec<Dev>,
        now: Instant,
        seed: u64,
    ) -> Result<Ports<Dev>, String> {
        let mut ifaces = Vec::with_capacity(devs.len());
        for (p, (i, dev)) in args.ifaces.iter().zip(devs.iter_mut()).enumerate() {
            let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(i.mac().0)));
            cfg.random_seed = seed ^ (p as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut iface = Interface::new(cfg, dev, now);
            let mut full = None;
            iface.update_ip_addrs(|addrs| {
                for c in &i.addrs {
                    if addrs.push(cidr(c)).is_err() {
                        full = Some(*c);
                        break;
                    }
                }
            });
            if let Some(c) = full {
                return Err(format!(
                    "--iface {}: ip={c}: the local stack takes at most {} addresses a port",
                    i.name,
                    iface.ip_addrs().len()
                ));
            }
            for r in args.routes.iter().filter(|r| args.route_port(r) == p) {
                let route = smoltcp::iface::Route {
                    cidr: cidr(&r.prefix),
                    via_router: r.via.into(),
                    preferred_until: None,
                    expires_at: None,
                };
                let mut pushed = true;
                iface
                    .routes_mut()
                    .update(|t| pushed = t.push(route).is_ok());
                if !pushed {
                    eprintln!(
                        "lvs-director: --route {r}: the local stack's route table is full; \
                         it is used for forwarding, not for the director's own replies"
                    );
                }
            }
            ifaces.push(iface);
        }
        Ok(Ports {
            adapter,
            devs,
            ifaces,
            sockets: SocketSet::new(Vec::new()),
        })
    }

    /// One round: every port's `Interface` polled through the adapter, then the
    /// adapter's timers. Returns when a timer wants the next round (`None`: only when a
    /// frame arrives).
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        let Ports {
            adapter,
            devs,
            ifaces,
            sockets,
        } = self;
        for (p, iface) in ifaces.iter_mut().enumerate() {
            iface.poll(now, &mut adapter.device(devs, p), sockets);
        }
        let mut next = adapter.maintain(now, devs);
        for iface in ifaces.iter_mut() {
            if let Some(t) = iface.poll_at(now, sockets) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }
}

/// Builds the director for running (not `--check`): storage, then the adapter with its
/// local addresses, then the rules.
fn director_and_adapter(args: &Args, now: Instant, seed: u64) -> Result<LvsAdapter, String> {
    let caps = setup::Caps {
        conns: args.conns as usize,
        services: args.services as usize,
        dests: args.dests as usize,
    };
    let director = setup::new_director(caps, setup::config(args, seed), core_now(now), seed)?;
    let mut a = adapter(args, director)?;
    if let Some(path) = &args.rules {
        setup::load_rules(&mut a.director, path, core_now(now))?;
    }
    Ok(a)
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplaySummary {
    /// Frames read from the input capture.
    pub read: usize,
    /// Frames written to the output capture.
    pub written: u64,
}

/// `--replay IN --write OUT`: every frame of IN received on port 0 at its timestamp,
/// every transmitted frame written to OUT with the timestamp of the frame being
/// processed. Deterministic: the seed is `--seed` or 0.
pub fn replay(args: &Args) -> Result<(ReplaySummary, LvsAdapter), String> {
    let (input, output) = match (&args.replay, &args.write) {
        (Some(i), Some(o)) => (i, o),
        _ => return Err("--replay needs --write".into()),
    };
    let frames = pcap::read_capture(input).map_err(|e| e.to_string())?;
    let seed = args.seed.unwrap_or(0);
    let t0 = frames.first().map_or(StdDuration::ZERO, |f| f.0);
    let now0 = Instant::from_micros(t0.as_micros() as i64);
    let adapter = director_and_adapter(args, now0, seed)?;
    let out = PcapOut::create(output).map_err(|e| e.to_string())?;
    let io = ReplayIo::new(out, args.ifaces.len());
    let devs = args
        .ifaces
        .iter()
        .enumerate()
        .map(|(p, i)| ReplayPort::new(io.clone(), p, i.mtu()))
        .collect();
    let mut ports = Ports::new(args, adapter, devs, now0, seed)?;
    ports.poll(now0);
    for (ts, frame) in &frames {
        let now = Instant::from_micros(ts.as_micros() as i64);
        {
            let mut io = io.borrow_mut();
            io.now = *ts;
            io.pending = Some(frame.clone());
        }
        ports.poll(now);
        io.borrow_mut().pending = None;
    }
    drop(ports.devs);
    let io = Rc::try_unwrap(io)
        .map_err(|_| "replay: the output capture is still in use".to_string())?
        .into_inner();
    let summary = ReplaySummary {
        read: frames.len(),
        written: io.out.frames,
    };
    if io.out.errors > 0 {
        return Err(format!(
            "{}: {} frames could not be written",
            output.display(),
            io.out.errors
        ));
    }
    io.out
        .finish()
        .map_err(|e| format!("{}: {e}", output.display()))?;
    Ok((summary, ports.adapter))
}

/// The live director: opens the taps and the control socket, runs until SIGINT or
/// SIGTERM, then removes the socket. `ready` is told when everything is open (the
/// binary prints it).
pub fn live(args: &Args, ready: impl FnOnce(&str)) -> Result<LvsAdapter, String> {
    sys::install_signal_handlers().map_err(|e| format!("signal handlers: {e}"))?;
    let seed = args.seed.unwrap_or_else(setup::random_seed);
    let start = std::time::Instant::now();
    let clock = || Instant::from_micros(start.elapsed().as_micros() as i64);
    let adapter = director_and_adapter(args, clock(), seed)?;
    let trace = match &args.pcap {
        Some(p) => Some(Rc::new(RefCell::new(
            PcapOut::create(p).map_err(|e| format!("--pcap {e}"))?,
        ))),
        None => None,
    };
    // The socket first: a second director on the same socket stops before it touches
    // any device.
    let control_path = args.control_path();
    let mut server = Server::bind(&control_path).map_err(|e| e.to_string())?;
    let mut devs = Vec::with_capacity(args.ifaces.len());
    for i in &args.ifaces {
        let tap = Tap::open(&i.name, i.mtu()).map_err(|e| e.to_string())?;
        devs.push(Traced::new(tap, trace.clone()));
    }
    let mut ports = Ports::new(args, adapter, devs, clock(), seed)?;
    ready(&describe(args, &control_path.display().to_string()));

    let mut waits: Vec<Wait> = Vec::new();
    let mut scratch = Vec::new();
    let mut last_maintain = start;
    // The control socket is serviced when poll(2) said one of its descriptors is ready
    // or a client's deadline passed, not on every wake-up (an accept that finds nothing
    // is a wasted system call on the packet path).
    let mut control_ready = true;
    while !sys::stop_requested() {
        let now = clock();
        let next = ports.poll(now);
        let lvs_now = core_now(clock());
        let late = server
            .next_deadline()
            .is_some_and(|d| d <= std::time::Instant::now());
        if control_ready || late {
            server.service(|req| control::execute(&mut ports.adapter.director, req, lvs_now));
        }
        if last_maintain.elapsed() >= MAINTAIN_EVERY {
            last_maintain = std::time::Instant::now();
            let budget =
                ports.adapter.director.config().sweep_budget * MAINTAIN_EVERY.as_millis() as usize;
            ports.adapter.director.maintain(core_now(clock()), budget);
        }
        let mut timeout = MAINTAIN_EVERY.saturating_sub(last_maintain.elapsed());
        if let Some(t) = next {
            // smoltcp's `Instant - Instant` is the absolute difference: a timer already
            // due means no wait at all.
            let d = t.total_micros().saturating_sub(clock().total_micros());
            timeout = timeout.min(StdDuration::from_micros(d.max(0) as u64));
        }
        if let Some(d) = server.next_deadline() {
            timeout = timeout.min(d.saturating_duration_since(std::time::Instant::now()));
        }
        waits.clear();
        waits.extend(ports.devs.iter().map(|d| Wait {
            fd: d.inner().fd(),
            write: false,
        }));
        waits.extend(server.poll_fds().map(|(fd, write)| Wait { fd, write }));
        sys::poll(&waits, Some(timeout), &mut scratch).map_err(|e| format!("poll: {e}"))?;
        control_ready = scratch
            .get(ports.devs.len()..)
            .is_some_and(|c| c.iter().any(|p| p.revents != 0));
    }
    let mut report = String::new();
    for d in &ports.devs {
        let t = d.inner();
        report.push_str(&format!("lvs-director: {}: {}\n", t.name(), t.stats()));
    }
    eprint!("{report}");
    drop(ports.devs);
    if let Some(t) = trace
        && let Ok(t) = Rc::try_unwrap(t)
    {
        t.into_inner()
            .finish()
            .map_err(|e| format!("--pcap: {e}"))?;
    }
    drop(server);
    Ok(ports.adapter)
}

/// The ready line: ports with their addresses, and the control socket.
fn describe(args: &Args, control: &str) -> String {
    let mut s = String::from("lvs-director: ready:");
    for (p, i) in args.ifaces.iter().enumerate() {
        let addrs: Vec<String> = i.addrs.iter().map(ToString::to_string).collect();
        s.push_str(&format!(
            " port {p} {} mac {} mtu {}{}{};",
            i.name,
            i.mac(),
            i.mtu(),
            if addrs.is_empty() {
                String::new()
            } else {
                format!(" {}", addrs.join(" "))
            },
            if p == args.vip_port() { " (VIPs)" } else { "" }
        ));
    }
    s.push_str(&format!(" control {control}"));
    s
}

/// `--check`: the director the flags and rules describe, listed as `ipvsadm -L -n`.
pub fn check(args: &Args) -> Result<String, String> {
    let now = lvs_core::time::Instant::ZERO;
    let d = setup::build(args, now, args.seed.unwrap_or(0))?;
    crate::ipvsadm::list(&d, &Default::default(), now).map_err(|e| e.to_string())
}

/// Warnings about flags that work but probably not as meant: a `--laddr` on no port's
/// subnet (it is then answered for on the VIP port only).
pub fn warnings(args: &Args) -> Vec<String> {
    args.laddrs
        .iter()
        .filter(|l| args.port_for(**l).is_none())
        .map(|l: &IpAddr| {
            format!(
                "--laddr {l}: on no --iface's subnet; ARP/NDP for it is answered on the VIP port"
            )
        })
        .collect()
}
