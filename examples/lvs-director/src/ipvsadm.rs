//! ipvsadm's words, rule files and listings for an [`lvs_core::director::Director`].
//!
//! Whoever runs LVS today keeps what they know: the same command lines, the same rule
//! files (`ipvsadm -S -n` output, read back by `ipvsadm -R`), the same listings. This
//! module follows ipvsadm 1.31 (`ipvsadm.c`, `libipvs`); FULLNAT follows DPVS's ipvsadm.
//!
//! - [`parse_args`] reads ipvsadm's argv (without the program name), [`parse_line`] one
//!   line of a rule file, [`parse_rules`] a whole file (blank lines and `#` comments
//!   skipped, a leading `ipvsadm` word dropped as `ipvsadm -R` drops it), giving
//!   [`Command`]s; errors name the option or value and why, a [`RuleError`] its line.
//! - [`apply`] executes a command on a director; [`restore`] parses and applies a rule
//!   file (nothing is applied when a line does not parse).
//! - [`save`] is `ipvsadm -S -n`; [`list`] is `ipvsadm -L -n` with `--stats`, `--rate`,
//!   `--exact`, `--thresholds`, `--persistent-conn`, `--tun-info`, `--nosort`, `-c` and
//!   `--timeout`. A [`Command`]'s `Display` is its canonical ipvsadm line.
//!
//! # Options
//! Short and long forms as ipvsadm has them, with popt's spellings: clusters (`-Ln`,
//! `-At 10.0.0.1:80`), attached values (`-srr`, `--scheduler=rr`), and the command first
//! (`ipvsadm -t 10.0.0.1:80 -A` is refused by ipvsadm too).
//!
//! | command | options |
//! |---|---|
//! | `-A`/`--add-service`, `-E`/`--edit-service` | `-t`/`--tcp-service`, `-u`/`--udp-service` `VIP[:PORT]`, or `-f`/`--fwmark-service MARK [-6]`; `-s`/`--scheduler`; `-p`/`--persistent [TIMEOUT]`; `-M`/`--netmask`; `-o`/`--ops`; `-b`/`--sched-flags FLAGS` |
//! | `-D`/`--delete-service` | the service |
//! | `-a`/`--add-server`, `-e`/`--edit-server` | the service; `-r`/`--real-server RIP[:PORT]`; `-g`/`--gatewaying`, `-i`/`--ipip`, `-m`/`--masquerading`, `-b`/`--fullnat`; `-w`/`--weight`; `-x`/`--u-threshold`; `-y`/`--l-threshold`; `--tun-type ipip` |
//! | `-d`/`--delete-server` | the service; `-r` |
//! | `-C`/`--clear`, `-Z`/`--zero [service]`, `--set TCP TCPFIN UDP` | |
//! | `-L`/`-l`/`--list` | `-n`, `-c`, `--timeout`, `--daemon`, `--stats`, `--rate`, `--thresholds`, `--persistent-conn`, `--exact`/`-X`, `--nosort`, `--sort`, `--tun-info`, a service |
//! | `-S`/`--save [-n]`, `-R`/`--restore`, `-h`, `-v` | |
//!
//! IPv6 addresses are written `[2001:db8::1]:80`; a bare IPv6 address has no port.
//!
//! ## `-b`: scheduler flags or FULLNAT
//! Plain ipvsadm's `-b FLAGS` is `--sched-flags` and belongs to `-A`/`-E`; DPVS's ipvsadm
//! spells FULLNAT `-b` (`--fullnat`, no value) on a real server. Since the command
//! always comes first, `-b` is read by it: after `-a`/`-e`/`-d` it is `--fullnat`,
//! everywhere else `--sched-flags` with its value. Neither ipvsadm accepts the other
//! meaning there, so every valid line of either means what it meant.
//!
//! FULLNAT local addresses (DPVS's `--laddr`) are not rules here: they are the
//! director's own configuration ([`Director::add_laddr`]), so `-b` real servers need one
//! of their family before a rule file is restored.
//!
//! ## Defaults, as ipvsadm's code has them
//! Scheduler `wlc`; forwarding `-g` (direct routing); weight 1; thresholds 0 (none); a
//! bare `-p` is 360 s (`IPVS_SVC_PERSISTENT_TIMEOUT` in libipvs; the manual page says
//! 300); persistence mask 255.255.255.255, or 128 for IPv6. A real server without a port
//! takes the service's; with `-g` or `-i` on a non-fwmark service its port is always the
//! service's, as ipvsadm forces it. `-E` and `-e` replace the whole description: what
//! is not given goes back to its default, as with ipvsadm.
//!
//! # Where this differs from ipvsadm
//! - Addresses and ports are numeric only: host and service names are not looked up,
//!   and listings are always numeric (`-n` is accepted and changes nothing).
//! - `save` appends `-x`/`-y` to a real server with thresholds (ipvsadm's `-S` drops
//!   them); a table without thresholds saves byte for byte as ipvsadm does.
//! - `-M` must be a contiguous mask: the director keeps a prefix length.
//! - `flag-3`, `--pe`, `--sctp-service`, the sync daemon and the `gue`/`gre` tunnel
//!   types are refused by name (the director has none of them).
//! - A real server's default port is the service's whatever the order of `-r` and the
//!   service option (ipvsadm reads it at `-r`, so `-r` before `-t` gave port 0).
//! - Services and real servers are sorted by their natural order; ipvsadm's comparators
//!   subtract addresses as `int`, which orders addresses more than 2^31 apart the other
//!   way round (and not consistently).
//! - `-R` reads rule lines from stdin through [`restore`]; a rule file refuses the
//!   commands that change nothing (`-L`, `-S`, `-R`, `-h`, `-v`), which `ipvsadm -R`
//!   would run.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_core::conn::state::{TcpState, UDP_STATE_NAME};
use lvs_core::conn::table::{Conn, FlowAddr, Proto};
use lvs_core::director::{
    ControlError, DestMeta, DestSpec, Director, Persistence, Service, ServiceKey, ServiceSpec,
};
use lvs_core::sched::{SchedFlags, SchedKind};
use lvs_core::service::{Method, RealServer};
use lvs_core::time::{Duration, Instant};
use lvs_core::wire::IpVersion;

/// The IPVS version the listings announce (the kernel's, unchanged since 2.6).
pub const IPVS_VERSION: &str = "1.2.1";

/// The scheduler of a service given none (ipvsadm's `DEF_SCHED`).
pub const DEFAULT_SCHED: SchedKind = SchedKind::Wlc;

/// The persistence timeout of a bare `-p`, in seconds (libipvs's
/// `IPVS_SVC_PERSISTENT_TIMEOUT`; the manual page says 300).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;

/// The longest timeout ipvsadm accepts, in seconds (31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;

// ------------------------------------------------------------------------- commands

/// One ipvsadm command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`: add a virtual service.
    AddService(ServiceSpec),
    /// `-E`: replace a virtual service's description.
    EditService(ServiceSpec),
    /// `-D`: delete a virtual service.
    DeleteService(ServiceKey),
    /// `-a`: add a real server to a service.
    AddDest(ServiceKey, DestSpec),
    /// `-e`: replace a real server's description.
    EditDest(ServiceKey, DestSpec),
    /// `-d`: remove the real server with this address and port from a service.
    DeleteDest(ServiceKey, IpAddr, u16),
    /// `-C`: delete every service.
    Clear,
    /// `-Z`: zero the counters of one service, or of all.
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp`, in seconds; 0 leaves a value unchanged.
    SetTimeouts {
        /// ESTABLISHED.
        tcp: u32,
        /// FIN_WAIT.
        tcpfin: u32,
        /// UDP.
        udp: u32,
    },
    /// `-L`: a listing.
    List(ListOpts),
    /// `-S`: the rules (`save`).
    Save {
        /// `-n` was given.
        numeric: bool,
    },
    /// `-R`: rules from standard input.
    Restore,
    /// `-h`.
    Help,
    /// `-v`.
    Version,
}

impl Command {
    /// Whether the command changes the director (the commands a rule file may hold).
    pub fn is_rule(&self) -> bool {
        !matches!(
            self,
            Command::List(_)
                | Command::Save { .. }
                | Command::Restore
                | Command::Help
                | Command::Version
        )
    }

    /// ipvsadm's name of the command (`add-service`, `list`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Command::AddService(_) => "add-service",
            Command::EditService(_) => "edit-service",
            Command::DeleteService(_) => "delete-service",
            Command::AddDest(..) => "add-server",
            Command::EditDest(..) => "edit-server",
            Command::DeleteDest(..) => "delete-server",
            Command::Clear => "clear",
            Command::Zero(_) => "zero",
            Command::SetTimeouts { .. } => "set",
            Command::List(_) => "list",
            Command::Save { .. } => "save",
            Command::Restore => "restore",
            Command::Help => "help",
            Command::Version => "version",
        }
    }
}

/// What `-L` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOpts {
    /// Only this service.
    pub service: Option<ServiceKey>,
    /// `-n` (listings are always numeric here).
    pub numeric: bool,
    /// `-c`: the connection entries.
    pub connections: bool,
    /// `--timeout`.
    pub timeout: bool,
    /// `--daemon` (there is no sync daemon: an empty listing).
    pub daemon: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--exact`: numbers without K/M/G/T.
    pub exact: bool,
    /// `--nosort`: services in slot order, real servers in list order.
    pub nosort: bool,
    /// `--tun-info`.
    pub tun_info: bool,
}

// --------------------------------------------------------------------------- errors

/// Why a command line was refused. The messages are ipvsadm's where it has one.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Options but no command.
    NoCommand,
    /// The first option is not a command.
    NotACommand(String),
    /// Two commands.
    MultipleCommands,
    /// An option ipvsadm does not have.
    UnknownOption(String),
    /// An option without its value.
    MissingArgument(String),
    /// A value given to an option that takes none (`--clear=1`).
    UnwantedArgument(String),
    /// The same option twice.
    Duplicate(&'static str),
    /// An option the command does not take.
    Illegal {
        /// The option (ipvsadm's name).
        option: &'static str,
        /// The command.
        command: &'static str,
    },
    /// An option the command needs.
    Required {
        /// The option (ipvsadm's name).
        option: &'static str,
        /// The command.
        command: &'static str,
    },
    /// Two options of which the command takes one.
    Conflict {
        /// The later option.
        option: &'static str,
        /// The earlier one.
        other: &'static str,
        /// The command.
        command: &'static str,
    },
    /// `-L` options that do not go together (`-c` with `--stats`, ...).
    ListConflict,
    /// A virtual service address that does not parse.
    BadService(String),
    /// A real server address that does not parse.
    BadServer(String),
    /// A firewall mark that is not a number from 1 to 4294967295.
    BadFwmark(String),
    /// A timeout that is not a number in range.
    BadTimeout(String),
    /// An IPv4 persistence mask that is not an address.
    BadNetmask(String),
    /// An IPv4 persistence mask with holes (`255.0.255.0`).
    NonContiguousNetmask(String),
    /// An IPv6 persistence mask outside 1..=128.
    BadV6Netmask(String),
    /// A weight outside 0..=65535.
    BadWeight(String),
    /// An upper threshold that is not a number from 0 to 2147483647.
    BadUThreshold(String),
    /// A lower threshold that is not a number from 0 to 2147483647.
    BadLThreshold(String),
    /// A sync id outside 0..=255.
    BadSyncId(String),
    /// A tunnel port outside 1..=65535.
    BadTunnelPort(String),
    /// A tunnel type other than ipip, gue, gre.
    BadTunnelType(String),
    /// A scheduler lvs does not have.
    UnknownScheduler(String),
    /// A scheduler flag ipvsadm does not have.
    BadSchedFlag(String),
    /// A flag of another scheduler (`sh-port` without `-s sh`).
    IncompatibleSchedFlag(String),
    /// `--set` without three values.
    SetNeedsThree,
    /// A word that is neither an option nor an option's value.
    Unexpected(String),
    /// `-6` without `-f` before it.
    Ipv6BeforeFwmark,
    /// Port 0 (all ports) without persistence.
    ZeroPort,
    /// `-o` on a TCP service.
    OpsNotUdp,
    /// A real server of the other family, not tunnelled.
    FamilyMismatch,
    /// Tunnel options for a real server that is not tunnelled.
    TunnelOptions,
    /// A tunnel option the ipip tunnel does not take.
    IllegalTunnelOption(&'static str),
    /// Something ipvsadm has and this director does not.
    Unsupported(&'static str),
    /// A command that changes nothing, in a rule file.
    NotARule(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseError as E;
        match self {
            E::NoCommand => f.write_str(
                "no command given: one of -A -E -D -a -e -d -C -Z -L -S -R --set comes first",
            ),
            E::NotACommand(o) => write!(
                f,
                "`{o}' is not a command: one of -A -E -D -a -e -d -C -Z -L -S -R --set comes first"
            ),
            E::MultipleCommands => f.write_str("multiple commands specified"),
            E::UnknownOption(o) => write!(f, "invalid option `{o}'"),
            E::MissingArgument(o) => write!(f, "option `{o}' requires a value"),
            E::UnwantedArgument(o) => write!(f, "option `{o}' takes no value"),
            E::Duplicate(o) => write!(f, "multiple '{o}' options specified"),
            E::Illegal { option, command } => {
                write!(f, "Illegal '{option}' option with the '{command}' command")
            }
            E::Required { option, command } => write!(
                f,
                "You need to supply the '{option}' option for the '{command}' command"
            ),
            E::Conflict {
                option,
                other,
                command,
            } => write!(
                f,
                "The option '{option}' conflicts with the '{other}' option in the '{command}' command"
            ),
            E::ListConflict => f.write_str("options conflicts in the list command"),
            E::BadService(v) => write!(
                f,
                "illegal virtual server address[:port] specified: `{v}'{}",
                name_hint(v)
            ),
            E::BadServer(v) => write!(
                f,
                "illegal real server address[:port] specified: `{v}'{}",
                name_hint(v)
            ),
            E::BadFwmark(v) => write!(f, "invalid fwmark value `{v}' specified (1 to 4294967295)"),
            E::BadTimeout(v) => write!(
                f,
                "invalid timeout value `{v}' specified (seconds, at most {MAX_TIMEOUT})"
            ),
            E::BadNetmask(v) => {
                write!(f, "illegal virtual server persistent mask specified: `{v}'")
            }
            E::NonContiguousNetmask(v) => write!(
                f,
                "persistent mask `{v}' is not contiguous (the director keeps a prefix length)"
            ),
            E::BadV6Netmask(v) => {
                write!(f, "illegal ipv6 netmask specified: `{v}' (1 to 128)")
            }
            E::BadWeight(v) => write!(f, "illegal weight specified: `{v}' (0 to 65535)"),
            E::BadUThreshold(v) => {
                write!(f, "illegal u_threshold specified: `{v}' (0 to 2147483647)")
            }
            E::BadLThreshold(v) => {
                write!(f, "illegal l_threshold specified: `{v}' (0 to 2147483647)")
            }
            E::BadSyncId(v) => write!(f, "illegal syncid specified: `{v}' (0 to 255)"),
            E::BadTunnelPort(v) => {
                write!(f, "illegal tunnel port specified: `{v}' (1 to 65535)")
            }
            E::BadTunnelType(v) => {
                write!(f, "illegal tunnel type specified: `{v}' (ipip, gue or gre)")
            }
            E::UnknownScheduler(v) => {
                write!(f, "unknown scheduler \"{v}\" (one of ")?;
                for (i, k) in SchedKind::ALL.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(k.name())?;
                }
                f.write_str(")")
            }
            E::BadSchedFlag(v) => write!(f, "invalid scheduler flag `{v}'"),
            E::IncompatibleSchedFlag(v) => write!(
                f,
                "incompatible scheduler flag `{v}' (sh-* flags need -s sh, mh-* flags -s mh)"
            ),
            E::SetNeedsThree => f.write_str("--set option requires 3 timeout values"),
            E::Unexpected(v) => write!(f, "unexpected argument {v}"),
            E::Ipv6BeforeFwmark => f.write_str("-6 used before -f"),
            E::ZeroPort => f.write_str("Zero port specified for non-persistent service"),
            E::OpsNotUdp => f.write_str("One-Packet Scheduling is only for UDP virtual services"),
            E::FamilyMismatch => {
                f.write_str("Different address family is allowed only for tunneling servers")
            }
            E::TunnelOptions => f.write_str("Tunnel options conflict with forward method"),
            E::IllegalTunnelOption(o) => {
                write!(f, "Illegal '{o}' option with the 'ipip' tunnel type")
            }
            E::Unsupported(what) => f.write_str(what),
            E::NotARule(c) => write!(
                f,
                "'{c}' is not a rule: a rule file holds -A -E -D -a -e -d -C -Z --set"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// A hint for an address that looks like a name.
fn name_hint(v: &str) -> &'static str {
    let host = v.rsplit_once(':').map_or(v, |(h, _)| h);
    let port = v.rsplit_once(':').map_or("", |(_, p)| p);
    let looks_named = |s: &str| {
        s.chars()
            .any(|c| c.is_ascii_alphabetic() && !c.is_ascii_hexdigit())
            && !s.contains('[')
    };
    if looks_named(host) || (!port.is_empty() && port.chars().any(|c| c.is_ascii_alphabetic())) {
        " (addresses and ports are numeric: names are not looked up)"
    } else {
        ""
    }
}

/// Why [`apply`] (or [`list`]) refused a command.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyError {
    /// The director refused it.
    Control(ControlError),
    /// The command changes nothing (`-L`, `-S`, ...): the caller handles it.
    NotARule(&'static str),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Control(e) => fmt::Display::fmt(e, f),
            ApplyError::NotARule(c) => write!(f, "'{c}' changes nothing: it is not a rule"),
        }
    }
}

impl std::error::Error for ApplyError {}

impl From<ControlError> for ApplyError {
    fn from(e: ControlError) -> ApplyError {
        ApplyError::Control(e)
    }
}

/// What went wrong on a line of a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleErrorKind {
    /// The line does not parse.
    Parse(ParseError),
    /// The director refused it.
    Apply(ApplyError),
}

/// A rule file's error: where, and why. Displays as `rules.conf:3: unknown scheduler
/// "foo"` once named with [`RuleError::in_file`], `line 3: ...` before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The file's name, if known.
    pub file: Option<String>,
    /// The line, from 1.
    pub line: usize,
    /// Why.
    pub kind: RuleErrorKind,
}

impl RuleError {
    /// The same error, naming its file.
    pub fn in_file(mut self, name: impl Into<String>) -> RuleError {
        self.file = Some(name.into());
        self
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(name) => write!(f, "{name}:{}: ", self.line)?,
            None => write!(f, "line {}: ", self.line)?,
        }
        match &self.kind {
            RuleErrorKind::Parse(e) => fmt::Display::fmt(e, f),
            RuleErrorKind::Apply(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for RuleError {}

// -------------------------------------------------------------------------- options

/// Every option word ipvsadm (and DPVS's `--fullnat`) knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    FullNat,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

/// Long option names.
const LONG: &[(&str, Opt)] = &[
    ("add-service", Opt::AddService),
    ("edit-service", Opt::EditService),
    ("delete-service", Opt::DeleteService),
    ("clear", Opt::Clear),
    ("list", Opt::List),
    ("zero", Opt::Zero),
    ("add-server", Opt::AddServer),
    ("edit-server", Opt::EditServer),
    ("delete-server", Opt::DeleteServer),
    ("set", Opt::Set),
    ("help", Opt::Help),
    ("version", Opt::Version),
    ("restore", Opt::Restore),
    ("save", Opt::Save),
    ("start-daemon", Opt::StartDaemon),
    ("stop-daemon", Opt::StopDaemon),
    ("tcp-service", Opt::Tcp),
    ("udp-service", Opt::Udp),
    ("sctp-service", Opt::Sctp),
    ("fwmark-service", Opt::Fwmark),
    ("scheduler", Opt::Scheduler),
    ("persistent", Opt::Persistent),
    ("netmask", Opt::Netmask),
    ("real-server", Opt::RealServer),
    ("masquerading", Opt::Masquerading),
    ("ipip", Opt::Ipip),
    ("gatewaying", Opt::Gatewaying),
    ("fullnat", Opt::FullNat),
    ("weight", Opt::Weight),
    ("u-threshold", Opt::UThreshold),
    ("l-threshold", Opt::LThreshold),
    ("numeric", Opt::Numeric),
    ("connection", Opt::Connection),
    ("mcast-interface", Opt::McastInterface),
    ("syncid", Opt::SyncId),
    ("timeout", Opt::Timeout),
    ("daemon", Opt::Daemon),
    ("stats", Opt::Stats),
    ("rate", Opt::Rate),
    ("thresholds", Opt::Thresholds),
    ("persistent-conn", Opt::PersistentConn),
    ("nosort", Opt::NoSort),
    ("sort", Opt::Sort),
    ("exact", Opt::Exact),
    ("ipv6", Opt::Ipv6),
    ("ops", Opt::Ops),
    ("pe", Opt::Pe),
    ("sched-flags", Opt::SchedFlags),
    ("mcast-group", Opt::McastGroup),
    ("mcast-port", Opt::McastPort),
    ("mcast-ttl", Opt::McastTtl),
    ("sync-maxlen", Opt::SyncMaxlen),
    ("tun-info", Opt::TunInfo),
    ("tun-type", Opt::TunType),
    ("tun-port", Opt::TunPort),
    ("tun-nocsum", Opt::TunNocsum),
    ("tun-csum", Opt::TunCsum),
    ("tun-remcsum", Opt::TunRemcsum),
];

/// A short option; `-b` is `--fullnat` for the real-server commands, `--sched-flags`
/// otherwise (see the module docs).
fn short(c: char, server_cmd: bool) -> Option<Opt> {
    Some(match c {
        'A' => Opt::AddService,
        'E' => Opt::EditService,
        'D' => Opt::DeleteService,
        'C' => Opt::Clear,
        'L' | 'l' => Opt::List,
        'Z' => Opt::Zero,
        'a' => Opt::AddServer,
        'e' => Opt::EditServer,
        'd' => Opt::DeleteServer,
        'h' => Opt::Help,
        'v' => Opt::Version,
        'R' => Opt::Restore,
        'S' => Opt::Save,
        't' => Opt::Tcp,
        'u' => Opt::Udp,
        'f' => Opt::Fwmark,
        's' => Opt::Scheduler,
        'p' => Opt::Persistent,
        'M' => Opt::Netmask,
        'r' => Opt::RealServer,
        'm' => Opt::Masquerading,
        'i' => Opt::Ipip,
        'g' => Opt::Gatewaying,
        'b' if server_cmd => Opt::FullNat,
        'b' => Opt::SchedFlags,
        'w' => Opt::Weight,
        'x' => Opt::UThreshold,
        'y' => Opt::LThreshold,
        'n' => Opt::Numeric,
        'c' => Opt::Connection,
        'X' => Opt::Exact,
        '6' => Opt::Ipv6,
        'o' => Opt::Ops,
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    None,
    Required,
    Optional,
}

fn arg_kind(o: Opt) -> ArgKind {
    match o {
        Opt::Persistent => ArgKind::Optional,
        Opt::StartDaemon
        | Opt::StopDaemon
        | Opt::Tcp
        | Opt::Udp
        | Opt::Sctp
        | Opt::Fwmark
        | Opt::Scheduler
        | Opt::Netmask
        | Opt::RealServer
        | Opt::Weight
        | Opt::UThreshold
        | Opt::LThreshold
        | Opt::McastInterface
        | Opt::SyncId
        | Opt::Pe
        | Opt::SchedFlags
        | Opt::McastGroup
        | Opt::McastPort
        | Opt::McastTtl
        | Opt::SyncMaxlen
        | Opt::TunType
        | Opt::TunPort => ArgKind::Required,
        _ => ArgKind::None,
    }
}

/// ipvsadm's option names, indexed as its option table is.
const OPTNAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

const O_NUMERIC: usize = 0;
const O_CONNECTION: usize = 1;
const O_SERVICE: usize = 2;
const O_SCHEDULER: usize = 3;
const O_PERSISTENT: usize = 4;
const O_NETMASK: usize = 5;
const O_SERVER: usize = 6;
const O_FORWARD: usize = 7;
const O_WEIGHT: usize = 8;
const O_UTHRESHOLD: usize = 9;
const O_LTHRESHOLD: usize = 10;
const O_MCAST: usize = 11;
const O_TIMEOUT: usize = 12;
const O_DAEMON: usize = 13;
const O_STATS: usize = 14;
const O_RATE: usize = 15;
const O_THRESHOLDS: usize = 16;
const O_PERSISTENTCONN: usize = 17;
const O_NOSORT: usize = 18;
const O_SYNCID: usize = 19;
const O_EXACT: usize = 20;
const O_OPS: usize = 21;
const O_PE: usize = 22;
const O_SCHED_FLAGS: usize = 23;
const O_MCAST_GROUP: usize = 24;
const O_MCAST_PORT: usize = 25;
const O_MCAST_TTL: usize = 26;
const O_SYNC_MAXLEN: usize = 27;
const O_TUN_INFO: usize = 28;
const O_TUN_TYPE: usize = 29;
const O_TUN_PORT: usize = 30;
const O_TUN_NOCSUM: usize = 31;
const O_TUN_CSUM: usize = 32;
const O_TUN_REMCSUM: usize = 33;

/// The option-table index of an option (none for commands, `-6` and `--sort`).
fn optc(o: Opt) -> Option<usize> {
    Some(match o {
        Opt::Numeric => O_NUMERIC,
        Opt::Connection => O_CONNECTION,
        Opt::Tcp | Opt::Udp | Opt::Sctp | Opt::Fwmark => O_SERVICE,
        Opt::Scheduler => O_SCHEDULER,
        Opt::Persistent => O_PERSISTENT,
        Opt::Netmask => O_NETMASK,
        Opt::RealServer => O_SERVER,
        Opt::Masquerading | Opt::Ipip | Opt::Gatewaying | Opt::FullNat => O_FORWARD,
        Opt::Weight => O_WEIGHT,
        Opt::UThreshold => O_UTHRESHOLD,
        Opt::LThreshold => O_LTHRESHOLD,
        Opt::McastInterface => O_MCAST,
        Opt::Timeout => O_TIMEOUT,
        Opt::Daemon => O_DAEMON,
        Opt::Stats => O_STATS,
        Opt::Rate => O_RATE,
        Opt::Thresholds => O_THRESHOLDS,
        Opt::PersistentConn => O_PERSISTENTCONN,
        Opt::NoSort => O_NOSORT,
        Opt::SyncId => O_SYNCID,
        Opt::Exact => O_EXACT,
        Opt::Ops => O_OPS,
        Opt::Pe => O_PE,
        Opt::SchedFlags => O_SCHED_FLAGS,
        Opt::McastGroup => O_MCAST_GROUP,
        Opt::McastPort => O_MCAST_PORT,
        Opt::McastTtl => O_MCAST_TTL,
        Opt::SyncMaxlen => O_SYNC_MAXLEN,
        Opt::TunInfo => O_TUN_INFO,
        Opt::TunType => O_TUN_TYPE,
        Opt::TunPort => O_TUN_PORT,
        Opt::TunNocsum => O_TUN_NOCSUM,
        Opt::TunCsum => O_TUN_CSUM,
        Opt::TunRemcsum => O_TUN_REMCSUM,
        _ => return None,
    })
}

/// The commands this module runs (ipvsadm's `CMD_*` without the daemon ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddSrv,
    DelSrv,
    EditSrv,
    Timeout,
    Restore,
    Save,
    Zero,
}

impl Cmd {
    /// ipvsadm's name of the command, as its messages use it.
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddSrv => "add-server",
            Cmd::DelSrv => "delete-server",
            Cmd::EditSrv => "edit-server",
            Cmd::Timeout => "set",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
        }
    }

    /// The options the command takes: `b'+'` compulsory, `b'1'` at most one of these,
    /// `b' '` optional; any other is illegal (ipvsadm's `commands_v_options`).
    fn allowed(self) -> &'static [(usize, u8)] {
        match self {
            Cmd::Add | Cmd::Edit => &[
                (O_SERVICE, b'+'),
                (O_SCHEDULER, b' '),
                (O_PERSISTENT, b' '),
                (O_NETMASK, b' '),
                (O_OPS, b' '),
                (O_PE, b' '),
                (O_SCHED_FLAGS, b' '),
            ],
            Cmd::Del => &[(O_SERVICE, b'+')],
            Cmd::List => &[
                (O_NUMERIC, b' '),
                (O_CONNECTION, b'1'),
                (O_SERVICE, b'1'),
                (O_TIMEOUT, b'1'),
                (O_DAEMON, b'1'),
                (O_STATS, b' '),
                (O_RATE, b' '),
                (O_THRESHOLDS, b' '),
                (O_PERSISTENTCONN, b' '),
                (O_NOSORT, b' '),
                (O_SYNCID, b' '),
                (O_EXACT, b' '),
                (O_TUN_INFO, b' '),
            ],
            Cmd::AddSrv | Cmd::EditSrv => &[
                (O_SERVICE, b'+'),
                (O_SERVER, b'+'),
                (O_FORWARD, b' '),
                (O_WEIGHT, b' '),
                (O_UTHRESHOLD, b' '),
                (O_LTHRESHOLD, b' '),
                (O_TUN_TYPE, b' '),
                (O_TUN_PORT, b' '),
                (O_TUN_NOCSUM, b' '),
                (O_TUN_CSUM, b' '),
                (O_TUN_REMCSUM, b' '),
            ],
            Cmd::DelSrv => &[(O_SERVICE, b'+'), (O_SERVER, b'+')],
            Cmd::Save => &[(O_NUMERIC, b' ')],
            Cmd::Zero => &[(O_SERVICE, b' ')],
            Cmd::Flush | Cmd::Timeout | Cmd::Restore => &[],
        }
    }

    fn rule(self, j: usize) -> u8 {
        self.allowed()
            .iter()
            .find(|(o, _)| *o == j)
            .map_or(b'x', |(_, k)| *k)
    }
}

/// ipvsadm's `generic_opt_check`: the first problem in option-table order.
fn check_options(cmd: Cmd, options: u64) -> Result<(), ParseError> {
    let mut first_exclusive = None;
    for (j, name) in OPTNAMES.iter().enumerate() {
        let kind = cmd.rule(j);
        if options & (1 << j) == 0 {
            if kind == b'+' {
                return Err(ParseError::Required {
                    option: name,
                    command: cmd.name(),
                });
            }
            continue;
        }
        match kind {
            b'x' => {
                return Err(ParseError::Illegal {
                    option: name,
                    command: cmd.name(),
                });
            }
            b'1' => match first_exclusive {
                None => first_exclusive = Some(*name),
                Some(other) => {
                    return Err(ParseError::Conflict {
                        option: name,
                        other,
                        command: cmd.name(),
                    });
                }
            },
            _ => {}
        }
    }
    Ok(())
}

// ------------------------------------------------------------------- value parsing

/// ipvsadm's `string_to_number`: `strtol` in base 10 (leading blanks, a sign), the
/// whole string, within `min..=max`.
fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..)?),
        Some(b'+') => (false, t.get(1..)?),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for b in digits.bytes() {
        v = v.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    let v = if neg { -v } else { v };
    (min..=max).contains(&v).then_some(v)
}

/// `atoi`: the leading number of a string, 0 if none.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..).unwrap_or("")),
        Some(b'+') => (false, t.get(1..).unwrap_or("")),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in rest.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg { -v } else { v }
}

/// `inet_aton`: `a.b.c.d`, `a.b.c` (c is 16 bits), `a.b` (b is 24 bits) or `a`, each
/// part decimal, octal (leading 0) or hexadecimal (0x).
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    for part in s.split('.') {
        if parts.len() == 4 {
            return None;
        }
        let b = part.as_bytes();
        if !b.first().is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let (base, digits) =
            if let Some(h) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (16, h)
            } else if part.len() > 1 && part.starts_with('0') {
                (8, part.get(1..)?)
            } else {
                (10, part)
            };
        let mut v: u64 = 0;
        for c in digits.chars() {
            let d = u64::from(c.to_digit(base)?);
            v = v * u64::from(base) + d;
            if v > u64::from(u32::MAX) {
                return None;
            }
        }
        parts.push(v);
    }
    let n = parts.len();
    let (last, head) = parts.split_last()?;
    if head.iter().any(|&p| p > 0xff) {
        return None;
    }
    let max_last: u64 = match n {
        1 => 0xffff_ffff,
        2 => 0x00ff_ffff,
        3 => 0xffff,
        _ => 0xff,
    };
    if *last > max_last {
        return None;
    }
    let mut v: u64 = 0;
    for (i, p) in head.iter().enumerate() {
        v |= p << (24 - 8 * i);
    }
    Some(Ipv4Addr::from((v | last) as u32))
}

/// ipvsadm's `parse_service` for `VIP[:PORT]`, `[V6]:PORT` or a bare IPv6 address
/// (numeric only): the address and the port if one was given.
fn parse_addr_port(buf: &str) -> Option<(IpAddr, Option<u16>)> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (addr_part, bracket_port) = match buf.strip_prefix('[') {
        Some(rest) => {
            let (inner, after) = rest.split_once(']')?;
            let port = after.strip_prefix(':')?;
            (inner, Some(port))
        }
        None => (buf, None),
    };
    let (addr, port) = if let Ok(a) = addr_part.parse::<Ipv6Addr>() {
        (IpAddr::V6(a), bracket_port)
    } else {
        // Not IPv6 (even in brackets, as in ipvsadm): an IPv4 address, maybe with a port.
        let (host, port) = match addr_part.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr_part, None),
        };
        (IpAddr::V4(inet_aton(host)?), port)
    };
    let port = match port {
        Some(p) => Some(string_to_number(p, 0, 65535)? as u16),
        None => None,
    };
    Some((addr, port))
}

/// An IPv4 persistence mask to a prefix length.
fn netmask_v4(s: &str) -> Result<u8, ParseError> {
    let m = u32::from(inet_aton(s).ok_or_else(|| ParseError::BadNetmask(s.to_owned()))?);
    let prefix = m.leading_ones();
    if prefix < 32 && m << prefix != 0 {
        return Err(ParseError::NonContiguousNetmask(s.to_owned()));
    }
    Ok(prefix as u8)
}

fn parse_timeout(s: &str, min: u32) -> Result<u32, ParseError> {
    string_to_number(s, i64::from(min), i64::from(MAX_TIMEOUT))
        .map(|v| v as u32)
        .ok_or_else(|| ParseError::BadTimeout(s.to_owned()))
}

/// ipvsadm's `parse_sched_flags` against the scheduler `sched` (default wlc).
fn parse_sched_flags(sched: &str, arg: &str) -> Result<SchedFlags, ParseError> {
    let mut flags = SchedFlags::default();
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let need = |s: &str| {
            if sched == s {
                Ok(())
            } else {
                Err(ParseError::IncompatibleSchedFlag(flag.to_owned()))
            }
        };
        match flag {
            "flag-1" => flags.fallback = true,
            "flag-2" => flags.port = true,
            "flag-3" => {
                return Err(ParseError::Unsupported(
                    "scheduler flag `flag-3' is not supported: the director's schedulers use flag-1 and flag-2",
                ));
            }
            "sh-fallback" => {
                need("sh")?;
                flags.fallback = true;
            }
            "sh-port" => {
                need("sh")?;
                flags.port = true;
            }
            "mh-fallback" => {
                need("mh")?;
                flags.fallback = true;
            }
            "mh-port" => {
                need("mh")?;
                flags.port = true;
            }
            _ => return Err(ParseError::BadSchedFlag(flag.to_owned())),
        }
    }
    if !any {
        return Err(ParseError::BadSchedFlag(arg.to_owned()));
    }
    Ok(flags)
}

// -------------------------------------------------------------------------- parsing

/// The virtual service as given.
#[derive(Clone, Copy)]
enum SvcArg {
    Addr {
        proto: Proto,
        addr: IpAddr,
        port: u16,
    },
    Mark(u32),
}

/// What the options said, before the command is built.
#[derive(Default)]
struct Raw<'s> {
    options: u64,
    svc: Option<SvcArg>,
    ipv6: bool,
    sched: Option<&'s str>,
    persistent: Option<u32>,
    netmask: Option<&'s str>,
    server: Option<(IpAddr, Option<u16>)>,
    method: Option<Method>,
    weight: Option<u32>,
    u_threshold: Option<u32>,
    l_threshold: Option<u32>,
    ops: bool,
    sched_flags: Option<&'s str>,
    positionals: Vec<&'s str>,
}

impl Raw<'_> {
    fn has(&self, j: usize) -> bool {
        self.options & (1 << j) != 0
    }
}

/// The option words of a command line, split as popt splits them.
enum Word<'s> {
    Opt(Opt, String, Option<&'s str>),
    Positional(&'s str),
}

/// Splits argv into options (with their values) and positional words.
fn tokenize<'s>(args: &[&'s str]) -> Result<Vec<Word<'s>>, ParseError> {
    let mut out = Vec::new();
    let mut server_cmd = false;
    let mut first_opt = true;
    let mut i = 0;
    let mut note_first = |o: Opt, server_cmd: &mut bool| {
        if first_opt {
            first_opt = false;
            *server_cmd = matches!(o, Opt::AddServer | Opt::EditServer | Opt::DeleteServer);
        }
    };
    while let Some(&a) = args.get(i) {
        i += 1;
        if a == "--" {
            out.extend(
                args.get(i..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|w| Word::Positional(w)),
            );
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let opt = LONG
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, o)| *o)
                .ok_or_else(|| ParseError::UnknownOption(a.to_owned()))?;
            note_first(opt, &mut server_cmd);
            let shown = format!("--{name}");
            let value = match arg_kind(opt) {
                ArgKind::None => {
                    if inline.is_some() {
                        return Err(ParseError::UnwantedArgument(shown));
                    }
                    None
                }
                ArgKind::Required => match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = args
                            .get(i)
                            .copied()
                            .ok_or_else(|| ParseError::MissingArgument(shown.clone()))?;
                        i += 1;
                        Some(v)
                    }
                },
                ArgKind::Optional => match inline {
                    Some(v) => Some(v),
                    None => match args.get(i) {
                        Some(v) if !v.starts_with('-') => {
                            i += 1;
                            Some(*v)
                        }
                        _ => None,
                    },
                },
            };
            out.push(Word::Opt(opt, shown, value));
        } else if let Some(cluster) = a.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (at, c) in cluster.char_indices() {
                let opt = short(c, server_cmd)
                    .ok_or_else(|| ParseError::UnknownOption(format!("-{c}")))?;
                note_first(opt, &mut server_cmd);
                let shown = format!("-{c}");
                let rest = cluster.get(at + c.len_utf8()..).unwrap_or("");
                match arg_kind(opt) {
                    ArgKind::None => out.push(Word::Opt(opt, shown, None)),
                    kind => {
                        let value = if !rest.is_empty() {
                            Some(rest)
                        } else {
                            match args.get(i) {
                                Some(v) if kind == ArgKind::Required || !v.starts_with('-') => {
                                    i += 1;
                                    Some(*v)
                                }
                                _ if kind == ArgKind::Required => {
                                    return Err(ParseError::MissingArgument(shown));
                                }
                                _ => None,
                            }
                        };
                        out.push(Word::Opt(opt, shown, value));
                        break;
                    }
                }
            }
        } else {
            out.push(Word::Positional(a));
        }
    }
    Ok(out)
}

fn command_of(o: Opt) -> Result<Option<Cmd>, ParseError> {
    Ok(Some(match o {
        Opt::AddService => Cmd::Add,
        Opt::EditService => Cmd::Edit,
        Opt::DeleteService => Cmd::Del,
        Opt::Clear => Cmd::Flush,
        Opt::List => Cmd::List,
        Opt::Zero => Cmd::Zero,
        Opt::AddServer => Cmd::AddSrv,
        Opt::EditServer => Cmd::EditSrv,
        Opt::DeleteServer => Cmd::DelSrv,
        Opt::Set => Cmd::Timeout,
        Opt::Restore => Cmd::Restore,
        Opt::Save => Cmd::Save,
        Opt::StartDaemon | Opt::StopDaemon => {
            return Err(ParseError::Unsupported(
                "the connection sync daemon (--start-daemon, --stop-daemon) is not supported",
            ));
        }
        _ => return Ok(None),
    }))
}

/// Parses ipvsadm's arguments (argv without the program name). No arguments is `-L`,
/// as for ipvsadm.
pub fn parse_args(args: &[&str]) -> Result<Command, ParseError> {
    let words = tokenize(args)?;
    let mut cmd = None;
    let mut raw = Raw::default();
    for w in &words {
        let (opt, shown, value) = match w {
            Word::Positional(p) => {
                raw.positionals.push(p);
                continue;
            }
            Word::Opt(o, s, v) => (*o, s, *v),
        };
        if cmd.is_none() {
            match opt {
                Opt::Help => return Ok(Command::Help),
                Opt::Version => return Ok(Command::Version),
                _ => {}
            }
            cmd = Some(command_of(opt)?.ok_or_else(|| ParseError::NotACommand(shown.clone()))?);
            continue;
        }
        if matches!(opt, Opt::Help | Opt::Version) || command_of(opt)?.is_some() {
            return Err(ParseError::MultipleCommands);
        }
        if let Some(j) = optc(opt) {
            if raw.has(j) {
                return Err(ParseError::Duplicate(OPTNAMES[j]));
            }
            raw.options |= 1 << j;
        }
        let v = value.unwrap_or("");
        match opt {
            Opt::Tcp | Opt::Udp => {
                let (addr, port) =
                    parse_addr_port(v).ok_or_else(|| ParseError::BadService(v.to_owned()))?;
                let proto = if opt == Opt::Tcp {
                    Proto::Tcp
                } else {
                    Proto::Udp
                };
                raw.svc = Some(SvcArg::Addr {
                    proto,
                    addr,
                    port: port.unwrap_or(0),
                });
            }
            Opt::Sctp => {
                return Err(ParseError::Unsupported(
                    "SCTP services (--sctp-service) are not supported: TCP (-t) and UDP (-u) are",
                ));
            }
            Opt::Fwmark => {
                let m = string_to_number(v, 1, i64::from(u32::MAX))
                    .ok_or_else(|| ParseError::BadFwmark(v.to_owned()))?;
                raw.svc = Some(SvcArg::Mark(m as u32));
            }
            Opt::Ipv6 => {
                if !matches!(raw.svc, Some(SvcArg::Mark(_))) {
                    return Err(ParseError::Ipv6BeforeFwmark);
                }
                raw.ipv6 = true;
            }
            Opt::Scheduler => raw.sched = Some(v),
            Opt::Persistent => {
                raw.persistent = Some(match value {
                    Some(t) => parse_timeout(t, 1)?,
                    None => DEFAULT_PERSISTENT_TIMEOUT,
                });
            }
            Opt::Netmask => raw.netmask = Some(v),
            Opt::RealServer => {
                raw.server =
                    Some(parse_addr_port(v).ok_or_else(|| ParseError::BadServer(v.to_owned()))?);
            }
            Opt::Masquerading => raw.method = Some(Method::Masq),
            Opt::Ipip => raw.method = Some(Method::Tunnel),
            Opt::Gatewaying => raw.method = Some(Method::DirectRoute),
            Opt::FullNat => raw.method = Some(Method::FullNat),
            Opt::Weight => {
                raw.weight = Some(
                    string_to_number(v, 0, 65535)
                        .ok_or_else(|| ParseError::BadWeight(v.to_owned()))?
                        as u32,
                );
            }
            Opt::UThreshold => {
                raw.u_threshold = Some(
                    string_to_number(v, 0, i64::from(i32::MAX))
                        .ok_or_else(|| ParseError::BadUThreshold(v.to_owned()))?
                        as u32,
                );
            }
            Opt::LThreshold => {
                raw.l_threshold = Some(
                    string_to_number(v, 0, i64::from(i32::MAX))
                        .ok_or_else(|| ParseError::BadLThreshold(v.to_owned()))?
                        as u32,
                );
            }
            Opt::SyncId => {
                string_to_number(v, 0, 255).ok_or_else(|| ParseError::BadSyncId(v.to_owned()))?;
            }
            Opt::Ops => raw.ops = true,
            Opt::SchedFlags => raw.sched_flags = Some(v),
            Opt::TunType => match v {
                "ipip" => {}
                "gue" | "gre" => {
                    return Err(ParseError::Unsupported(
                        "tunnel types gue and gre are not supported: the director tunnels with ipip",
                    ));
                }
                _ => return Err(ParseError::BadTunnelType(v.to_owned())),
            },
            Opt::TunPort => {
                string_to_number(v, 1, 65535)
                    .ok_or_else(|| ParseError::BadTunnelPort(v.to_owned()))?;
            }
            // Flags, and options whose misuse the option table reports.
            _ => {}
        }
    }
    let Some(cmd) = cmd else {
        if words.is_empty() {
            return Ok(Command::List(ListOpts::default()));
        }
        return Err(match raw.positionals.first() {
            Some(p) => ParseError::Unexpected((*p).to_owned()),
            None => ParseError::NoCommand,
        });
    };

    let mut timeouts = None;
    if cmd == Cmd::Timeout {
        let [tcp, fin, udp, ..] = raw.positionals[..] else {
            return Err(ParseError::SetNeedsThree);
        };
        timeouts = Some((
            parse_timeout(tcp, 0)?,
            parse_timeout(fin, 0)?,
            parse_timeout(udp, 0)?,
        ));
        raw.positionals.drain(..3);
    }
    if let Some(p) = raw.positionals.first() {
        return Err(ParseError::Unexpected((*p).to_owned()));
    }
    let sched_name = raw.sched.unwrap_or(DEFAULT_SCHED.name());
    let flags = match raw.sched_flags {
        // ipvsadm ignores an empty value.
        Some(f) if !f.is_empty() => parse_sched_flags(sched_name, f)?,
        _ => SchedFlags::default(),
    };
    check_options(cmd, raw.options)?;
    build(cmd, &raw, sched_name, flags, timeouts)
}

fn service_key(raw: &Raw<'_>) -> Option<ServiceKey> {
    Some(match raw.svc? {
        SvcArg::Addr { proto, addr, port } => ServiceKey::Addr { proto, addr, port },
        SvcArg::Mark(mark) => ServiceKey::FwMark {
            mark,
            family: if raw.ipv6 {
                IpVersion::V6
            } else {
                IpVersion::V4
            },
        },
    })
}

fn required_key(raw: &Raw<'_>, cmd: Cmd) -> Result<ServiceKey, ParseError> {
    service_key(raw).ok_or(ParseError::Required {
        option: OPTNAMES[O_SERVICE],
        command: cmd.name(),
    })
}

fn svc_port(key: &ServiceKey) -> u16 {
    match key {
        ServiceKey::Addr { port, .. } => *port,
        ServiceKey::FwMark { .. } => 0,
    }
}

fn build(
    cmd: Cmd,
    raw: &Raw<'_>,
    sched_name: &str,
    flags: SchedFlags,
    timeouts: Option<(u32, u32, u32)>,
) -> Result<Command, ParseError> {
    Ok(match cmd {
        Cmd::Add | Cmd::Edit => {
            let key = required_key(raw, cmd)?;
            if let ServiceKey::Addr { port: 0, .. } = key
                && raw.persistent.is_none()
            {
                return Err(ParseError::ZeroPort);
            }
            if raw.ops
                && matches!(
                    key,
                    ServiceKey::Addr {
                        proto: Proto::Tcp,
                        ..
                    }
                )
            {
                return Err(ParseError::OpsNotUdp);
            }
            if raw.has(O_PE) {
                return Err(ParseError::Unsupported(
                    "persistence engines (--pe) are not supported",
                ));
            }
            let sched = SchedKind::from_name(sched_name)
                .ok_or_else(|| ParseError::UnknownScheduler(sched_name.to_owned()))?;
            let prefix = match (key.family(), raw.netmask) {
                (IpVersion::V4, None) => 32,
                (IpVersion::V6, None) => 128,
                (IpVersion::V4, Some(m)) => netmask_v4(m)?,
                (IpVersion::V6, Some(m)) => {
                    let p = atoi(m);
                    if !(1..=128).contains(&p) {
                        return Err(ParseError::BadV6Netmask(m.to_owned()));
                    }
                    p as u8
                }
            };
            let spec = ServiceSpec {
                key,
                sched,
                flags,
                persistence: raw.persistent.map(|t| Persistence {
                    timeout: Duration::from_secs(u64::from(t)),
                    prefix,
                }),
                one_packet: raw.ops,
            };
            if cmd == Cmd::Add {
                Command::AddService(spec)
            } else {
                Command::EditService(spec)
            }
        }
        Cmd::Del => Command::DeleteService(required_key(raw, cmd)?),
        Cmd::Flush => Command::Clear,
        Cmd::Zero => Command::Zero(service_key(raw)),
        Cmd::Timeout => {
            let (tcp, tcpfin, udp) = timeouts.unwrap_or((0, 0, 0));
            Command::SetTimeouts { tcp, tcpfin, udp }
        }
        Cmd::Restore => Command::Restore,
        Cmd::Save => Command::Save {
            numeric: raw.has(O_NUMERIC),
        },
        Cmd::List => {
            let conn_like = raw.has(O_CONNECTION) || raw.has(O_TIMEOUT) || raw.has(O_DAEMON);
            let stat_like = raw.has(O_STATS) || raw.has(O_RATE) || raw.has(O_THRESHOLDS);
            if (conn_like && stat_like)
                || ((raw.has(O_TIMEOUT) || raw.has(O_DAEMON)) && raw.has(O_PERSISTENTCONN))
            {
                return Err(ParseError::ListConflict);
            }
            Command::List(ListOpts {
                service: service_key(raw),
                numeric: raw.has(O_NUMERIC),
                connections: raw.has(O_CONNECTION),
                timeout: raw.has(O_TIMEOUT),
                daemon: raw.has(O_DAEMON),
                stats: raw.has(O_STATS),
                rate: raw.has(O_RATE),
                thresholds: raw.has(O_THRESHOLDS),
                persistent_conn: raw.has(O_PERSISTENTCONN),
                exact: raw.has(O_EXACT),
                nosort: raw.has(O_NOSORT),
                tun_info: raw.has(O_TUN_INFO),
            })
        }
        Cmd::AddSrv | Cmd::EditSrv | Cmd::DelSrv => {
            let key = required_key(raw, cmd)?;
            let (addr, port) = raw.server.ok_or(ParseError::Required {
                option: OPTNAMES[O_SERVER],
                command: cmd.name(),
            })?;
            let mut port = port.unwrap_or(svc_port(&key));
            if cmd == Cmd::DelSrv {
                return Ok(Command::DeleteDest(key, addr, port));
            }
            let method = raw.method.unwrap_or(Method::DirectRoute);
            if matches!(key, ServiceKey::Addr { .. })
                && matches!(method, Method::DirectRoute | Method::Tunnel)
            {
                port = svc_port(&key);
            }
            if IpVersion::of(&addr) != key.family() && method != Method::Tunnel {
                return Err(ParseError::FamilyMismatch);
            }
            let tun_opts = [
                O_TUN_TYPE,
                O_TUN_PORT,
                O_TUN_NOCSUM,
                O_TUN_CSUM,
                O_TUN_REMCSUM,
            ];
            if tun_opts.iter().any(|&j| raw.has(j)) && method != Method::Tunnel {
                return Err(ParseError::TunnelOptions);
            }
            if let Some(&j) = tun_opts[1..].iter().find(|&&j| raw.has(j)) {
                return Err(ParseError::IllegalTunnelOption(OPTNAMES[j]));
            }
            let spec = DestSpec {
                addr,
                port,
                method,
                weight: raw.weight.unwrap_or(1),
                u_threshold: raw.u_threshold.unwrap_or(0),
                l_threshold: raw.l_threshold.unwrap_or(0),
            };
            if cmd == Cmd::AddSrv {
                Command::AddDest(key, spec)
            } else {
                Command::EditDest(key, spec)
            }
        }
    })
}

/// The words of a rule line: blank-separated, a word starting with `#` ends the line,
/// and a leading `ipvsadm` is dropped (as `ipvsadm -R` drops it).
fn line_words(line: &str) -> Vec<&str> {
    let mut words: Vec<&str> = line
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .take_while(|w| !w.starts_with('#'))
        .collect();
    if words.first() == Some(&"ipvsadm") {
        words.remove(0);
    }
    words
}

/// Parses one line of a rule file: `Ok(None)` for a blank or comment line.
pub fn parse_line(line: &str) -> Result<Option<Command>, ParseError> {
    let words = line_words(line);
    if words.is_empty() {
        return Ok(None);
    }
    parse_args(&words).map(Some)
}

/// Parses a rule file into its commands with their line numbers.
fn parse_rules_numbered(text: &str) -> Result<Vec<(usize, Command)>, RuleError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |e| RuleError {
            file: None,
            line: i + 1,
            kind: RuleErrorKind::Parse(e),
        };
        if let Some(c) = parse_line(line).map_err(err)? {
            if !c.is_rule() {
                return Err(err(ParseError::NotARule(c.name())));
            }
            out.push((i + 1, c));
        }
    }
    Ok(out)
}

/// Parses a rule file (`ipvsadm -S -n` output, or written by hand): one command a line,
/// blank lines and `#` comments skipped. Only commands that change the director are
/// rules. The first bad line is the error.
pub fn parse_rules(text: &str) -> Result<Vec<Command>, RuleError> {
    Ok(parse_rules_numbered(text)?
        .into_iter()
        .map(|(_, c)| c)
        .collect())
}

// ------------------------------------------------------------------------ executing

/// Executes a command on the director. Commands that change nothing (`-L`, `-S`, `-R`,
/// `-h`, `-v`) are [`ApplyError::NotARule`]: listings are [`list`] and [`save`].
pub fn apply<const D: usize>(
    director: &mut Director<'_, D>,
    cmd: &Command,
    now: Instant,
) -> Result<(), ApplyError> {
    match cmd {
        Command::AddService(spec) => director.add_service(*spec, now).map(drop)?,
        Command::EditService(spec) => director.edit_service(*spec)?,
        Command::DeleteService(key) => director.delete_service(key)?,
        Command::AddDest(key, spec) => director.add_dest(key, *spec, now).map(drop)?,
        Command::EditDest(key, spec) => director.edit_dest(key, *spec)?,
        Command::DeleteDest(key, addr, port) => director.delete_dest(key, addr, *port)?,
        Command::Clear => director.clear(),
        Command::Zero(key) => director.zero(key.as_ref())?,
        Command::SetTimeouts { tcp, tcpfin, udp } => director.set_timeouts(
            Duration::from_secs(u64::from(*tcp)),
            Duration::from_secs(u64::from(*tcpfin)),
            Duration::from_secs(u64::from(*udp)),
        ),
        other => return Err(ApplyError::NotARule(other.name())),
    }
    Ok(())
}

/// `ipvsadm -R`: parses a whole rule file, then applies it line by line. Nothing is
/// applied if a line does not parse; if the director refuses a line, the lines before it
/// stay applied (as with ipvsadm) and the error names the line. Returns how many
/// commands were applied.
pub fn restore<const D: usize>(
    director: &mut Director<'_, D>,
    text: &str,
    now: Instant,
) -> Result<usize, RuleError> {
    let cmds = parse_rules_numbered(text)?;
    for (line, c) in &cmds {
        apply(director, c, now).map_err(|e| RuleError {
            file: None,
            line: *line,
            kind: RuleErrorKind::Apply(e),
        })?;
    }
    Ok(cmds.len())
}

// ------------------------------------------------------------------------ rendering

/// An address as `inet_ntop` writes it (IPv4-compatible IPv6 addresses as `::a.b.c.d`).
fn ntop(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if s[..6].iter().all(|&w| w == 0) && s[6] != 0 {
                let low = (u32::from(s[6]) << 16) | u32::from(s[7]);
                format!("::{}", Ipv4Addr::from(low))
            } else {
                v6.to_string()
            }
        }
    }
}

/// `addr:port`, with the IPv6 address in brackets.
fn addr_port(a: &IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(_) => format!("{}:{port}", ntop(a)),
        IpAddr::V6(_) => format!("[{}]:{port}", ntop(a)),
    }
}

/// The service as a rule names it: `-t VIP:PORT`, `-u ...`, `-f MARK [-6]`.
fn rule_service(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { proto, addr, port } => {
            let o = match proto {
                Proto::Tcp => "-t",
                Proto::Udp => "-u",
            };
            format!("{o} {}", addr_port(addr, *port))
        }
        ServiceKey::FwMark { mark, family } => match family {
            IpVersion::V4 => format!("-f {mark}"),
            IpVersion::V6 => format!("-f {mark} -6"),
        },
    }
}

/// The service as a listing names it: `TCP  VIP:PORT`, `FWM  MARK [IPv6]`.
fn list_service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { proto, addr, port } => {
            let p = match proto {
                Proto::Tcp => "TCP",
                Proto::Udp => "UDP",
            };
            format!("{p:<4} {}", addr_port(addr, *port))
        }
        ServiceKey::FwMark { mark, family } => match family {
            IpVersion::V4 => format!("FWM  {mark}"),
            IpVersion::V6 => format!("FWM  {mark} IPv6"),
        },
    }
}

/// The scheduler flags as ipvsadm prints them, empty when none.
fn sched_flags_text(sched: SchedKind, flags: SchedFlags) -> String {
    let (fallback, port) = match sched {
        SchedKind::Sh => ("sh-fallback", "sh-port"),
        SchedKind::Mh => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    let mut names = Vec::new();
    if flags.fallback {
        names.push(fallback);
    }
    if flags.port {
        names.push(port);
    }
    names.join(",")
}

/// The persistence mask as ipvsadm prints it, `None` for a single address.
fn mask_text(family: IpVersion, prefix: u8) -> Option<String> {
    match family {
        IpVersion::V4 if prefix < 32 => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some(Ipv4Addr::from(m).to_string())
        }
        IpVersion::V6 if prefix < 128 => Some(prefix.to_string()),
        _ => None,
    }
}

fn method_switch(m: Method) -> &'static str {
    match m {
        Method::Masq => "-m",
        Method::DirectRoute => "-g",
        Method::Tunnel => "-i",
        Method::FullNat => "-b",
    }
}

/// `-s SCHED [-p T [-M MASK]] [-o] [-b FLAGS]`, as `ipvsadm -S` writes it.
fn write_service_opts(f: &mut impl fmt::Write, spec: &ServiceSpec) -> fmt::Result {
    write!(f, " -s {}", spec.sched.name())?;
    if let Some(p) = spec.persistence {
        write!(f, " -p {}", p.timeout.secs())?;
        if let Some(m) = mask_text(spec.key.family(), p.prefix) {
            write!(f, " -M {m}")?;
        }
    }
    if spec.one_packet {
        f.write_str(" -o")?;
    }
    let flags = sched_flags_text(spec.sched, spec.flags);
    if !flags.is_empty() {
        write!(f, " -b {flags}")?;
    }
    Ok(())
}

/// `-r RIP:PORT METHOD -w W`, ipvsadm 1.31's `--tun-type ipip` for a tunnel, and the
/// thresholds when set (ipvsadm's `-S` drops them).
fn write_dest_opts(f: &mut impl fmt::Write, d: &DestSpec) -> fmt::Result {
    write!(
        f,
        " -r {} {} -w {}",
        addr_port(&d.addr, d.port),
        method_switch(d.method),
        d.weight
    )?;
    if d.method == Method::Tunnel {
        f.write_str(" --tun-type ipip")?;
    }
    if d.u_threshold != 0 {
        write!(f, " -x {}", d.u_threshold)?;
    }
    if d.l_threshold != 0 {
        write!(f, " -y {}", d.l_threshold)?;
    }
    Ok(())
}

impl fmt::Display for Command {
    /// The canonical ipvsadm line of the command (for `-A` and `-a`, the line
    /// `ipvsadm -S -n` writes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::AddService(s) | Command::EditService(s) => {
                let c = if matches!(self, Command::AddService(_)) {
                    "-A"
                } else {
                    "-E"
                };
                write!(f, "{c} {}", rule_service(&s.key))?;
                write_service_opts(f, s)
            }
            Command::DeleteService(k) => write!(f, "-D {}", rule_service(k)),
            Command::AddDest(k, d) | Command::EditDest(k, d) => {
                let c = if matches!(self, Command::AddDest(..)) {
                    "-a"
                } else {
                    "-e"
                };
                write!(f, "{c} {}", rule_service(k))?;
                write_dest_opts(f, d)
            }
            Command::DeleteDest(k, a, p) => {
                write!(f, "-d {} -r {}", rule_service(k), addr_port(a, *p))
            }
            Command::Clear => f.write_str("-C"),
            Command::Zero(None) => f.write_str("-Z"),
            Command::Zero(Some(k)) => write!(f, "-Z {}", rule_service(k)),
            Command::SetTimeouts { tcp, tcpfin, udp } => write!(f, "--set {tcp} {tcpfin} {udp}"),
            Command::List(o) => {
                f.write_str("-L")?;
                for (on, word) in [
                    (o.numeric, " -n"),
                    (o.connections, " -c"),
                    (o.timeout, " --timeout"),
                    (o.daemon, " --daemon"),
                    (o.stats, " --stats"),
                    (o.rate, " --rate"),
                    (o.thresholds, " --thresholds"),
                    (o.persistent_conn, " --persistent-conn"),
                    (o.exact, " --exact"),
                    (o.nosort, " --nosort"),
                    (o.tun_info, " --tun-info"),
                ] {
                    if on {
                        f.write_str(word)?;
                    }
                }
                if let Some(k) = &o.service {
                    write!(f, " {}", rule_service(k))?;
                }
                Ok(())
            }
            Command::Save { numeric } => f.write_str(if *numeric { "-S -n" } else { "-S" }),
            Command::Restore => f.write_str("-R"),
            Command::Help => f.write_str("-h"),
            Command::Version => f.write_str("-v"),
        }
    }
}

/// ipvsadm's `print_largenum`: 9 columns, K/M/G/T above 10^8 unless `--exact`.
fn largenum(out: &mut String, i: u64, exact: bool) {
    let _ = if exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        write!(out, "{i:>w$}")
    } else if i < 100_000_000 {
        write!(out, "{i:>9}")
    } else if i < 1_000_000_000 {
        write!(out, "{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        write!(out, "{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        write!(out, "{:>8}G", i / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", i / 1_000_000_000_000)
    };
}

/// Which listing layout (ipvsadm's `FMT_*` precedence).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Rule,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    TunInfo,
    Plain,
}

impl Layout {
    fn of(o: &ListOpts) -> Layout {
        if o.stats {
            Layout::Stats
        } else if o.rate {
            Layout::Rate
        } else if o.thresholds {
            Layout::Thresholds
        } else if o.persistent_conn {
            Layout::PersistentConn
        } else if o.tun_info {
            Layout::TunInfo
        } else {
            Layout::Plain
        }
    }
}

fn title(out: &mut String, layout: Layout) {
    let _ = match layout {
        Layout::Stats => writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ),
        Layout::Rate => writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ),
        Layout::Thresholds => writeln!(
            out,
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        ),
        Layout::PersistentConn => writeln!(
            out,
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        ),
        Layout::TunInfo => writeln!(
            out,
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn"
        ),
        Layout::Plain => writeln!(
            out,
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
        ),
        Layout::Rule => Ok(()),
    };
}

/// The sort key of a service: ipvsadm's order (fwmark, family, protocol, address,
/// port), without its `int` wrap-around.
fn service_order(k: &ServiceKey) -> (u32, u8, u8, u128, u16) {
    match k {
        ServiceKey::Addr { proto, addr, port } => {
            (0, family_rank(addr), proto.number(), addr_bits(addr), *port)
        }
        ServiceKey::FwMark { mark, family } => {
            let fam = match family {
                IpVersion::V4 => 0,
                IpVersion::V6 => 1,
            };
            (*mark, fam, Proto::Tcp.number(), 0, 0)
        }
    }
}

fn family_rank(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 0,
        IpAddr::V6(_) => 1,
    }
}

fn addr_bits(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(*v)),
        IpAddr::V6(v) => u128::from(*v),
    }
}

/// A service's real servers, sorted by address and port unless `nosort`.
fn dests_of<'d, const D: usize>(
    director: &'d Director<'_, D>,
    svc: &Service<'_, D>,
    nosort: bool,
) -> Vec<(&'d RealServer, &'d DestMeta)> {
    let mut v: Vec<_> = svc
        .members()
        .iter()
        .filter_map(|&id| director.dest(id))
        .collect();
    if !nosort {
        v.sort_by_key(|(d, _)| (family_rank(&d.addr), addr_bits(&d.addr), d.port));
    }
    v
}

fn services_of<'d, 'a, const D: usize>(
    director: &'d Director<'a, D>,
    nosort: bool,
) -> Vec<&'d Service<'a, D>> {
    let mut v: Vec<_> = director.services().map(|(_, s)| s).collect();
    if !nosort {
        v.sort_by_key(|s| service_order(&s.spec().key));
    }
    v
}

fn dest_spec(d: &RealServer) -> DestSpec {
    DestSpec {
        addr: d.addr,
        port: d.port,
        method: d.method,
        weight: d.weight,
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
    }
}

/// One service and its real servers in a layout (ipvsadm's `print_service_entry`).
fn service_entry<const D: usize>(
    out: &mut String,
    director: &Director<'_, D>,
    svc: &Service<'_, D>,
    layout: Layout,
    opts: &ListOpts,
) {
    let spec = svc.spec();
    let exact = opts.exact;
    let name = list_service_name(&spec.key);
    match layout {
        Layout::Rule => {
            let _ = write!(out, "-A {}", rule_service(&spec.key));
            let _ = write_service_opts(out, spec);
        }
        Layout::Stats => {
            let s = svc.stats();
            let _ = write!(out, "{name:<33}");
            for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                largenum(out, n, exact);
            }
        }
        Layout::Rate => {
            let r = svc.rates();
            let _ = write!(out, "{name:<33}");
            for n in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
                largenum(out, n, exact);
            }
        }
        _ => {
            let _ = write!(out, "{name} {}", spec.sched.name());
            let flags = sched_flags_text(spec.sched, spec.flags);
            if !flags.is_empty() {
                let _ = write!(out, " ({flags})");
            }
            if let Some(p) = spec.persistence {
                let _ = write!(out, " persistent {}", p.timeout.secs());
                if let Some(m) = mask_text(spec.key.family(), p.prefix) {
                    let _ = write!(out, " mask {m}");
                }
            }
            if spec.one_packet {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');

    for (d, meta) in dests_of(director, svc, opts.nosort) {
        let dname = addr_port(&d.addr, d.port);
        let _ = match layout {
            Layout::Rule => {
                let _ = write!(out, "-a {}", rule_service(&spec.key));
                let _ = write_dest_opts(out, &dest_spec(d));
                writeln!(out)
            }
            Layout::Stats => {
                let s = &meta.stats;
                let _ = write!(out, "  -> {dname:<28}");
                for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                    largenum(out, n, exact);
                }
                writeln!(out)
            }
            Layout::Rate => {
                let r = meta.rates();
                let _ = write!(
                    out,
                    "  -> {dname:<28} {:>8} {:>8} {:>8}",
                    r.cps, r.inpps, r.outpps
                );
                largenum(out, r.inbps, exact);
                largenum(out, r.outbps, exact);
                writeln!(out)
            }
            Layout::Thresholds => writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                d.u_threshold, d.l_threshold, d.active_conns, d.inactive_conns
            ),
            Layout::PersistentConn => writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                d.weight, d.persist_conns, d.active_conns, d.inactive_conns
            ),
            Layout::TunInfo => writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                d.method.ipvsadm_name(),
                if d.method == Method::Tunnel {
                    "ipip"
                } else {
                    "n/a"
                },
                d.weight,
                d.active_conns,
                d.inactive_conns
            ),
            Layout::Plain => writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                d.method.ipvsadm_name(),
                d.weight,
                d.active_conns,
                d.inactive_conns
            ),
        };
    }
}

/// `ipvsadm -S -n`: the rules that rebuild the director's services and real servers
/// (see the module docs for the thresholds).
pub fn save<const D: usize>(director: &Director<'_, D>) -> String {
    let mut out = String::new();
    let opts = ListOpts::default();
    for svc in services_of(director, false) {
        service_entry(&mut out, director, svc, Layout::Rule, &opts);
    }
    out
}

/// The version line `ipvsadm -L` starts with; `size` is the connection capacity.
fn version_line<const D: usize>(out: &mut String, director: &Director<'_, D>) {
    let size = director
        .conns_v4()
        .capacity()
        .saturating_add(director.conns_v6().capacity());
    let _ = writeln!(
        out,
        "IP Virtual Server version {IPVS_VERSION} (size={size})"
    );
}

/// `ipvsadm -L -n` and its variants. `now` is for the connections' expiry times.
/// A listing of one service that does not exist is [`ControlError::NoService`].
pub fn list<const D: usize>(
    director: &Director<'_, D>,
    opts: &ListOpts,
    now: Instant,
) -> Result<String, ApplyError> {
    if opts.connections {
        return Ok(list_conns(director, opts, now));
    }
    if let Some(key) = &opts.service {
        let svc = director.service(key).ok_or(ControlError::NoService)?;
        let mut out = String::new();
        let layout = Layout::of(opts);
        title(&mut out, layout);
        service_entry(&mut out, director, svc, layout, opts);
        return Ok(out);
    }
    if opts.timeout {
        return Ok(list_timeout(director));
    }
    if opts.daemon {
        // No sync daemon runs: ipvsadm prints nothing.
        return Ok(String::new());
    }
    let mut out = String::new();
    version_line(&mut out, director);
    let layout = Layout::of(opts);
    title(&mut out, layout);
    for svc in services_of(director, opts.nosort) {
        service_entry(&mut out, director, svc, layout, opts);
    }
    Ok(out)
}

/// `ipvsadm -L --timeout`.
pub fn list_timeout<const D: usize>(director: &Director<'_, D>) -> String {
    let (tcp, fin, udp) = director.config().timeouts.get();
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        tcp.secs(),
        fin.secs(),
        udp.secs()
    )
}

/// `ipvsadm -L -n -c`: every connection and persistence template, IPv4 first.
pub fn list_conns<const D: usize>(
    director: &Director<'_, D>,
    opts: &ListOpts,
    now: Instant,
) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let _ = if opts.persistent_conn {
        writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        )
    } else {
        writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        )
    };
    for (_, c) in director.conns_v4().iter() {
        conn_line(&mut out, director, c, now);
    }
    for (_, c) in director.conns_v6().iter() {
        conn_line(&mut out, director, c, now);
    }
    out
}

/// One line of `-c`, as ipvsadm prints `/proc/net/ip_vs_conn`.
fn conn_line<A: FlowAddr, const D: usize>(
    out: &mut String,
    director: &Director<'_, D>,
    c: &Conn<A>,
    now: Instant,
) {
    let fwmark_service = director.services().any(|(i, s)| {
        i == usize::from(c.service) && matches!(s.spec().key, ServiceKey::FwMark { .. })
    });
    let proto = match c.proto {
        // The kernel keys an fwmark service's templates with protocol 0 ("IP").
        _ if c.is_template() && fwmark_service => "IP",
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    };
    let state = if c.is_template() {
        "NONE"
    } else {
        match c.proto {
            Proto::Udp => UDP_STATE_NAME,
            Proto::Tcp => TcpState::from_u8(c.state).map_or("ERR!", TcpState::name),
        }
    };
    let secs = c.expires.remaining(now).secs();
    let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
    // A tunnel to a real server of the other family keeps the virtual address in the
    // table: its slot has the real one.
    let daddr = match director.dest(c.dest) {
        Some((d, _)) if c.method == Method::Tunnel && d.addr != c.daddr.to_ip() => {
            if IpVersion::of(&d.addr) == IpVersion::of(&c.daddr.to_ip()) {
                c.daddr.to_ip()
            } else {
                d.addr
            }
        }
        _ => c.daddr.to_ip(),
    };
    let _ = writeln!(
        out,
        "{proto:<3} {expire:<6} {state:<11} {:<18} {:<18} {}",
        addr_port(&c.caddr.to_ip(), c.cport),
        addr_port(&c.vaddr.to_ip(), c.vport),
        addr_port(&daddr, c.dport)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvs_core::conn::table::{ConnTable, index_len_for};
    use lvs_core::director::{Config, Rx, SchedStorage, Storage, Verdict};
    use proptest::prelude::*;

    /// A director over leaked Vec storage: 8 service slots, 32 real servers, `cap`
    /// connections per family, one FULLNAT local address per family.
    fn director(cap: usize) -> Director<'static, 16> {
        fn leak<T>(v: Vec<T>) -> &'static mut [T] {
            Box::leak(v.into_boxed_slice())
        }
        let services = leak((0..8).map(|_| None).collect());
        let sched: &'static mut [SchedStorage<'static>] = leak(Vec::new());
        let v4 = ConnTable::new(
            leak(vec![Conn::empty(); cap]),
            leak(vec![0u32; index_len_for(cap)]),
            leak(vec![0u32; index_len_for(cap)]),
            [7; 16],
        )
        .unwrap();
        let v6 = ConnTable::new(
            leak(vec![Conn::empty(); cap]),
            leak(vec![0u32; index_len_for(cap)]),
            leak(vec![0u32; index_len_for(cap)]),
            [9; 16],
        )
        .unwrap();
        let mut d = Director::new(
            Config::default(),
            Instant::ZERO,
            Storage {
                services,
                sched,
                dests: leak(vec![None; 32]),
                dest_meta: leak(vec![DestMeta::EMPTY; 32]),
                laddrs: leak(vec![None; 4]),
                v4,
                v6,
            },
        );
        d.add_laddr("192.0.2.200".parse().unwrap()).unwrap();
        d.add_laddr("2001:db8::200".parse().unwrap()).unwrap();
        d
    }

    fn cmd(line: &str) -> Command {
        match parse_line(line) {
            Ok(Some(c)) => c,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse_line(line) {
            Err(e) => e.to_string(),
            other => panic!("{line} parsed: {other:?}"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: ip(addr),
            port,
        }
    }

    /// Compares line by line, naming the first line that differs.
    fn assert_lines(actual: &str, expected: &[&str]) {
        let got: Vec<&str> = actual.lines().collect();
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            assert_eq!(g, e, "line {} differs\n--- got:\n{actual}", i + 1);
        }
        assert_eq!(got.len(), expected.len(), "line count\n--- got:\n{actual}");
        assert!(actual.ends_with('\n') || actual.is_empty());
    }

    // ------------------------------------------------------------------ parsing

    #[test]
    fn add_service_defaults_are_ipvsadms() {
        let Command::AddService(s) = cmd("-A -t 10.0.0.1:80") else {
            panic!()
        };
        assert_eq!(s.key, tcp("10.0.0.1", 80));
        assert_eq!(s.sched, SchedKind::Wlc);
        assert_eq!(s.flags, SchedFlags::default());
        assert_eq!(s.persistence, None);
        assert!(!s.one_packet);

        // A bare -p is 360 s (libipvs), with a /32 mask; -p N and --persistent=N.
        let Command::AddService(s) = cmd("-A -t 10.0.0.1:80 -p -s rr") else {
            panic!()
        };
        let p = s.persistence.unwrap();
        assert_eq!((p.timeout.secs(), p.prefix), (360, 32));
        assert_eq!(s.sched, SchedKind::Rr);
        let Command::AddService(s) = cmd("-A -t 10.0.0.1:80 -p 300 -M 255.255.255.0") else {
            panic!()
        };
        let p = s.persistence.unwrap();
        assert_eq!((p.timeout.secs(), p.prefix), (300, 24));
        let Command::AddService(s) = cmd("-A -t 10.0.0.1:80 --persistent=77") else {
            panic!()
        };
        assert_eq!(s.persistence.unwrap().timeout.secs(), 77);

        // IPv6: mask /128 by default, -M as a prefix length.
        let Command::AddService(s) = cmd("-A -t [2001:db8::1]:80 -p") else {
            panic!()
        };
        assert_eq!(s.persistence.unwrap().prefix, 128);
        let Command::AddService(s) = cmd("-A -u [2001:db8::1]:53 -p 10 -M 64 -o") else {
            panic!()
        };
        assert_eq!(s.persistence.unwrap().prefix, 64);
        assert!(s.one_packet);
        // A bare IPv6 address has no port: port 0, which needs persistence.
        let Command::AddService(s) = cmd("-A -t 2001:db8::1 -p") else {
            panic!()
        };
        assert_eq!(s.key, tcp("2001:db8::1", 0));
    }

    #[test]
    fn add_server_defaults_and_port_rules() {
        // No port: the service's; -g (droute) and weight 1 by default.
        assert_eq!(
            cmd("-a -t 10.0.0.1:80 -r 10.0.1.1"),
            Command::AddDest(
                tcp("10.0.0.1", 80),
                DestSpec {
                    addr: ip("10.0.1.1"),
                    port: 80,
                    method: Method::DirectRoute,
                    weight: 1,
                    u_threshold: 0,
                    l_threshold: 0,
                }
            )
        );
        // -g and -i force the service's port, as ipvsadm does; -m keeps it.
        let port = |line: &str| match cmd(line) {
            Command::AddDest(_, d) | Command::EditDest(_, d) => (d.port, d.method),
            c => panic!("{c:?}"),
        };
        assert_eq!(
            port("-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -g"),
            (80, Method::DirectRoute)
        );
        assert_eq!(
            port("-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -i"),
            (80, Method::Tunnel)
        );
        assert_eq!(
            port("-e -t 10.0.0.1:80 -r 10.0.1.1:8080 -m"),
            (8080, Method::Masq)
        );
        // A fwmark service has no port: the real server's stays as given (0 if none).
        assert_eq!(
            port("-a -f 3 -r 10.0.1.1:8080 -g"),
            (8080, Method::DirectRoute)
        );
        assert_eq!(port("-a -f 3 -r 10.0.1.1"), (0, Method::DirectRoute));
        // The whole description, long forms included.
        assert_eq!(
            cmd(
                "--add-server --udp-service 10.0.0.1:53 --real-server 10.0.1.1:5353 \
                 --masquerading --weight 7 --u-threshold 100 --l-threshold 50"
            ),
            Command::AddDest(
                ServiceKey::Addr {
                    proto: Proto::Udp,
                    addr: ip("10.0.0.1"),
                    port: 53
                },
                DestSpec {
                    addr: ip("10.0.1.1"),
                    port: 5353,
                    method: Method::Masq,
                    weight: 7,
                    u_threshold: 100,
                    l_threshold: 50,
                }
            )
        );
        // A tunnel may cross families; --tun-type ipip is ipvsadm 1.31's save output.
        assert_eq!(
            port("-a -t 10.0.0.1:80 -r [2001:db8::5]:80 -i -w 1 --tun-type ipip"),
            (80, Method::Tunnel)
        );
    }

    #[test]
    fn fwmark_services_and_ipv6() {
        assert_eq!(
            cmd("-A -f 9 -6 -s nq -p 60 -M 64"),
            Command::AddService(ServiceSpec {
                key: ServiceKey::FwMark {
                    mark: 9,
                    family: IpVersion::V6
                },
                sched: SchedKind::Nq,
                flags: SchedFlags::default(),
                persistence: Some(Persistence {
                    timeout: Duration::from_secs(60),
                    prefix: 64
                }),
                one_packet: false,
            })
        );
        assert_eq!(
            cmd("-d -f 9 -6 -r [2001:db8::20]:0"),
            Command::DeleteDest(
                ServiceKey::FwMark {
                    mark: 9,
                    family: IpVersion::V6
                },
                ip("2001:db8::20"),
                0
            )
        );
        // --fwmark-service and --ipv6 long forms; a fwmark service may use -o.
        let Command::AddService(s) = cmd("--add-service --fwmark-service 4294967295 --ipv6 --ops")
        else {
            panic!()
        };
        assert_eq!(
            s.key,
            ServiceKey::FwMark {
                mark: u32::MAX,
                family: IpVersion::V6
            }
        );
        assert!(s.one_packet);
        assert_eq!(err("-A -t 10.0.0.1:80 -6"), "-6 used before -f");
        assert_eq!(err("-A -6 -f 1"), "-6 used before -f");
        assert!(err("-A -f 0").starts_with("invalid fwmark value `0' specified"));
        assert!(err("-A -f 4294967296").starts_with("invalid fwmark value"));
    }

    #[test]
    fn b_is_sched_flags_on_services_and_fullnat_on_servers() {
        let Command::AddService(s) = cmd("-A -t 10.0.0.1:80 -s sh -b sh-fallback,sh-port") else {
            panic!()
        };
        assert_eq!(
            s.flags,
            SchedFlags {
                fallback: true,
                port: true
            }
        );
        let Command::EditService(s) = cmd("-E -t 10.0.0.1:80 -s mh --sched-flags mh-port") else {
            panic!()
        };
        assert!(s.flags.port && !s.flags.fallback);
        let Command::AddService(s) = cmd("-A -t 10.0.0.1:80 -s rr -b flag-1") else {
            panic!()
        };
        assert!(s.flags.fallback);
        for line in [
            "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -b -w 2",
            "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 --fullnat -w 2",
            "-a -t 10.0.0.1:80 -br 10.0.1.1:8080 -w 2",
        ] {
            let Command::AddDest(_, d) = cmd(line) else {
                panic!("{line}")
            };
            assert_eq!(
                (d.method, d.port, d.weight),
                (Method::FullNat, 8080, 2),
                "{line}"
            );
        }
        // Each meaning is refused where it does not belong, with ipvsadm's words.
        assert_eq!(
            err("-A -t 10.0.0.1:80 --fullnat"),
            "Illegal 'forwarding-method' option with the 'add-service' command"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.0.1.1 --sched-flags flag-1"),
            "Illegal 'sched-flags' option with the 'add-server' command"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.0.1.1 -b -m"),
            "multiple 'forwarding-method' options specified"
        );
        assert_eq!(
            err("-A -t 10.0.0.1:80 -b sh-port"),
            "incompatible scheduler flag `sh-port' (sh-* flags need -s sh, mh-* flags -s mh)"
        );
        assert_eq!(
            err("-A -t 10.0.0.1:80 -b frobnicate"),
            "invalid scheduler flag `frobnicate'"
        );
        assert!(err("-A -t 10.0.0.1:80 -b flag-3").contains("flag-3"));
        assert_eq!(err("-A -t 10.0.0.1:80 -b"), "option `-b' requires a value");
    }

    #[test]
    fn popt_spellings() {
        // Clusters, attached values, `=` values, and `ipvsadm` in front.
        assert_eq!(cmd("-At 10.0.0.1:80 -srr"), cmd("-A -t 10.0.0.1:80 -s rr"));
        assert_eq!(
            cmd("ipvsadm --add-service --tcp-service=10.0.0.1:80 --scheduler=rr"),
            cmd("-A -t 10.0.0.1:80 -s rr")
        );
        assert_eq!(cmd("-Ln"), cmd("-L -n"));
        assert_eq!(cmd("-l"), cmd("--list"));
        assert_eq!(cmd("-Z"), Command::Zero(None));
        assert_eq!(
            cmd("--zero -t 10.0.0.1:80"),
            Command::Zero(Some(tcp("10.0.0.1", 80)))
        );
        assert_eq!(cmd("-C"), Command::Clear);
        assert_eq!(cmd("--clear"), Command::Clear);
        assert_eq!(
            cmd("-D -t 10.0.0.1:80"),
            Command::DeleteService(tcp("10.0.0.1", 80))
        );
        assert_eq!(
            cmd("--set 900 120 300"),
            Command::SetTimeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 300
            }
        );
        assert_eq!(cmd("-S -n"), Command::Save { numeric: true });
        assert_eq!(cmd("-R"), Command::Restore);
        assert_eq!(cmd("-h -A"), Command::Help);
        assert_eq!(cmd("--version"), Command::Version);
        assert_eq!(parse_args(&[]), Ok(Command::List(ListOpts::default())));
        // -d takes the service's port when -r has none.
        assert_eq!(
            cmd("-d -t 10.0.0.1:80 -r 10.0.1.1"),
            Command::DeleteDest(tcp("10.0.0.1", 80), ip("10.0.1.1"), 80)
        );
        // inet_aton's forms: a.b (24-bit b), hexadecimal and octal parts.
        let key = |line: &str| match cmd(line) {
            Command::DeleteService(k) => k,
            c => panic!("{c:?}"),
        };
        assert_eq!(key("-D -t 10.1:80"), tcp("10.0.0.1", 80));
        assert_eq!(key("-D -t 0x0a000001:80"), tcp("10.0.0.1", 80));
        assert_eq!(key("-D -t 012.0.0.1:80"), tcp("10.0.0.1", 80));
        assert_eq!(
            cmd("-L -n --stats --exact -t 10.0.0.1:80"),
            Command::List(ListOpts {
                service: Some(tcp("10.0.0.1", 80)),
                numeric: true,
                stats: true,
                exact: true,
                ..ListOpts::default()
            })
        );
    }

    #[test]
    fn rule_lines_blank_comments() {
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("   \t  "), Ok(None));
        assert_eq!(parse_line("# -A -t 10.0.0.1:80"), Ok(None));
        assert_eq!(parse_line("ipvsadm"), Ok(None));
        assert_eq!(
            parse_line("-D -t 10.0.0.1:80   # gone\r"),
            Ok(Some(Command::DeleteService(tcp("10.0.0.1", 80))))
        );
    }

    #[test]
    fn errors_name_what_and_why() {
        let cases: &[(&str, &str)] = &[
            (
                "-A -t 10.0.0.1:80 -s foo",
                "unknown scheduler \"foo\" (one of rr,wrr,lc,wlc,sed,nq,dh,sh,lblc,lblcr,mh,fo,ovf,twos)",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.1.1 -w 65536",
                "illegal weight specified: `65536' (0 to 65535)",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.1.1 -w x",
                "illegal weight specified: `x' (0 to 65535)",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.1.1 -x -1",
                "illegal u_threshold specified: `-1' (0 to 2147483647)",
            ),
            (
                "-a -t 10.0.0.1:80 -w 1",
                "You need to supply the 'real-server' option for the 'add-server' command",
            ),
            (
                "-A -s rr",
                "You need to supply the 'service-address' option for the 'add-service' command",
            ),
            (
                "-A -t 10.0.0.1:80 -w 1",
                "Illegal 'weight' option with the 'add-service' command",
            ),
            ("-A -D -t 10.0.0.1:80", "multiple commands specified"),
            (
                "-A -t 10.0.0.1:80 -s rr -s wrr",
                "multiple 'scheduler' options specified",
            ),
            (
                "-A -t 10.0.0.1",
                "Zero port specified for non-persistent service",
            ),
            (
                "-A -t 10.0.0.1:80 -o",
                "One-Packet Scheduling is only for UDP virtual services",
            ),
            (
                "-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -m",
                "Different address family is allowed only for tunneling servers",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.1.1 -m --tun-type ipip",
                "Tunnel options conflict with forward method",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-port 6080",
                "Illegal 'tun-port' option with the 'ipip' tunnel type",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type vxlan",
                "illegal tunnel type specified: `vxlan' (ipip, gue or gre)",
            ),
            ("--set 900 120", "--set option requires 3 timeout values"),
            ("--set 900 120 300 5", "unexpected argument 5"),
            (
                "--set 900 120 2678401",
                "invalid timeout value `2678401' specified (seconds, at most 2678400)",
            ),
            ("-C now", "unexpected argument now"),
            (
                "-t 10.0.0.1:80 -A",
                "`-t' is not a command: one of -A -E -D -a -e -d -C -Z -L -S -R --set comes first",
            ),
            ("-A --tcp 10.0.0.1:80", "invalid option `--tcp'"),
            ("-A -q", "invalid option `-q'"),
            ("--clear=yes", "option `--clear' takes no value"),
            ("-A -t", "option `-t' requires a value"),
            (
                "-A -t 10.0.0.1:99999",
                "illegal virtual server address[:port] specified: `10.0.0.1:99999'",
            ),
            (
                "-A -t 80",
                "illegal virtual server address[:port] specified: `80'",
            ),
            (
                "-A -t [2001:db8::1]",
                "illegal virtual server address[:port] specified: `[2001:db8::1]'",
            ),
            (
                "-A -t web:http",
                "illegal virtual server address[:port] specified: `web:http' (addresses and ports are numeric: names are not looked up)",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.1.300",
                "illegal real server address[:port] specified: `10.0.1.300'",
            ),
            (
                "-A -t 10.0.0.1:80 -p 0",
                "invalid timeout value `0' specified (seconds, at most 2678400)",
            ),
            (
                "-A -t 10.0.0.1:80 -p -M 255.0.255.0",
                "persistent mask `255.0.255.0' is not contiguous (the director keeps a prefix length)",
            ),
            (
                "-A -t 10.0.0.1:80 -p -M mask",
                "illegal virtual server persistent mask specified: `mask'",
            ),
            (
                "-A -t [2001:db8::1]:80 -p -M 129",
                "illegal ipv6 netmask specified: `129' (1 to 128)",
            ),
            ("-L -c --stats", "options conflicts in the list command"),
            (
                "-L --timeout --persistent-conn",
                "options conflicts in the list command",
            ),
            (
                "-L -c -t 10.0.0.1:80",
                "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
            ),
            (
                "-L --syncid 256",
                "illegal syncid specified: `256' (0 to 255)",
            ),
            (
                "-S -c",
                "Illegal 'connection' option with the 'save' command",
            ),
            (
                "-A -t 10.0.0.1:80 --pe sip",
                "persistence engines (--pe) are not supported",
            ),
            (
                "-A --sctp-service 10.0.0.1:80",
                "SCTP services (--sctp-service) are not supported: TCP (-t) and UDP (-u) are",
            ),
            (
                "--start-daemon master",
                "the connection sync daemon (--start-daemon, --stop-daemon) is not supported",
            ),
            (
                "-A -t 10.0.0.1:80 --mcast-interface eth0",
                "Illegal 'mcast-interface' option with the 'add-service' command",
            ),
            (
                "-n",
                "`-n' is not a command: one of -A -E -D -a -e -d -C -Z -L -S -R --set comes first",
            ),
            ("stray", "unexpected argument stray"),
        ];
        for (line, want) in cases {
            assert_eq!(&err(line), want, "{line}");
        }
    }

    #[test]
    fn rule_errors_name_the_line() {
        let text = "# web\n-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.2:80 -s foo\n";
        let e = parse_rules(text).unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(
            e.clone().in_file("rules.conf").to_string(),
            "rules.conf:3: unknown scheduler \"foo\" (one of rr,wrr,lc,wlc,sed,nq,dh,sh,lblc,lblcr,mh,fo,ovf,twos)"
        );
        assert!(
            e.to_string()
                .starts_with("line 3: unknown scheduler \"foo\"")
        );
        let e = parse_rules("-A -t 10.0.0.1:80\n\n-L -n\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3: 'list' is not a rule: a rule file holds -A -E -D -a -e -d -C -Z --set"
        );
        // The director's refusal names its line too; nothing is applied on a parse error.
        let mut d = director(64);
        let e = restore(
            &mut d,
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.9:80 -r 10.0.1.1\n",
            Instant::ZERO,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "line 2: Service not defined");
        assert_eq!(d.services().count(), 1);
        let mut d = director(64);
        assert!(restore(&mut d, "-A -t 10.0.0.1:80\n-A -t bad\n", Instant::ZERO).is_err());
        assert_eq!(d.services().count(), 0);
        assert_eq!(
            apply(&mut d, &Command::List(ListOpts::default()), Instant::ZERO),
            Err(ApplyError::NotARule("list"))
        );
    }

    // ------------------------------------------------------- save and round trip

    /// Services of every kind: TCP and UDP, IPv4 and IPv6, fwmark of both families, each
    /// forwarding method, persistence with masks, scheduler flags, one-packet
    /// scheduling, thresholds and a quiesced server.
    const RULES: &str = "\
# a hand-written rule file, in no particular order
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m -w 2
-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m
-A -u 10.0.0.1:53 -o
-a -u 10.0.0.1:53 -r 10.0.1.3
-A -t [2001:db8::1]:80 -s wrr -p
-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m -w 3
-A -f 9 -6 -s nq -p 60 -M 64
-a -f 9 -6 -r 2001:db8::20 -w 1
-A -t 10.0.0.2:443 -s sh -b sh-port,sh-fallback -p 300 -M 255.255.255.0
-a -t 10.0.0.2:443 -r 10.0.1.4 -i -w 5
-a -t 10.0.0.2:443 -r 10.0.1.5:443 -b -x 100 -y 50
-A -f 7 -s lc
-a -f 7 -r 10.0.2.1 -g -w 0
";

    const SAVED: &[&str] = &[
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 1",
        "-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m -w 2",
        "-A -t 10.0.0.2:443 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port",
        "-a -t 10.0.0.2:443 -r 10.0.1.4:443 -i -w 5 --tun-type ipip",
        "-a -t 10.0.0.2:443 -r 10.0.1.5:443 -b -w 1 -x 100 -y 50",
        "-A -u 10.0.0.1:53 -s wlc -o",
        "-a -u 10.0.0.1:53 -r 10.0.1.3:53 -g -w 1",
        "-A -t [2001:db8::1]:80 -s wrr -p 360",
        "-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m -w 3",
        "-A -f 7 -s lc",
        "-a -f 7 -r 10.0.2.1:0 -g -w 0",
        "-A -f 9 -6 -s nq -p 60 -M 64",
        "-a -f 9 -6 -r [2001:db8::20]:0 -g -w 1",
    ];

    fn built() -> Director<'static, 16> {
        let mut d = director(64);
        assert_eq!(restore(&mut d, RULES, Instant::ZERO), Ok(14));
        d
    }

    #[test]
    fn save_is_ipvsadm_s_n() {
        assert_lines(&save(&built()), SAVED);
        assert_eq!(save(&director(8)), "");
    }

    #[test]
    fn save_parse_apply_reproduces_the_table() {
        let a = built();
        let text = save(&a);
        let mut b = director(64);
        let n = restore(&mut b, &text, Instant::ZERO).unwrap();
        assert_eq!(n, SAVED.len());
        assert_eq!(save(&b), text);
        // Service by service, real server by real server.
        let specs = |d: &Director<'static, 16>| {
            let mut v: Vec<(ServiceSpec, Vec<DestSpec>)> = d
                .services()
                .map(|(_, s)| {
                    let mut ds: Vec<DestSpec> = dests_of(d, s, false)
                        .into_iter()
                        .map(|(r, _)| dest_spec(r))
                        .collect();
                    ds.sort_by_key(|x| (addr_bits(&x.addr), x.port));
                    (*s.spec(), ds)
                })
                .collect();
            v.sort_by_key(|(s, _)| service_order(&s.key));
            v
        };
        assert_eq!(specs(&a), specs(&b));
        // Each saved line is its command's canonical line.
        for line in SAVED {
            assert_eq!(cmd(line).to_string(), *line);
        }
    }

    #[test]
    fn edit_delete_zero_clear_set_apply() {
        let mut d = built();
        let now = Instant::ZERO;
        for line in [
            "-E -t 10.0.0.1:80 -s wlc -p 100",
            "-e -t 10.0.0.1:80 -r 10.0.1.2:8080 -m -w 9",
            "-d -t 10.0.0.1:80 -r 10.0.1.1:8080",
            "-D -u 10.0.0.1:53",
            "-Z",
            "-Z -f 7",
            "--set 600 0 30",
        ] {
            apply(&mut d, &cmd(line), now).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
        let s = d.service(&tcp("10.0.0.1", 80)).unwrap();
        assert_eq!(s.spec().sched, SchedKind::Wlc);
        assert_eq!(s.members().len(), 1);
        assert_eq!(d.dest(s.members()[0]).unwrap().0.weight, 9);
        assert_eq!(list_timeout(&d), "Timeout (tcp tcpfin udp): 600 120 30\n");
        assert_eq!(
            apply(&mut d, &cmd("-D -u 10.0.0.1:53"), now),
            Err(ApplyError::Control(ControlError::NoService))
        );
        assert_eq!(
            apply(&mut d, &cmd("-A -t 10.0.0.1:80"), now)
                .unwrap_err()
                .to_string(),
            "Service already exists"
        );
        apply(&mut d, &Command::Clear, now).unwrap();
        assert_eq!(save(&d), "");
    }

    // ----------------------------------------------------------------- listings

    #[test]
    fn list_n_layout() {
        let d = built();
        let out = list(&d, &ListOpts::default(), Instant::ZERO).unwrap();
        assert_lines(
            &out,
            &[
                "IP Virtual Server version 1.2.1 (size=128)",
                "Prot LocalAddress:Port Scheduler Flags",
                "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
                "TCP  10.0.0.1:80 rr",
                "  -> 10.0.1.1:8080                Masq    1      0          0         ",
                "  -> 10.0.1.2:8080                Masq    2      0          0         ",
                "TCP  10.0.0.2:443 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0",
                "  -> 10.0.1.4:443                 Tunnel  5      0          0         ",
                "  -> 10.0.1.5:443                 FullNat 1      0          0         ",
                "UDP  10.0.0.1:53 wlc ops",
                "  -> 10.0.1.3:53                  Route   1      0          0         ",
                "TCP  [2001:db8::1]:80 wrr persistent 360",
                "  -> [2001:db8::10]:8080          Masq    3      0          0         ",
                "FWM  7 lc",
                "  -> 10.0.2.1:0                   Route   0      0          0         ",
                "FWM  9 IPv6 nq persistent 60 mask 64",
                "  -> [2001:db8::20]:0             Route   1      0          0         ",
            ],
        );
        // One service: no version line.
        let one = ListOpts {
            service: Some(ServiceKey::FwMark {
                mark: 7,
                family: IpVersion::V4,
            }),
            ..ListOpts::default()
        };
        assert_lines(
            &list(&d, &one, Instant::ZERO).unwrap(),
            &[
                "Prot LocalAddress:Port Scheduler Flags",
                "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
                "FWM  7 lc",
                "  -> 10.0.2.1:0                   Route   0      0          0         ",
            ],
        );
        let missing = ListOpts {
            service: Some(tcp("10.9.9.9", 1)),
            ..ListOpts::default()
        };
        assert_eq!(
            list(&d, &missing, Instant::ZERO),
            Err(ApplyError::Control(ControlError::NoService))
        );
    }

    #[test]
    fn list_thresholds_persistent_conn_tun_info_nosort() {
        let d = built();
        let opts = |f: fn(&mut ListOpts)| {
            let mut o = ListOpts {
                service: Some(tcp("10.0.0.2", 443)),
                ..ListOpts::default()
            };
            f(&mut o);
            list(&d, &o, Instant::ZERO).unwrap()
        };
        assert_lines(
            &opts(|o| o.thresholds = true),
            &[
                "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ",
                "  -> RemoteAddress:Port",
                "TCP  10.0.0.2:443 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0",
                "  -> 10.0.1.4:443                 0          0          0          0         ",
                "  -> 10.0.1.5:443                 100        50         0          0         ",
            ],
        );
        assert_lines(
            &opts(|o| o.persistent_conn = true),
            &[
                "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ",
                "  -> RemoteAddress:Port",
                "TCP  10.0.0.2:443 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0",
                "  -> 10.0.1.4:443                 5         0           0          0         ",
                "  -> 10.0.1.5:443                 1         0           0          0         ",
            ],
        );
        assert_lines(
            &opts(|o| o.tun_info = true),
            &[
                "Prot LocalAddress:Port Scheduler Flags",
                "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn",
                "TCP  10.0.0.2:443 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0",
                "  -> 10.0.1.4:443                 Tunnel  ipip          5      0          0         ",
                "  -> 10.0.1.5:443                 FullNat n/a           1      0          0         ",
            ],
        );
        // --nosort: the kernel's list order, newest real server first.
        let out = opts(|o| o.nosort = true);
        let servers: Vec<&str> = out.lines().filter(|l| l.starts_with("  -> 1")).collect();
        assert!(servers[0].contains("10.0.1.5:443") && servers[1].contains("10.0.1.4:443"));
    }

    /// An Ethernet + IPv4 + TCP frame from the client to the virtual service.
    fn tcp_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let c = lvs_core::checksum::checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let t = &mut f[34..54];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[4..8].copy_from_slice(&1000u32.to_be_bytes());
        t[12] = 0x50;
        t[13] = flags;
        t[14..16].copy_from_slice(&8192u16.to_be_bytes());
        let ph = lvs_core::checksum::pseudo_header_v4(&src.into(), &dst.into(), 6, 20);
        let s = lvs_core::checksum::combine(ph, lvs_core::checksum::sum(t));
        t[16..18].copy_from_slice(&(!s).to_be_bytes());
        f
    }

    /// An Ethernet + IPv6 + UDP frame with 4 bytes of payload.
    fn udp6_frame(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
        let (s, d): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), dst.parse().unwrap());
        let mut f = vec![0u8; 14 + 40 + 12];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        let ip = &mut f[14..54];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&12u16.to_be_bytes());
        ip[6] = 17;
        ip[7] = 64;
        ip[8..24].copy_from_slice(&s.octets());
        ip[24..40].copy_from_slice(&d.octets());
        let u = &mut f[54..66];
        u[0..2].copy_from_slice(&sport.to_be_bytes());
        u[2..4].copy_from_slice(&dport.to_be_bytes());
        u[4..6].copy_from_slice(&12u16.to_be_bytes());
        u[8..12].copy_from_slice(b"ping");
        let ph = lvs_core::checksum::pseudo_header_v6(&s, &d, 17, 12);
        let c = !lvs_core::checksum::combine(ph, lvs_core::checksum::sum(u));
        u[6..8].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn send(d: &mut Director<'static, 16>, now: Instant, frame: Vec<u8>) {
        send_marked(d, now, frame, 0);
    }

    fn send_marked(d: &mut Director<'static, 16>, now: Instant, mut frame: Vec<u8>, mark: u32) {
        let len = frame.len();
        let rx = Rx {
            fwmark: mark,
            ..Rx::default()
        };
        let v = d.process(now, rx, &mut frame, 0..len);
        assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    }

    /// A director with a persistent NAT service, an IPv6 UDP service and a persistent
    /// fwmark one, after one TCP SYN to each TCP service and one UDP datagram.
    fn with_traffic() -> Director<'static, 16> {
        let mut d = director(64);
        restore(
            &mut d,
            "-A -t 10.0.0.1:80 -s rr -p 360 -M 255.255.255.0\n\
             -a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m\n\
             -A -u [2001:db8::1]:53 -s rr\n\
             -a -u [2001:db8::1]:53 -r 2001:db8::10 -m -w 2\n\
             -A -f 5 -s rr -p\n\
             -a -f 5 -r 10.0.1.9 -m\n",
            Instant::ZERO,
        )
        .unwrap();
        let t = Instant::from_secs(1);
        send(
            &mut d,
            t,
            tcp_frame([192, 0, 2, 10], 40000, [10, 0, 0, 1], 80, 0x02),
        );
        send(
            &mut d,
            t,
            udp6_frame("2001:db8::99", 5353, "2001:db8::1", 53),
        );
        send_marked(
            &mut d,
            t,
            tcp_frame([192, 0, 2, 11], 40001, [10, 0, 0, 77], 80, 0x02),
            5,
        );
        d
    }

    #[test]
    fn list_connections() {
        let d = with_traffic();
        let out = list(
            &d,
            &ListOpts {
                connections: true,
                ..ListOpts::default()
            },
            Instant::from_secs(1),
        )
        .unwrap();
        let mut lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "IPVS connection entries");
        assert_eq!(
            lines[1],
            "pro expire state       source             virtual            destination"
        );
        // The table's order is its own: compare the entries sorted.
        lines.drain(..2);
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                // An fwmark service's template: protocol IP, the mark as its address.
                "IP  06:00  NONE        192.0.2.11:0       0.0.0.5:0          10.0.1.9:0",
                "TCP 01:00  SYN_RECV    192.0.2.10:40000   10.0.0.1:80        10.0.1.1:8080",
                // A real server of port 0 keeps the packet's port.
                "TCP 01:00  SYN_RECV    192.0.2.11:40001   10.0.0.77:80       10.0.1.9:80",
                "TCP 06:00  NONE        192.0.2.0:0        10.0.0.1:80        10.0.1.1:8080",
                "UDP 05:00  UDP         [2001:db8::99]:5353 [2001:db8::1]:53   [2001:db8::10]:53",
            ]
        );
        // Later, the expiry counts down in mm:ss.
        let out = list_conns(
            &d,
            &ListOpts::default(),
            Instant::from_millis(1000 + 95_500),
        );
        assert!(out.contains("TCP 04:24  NONE"), "{out}");
        let out = list_conns(
            &d,
            &ListOpts {
                persistent_conn: true,
                ..ListOpts::default()
            },
            Instant::from_secs(1),
        );
        assert_eq!(
            out.lines().nth(1),
            Some(
                "pro expire state       source             virtual            destination        pe name          pe_data"
            )
        );
    }

    #[test]
    fn list_counts_stats_and_rates() {
        let mut d = with_traffic();
        // 999 more segments of the connection (now established), 40 bytes each.
        for _ in 0..999 {
            send(
                &mut d,
                Instant::from_secs(1),
                tcp_frame([192, 0, 2, 10], 40000, [10, 0, 0, 1], 80, 0x10),
            );
        }
        let out = list(&d, &ListOpts::default(), Instant::from_secs(1)).unwrap();
        assert_lines(
            &out,
            &[
                "IP Virtual Server version 1.2.1 (size=128)",
                "Prot LocalAddress:Port Scheduler Flags",
                "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
                "TCP  10.0.0.1:80 rr persistent 360 mask 255.255.255.0",
                "  -> 10.0.1.1:8080                Masq    1      1          0         ",
                "UDP  [2001:db8::1]:53 rr",
                "  -> [2001:db8::10]:53            Masq    2      0          1         ",
                "FWM  5 rr persistent 360",
                "  -> 10.0.1.9:0                   Masq    1      1          0         ",
            ],
        );
        let stats = ListOpts {
            stats: true,
            ..ListOpts::default()
        };
        assert_lines(
            &list(&d, &stats, Instant::from_secs(1)).unwrap(),
            &[
                "IP Virtual Server version 1.2.1 (size=128)",
                "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
                "  -> RemoteAddress:Port",
                "TCP  10.0.0.1:80                         1     1000        0    40000        0",
                "  -> 10.0.1.1:8080                       1     1000        0    40000        0",
                "UDP  [2001:db8::1]:53                    1        1        0       52        0",
                "  -> [2001:db8::10]:53                   1        1        0       52        0",
                "FWM  5                                   1        1        0       40        0",
                "  -> 10.0.1.9:0                          1        1        0       40        0",
            ],
        );
        // Rates after one 2-second period: the kernel's EWMA, a quarter of the way.
        d.maintain(Instant::from_secs(2), 0);
        let rate = ListOpts {
            rate: true,
            ..ListOpts::default()
        };
        assert_lines(
            &list(&d, &rate, Instant::from_secs(2)).unwrap(),
            &[
                "IP Virtual Server version 1.2.1 (size=128)",
                "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
                "  -> RemoteAddress:Port",
                "TCP  10.0.0.1:80                         0      125        0     5000        0",
                "  -> 10.0.1.1:8080                       0      125        0     5000        0",
                "UDP  [2001:db8::1]:53                    0        0        0        6        0",
                "  -> [2001:db8::10]:53                   0        0        0        6        0",
                "FWM  5                                   0        0        0        5        0",
                "  -> 10.0.1.9:0                          0        0        0        5        0",
            ],
        );
        // -Z zeroes counters and rates.
        apply(&mut d, &Command::Zero(None), Instant::from_secs(2)).unwrap();
        let out = list(&d, &stats, Instant::from_secs(2)).unwrap();
        assert!(
            out.lines()
                .skip(3)
                .all(|l| l.ends_with("        0        0        0        0        0"))
        );
    }

    #[test]
    fn list_timeout_layout() {
        let d = director(8);
        let o = ListOpts {
            timeout: true,
            ..ListOpts::default()
        };
        assert_eq!(
            list(&d, &o, Instant::ZERO).unwrap(),
            "Timeout (tcp tcpfin udp): 900 120 300\n"
        );
        let o = ListOpts {
            daemon: true,
            ..ListOpts::default()
        };
        assert_eq!(list(&d, &o, Instant::ZERO).unwrap(), "");
    }

    #[test]
    fn largenum_is_print_largenum() {
        let f = |i: u64, exact: bool| {
            let mut s = String::new();
            largenum(&mut s, i, exact);
            s
        };
        assert_eq!(f(0, false), "        0");
        assert_eq!(f(99_999_999, false), " 99999999");
        assert_eq!(f(100_000_000, false), "  100000K");
        assert_eq!(f(999_999_999, false), "  999999K");
        assert_eq!(f(1_000_000_000, false), "    1000M");
        assert_eq!(f(99_999_999_999, false), "   99999M");
        assert_eq!(f(100_000_000_000, false), "     100G");
        assert_eq!(f(100_000_000_000_000, false), "     100T");
        assert_eq!(f(u64::MAX, false), "18446744T");
        assert_eq!(f(12_345_678, true), " 12345678");
        assert_eq!(f(123_456_789, true), " 123456789");
        assert_eq!(f(u64::MAX, true), " 18446744073709551615");
    }

    #[test]
    fn addresses_print_as_inet_ntop() {
        assert_eq!(ntop(&ip("::1.2.3.4")), "::1.2.3.4");
        assert_eq!(ntop(&ip("::ffff:1.2.3.4")), "::ffff:1.2.3.4");
        assert_eq!(ntop(&ip("::1")), "::1");
        assert_eq!(ntop(&ip("::")), "::");
        assert_eq!(ntop(&ip("2001:db8:0:1::")), "2001:db8:0:1::");
        assert_eq!(ntop(&ip("2001:db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");
        assert_eq!(addr_port(&ip("fe80::1"), 0), "[fe80::1]:0");
    }

    // ----------------------------------------------------------------- properties

    /// Words that steer the parser into every branch.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "-A",
                "-E",
                "-D",
                "-a",
                "-e",
                "-d",
                "-C",
                "-Z",
                "-L",
                "-S",
                "-R",
                "--set",
                "-t",
                "-u",
                "-f",
                "-6",
                "-s",
                "-p",
                "-M",
                "-r",
                "-m",
                "-g",
                "-i",
                "-b",
                "-w",
                "-x",
                "-y",
                "-o",
                "-n",
                "-c",
                "--stats",
                "--rate",
                "--exact",
                "--timeout",
                "--tun-type",
                "--tun-port",
                "--fullnat",
                "--sched-flags",
                "rr",
                "sh",
                "mh",
                "sh-port",
                "mh-fallback",
                "flag-1",
                "ipip",
                "10.0.0.1:80",
                "10.0.0.1",
                "[2001:db8::1]:80",
                "2001:db8::1",
                "[::1]:",
                "1",
                "0",
                "65536",
                "-1",
                "255.255.255.0",
                "64",
                "--",
                "=",
                "-Ln",
                "-At",
                "-srr",
                "--persistent=5",
                "ipvsadm",
                "#",
            ])
            .prop_map(str::to_owned),
            "[-\\[\\]:.,=a-z0-9#]{0,12}",
            any::<String>(),
        ]
    }

    /// A valid command, any shape.
    fn command() -> impl Strategy<Value = Command> {
        let addr = prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        ];
        let key = prop_oneof![
            (any::<bool>(), addr.clone(), any::<u16>()).prop_map(|(udp, addr, port)| {
                ServiceKey::Addr {
                    proto: if udp { Proto::Udp } else { Proto::Tcp },
                    addr,
                    port,
                }
            }),
            (1..=u32::MAX, any::<bool>()).prop_map(|(mark, v6)| ServiceKey::FwMark {
                mark,
                family: if v6 { IpVersion::V6 } else { IpVersion::V4 },
            }),
        ];
        let service = (
            key.clone(),
            prop::sample::select(SchedKind::ALL.to_vec()),
            any::<(bool, bool, bool, bool)>(),
            (1..=MAX_TIMEOUT, 0u8..=128),
        )
            .prop_map(|(key, sched, (fb, port, persist, ops), (t, prefix))| {
                let max = if key.family() == IpVersion::V4 {
                    32
                } else {
                    128
                };
                let zero_port = matches!(key, ServiceKey::Addr { port: 0, .. });
                let udp_or_mark = !matches!(
                    key,
                    ServiceKey::Addr {
                        proto: Proto::Tcp,
                        ..
                    }
                );
                ServiceSpec {
                    key,
                    sched,
                    flags: SchedFlags { fallback: fb, port },
                    persistence: (persist || zero_port).then_some(Persistence {
                        timeout: Duration::from_secs(u64::from(t)),
                        // IPv6 prefixes are 1..=128 for ipvsadm.
                        prefix: if max == 128 {
                            prefix.max(1)
                        } else {
                            prefix.min(max)
                        },
                    }),
                    one_packet: ops && udp_or_mark,
                }
            });
        let methods = prop::sample::select(vec![
            Method::Masq,
            Method::DirectRoute,
            Method::Tunnel,
            Method::FullNat,
        ]);
        let dest = (
            key.clone(),
            addr.clone(),
            any::<u16>(),
            methods,
            0u32..=65535,
            0u32..=i32::MAX as u32,
            0u32..=i32::MAX as u32,
        )
            .prop_map(|(key, addr, port, method, weight, u, l)| {
                let method = if IpVersion::of(&addr) != key.family() {
                    Method::Tunnel
                } else {
                    method
                };
                let port = match key {
                    ServiceKey::Addr { port: p, .. }
                        if matches!(method, Method::DirectRoute | Method::Tunnel) =>
                    {
                        p
                    }
                    _ => port,
                };
                (
                    key,
                    DestSpec {
                        addr,
                        port,
                        method,
                        weight,
                        u_threshold: u,
                        l_threshold: l,
                    },
                )
            });
        prop_oneof![
            service.clone().prop_map(Command::AddService),
            service.prop_map(Command::EditService),
            key.clone().prop_map(Command::DeleteService),
            dest.clone().prop_map(|(k, d)| Command::AddDest(k, d)),
            dest.prop_map(|(k, d)| Command::EditDest(k, d)),
            (key.clone(), addr, any::<u16>()).prop_map(|(k, a, p)| Command::DeleteDest(k, a, p)),
            Just(Command::Clear),
            prop::option::of(key.clone()).prop_map(Command::Zero),
            (0..=MAX_TIMEOUT, 0..=MAX_TIMEOUT, 0..=MAX_TIMEOUT)
                .prop_map(|(tcp, tcpfin, udp)| Command::SetTimeouts { tcp, tcpfin, udp }),
            (prop::option::of(key), any::<[bool; 4]>()).prop_map(|(service, b)| {
                Command::List(ListOpts {
                    service,
                    numeric: b[0],
                    stats: b[1],
                    exact: b[2],
                    nosort: b[3],
                    ..ListOpts::default()
                })
            }),
            any::<bool>().prop_map(|numeric| Command::Save { numeric }),
        ]
    }

    proptest! {
        #[test]
        fn no_string_panics(s in any::<String>()) {
            let _ = parse_line(&s);
            let _ = parse_rules(&s);
            let _ = parse_args(&[s.as_str()]);
        }

        #[test]
        fn no_word_sequence_panics(words in prop::collection::vec(word(), 0..12)) {
            let w: Vec<&str> = words.iter().map(String::as_str).collect();
            let parsed = parse_args(&w);
            let line = words.join(" ");
            let _ = parse_line(&line);
            // Whatever parses applies (or is refused) without panicking, and its
            // canonical line parses back to it.
            if let Ok(c) = parsed {
                let mut d = director(8);
                let _ = apply(&mut d, &c, Instant::ZERO);
                let _ = save(&d);
                let _ = list(&d, &ListOpts::default(), Instant::ZERO);
                prop_assert_eq!(parse_line(&c.to_string()), Ok(Some(c.clone())), "{}", c);
            }
        }

        #[test]
        fn canonical_lines_parse_back(c in command()) {
            let line = c.to_string();
            prop_assert_eq!(parse_line(&line), Ok(Some(c)), "{}", line);
        }
    }
}
