//! `clusterlab`: build and drive a multi-node cluster on this machine.
//!
//! See docs/lab.md. Every process the lab starts is recorded in `DIR/lab.json`; the fault
//! commands signal only those records, by pid and start time.

use clap::{Parser, Subcommand};
use clusterlab::state::LabState;
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "clusterlab",
    about = "Multi-node clusters on one machine, with fault injection"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the lab's nodes, addresses and daemons.
    Status {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// SIGKILL every daemon of NODE (a crash).
    Kill {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// Node name or id.
        node: String,
    },
    /// SIGTERM every daemon of NODE (a clean stop), SIGKILL after 10 s.
    Stop {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// Node name or id.
        node: String,
    },
    /// SIGSTOP every daemon of NODE (a frozen host).
    Pause {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// Node name or id.
        node: String,
    },
    /// SIGCONT every daemon of NODE.
    Resume {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// Node name or id.
        node: String,
    },
    /// Stop everything the lab started; removes nothing outside DIR.
    Down {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clusterlab: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(dir: &Path) -> Result<LabState, String> {
    LabState::load(dir).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Status { dir, json } => {
            let lab = load(&dir)?;
            if json {
                println!("{}", clusterlab::report::status_json(&lab));
            } else {
                print!("{}", clusterlab::report::status_table(&lab));
            }
        }
        Cmd::Kill { dir, node } => signal_node(&dir, &node, Signal::SIGKILL)?,
        Cmd::Pause { dir, node } => signal_node(&dir, &node, Signal::SIGSTOP)?,
        Cmd::Resume { dir, node } => signal_node(&dir, &node, Signal::SIGCONT)?,
        Cmd::Stop { dir, node } => {
            let mut lab = load(&dir)?;
            let n = lab
                .node_mut(&node)
                .ok_or_else(|| format!("no node {node} in this lab"))?;
            for rec in n.daemons.values() {
                rec.signal(Signal::SIGCONT);
                rec.stop(Duration::from_secs(10));
            }
            n.daemons.clear();
            lab.save().map_err(|e| e.to_string())?;
        }
        Cmd::Down { dir } => {
            let mut lab = load(&dir)?;
            for n in &mut lab.nodes {
                for rec in n.daemons.values() {
                    rec.signal(Signal::SIGCONT);
                    rec.stop(Duration::from_secs(10));
                }
                n.daemons.clear();
            }
            lab.save().map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn signal_node(dir: &Path, node: &str, sig: Signal) -> Result<(), String> {
    let lab = load(dir)?;
    let n = lab
        .node(node)
        .ok_or_else(|| format!("no node {node} in this lab"))?;
    let sent = n.daemons.values().filter(|rec| rec.signal(sig)).count();
    if sent == 0 {
        return Err(format!("node {node} has no running daemon"));
    }
    if sig == Signal::SIGKILL {
        n.daemons.values().for_each(|rec| rec.kill_and_wait());
    }
    Ok(())
}
