//! `lvsadm`: ipvsadm for `lvs-director`. It takes ipvsadm's own flags (`-A -E -D -C -a
//! -e -d -L/-l -n --stats --rate -c -Z --set -S -R` and the rest of
//! [`lvs_director::ipvsadm`]), sends them over the director's control socket, and
//! prints the reply in ipvsadm's layout with ipvsadm's exit status, so scripts written
//! for ipvsadm work unchanged. `-R` sends the rules read from stdin.
//!
//! The socket is `--control PATH` (anywhere on the line; `--control=PATH` too), else
//! `$LVS_CONTROL`, else `/run/lvs-director.sock`. The protocol is in
//! [`lvs_director::control`].
//!
//! Exit status: ipvsadm's (0; 2 for a command line that does not parse; 255 for a
//! command the director refuses; 1 for a listing of a missing service), and 1 when the
//! director cannot be reached.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use lvs_director::control::{self, Request};
use lvs_director::flags::default_control_path;
use lvs_director::ipvsadm::{self, Command};

/// How long to wait for the director (a restore of a large rule file takes a while).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Takes `--control PATH` / `--control=PATH` out of the arguments.
fn split_control(args: Vec<String>) -> Result<(Option<PathBuf>, Vec<String>), String> {
    let mut path = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--control" {
            let p = it.next().ok_or("option `--control' requires a value")?;
            path = Some(PathBuf::from(p));
        } else if let Some(p) = a.strip_prefix("--control=") {
            path = Some(PathBuf::from(p));
        } else {
            rest.push(a);
        }
    }
    Ok((path, rest))
}

fn utf8(args: Vec<OsString>) -> Result<Vec<String>, String> {
    args.into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect()
}

fn main() -> ExitCode {
    let parsed = utf8(std::env::args_os().skip(1).collect()).and_then(split_control);
    let (path, args) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(control::EXIT_USAGE);
        }
    };
    let path = path.unwrap_or_else(default_control_path);
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    // Parsed here too, so a typo is reported without a director, as ipvsadm does.
    let mut stdin = String::new();
    match ipvsadm::parse_args(&words) {
        Err(e) => {
            let r = control::usage_error(&e);
            eprint!("{}", r.stderr);
            return ExitCode::from(r.status);
        }
        Ok(Command::Help) => {
            print!("{}", control::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            print!("{}", control::version_text());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Restore) => {
            if let Err(e) = std::io::stdin().read_to_string(&mut stdin) {
                eprintln!("lvsadm: reading the rules from stdin: {e}");
                return ExitCode::from(control::EXIT_FAIL);
            }
        }
        Ok(_) => {}
    }
    let reply = match control::call(&path, &Request { args, stdin }, TIMEOUT) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "lvsadm: {e}\nIs lvs-director running? (--control PATH or {} name its socket)",
                lvs_director::flags::CONTROL_ENV
            );
            return ExitCode::from(control::EXIT_FAIL);
        }
    };
    let _ = std::io::stdout().write_all(reply.stdout.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(reply.stderr.as_bytes());
    ExitCode::from(reply.status)
}
