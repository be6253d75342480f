//! `lvsadm` against a control server in this process (the director's own
//! [`Server`] and [`control::execute`] on a director, without taps): every ipvsadm
//! command round-trips, listings are ipvsadm's, errors are ipvsadm's words and exit
//! statuses, and the server survives bad requests. No root needed.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{TempDir, lvsadm, run};
use lvs_director::control::{self, Reply, Request, Server};
use lvs_director::setup::{self, Caps};
use lvs_director::sys::{self, Wait};

/// A control server on a director in a thread of its own, stopped on drop.
struct Daemon {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: TempDir,
}

impl Daemon {
    fn start(tag: &str) -> Daemon {
        let dir = TempDir::new(tag);
        let path = dir.join("ctl.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let caps = Caps {
                    conns: 512,
                    services: 8,
                    dests: 32,
                };
                let mut d =
                    setup::new_director(caps, Default::default(), lvs_core::time::Instant::ZERO, 1)
                        .unwrap();
                d.add_laddr("10.0.0.100".parse().unwrap()).unwrap();
                let mut server = Server::bind(&path).unwrap();
                tx.send(()).unwrap();
                let mut scratch = Vec::new();
                let start = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let waits: Vec<Wait> = server
                        .poll_fds()
                        .map(|(fd, write)| Wait { fd, write })
                        .collect();
                    sys::poll(&waits, Some(Duration::from_millis(20)), &mut scratch).unwrap();
                    let now =
                        lvs_core::time::Instant::from_millis(start.elapsed().as_millis() as u64);
                    server.service(|req| control::execute(&mut d, req, now));
                }
            })
        };
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the control server starts");
        Daemon {
            path,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn lvsadm(&self, args: &[&str]) -> (String, String, Option<i32>) {
        run(lvsadm().env("LVS_CONTROL", &self.path).args(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let (out, err, code) = self.lvsadm(args);
        assert_eq!(code, Some(0), "lvsadm {args:?}: {err}");
        assert_eq!(err, "", "lvsadm {args:?}");
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const HEAD: &str = "IP Virtual Server version 1.2.1 (size=1024)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

#[test]
fn ipvsadm_commands_round_trip() {
    let d = Daemon::start("rt");
    assert_eq!(d.ok(&["-L", "-n"]), HEAD);
    // No arguments is -L, as for ipvsadm.
    assert_eq!(d.ok(&[]), HEAD);
    d.ok(&["-A", "-t", "203.0.113.10:80", "-s", "rr"]);
    d.ok(&["-a", "-t", "203.0.113.10:80", "-r", "10.0.0.11:8080", "-m"]);
    d.ok(&[
        "-a",
        "-t",
        "203.0.113.10:80",
        "-r",
        "10.0.0.12:8080",
        "-m",
        "-w",
        "3",
    ]);
    d.ok(&["-a", "-t", "203.0.113.10:80", "-r", "10.0.0.13", "-b"]);
    d.ok(&[
        "-e",
        "-t",
        "203.0.113.10:80",
        "-r",
        "10.0.0.11:8080",
        "-m",
        "-w",
        "5",
    ]);
    d.ok(&["-d", "-t", "203.0.113.10:80", "-r", "10.0.0.13:80"]);
    d.ok(&["-E", "-t", "203.0.113.10:80", "-s", "wrr"]);
    d.ok(&["-Au", "[2001:db8::10]:53"]);
    let want = format!(
        "{HEAD}TCP  203.0.113.10:80 wrr\n  \
-> 10.0.0.11:8080               Masq    5      0          0         \n  \
-> 10.0.0.12:8080               Masq    3      0          0         \n\
UDP  [2001:db8::10]:53 wlc\n"
    );
    assert_eq!(d.ok(&["-L", "-n"]), want);
    assert_eq!(d.ok(&["-l"]), want);
    assert_eq!(
        d.ok(&["-S", "-n"]),
        "-A -t 203.0.113.10:80 -s wrr\n\
-a -t 203.0.113.10:80 -r 10.0.0.11:8080 -m -w 5\n\
-a -t 203.0.113.10:80 -r 10.0.0.12:8080 -m -w 3\n\
-A -u [2001:db8::10]:53 -s wlc\n"
    );
    let stats = d.ok(&["-L", "-n", "--stats"]);
    assert!(
        stats.contains(
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes"
        ),
        "{stats}"
    );
    assert!(d.ok(&["-L", "-n", "--rate"]).contains("CPS"));
    assert!(
        d.ok(&["-L", "-n", "-c"])
            .starts_with("IPVS connection entries\n")
    );
    d.ok(&["-Z"]);
    d.ok(&["-Z", "-t", "203.0.113.10:80"]);
    d.ok(&["--set", "900", "120", "300"]);
    assert_eq!(
        d.ok(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    d.ok(&["-D", "-u", "[2001:db8::10]:53"]);
    d.ok(&["-C"]);
    assert_eq!(d.ok(&["-Ln"]), HEAD);
}

#[test]
fn restore_reads_rules_from_stdin() {
    let d = Daemon::start("restore");
    let rules = "-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r 10.0.0.11:8080 -m -w 1\n";
    let mut child = lvsadm()
        .env("LVS_CONTROL", &d.path)
        .arg("-R")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.ok(&["-S", "-n"]), rules);
    // A bad line: nothing of a file that does not parse is applied; the line is named.
    let (_, err, code) = run_with_stdin(&d.path, &["-R"], "-A -t 1.2.3.4:80\n-A -t bogus\n");
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "stdin:2: illegal virtual server address[:port] specified: `bogus' (addresses and ports are numeric: names are not looked up)\n"
    );
    assert_eq!(d.ok(&["-S", "-n"]), rules);
    // A refused line: the lines before it stay, as with ipvsadm -R.
    let (_, err, code) = run_with_stdin(
        &d.path,
        &["-R"],
        "-A -t 1.2.3.4:80\n-a -t 1.2.3.5:80 -r 10.0.0.1\n",
    );
    assert_eq!(code, Some(255));
    assert_eq!(err, "stdin:2: Service not defined\n");
    assert!(d.ok(&["-S", "-n"]).contains("-A -t 1.2.3.4:80 -s wlc\n"));
}

fn run_with_stdin(path: &Path, args: &[&str], input: &str) -> (String, String, Option<i32>) {
    let mut child = lvsadm()
        .env("LVS_CONTROL", path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn errors_read_and_exit_as_ipvsadm_and_the_server_survives() {
    let d = Daemon::start("errors");
    let cases: &[(&[&str], &str, i32)] = &[
        (&["-D", "-t", "1.2.3.4:80"], "No such service\n", 255),
        (&["-E", "-t", "1.2.3.4:80"], "No such service\n", 255),
        (&["-Z", "-t", "1.2.3.4:80"], "No such service\n", 255),
        (
            &["-a", "-t", "1.2.3.4:80", "-r", "10.0.0.1"],
            "Service not defined\n",
            255,
        ),
        (
            &["-d", "-t", "1.2.3.4:80", "-r", "10.0.0.1"],
            "Service not defined\n",
            255,
        ),
        (&["-L", "-n", "-t", "1.2.3.4:80"], "No such service\n", 1),
        (
            &["-A", "-t", "1.2.3.4:80", "-s", "nope"],
            "unknown scheduler \"nope\"",
            2,
        ),
        (
            &["-A", "-t", "1.2.3.4"],
            "Zero port specified for non-persistent service\n",
            2,
        ),
        (
            &["-Q"],
            "invalid option `-Q'\nTry `lvsadm -h' or 'lvsadm --help' for more information.\n",
            2,
        ),
        (
            &["-a", "-t", "1.2.3.4:80", "-r", "2001:db8::1", "-m"],
            "Different address family",
            2,
        ),
    ];
    for (args, want, status) in cases {
        let (out, err, code) = d.lvsadm(args);
        assert_eq!(code, Some(*status), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(
            err.starts_with(want),
            "{args:?}: {err:?} does not start with {want:?}"
        );
    }
    d.ok(&["-A", "-t", "1.2.3.4:80"]);
    let (_, err, code) = d.lvsadm(&["-A", "-t", "1.2.3.4:80"]);
    assert_eq!(
        (code, err.as_str()),
        (Some(255), "Service already exists\n")
    );
    d.ok(&["-a", "-t", "1.2.3.4:80", "-r", "10.0.0.1"]);
    let (_, err, code) = d.lvsadm(&["-a", "-t", "1.2.3.4:80", "-r", "10.0.0.1"]);
    assert_eq!(
        (code, err.as_str()),
        (Some(255), "Destination already exists\n")
    );
    let (_, err, code) = d.lvsadm(&["-e", "-t", "1.2.3.4:80", "-r", "10.0.0.2"]);
    assert_eq!((code, err.as_str()), (Some(255), "No such destination\n"));

    // Garbage on the socket: a status-2 reply, and the server goes on.
    for junk in [&b"not a request"[..], b"3\0-L\0", b"\xff\xfe\0", b""] {
        let mut s = UnixStream::connect(&d.path).unwrap();
        s.write_all(junk).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let r = Reply::decode(&buf).unwrap();
        assert_eq!(r.status, control::EXIT_USAGE, "{junk:?}: {r:?}");
    }
    // A client that connects and goes away.
    drop(UnixStream::connect(&d.path).unwrap());
    // The protocol by hand, as the module documents it.
    let r = control::call(
        &d.path,
        &Request {
            args: vec!["-S".into(), "-n".into()],
            stdin: String::new(),
        },
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(
        r,
        Reply {
            status: 0,
            stdout: "-A -t 1.2.3.4:80 -s wlc\n-a -t 1.2.3.4:80 -r 10.0.0.1:80 -g -w 1\n".into(),
            stderr: String::new(),
        }
    );
}

#[test]
fn lvsadm_without_a_director_says_so() {
    let dir = TempDir::new("nodirector");
    let path = dir.join("absent.sock");
    let (out, err, code) = run(lvsadm().env("LVS_CONTROL", &path).args(["-L", "-n"]));
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert!(
        err.starts_with(&format!("lvsadm: cannot connect to {}: ", path.display())),
        "{err}"
    );
    assert!(err.contains("Is lvs-director running?"), "{err}");
    // --control wins over the environment, in both spellings.
    let (_, err, _) = run(lvsadm().env("LVS_CONTROL", "/nonexistent/a.sock").args([
        "--control",
        path.to_str().unwrap(),
        "-L",
    ]));
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    let (_, err, _) = run(lvsadm()
        .env("LVS_CONTROL", "/nonexistent/a.sock")
        .arg(format!("--control={}", path.display()))
        .arg("-L"));
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    // Usage errors, -h and -v need no director.
    let (_, err, code) = run(lvsadm().env("LVS_CONTROL", &path).args(["-A", "-t"]));
    assert_eq!(code, Some(2));
    assert_eq!(err, "option `-t' requires a value\n");
    let (out, _, code) = run(lvsadm().env("LVS_CONTROL", &path).arg("-h"));
    assert_eq!(code, Some(0));
    assert!(out.contains("--control PATH"));
    let (out, _, code) = run(lvsadm().env("LVS_CONTROL", &path).arg("-v"));
    assert_eq!(code, Some(0));
    assert!(out.starts_with("lvsadm v"));
}

#[test]
fn a_second_server_on_a_live_socket_is_refused_and_a_stale_one_replaced() {
    let d = Daemon::start("inuse");
    match Server::bind(&d.path) {
        Err(e) => assert!(
            e.to_string()
                .contains("another director is listening there"),
            "{e}"
        ),
        Ok(_) => panic!("bound a live socket twice"),
    }
    let dir = TempDir::new("stale");
    let stale = dir.join("stale.sock");
    // A socket file nobody listens on. Not a dropped UnixListener: another test thread
    // forking a child (lvsadm) between its bind and its drop keeps a copy of the
    // listening descriptor until that child execs, and a connect in that window would
    // succeed. A datagram socket never accepts a stream connect, copies or not.
    drop(std::os::unix::net::UnixDatagram::bind(&stale).unwrap());
    assert!(stale.exists());
    let s = Server::bind(&stale).unwrap();
    drop(s);
    assert!(!stale.exists(), "the socket file is removed on drop");
    let file = dir.write("plain", "x");
    assert!(Server::bind(&file).is_err());
}
