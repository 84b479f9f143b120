//! `ccs_config_validate`: checks a cluster.conf the way the daemons will read it.
//!
//! Output contract (docs/config.md): every problem goes to stderr as
//! `FILE:LINE:COL: error: ...` or `FILE:LINE:COL: warning: ...`, in source order; stdout
//! carries only the verdict, `Configuration validates` or `Configuration fails to
//! validate`. Exit 0 when the file validates (warnings included), 1 when it does not or
//! cannot be read, 2 for a usage error. `-q` drops the verdict and the warnings.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use libcluster::config::{self, Severity};

/// Check a cluster.conf file: XML, every setting, and the rules between them.
#[derive(Parser, Debug)]
#[command(name = "ccs_config_validate", version)]
struct Args {
    /// The configuration file to check.
    #[arg(
        short = 'f',
        value_name = "FILE",
        default_value = "/etc/cluster/cluster.conf"
    )]
    file: PathBuf,
    /// Quiet: print only errors (no verdict line, no warnings); the exit status tells.
    #[arg(short = 'q')]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (diagnostics, valid) = match config::load(&args.file) {
        Ok(parsed) => (parsed.warnings, true),
        Err(rejected) => (rejected.all().to_vec(), false),
    };
    for d in diagnostics {
        if !(args.quiet && d.severity == Severity::Warning) {
            eprintln!("{d}");
        }
    }
    if !args.quiet {
        println!(
            "{}",
            if valid {
                "Configuration validates"
            } else {
                "Configuration fails to validate"
            }
        );
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
