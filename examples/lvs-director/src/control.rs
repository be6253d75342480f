//! The control protocol between `lvsadm` and `lvs-director`: ipvsadm's command line,
//! carried over a Unix stream socket, executed on the running director.
//!
//! # The protocol
//! One request per connection. The client connects, writes the request, shuts down its
//! writing half, and reads the reply until the director closes the connection.
//!
//! ```text
//! request = ARGC NUL ARG1 NUL ... ARGn NUL STDIN
//! reply   = STATUS NUL STDOUT NUL STDERR
//! ```
//!
//! - `ARGC` is the number of arguments in decimal ASCII, then the arguments (ipvsadm's
//!   argv without the program name), each followed by a NUL; whatever follows the last
//!   NUL up to the end of the stream is the standard input (`-R` reads its rules from
//!   it; other commands send none). The count makes empty arguments unambiguous.
//! - `STATUS` is the exit status in decimal ASCII (0 to 255), `STDOUT` and `STDERR` the
//!   text `lvsadm` prints on each; both are UTF-8 and contain no NUL.
//! - Everything is UTF-8. A request over [`MAX_REQUEST`] bytes, or not complete within
//!   [`REQUEST_TIMEOUT`] of the connection, is answered with status 2 (or dropped).
//!
//! With `socat` the protocol is readable by hand:
//! `printf '2\0-L\0-n\0' | socat - UNIX-CONNECT:/run/lvs-director.sock | tr '\0' '\n'`.
//!
//! # Exit statuses and messages, as ipvsadm's
//! - 0: done; listings (`-L`, `-S`) on stdout in ipvsadm's layout ([`ipvsadm::list`],
//!   [`ipvsadm::save`]).
//! - 2: the command line does not parse (ipvsadm's `fail(2, ...)`): the message names
//!   the option or value and why.
//! - 255: the director refused the command (ipvsadm returns -1): the message is
//!   libipvs's `ipvs_strerror` text for the operation, e.g. `No such service` for `-E`,
//!   `-D` or `-Z` of a missing service, `Service not defined` for `-a`/`-e`/`-d` on one.
//! - 1: `-L` of a service that does not exist (ipvsadm's `list_service` exits 1), and
//!   `-R` input that does not parse (the message names the line).
//!
//! The director executes requests between frames: a command is atomic with respect to
//! the packet path.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lvs_core::director::{ControlError, Director};
use lvs_core::time::Instant as LvsInstant;

use crate::ipvsadm::{self, ApplyError, Command, ParseError, RuleErrorKind};

/// The largest request the director reads (a rule file of some 100,000 lines).
pub const MAX_REQUEST: usize = 16 << 20;

/// How long the director waits for a whole request after accepting a connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the director keeps trying to deliver a reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections the director serves at once (more wait in the backlog).
pub const MAX_CLIENTS: usize = 16;

/// Exit status: the command line does not parse.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the director refused the command (ipvsadm's -1).
pub const EXIT_REFUSED: u8 = 255;
/// Exit status: a listing of a missing service, bad `-R` input.
pub const EXIT_FAIL: u8 = 1;

/// A request: ipvsadm's arguments and the standard input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The arguments, without the program name.
    pub args: Vec<String>,
    /// The standard input (the rules of `-R`).
    pub stdin: String,
}

impl Request {
    /// The request's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.stdin.len());
        out.extend_from_slice(self.args.len().to_string().as_bytes());
        out.push(0);
        for a in &self.args {
            out.extend_from_slice(a.as_bytes());
            out.push(0);
        }
        out.extend_from_slice(self.stdin.as_bytes());
        out
    }

    /// Parses a request's bytes; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Request, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "request is not UTF-8".to_string())?;
        let (count, mut rest) = text
            .split_once('\0')
            .ok_or_else(|| "request has no argument count".to_string())?;
        let n: usize = count
            .parse()
            .map_err(|_| format!("request's argument count `{count}` is not a number"))?;
        let mut args = Vec::with_capacity(n.min(256));
        for i in 0..n {
            let (a, r) = rest
                .split_once('\0')
                .ok_or_else(|| format!("request ends in argument {} of {n}", i + 1))?;
            args.push(a.to_string());
            rest = r;
        }
        Ok(Request {
            args,
            stdin: rest.to_string(),
        })
    }
}

/// A reply: what `lvsadm` prints and its exit status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The exit status.
    pub status: u8,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Reply {
    /// Success with this output.
    pub fn ok(stdout: String) -> Reply {
        Reply {
            status: 0,
            stdout,
            stderr: String::new(),
        }
    }

    /// Failure with this status and message (a newline is added).
    pub fn fail(status: u8, msg: impl std::fmt::Display) -> Reply {
        Reply {
            status,
            stdout: String::new(),
            stderr: format!("{msg}\n"),
        }
    }

    /// The reply's bytes on the wire (NULs in the texts, which we never produce, become
    /// spaces so the framing holds).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.stdout.len() + self.stderr.len());
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(0);
        out.extend(self.stdout.bytes().map(|b| if b == 0 { b' ' } else { b }));
        out.push(0);
        out.extend(self.stderr.bytes().map(|b| if b == 0 { b' ' } else { b }));
        out
    }

    /// Parses a reply's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Reply, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "reply is not UTF-8".to_string())?;
        let mut it = text.splitn(3, '\0');
        let status = it
            .next()
            .and_then(|s| s.parse::<u8>().ok())
            .ok_or_else(|| "reply has no exit status".to_string())?;
        let stdout = it.next().ok_or("reply ends before its output")?;
        let stderr = it.next().ok_or("reply ends before its error output")?;
        Ok(Reply {
            status,
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        })
    }
}

// ------------------------------------------------------------------------- executing

/// ipvsadm's usage text (`-h`), with this tool's own option.
pub const USAGE: &str = "\
lvsadm: ipvsadm for lvs-director (talks to it over its control socket)
Usage:
  lvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-o] [-b sched-flags]
  lvsadm -D virtual-service
  lvsadm -C
  lvsadm -R
  lvsadm -S [-n]
  lvsadm -a|e virtual-service -r server-address [options]
  lvsadm -d virtual-service -r server-address
  lvsadm -L|l [virtual-service] [options]
  lvsadm -Z [virtual-service]
  lvsadm --set tcp tcpfin udp
  lvsadm -h

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Commands, options and listings are ipvsadm's (see ipvsadm(8)); real servers also
take DPVS's -b (--fullnat). Addresses and ports are numeric.

  --control PATH                      the director's socket (default: $LVS_CONTROL,
                                      else /run/lvs-director.sock)
";

/// The version line (`-v`).
pub fn version_text() -> String {
    format!(
        "lvsadm v{} (ipvsadm v1.31 compatible, IPVS v{})\n",
        env!("CARGO_PKG_VERSION"),
        ipvsadm::IPVS_VERSION
    )
}

/// libipvs's message for a refused operation (`ipvs_strerror`): the same error reads
/// differently for a service operation and a real-server one.
pub fn refusal_message(cmd: &Command, e: ControlError) -> String {
    let dest_op = matches!(
        cmd,
        Command::AddDest(..) | Command::EditDest(..) | Command::DeleteDest(..)
    );
    match e {
        ControlError::NoService if dest_op => "Service not defined".into(),
        ControlError::NoService => "No such service".into(),
        other => other.to_string(),
    }
}

/// A parse error as ipvsadm reports it (`fail(2, ...)`), with the help hint when the
/// command itself is wrong.
pub fn usage_error(e: &ParseError) -> Reply {
    let hint = matches!(
        e,
        ParseError::NoCommand
            | ParseError::NotACommand(_)
            | ParseError::UnknownOption(_)
            | ParseError::MultipleCommands
    );
    let mut msg = e.to_string();
    if hint {
        msg.push_str("\nTry `lvsadm -h' or 'lvsadm --help' for more information.");
    }
    Reply::fail(EXIT_USAGE, msg)
}

/// Executes one request on the director, as ipvsadm would on the kernel.
pub fn execute<const D: usize>(
    director: &mut Director<'_, D>,
    req: &Request,
    now: LvsInstant,
) -> Reply {
    let words: Vec<&str> = req.args.iter().map(String::as_str).collect();
    let cmd = match ipvsadm::parse_args(&words) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    execute_command(director, &cmd, &req.stdin, now)
}

/// Executes a parsed command; `stdin` is `-R`'s input.
pub fn execute_command<const D: usize>(
    director: &mut Director<'_, D>,
    cmd: &Command,
    stdin: &str,
    now: LvsInstant,
) -> Reply {
    match cmd {
        Command::Help => Reply::ok(USAGE.to_string()),
        Command::Version => Reply::ok(version_text()),
        Command::Save { .. } => Reply::ok(ipvsadm::save(director)),
        Command::List(opts) => match ipvsadm::list(director, opts, now) {
            Ok(text) => Reply::ok(text),
            Err(ApplyError::Control(ControlError::NoService)) => {
                Reply::fail(EXIT_FAIL, "No such service")
            }
            Err(e) => Reply::fail(EXIT_REFUSED, e),
        },
        Command::Restore => match ipvsadm::restore(director, stdin, now) {
            Ok(_) => Reply::ok(String::new()),
            Err(e) => {
                let status = match e.kind {
                    RuleErrorKind::Parse(_) => EXIT_FAIL,
                    RuleErrorKind::Apply(_) => EXIT_REFUSED,
                };
                let mut msg = format!("stdin:{}: ", e.line);
                match &e.kind {
                    RuleErrorKind::Parse(p) => {
                        let _ = write!(msg, "{p}");
                    }
                    RuleErrorKind::Apply(ApplyError::Control(c)) => {
                        let line_cmd = stdin
                            .lines()
                            .nth(e.line.saturating_sub(1))
                            .and_then(|l| ipvsadm::parse_line(l).ok().flatten());
                        let text = match line_cmd {
                            Some(lc) => refusal_message(&lc, *c),
                            None => c.to_string(),
                        };
                        msg.push_str(&text);
                    }
                    RuleErrorKind::Apply(other) => {
                        let _ = write!(msg, "{other}");
                    }
                }
                Reply::fail(status, msg)
            }
        },
        rule => match ipvsadm::apply(director, rule, now) {
            Ok(()) => Reply::ok(String::new()),
            Err(ApplyError::Control(e)) => Reply::fail(EXIT_REFUSED, refusal_message(rule, e)),
            Err(e) => Reply::fail(EXIT_REFUSED, e),
        },
    }
}

// --------------------------------------------------------------------------- client

/// Sends a request to the director at `path` and returns its reply. The error says
/// what failed (connecting, writing, reading, a malformed reply) and names the path.
pub fn call(path: &Path, req: &Request, timeout: Duration) -> io::Result<Reply> {
    let ctx = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    let mut s = UnixStream::connect(path).map_err(|e| ctx("cannot connect to", e))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| ctx("socket", e))?;
    s.write_all(&req.encode())
        .and_then(|()| s.shutdown(std::net::Shutdown::Write))
        .map_err(|e| ctx("cannot send the request to", e))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| ctx("no reply from", e))?;
    Reply::decode(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

// --------------------------------------------------------------------------- server

/// A client connection being served.
struct Client {
    stream: UnixStream,
    deadline: Instant,
    /// The request so far.
    input: Vec<u8>,
    /// The encoded reply, once there is one, and how much of it is written.
    output: Option<(Vec<u8>, usize)>,
}

/// Why the control socket could not be opened.
#[derive(Debug)]
pub enum BindError {
    /// Another process answers on the path.
    InUse(PathBuf),
    /// The path exists and is not a socket.
    NotASocket(PathBuf),
    /// An operating-system error.
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::InUse(p) => write!(
                f,
                "control socket {}: another director is listening there",
                p.display()
            ),
            BindError::NotASocket(p) => write!(
                f,
                "control socket {}: the path exists and is not a socket",
                p.display()
            ),
            BindError::Io(p, e) => write!(f, "control socket {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for BindError {}

/// The director's end: a nonblocking listener and the connections being served, driven
/// from the director's poll loop ([`Server::poll_fds`], [`Server::service`]). The
/// socket file is removed when the server is dropped.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    clients: Vec<Client>,
}

impl Server {
    /// Listens on `path` (mode 0600). A stale socket file (nobody answering) is
    /// replaced; a live one is [`BindError::InUse`].
    pub fn bind(path: &Path) -> Result<Server, BindError> {
        let io_err = |e| BindError::Io(path.to_path_buf(), e);
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    return Err(BindError::InUse(path.to_path_buf()));
                }
                std::fs::remove_file(path).map_err(io_err)?;
            }
            Ok(_) => return Err(BindError::NotASocket(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        let server = Server {
            listener,
            path: path.to_path_buf(),
            clients: Vec::new(),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        server.listener.set_nonblocking(true).map_err(io_err)?;
        Ok(server)
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptors to poll and whether each waits to write (`true`) or to read.
    pub fn poll_fds(&self) -> impl Iterator<Item = (RawFd, bool)> + '_ {
        let listen = (self.clients.len() < MAX_CLIENTS).then(|| (self.listener.as_raw_fd(), false));
        listen.into_iter().chain(
            self.clients
                .iter()
                .map(|c| (c.stream.as_raw_fd(), c.output.is_some())),
        )
    }

    /// The earliest client deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.clients.iter().map(|c| c.deadline).min()
    }

    /// Accepts what is waiting, reads what has arrived, executes each complete request
    /// with `handle`, writes replies, and drops connections that are done or late.
    /// Never blocks. Returns how many requests were executed.
    pub fn service(&mut self, mut handle: impl FnMut(&Request) -> Reply) -> usize {
        let now = Instant::now();
        while self.clients.len() < MAX_CLIENTS {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client {
                            stream,
                            deadline: now + REQUEST_TIMEOUT,
                            input: Vec::new(),
                            output: None,
                        });
                    }
                }
                Err(_) => break,
            }
        }
        let mut executed = 0;
        self.clients.retain_mut(|c| {
            if c.output.is_none() {
                match read_request(c) {
                    ReadState::More => {}
                    ReadState::Gone => return false,
                    ReadState::Done(result) => {
                        let reply = match result {
                            Ok(req) => {
                                executed += 1;
                                handle(&req)
                            }
                            Err(msg) => Reply::fail(EXIT_USAGE, msg),
                        };
                        c.output = Some((reply.encode(), 0));
                        c.deadline = now + REPLY_TIMEOUT;
                    }
                }
            }
            if let Some((buf, done)) = &mut c.output {
                loop {
                    if *done == buf.len() {
                        return false;
                    }
                    match c.stream.write(&buf[*done..]) {
                        Ok(0) => return false,
                        Ok(n) => *done += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => return false,
                    }
                }
            }
            now < c.deadline
        });
        executed
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

enum ReadState {
    More,
    Gone,
    Done(Result<Request, String>),
}

fn read_request(c: &mut Client) -> ReadState {
    let mut chunk = [0u8; 16384];
    loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => return ReadState::Done(Request::decode(&c.input)),
            Ok(n) => {
                if c.input.len() + n > MAX_REQUEST {
                    return ReadState::Done(Err(format!(
                        "request longer than {MAX_REQUEST} bytes"
                    )));
                }
                c.input.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadState::More,
            Err(_) => return ReadState::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_with_empty_args_and_stdin() {
        let r = Request {
            args: vec!["-A".into(), String::new(), "-t".into()],
            stdin: "-A -t 10.0.0.1:80 -s rr\n".into(),
        };
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        let empty = Request::default();
        assert_eq!(Request::decode(&empty.encode()).unwrap(), empty);
        assert!(Request::decode(b"2\0-L\0").is_err());
        assert!(Request::decode(b"x\0").is_err());
        assert!(Request::decode(b"").is_err());
    }

    #[test]
    fn reply_round_trip() {
        let r = Reply {
            status: 255,
            stdout: "a\nb\n".into(),
            stderr: "No such service\n".into(),
        };
        assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        assert!(Reply::decode(b"0\0only").is_err());
    }
}
