//! `clustat`: cluster and service status with the original tool's options, layouts and
//! exit codes (spec/rgmanager.md §5.2).
//!
//! ```text
//!  cmand ── Status/Nodes ─┐ (unreachable: "Could not connect to CMAN: ...", exit 1)
//!  rgmanagerd ── Status ──┴──▶ RgStatus ──tools::clustat / tools::xml──▶ stdout, exit code
//!  (rgmanagerd not running: cmand's members, no rgmanager flag, no service table)
//! ```
//!
//! `-i SEC` clears the screen and redraws every SEC seconds until a signal ends it.

use rgmanagerd::tools::client::{
    cman_view, local_utc_offset, now_unix_s, os_reason, rg_status, status_from_cman,
    terminal_columns,
};
use rgmanagerd::tools::clustat::{
    parse_args, quorum_exit, text, ClustatArgs, Mode, Parsed, RenderOpts, Report, DEFAULT_COLUMNS,
};
use rgmanagerd::tools::xml::{json, xml};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Clears the screen and homes the cursor (what `tput clear` sends on ANSI terminals).
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match parse_args(&args) {
        Parsed::Exit {
            stdout,
            stderr,
            code,
        } => {
            eprint!("{stderr}");
            print!("{stdout}");
            code
        }
        Parsed::Run(a) => run(&a),
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

fn run(a: &ClustatArgs) -> u8 {
    if a.mode == Mode::Version {
        println!("clustat version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let dir = clusterio::runtime_dir(a.runtime_dir.as_deref());
    loop {
        let (cman_status, nodes) = match cman_view(&dir) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("Could not connect to CMAN: {}", os_reason(&e));
                return 1;
            }
        };
        match a.mode {
            Mode::Quorum => return quorum_exit(cman_status.quorate),
            Mode::NodeId => {
                println!("0x{:08x}", cman_status.node_id);
                return 0;
            }
            Mode::Version | Mode::Report => {}
        }
        let (status, rgmanager) = match rg_status(&dir) {
            Ok(s) => (s, true),
            Err(_) => (status_from_cman(&cman_status, &nodes), false),
        };
        let columns = terminal_columns();
        let now = now_unix_s();
        let opts = RenderOpts {
            now_unix_s: now,
            utc_offset_s: local_utc_offset,
            columns: columns.unwrap_or(DEFAULT_COLUMNS),
            is_tty: columns.is_some(),
            long: a.long,
            member: a.member.clone(),
            service: a.service.clone(),
            rgmanager,
        };
        let report: Report = if a.json {
            match json(&status, &opts) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("clustat: cannot encode JSON: {e}");
                    return 1;
                }
            }
        } else if a.xml {
            xml(&status, &opts)
        } else {
            text(&status, &opts)
        };
        let mut out = std::io::stdout().lock();
        let written = match a.interval_s {
            Some(_) => write!(out, "{CLEAR_SCREEN}{}", report.text),
            None => write!(out, "{}", report.text),
        };
        let _ = out.flush();
        match a.interval_s {
            // A closed pipe ends a refreshing clustat like a signal would.
            Some(sec) if written.is_ok() => std::thread::sleep(Duration::from_secs(sec)),
            _ => return report.exit,
        }
    }
}
