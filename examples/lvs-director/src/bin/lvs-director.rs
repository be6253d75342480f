//! `lvs-director`: the userspace IPVS director on Linux tap devices.
//!
//! ```text
//! lvs-director --iface lvs0,ip=192.0.2.1/24 --iface lvs1,ip=10.0.0.1/24 \
//!              --route 0.0.0.0/0,via=192.0.2.254 --rules /etc/lvs.rules
//! lvsadm -L -n --stats
//! ```
//!
//! The flags are [`lvs_director::flags::Args`]; `--check` validates them and the rules
//! and prints the table, `--replay IN --write OUT` runs a capture through the director
//! offline; otherwise it runs until SIGINT or SIGTERM, controlled by `lvsadm` over the
//! control socket ([`lvs_director::control`] documents the protocol), and removes the
//! socket when it stops. The loop is [`lvs_director::run`].
//!
//! Exit status: 0 on a clean stop, 2 for bad flags, 1 for anything else (a rule line, a
//! tap that cannot be opened, the socket in use), with one line on stderr saying what
//! and why.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use lvs_director::flags::Args;
use lvs_director::run;

fn fail(msg: &str) -> ExitCode {
    eprintln!("lvs-director: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("lvs-director: {e}");
        return ExitCode::from(2);
    }
    for w in run::warnings(&args) {
        eprintln!("lvs-director: warning: {w}");
    }
    if args.check {
        return match run::check(&args) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    if args.replay.is_some() {
        return match run::replay(&args) {
            Ok((summary, adapter)) => {
                eprintln!(
                    "lvs-director: replayed {} frames, wrote {}; {:?}",
                    summary.read,
                    summary.written,
                    adapter.stats()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    let result = run::live(&args, |line| {
        println!("{line}");
        let _ = std::io::stdout().flush();
    });
    match result {
        Ok(adapter) => {
            eprintln!("lvs-director: stopped; {:?}", adapter.stats());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
