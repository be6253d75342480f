//! The end-to-end harness: the demo's network namespaces (built by `scripts/topology.sh`,
//! the one description of that topology, shared with `scripts/demo.sh` and
//! `scripts/bench-e2e.sh`), the release binaries, and real Linux clients (curl) in them.
//!
//! A [`Topology`] owns its namespaces (`lvs-TAG-*`, TAG holding this process's PID and
//! the test's name, so tests run side by side) and every process in them: dropping it,
//! panics included, runs `topology.sh down`, which stops those processes by PID and
//! deletes the namespaces. Nothing touches the root namespace's network.
//!
//! Waits are on conditions with deadlines ([`wait_until`]), never on fixed sleeps.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The release binaries the topology runs.
#[derive(Debug, Clone)]
pub struct Bins {
    /// The directory holding `lvs-director`, `lvsadm` and `lvs-realserver`.
    pub dir: PathBuf,
}

impl Bins {
    /// `lvsadm`'s path.
    pub fn lvsadm(&self) -> PathBuf {
        self.dir.join("lvsadm")
    }
}

/// The workspace root (where `scripts/` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Why the end-to-end tests cannot run on this machine, if they cannot: they need root
/// (namespaces, veth, bridges, TUN/TAP). Missing tools are not a reason to skip: CI runs
/// as root and must run these tests, so [`require_tools`] fails loudly instead.
pub fn skip_reason() -> Option<String> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if euid != "0" {
        return Some("not root (network namespaces, veth, bridges and TAP need it)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    None
}

/// Panics with an install hint when a tool the topology uses is missing.
pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "`{tool}` is missing: scripts/check.sh installs it (apt-get install \
             iproute2 ethtool curl python3 nftables)"
        );
    }
}

/// Builds the workspace's release binaries once per test process (`cargo build
/// --release --bins`, a no-op when scripts/check.sh built them already)
/// and returns where cargo put them. Building here means a test never runs stale
/// binaries.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Result<Bins, String>> = OnceLock::new();
    let r = BINS.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(&cargo)
            .current_dir(workspace_root())
            // The very command scripts/check.sh runs before the tests (the same package
            // selection, so the same features): a no-op there.
            .args([
                "build",
                "--release",
                "--bins",
                "--message-format=json-render-diagnostics",
            ])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("{cargo}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo build --release --bins failed: {}",
                out.status
            ));
        }
        // Each binary's compiler-artifact message names its executable.
        let text = String::from_utf8_lossy(&out.stdout);
        let key = "\"executable\":\"";
        let exe = text
            .lines()
            .filter_map(|l| {
                let at = l.find(key)? + key.len();
                let rest = &l[at..];
                Some(PathBuf::from(&rest[..rest.find('"')?]))
            })
            .find(|p| p.file_name().is_some_and(|n| n == "lvsadm"))
            .ok_or("cargo named no lvsadm executable")?;
        Ok(Bins {
            dir: exe.parent().expect("a directory").to_path_buf(),
        })
    });
    match r {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

/// The forwarding method of a topology (`kernel`: Linux's own NAT, nftables DNAT with
/// round robin, in place of the tap director: the harness's control experiment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-m`, masquerading.
    Nat,
    /// `-g`, direct routing.
    Dr,
    /// `-i`, IP-in-IP tunnelling (lvs-realserver decapsulates).
    Tun,
    /// `-b`, FULLNAT (DPVS's spelling).
    FullNat,
    /// nftables DNAT in a kernel-routing director namespace.
    Kernel,
}

impl Mode {
    /// The name `topology.sh` takes.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Nat => "nat",
            Mode::Dr => "dr",
            Mode::Tun => "tun",
            Mode::FullNat => "fullnat",
            Mode::Kernel => "kernel",
        }
    }

    /// ipvsadm's flag for a real server of this method.
    pub fn flag(self) -> &'static str {
        match self {
            Mode::Nat | Mode::Kernel => "-m",
            Mode::Dr => "-g",
            Mode::Tun => "-i",
            Mode::FullNat => "-b",
        }
    }
}

/// IPv4 or IPv6: which of the topology's two virtual services a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// 10.0.0.0/24 clients, 10.0.1.0/24 real servers.
    V4,
    /// fd00::/64 clients, fd00:1::/64 real servers.
    V6,
}

impl Family {
    /// The VIP as a URL host.
    pub fn vip_host(self) -> &'static str {
        match self {
            Family::V4 => "10.0.0.100",
            Family::V6 => "[fd00::100]",
        }
    }

    /// The virtual service as ipvsadm writes it.
    pub fn service(self) -> String {
        format!("{}:80", self.vip_host())
    }

    /// Real server `n` (1..=3) as ipvsadm writes it.
    pub fn real_server(self, n: usize) -> String {
        match self {
            Family::V4 => format!("10.0.1.1{n}:80"),
            Family::V6 => format!("[fd00:1::1{n}]:80"),
        }
    }

    /// The client's address.
    pub fn client(self) -> &'static str {
        match self {
            Family::V4 => "10.0.0.2",
            Family::V6 => "fd00::2",
        }
    }

    /// The director's FULLNAT local address.
    pub fn laddr(self) -> &'static str {
        match self {
            Family::V4 => "10.0.1.200",
            Family::V6 => "fd00:1::200",
        }
    }
}

/// What to start a topology with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The virtual services' scheduler.
    pub sched: &'static str,
    /// The three real servers' weights.
    pub weights: [u32; 3],
    /// Files every real server serves as `/BASENAME`.
    pub serve: Vec<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sched: "rr",
            weights: [1, 1, 1],
            serve: Vec::new(),
        }
    }
}

/// One topology: client, director, three real servers, torn down on drop.
pub struct Topology {
    /// TAG: the namespaces are `lvs-TAG-c`, `-d`, `-r1`..`-r3`.
    pub tag: String,
    /// Its forwarding method.
    pub mode: Mode,
    /// Logs, the rules file and the control socket.
    pub state: PathBuf,
    bins: Option<Bins>,
}

impl Topology {
    /// Builds the topology for test `test` (after printing why, `None` when the tests
    /// cannot run here). Panics with the script's output and the logs if it fails.
    pub fn up(test: &str, mode: Mode, opts: &Options) -> Option<Topology> {
        if let Some(why) = skip_reason() {
            println!("skipping {test}: {why}");
            return None;
        }
        require_tools(&["ip", "ethtool", "curl", "python3"]);
        if mode == Mode::Kernel {
            require_tools(&["nft"]);
        }
        let bins = (mode != Mode::Kernel).then(|| bins().clone());
        let tag = format!("e{}-{test}", std::process::id());
        let state = std::env::temp_dir().join(format!("lvs-{tag}"));
        let _ = fs::remove_dir_all(&state);
        fs::create_dir_all(&state).expect("state dir");
        let topo = Topology {
            tag,
            mode,
            state,
            bins,
        };
        let serve: Vec<String> = opts.serve.iter().map(|p| p.display().to_string()).collect();
        let mut cmd = topo.script();
        cmd.args(["up", &topo.tag, mode.name()])
            .env("STATE_DIR", &topo.state)
            .env("SCHED", opts.sched)
            .env("WEIGHTS", opts.weights.map(|w| w.to_string()).join(","))
            .env("SERVE_FILES", serve.join(" "));
        // Output to a file, not a pipe: a process the script leaves running must not keep
        // us waiting for the end of its output.
        let log_path = topo.state.join("up.log");
        let log = File::create(&log_path).expect("up.log");
        cmd.stdout(log.try_clone().expect("dup")).stderr(log);
        let t = Instant::now();
        let status = cmd.status().expect("run scripts/topology.sh");
        assert!(
            status.success(),
            "topology.sh up {} {}: {status}\n{}",
            topo.tag,
            mode.name(),
            fs::read_to_string(&log_path).unwrap_or_default()
        );
        println!(
            "[{}] topology {} up in {:.2?}",
            topo.tag,
            mode.name(),
            t.elapsed()
        );
        Some(topo)
    }

    fn script(&self) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(workspace_root().join("scripts/topology.sh"));
        if let Some(b) = &self.bins {
            cmd.env("LVS_BIN", &b.dir);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The namespace of `who`: `c` (client), `d` (director), `r1`..`r3`.
    pub fn ns(&self, who: &str) -> String {
        format!("lvs-{}-{who}", self.tag)
    }

    /// A command that runs `program` inside `who`'s namespace.
    pub fn command(&self, who: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(who), program]);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `program args` in `who`'s namespace; panics unless it succeeds; its stdout.
    pub fn run(&self, who: &str, program: &str, args: &[&str]) -> String {
        let out = self
            .command(who, program)
            .args(args)
            .output()
            .expect(program);
        assert!(
            out.status.success(),
            "{program} {} in {who}: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `curl` in the client's namespace (`-sS -g`, 30 s at most), with `args`.
    pub fn curl(&self, args: &[&str]) -> Output {
        self.command("c", "curl")
            .args(["-sS", "-g", "--max-time", "30"])
            .args(args)
            .output()
            .expect("curl")
    }

    /// `GET /peer` through the VIP: which real server answered (1..=3) and the peer
    /// address it saw.
    pub fn peer(&self, family: Family) -> (usize, String) {
        let url = format!("http://{}/peer", family.vip_host());
        let out = self.curl(&[&url]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "curl {url}: {}\n{}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        parse_peer(&text).unwrap_or_else(|| panic!("GET {url}: unexpected answer {text:?}"))
    }

    /// `lvsadm ARGS` against this topology's director; its stdout, or its stderr.
    pub fn lvsadm(&self, args: &[&str]) -> Result<String, String> {
        let bins = self.bins.as_ref().expect("a tap director topology");
        let out = Command::new(bins.lvsadm())
            .args(args)
            .env("LVS_CONTROL", self.state.join("ctl.sock"))
            .stdin(Stdio::null())
            .output()
            .expect("run lvsadm");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "lvsadm {}: {}\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `lvsadm ARGS`, panicking on failure.
    pub fn lvsadm_ok(&self, args: &[&str]) -> String {
        self.lvsadm(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A counter of interface `dev` in `who`'s namespace
    /// (`/sys/class/net/DEV/statistics/NAME`).
    pub fn if_stat(&self, who: &str, dev: &str, name: &str) -> u64 {
        let path = format!("/sys/class/net/{dev}/statistics/{name}");
        self.run(who, "cat", &[&path]).trim().parse().expect(name)
    }

    /// The last `n` lines of log `name` in the state directory (empty if absent).
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let text = fs::read_to_string(self.state.join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if thread::panicking() {
            for log in ["director.log", "httpd1.log", "realserver1.log"] {
                let tail = self.log_tail(log, 30);
                if !tail.is_empty() {
                    eprintln!("[{}] last lines of {log}:\n{tail}", self.tag);
                }
            }
        }
        let _ = self
            .script()
            .args(["down", &self.tag])
            .stdout(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.state);
    }
}

/// Parses `/peer`'s answer, `rsN PEER`.
pub fn parse_peer(text: &str) -> Option<(usize, String)> {
    let mut words = text.split_whitespace();
    let n = words.next()?.strip_prefix("rs")?.parse().ok()?;
    Some((n, words.next()?.to_string()))
}

/// A process (a curl in a namespace) killed and reaped when dropped.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`; panics naming
/// `what` after that.
pub fn wait_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A file of `len` pseudo-random bytes at `path` (made once: kept while its size is
/// right, written to a temporary name and renamed, so concurrent test processes never
/// see half of it).
pub fn test_file(path: &Path, len: u64) -> PathBuf {
    if fs::metadata(path).map(|m| m.len() == len).unwrap_or(false) {
        return path.to_path_buf();
    }
    fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut w = io::BufWriter::with_capacity(1 << 20, File::create(&tmp).expect("create"));
    // xorshift64*: incompressible enough that no layer can cheat, cheap to make.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ len;
    let mut left = len;
    let mut block = [0u8; 8];
    while left > 0 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        block.copy_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        let n = left.min(8) as usize;
        w.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    w.flush().expect("flush");
    drop(w);
    fs::rename(&tmp, path).expect("rename");
    path.to_path_buf()
}

/// Where the test files live: `<target dir>/e2e-files/` (beside the test binaries, so
/// one build's runs share them and `cargo clean` removes them).
pub fn files_dir() -> PathBuf {
    // The test binary is <target>/<profile>/deps/NAME-HASH.
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("e2e-files"))
        .unwrap_or_else(|| std::env::temp_dir().join("lvs-e2e-files"))
}

/// `None` when files `a` and `b` hold the same bytes; otherwise where they first differ
/// (or the two lengths).
pub fn first_difference(a: &Path, b: &Path) -> Option<String> {
    let (la, lb) = (
        fs::metadata(a).map(|m| m.len()).unwrap_or(0),
        fs::metadata(b).map(|m| m.len()).unwrap_or(0),
    );
    if la != lb {
        return Some(format!("lengths differ: {la} and {lb}"));
    }
    let mut ra = BufReader::with_capacity(1 << 20, File::open(a).expect("open"));
    let mut rb = BufReader::with_capacity(1 << 20, File::open(b).expect("open"));
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut off = 0u64;
    loop {
        let n = ra.read(&mut ba).expect("read");
        if n == 0 {
            return None;
        }
        rb.read_exact(&mut bb[..n]).expect("read");
        if ba[..n] != bb[..n] {
            let i = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y);
            return Some(format!(
                "first difference at byte {}",
                off + i.unwrap_or(0) as u64
            ));
        }
        off += n as u64;
    }
}

/// One line of `lvsadm -L -n --stats`: the service's or a real server's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsLine {
    /// `TCP  10.0.0.100:80` or `-> 10.0.1.11:80`, as printed (spaces collapsed).
    pub name: String,
    /// Conns, InPkts, OutPkts, InBytes, OutBytes (ipvsadm's K/M/G suffixes expanded).
    pub counters: [u64; 5],
}

/// Parses `lvsadm -L -n --stats`: every service and real-server line, in order.
pub fn parse_stats(text: &str) -> Vec<StatsLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (name, rest) = match words.first() {
            Some(&"TCP") | Some(&"UDP") if words.len() == 7 => {
                (format!("{} {}", words[0], words[1]), &words[2..])
            }
            Some(&"->") if words.len() == 7 => (format!("-> {}", words[1]), &words[2..]),
            _ => continue,
        };
        let mut counters = [0u64; 5];
        let mut ok = true;
        for (c, w) in counters.iter_mut().zip(rest) {
            match parse_scaled(w) {
                Some(v) => *c = v,
                None => ok = false,
            }
        }
        if ok {
            out.push(StatsLine { name, counters });
        }
    }
    out
}

/// ipvsadm's scaled counters: `123`, `45K`, `6M`, `7G` (powers of 1000).
fn parse_scaled(w: &str) -> Option<u64> {
    let (digits, mult) = match w.as_bytes().last()? {
        b'K' => (&w[..w.len() - 1], 1_000),
        b'M' => (&w[..w.len() - 1], 1_000_000),
        b'G' => (&w[..w.len() - 1], 1_000_000_000),
        _ => (w, 1),
    };
    digits.parse::<u64>().ok().map(|v| v * mult)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_parse_stats() {
        let text = "IP Virtual Server version 1.2.1 (size=4096)\n\
            Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n\
            \x20 -> RemoteAddress:Port\n\
            TCP  10.0.0.100:80                      90      540        0    36000        0\n\
            \x20 -> 10.0.1.11:80                      30      180        0    12000        0\n\
            \x20 -> 10.0.1.12:80                      30      180      12K    12000      88M\n";
        let s = parse_stats(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "TCP 10.0.0.100:80");
        assert_eq!(s[0].counters, [90, 540, 0, 36000, 0]);
        assert_eq!(s[2].name, "-> 10.0.1.12:80");
        assert_eq!(s[2].counters, [30, 180, 12_000, 12000, 88_000_000]);
    }

    #[test]
    fn test_parse_peer() {
        assert_eq!(
            parse_peer("rs2 10.0.1.200\n"),
            Some((2, "10.0.1.200".into()))
        );
        assert_eq!(parse_peer("<html>"), None);
    }
}
