//! The UDP control port: rules changed at run time with ipvsadm's words, one command
//! per line, IPv4 only:
//!
//! ```text
//! -A -t|-u VIP:PORT [-s SCHED]          add a virtual service (default wlc)
//! -E -t|-u VIP:PORT -s SCHED            edit its scheduler
//! -D -t|-u VIP:PORT                     delete it
//! -a -t|-u VIP:PORT -r RIP[:PORT] [-m|-g|-i] [-w N]   add a real server (default -g, -w 1)
//! -e -t|-u VIP:PORT -r RIP[:PORT] [-m|-g|-i] [-w N]   edit it
//! -d -t|-u VIP:PORT -r RIP[:PORT]       remove it
//! -C                                    delete every service
//! ```
//!
//! Each line is answered `ok` or `error: REASON`, in one reply datagram. Only senders in
//! [`crate::Rules::control`]'s prefix are heard, and there is no authentication beyond
//! that: keep the port on a management network, or leave `control` at `None` (no port).
//! mh, lblc and lblcr are refused (the firmware reserves no table storage for them).

use core::fmt::Write;
use core::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use lvs_core::conn::table::Proto;
use lvs_core::director::{ControlError, DestSpec, Director, ServiceKey, ServiceSpec};
use lvs_core::sched::{SchedFlags, SchedKind};
use lvs_core::service::Method;
use lvs_core::time::Instant;

/// Why a command line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// Not a command this port knows, or a malformed argument.
    Syntax(&'static str),
    /// The director refused it.
    Director(ControlError),
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CommandError::Syntax(s) => f.write_str(s),
            CommandError::Director(e) => write!(f, "{e}"),
        }
    }
}

impl From<ControlError> for CommandError {
    fn from(e: ControlError) -> CommandError {
        CommandError::Director(e)
    }
}

fn sched(name: &str) -> Result<SchedKind, CommandError> {
    let k = SchedKind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or(CommandError::Syntax("unknown scheduler"))?;
    match k {
        SchedKind::Mh | SchedKind::Lblc | SchedKind::Lblcr => Err(CommandError::Syntax(
            "scheduler needs storage this firmware lacks",
        )),
        k => Ok(k),
    }
}

/// Runs one command line on `director`.
pub fn run<const D: usize>(
    director: &mut Director<'_, D>,
    line: &str,
    now: Instant,
) -> Result<(), CommandError> {
    let mut words = line.split_ascii_whitespace();
    let cmd = words.next().ok_or(CommandError::Syntax("empty line"))?;
    let mut key = None;
    let mut sched_kind = None;
    let mut real: Option<(Ipv4Addr, Option<u16>)> = None;
    let mut method = Method::DirectRoute;
    let mut weight = 1;
    while let Some(w) = words.next() {
        let mut arg = || {
            words
                .next()
                .ok_or(CommandError::Syntax("option needs an argument"))
        };
        match w {
            "-t" | "-u" => {
                let sa: SocketAddrV4 = arg()?
                    .parse()
                    .map_err(|_| CommandError::Syntax("want VIP:PORT"))?;
                key = Some(ServiceKey::Addr {
                    proto: if w == "-t" { Proto::Tcp } else { Proto::Udp },
                    addr: IpAddr::V4(*sa.ip()),
                    port: sa.port(),
                });
            }
            "-s" => sched_kind = Some(sched(arg()?)?),
            "-r" => {
                let a = arg()?;
                real = Some(if let Ok(sa) = a.parse::<SocketAddrV4>() {
                    (*sa.ip(), Some(sa.port()))
                } else {
                    let ip = a
                        .parse()
                        .map_err(|_| CommandError::Syntax("want RIP[:PORT]"))?;
                    (ip, None)
                });
            }
            "-m" => method = Method::Masq,
            "-g" => method = Method::DirectRoute,
            "-i" => method = Method::Tunnel,
            "-w" => {
                weight = arg()?
                    .parse()
                    .map_err(|_| CommandError::Syntax("want a weight"))?;
            }
            _ => return Err(CommandError::Syntax("unknown option")),
        }
    }
    if cmd == "-C" {
        director.clear();
        return Ok(());
    }
    let key = key.ok_or(CommandError::Syntax("want -t or -u VIP:PORT"))?;
    let spec = |s: SchedKind| ServiceSpec {
        key,
        sched: s,
        flags: SchedFlags::default(),
        persistence: None,
        one_packet: false,
    };
    let dest = || -> Result<DestSpec, CommandError> {
        let (addr, port) = real.ok_or(CommandError::Syntax("want -r RIP[:PORT]"))?;
        let vport = match key {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::FwMark { .. } => 0,
        };
        Ok(DestSpec {
            addr: IpAddr::V4(addr),
            port: port.unwrap_or(vport),
            method,
            weight,
            u_threshold: 0,
            l_threshold: 0,
        })
    };
    match cmd {
        "-A" => {
            director.add_service(spec(sched_kind.unwrap_or(SchedKind::Wlc)), now)?;
        }
        "-E" => {
            let s = sched_kind.ok_or(CommandError::Syntax("want -s SCHED"))?;
            director.edit_service(spec(s))?;
        }
        "-D" => director.delete_service(&key)?,
        "-a" => {
            director.add_dest(&key, dest()?, now)?;
        }
        "-e" => director.edit_dest(&key, dest()?)?,
        "-d" => {
            let d = dest()?;
            director.delete_dest(&key, &d.addr, d.port)?;
        }
        _ => return Err(CommandError::Syntax("unknown command")),
    }
    Ok(())
}

/// Runs every line of `datagram`, writing `ok` or `error: ...` per non-empty line.
pub fn run_all<const D: usize>(
    director: &mut Director<'_, D>,
    datagram: &[u8],
    now: Instant,
    out: &mut dyn Write,
) {
    let Ok(text) = core::str::from_utf8(datagram) else {
        let _ = writeln!(out, "error: not UTF-8");
        return;
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let _ = match run(director, line, now) {
            Ok(()) => writeln!(out, "ok"),
            Err(e) => writeln!(out, "error: {e}"),
        };
    }
}

#[cfg(test)]
mod test {
    extern crate std;
    use std::string::String;

    use super::*;

    fn director() -> Director<'static, 4> {
        use lvs_core::conn::table::{Conn, ConnTable};
        use lvs_core::director::{Config, DestMeta, Service, Storage};
        use lvs_core::service::RealServer;
        fn leak<T>(v: std::vec::Vec<T>) -> &'static mut [T] {
            std::boxed::Box::leak(v.into_boxed_slice())
        }
        let v4 = ConnTable::new(
            leak(std::vec![Conn::empty(); 8]),
            leak(std::vec![0; 16]),
            leak(std::vec![0; 16]),
            [1; 16],
        )
        .unwrap();
        let v6 = ConnTable::new(
            leak(std::vec![Conn::empty(); 1]),
            leak(std::vec![0; 2]),
            leak(std::vec![0; 2]),
            [2; 16],
        )
        .unwrap();
        Director::new(
            Config::default(),
            Instant::ZERO,
            Storage {
                services: leak((0..4).map(|_| None::<Service<'static, 4>>).collect()),
                sched: &mut [],
                dests: leak(std::vec![None::<RealServer>; 8]),
                dest_meta: leak(std::vec![DestMeta::EMPTY; 8]),
                laddrs: &mut [],
                v4,
                v6,
            },
        )
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Udp,
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 40)),
            port,
        }
    }

    #[test]
    fn test_every_command() {
        let mut d = director();
        let t = Instant::ZERO;
        run(&mut d, "-A -u 192.0.2.40:53", t).unwrap();
        assert_eq!(d.service(&key(53)).unwrap().spec().sched, SchedKind::Wlc);
        run(&mut d, "-E -u 192.0.2.40:53 -s sh", t).unwrap();
        assert_eq!(d.service(&key(53)).unwrap().spec().sched, SchedKind::Sh);
        // DR keeps the virtual port when none is given; -i and -w parse.
        run(&mut d, "-a -u 192.0.2.40:53 -r 198.51.100.11", t).unwrap();
        run(
            &mut d,
            "-a -u 192.0.2.40:53 -r 198.51.100.12:5353 -i -w 3",
            t,
        )
        .unwrap();
        let m = d.service(&key(53)).unwrap().members().to_vec();
        let rs: std::vec::Vec<_> = m.iter().map(|&id| *d.dest(id).unwrap().0).collect();
        assert!(
            rs.iter()
                .any(|r| r.port == 53 && r.method == Method::DirectRoute && r.weight == 1)
        );
        assert!(
            rs.iter()
                .any(|r| r.port == 5353 && r.method == Method::Tunnel && r.weight == 3)
        );
        run(&mut d, "-e -u 192.0.2.40:53 -r 198.51.100.11:53 -g -w 0", t).unwrap();
        run(&mut d, "-d -u 192.0.2.40:53 -r 198.51.100.12:5353", t).unwrap();
        assert_eq!(d.service(&key(53)).unwrap().members().len(), 1);
        run(&mut d, "-D -u 192.0.2.40:53", t).unwrap();
        assert!(d.service(&key(53)).is_none());
        run(&mut d, "-A -u 192.0.2.40:54 -s rr", t).unwrap();
        run(&mut d, "-C", t).unwrap();
        assert_eq!(d.services().count(), 0);
    }

    #[test]
    fn test_refusals() {
        let mut d = director();
        let t = Instant::ZERO;
        for (line, want) in [
            ("", CommandError::Syntax("empty line")),
            ("-A", CommandError::Syntax("want -t or -u VIP:PORT")),
            ("-A -t 192.0.2.1", CommandError::Syntax("want VIP:PORT")),
            ("-A -t", CommandError::Syntax("option needs an argument")),
            (
                "-A -t 192.0.2.1:80 -s nope",
                CommandError::Syntax("unknown scheduler"),
            ),
            (
                "-A -t 192.0.2.1:80 -z",
                CommandError::Syntax("unknown option"),
            ),
            (
                "-Q -t 192.0.2.1:80",
                CommandError::Syntax("unknown command"),
            ),
            (
                "-a -t 192.0.2.1:80",
                CommandError::Syntax("want -r RIP[:PORT]"),
            ),
            (
                "-a -t 192.0.2.1:80 -r x",
                CommandError::Syntax("want RIP[:PORT]"),
            ),
            (
                "-a -t 192.0.2.1:80 -r 10.0.0.1 -w x",
                CommandError::Syntax("want a weight"),
            ),
            (
                "-D -t 192.0.2.1:80",
                CommandError::Director(ControlError::NoService),
            ),
        ] {
            assert_eq!(run(&mut d, line, t), Err(want), "{line:?}");
        }
        let mut out = String::new();
        run_all(
            &mut d,
            b"-A -t 192.0.2.1:80\n\n  -A -t 192.0.2.1:80  \n",
            t,
            &mut out,
        );
        assert_eq!(out, "ok\nerror: Service already exists\n");
        out.clear();
        run_all(&mut d, &[0xff, 0xfe], t, &mut out);
        assert_eq!(out, "error: not UTF-8\n");
    }
}
