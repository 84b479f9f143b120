//! `clusterlab`: build and drive a multi-node cluster on this machine.
//!
//! See docs/lab.md. Every process the lab starts is recorded in `DIR/lab.json`; the fault
//! commands signal only those records, by pid and start time.

use clap::{Parser, Subcommand};
use clusterlab::lab::{self, faults};
use clusterlab::power;
use clusterlab::state::LabState;
use nix::sys::signal::{SigSet, Signal};
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
    /// Build a lab from a cluster.conf and start every node; returns once all nodes are in
    /// one quorate view.
    Up {
        /// The cluster.conf to build from.
        #[arg(long)]
        config: PathBuf,
        /// The lab directory (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Run cmand with --realtime (mlockall, SCHED_RR; needs root).
        #[arg(long)]
        realtime: bool,
        /// Seconds to wait for one quorate view.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Nodes in network namespaces (the default when root).
        #[arg(long, conflicts_with = "loopback")]
        netns: bool,
        /// Nodes on loopback addresses, even as root.
        #[arg(long)]
        loopback: bool,
        /// Keep running while the lab is up; SIGINT/SIGTERM tear it down. If this process
        /// is killed, `clusterlab gc` tears the lab down.
        #[arg(long)]
        hold: bool,
    },
    /// The reference deployment end to end: two hosts, two VMs, clustat, a live migration,
    /// a power cut with fencing and failover, then everything torn down (needs root and QEMU).
    Demo {
        /// The lab directory (default: a fresh one under the temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Start the daemons of NODE that are not running (a fresh boot).
    Start {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// Node name or id.
        node: String,
    },
    /// Run a command as NODE: its runtime dir, config and the project's binaries first on PATH.
    Exec {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// Node name or id.
        node: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
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
    /// Measure the cluster: `membership` (formation, failure detection, idle cost).
    Bench {
        /// What to measure: membership, fencing, failover, migrate.
        what: String,
        /// Where the benchmark's labs live (default: a directory under the temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Cluster sizes.
        #[arg(long, value_delimiter = ',', default_value = "2,3,5,9,16")]
        sizes: Vec<u32>,
        /// Repetitions per size.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Seconds of the idle window.
        #[arg(long, default_value_t = 30)]
        idle_secs: u64,
        /// Run cmand with --realtime.
        #[arg(long)]
        realtime: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// failover: the `<fence_daemon post_fail_delay>` of the lab's copy of the
        /// reference configuration, seconds (the reference says 5).
        #[arg(long, default_value_t = 0)]
        post_fail_delay: u64,
    },
    /// A Jepsen-style run: a lab, a group-messaging workload, a seeded nemesis schedule,
    /// then convergence, merged histories and a verdict (docs/testing.md). Exits non-zero
    /// on any violation or failure to converge.
    Jepsen {
        /// The cluster.conf to build the lab from.
        #[arg(long)]
        config: PathBuf,
        /// How long the nemesis runs: 60s, 30m, 2h.
        #[arg(long, default_value = "60s")]
        time: String,
        /// Seed of the nemesis schedule (the same seed replays the same faults).
        #[arg(long)]
        seed: u64,
        /// Faults to draw from: kill, pause, partition, power.
        #[arg(long, default_value = "kill,pause")]
        nemesis: String,
        /// The lab directory (default: a fresh one under the temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the lab directory after a passing run.
        #[arg(long)]
        keep: bool,
        /// Run fenced too: failed nodes are fenced through the lab's switch, and the
        /// fencing checks (F1, F2, F3) join the verdict.
        #[arg(long)]
        fencing: bool,
        /// Run the whole stack with rgmanagerd, a VM workload and a QEMU observer: the VM
        /// checks (R1, R1h, F1vm, R2) join the verdict.
        #[arg(long)]
        vms: bool,
    },
    /// Run the checkers on an existing lab's history and print the verdict: M1, Q1, M3, N1,
    /// N2; F1-F3 when fenced ran; R1, R1h, F1vm, R2 when rgmanagerd ran.
    Check {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Stop everything the lab started (nodes, power switch) and remove its network;
    /// removes nothing outside DIR.
    Down {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Inject a network fault (netns labs): isolate NODE | halves | bridge A B C |
    /// oneway FROM TO | partition N,N N,N | cut-host [N,N] | heal. Replaces the fault in force.
    Nemesis {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// The fault and its nodes (names or ids).
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        fault: Vec<String>,
    },
    /// Turn a node's outlet off, on, or off and on, through the lab's APC switch.
    Power {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// on, off or reboot.
        action: String,
        /// Node name or id.
        node: String,
    },
    /// Run by the APC switch on every outlet change: off kills every process of the node
    /// on OUTLET (a power cut), on starts its daemons (a fresh boot).
    PowerHook {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// on or off.
        action: String,
        /// The outlet.
        outlet: u32,
    },
    /// Tear down labs whose owning process died, and remove leftover lab networks.
    Gc,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Exec { dir, node, cmd } = &cli.cmd {
        return exec(dir, node, cmd);
    }
    match run(cli) {
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
        Cmd::Up {
            config,
            dir,
            realtime,
            timeout,
            netns,
            loopback,
            hold,
        } => {
            let opts = lab::UpOptions {
                config,
                dir,
                bin_dir: lab::default_bin_dir(),
                realtime,
                timeout: Duration::from_secs(timeout),
            };
            let network = match (netns, loopback) {
                (true, _) => lab::Network::Netns,
                (_, true) => lab::Network::Loopback,
                _ => lab::Network::Auto,
            };
            let lab_opts = lab::LabOptions {
                network,
                owned: hold,
                stack: lab::Stack::Full,
            };
            let mut state = lab::up_with(&opts, &lab_opts)?;
            print!("{}", clusterlab::report::status_table(&state));
            if hold {
                hold_until_signalled(&mut state)?;
            }
        }
        Cmd::Bench {
            what,
            dir,
            sizes,
            runs,
            idle_secs,
            realtime,
            json,
            post_fail_delay,
        } => {
            let base = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("clb-{}", std::process::id()))
            });
            if what == "fencing" {
                let n = sizes
                    .first()
                    .copied()
                    .filter(|_| sizes.len() == 1)
                    .unwrap_or(3);
                let b = clusterlab::bench::fencing(&base, n, runs)?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&b).map_err(|e| e.to_string())?
                    );
                } else {
                    print!("{}", clusterlab::bench::fencing_table(&b));
                }
                let _ = std::fs::remove_dir_all(&base);
                return Ok(());
            }
            if what == "failover" || what == "migrate" {
                let text = if what == "failover" {
                    eprintln!(
                        "clusterlab bench failover: post_fail_delay={post_fail_delay} s in the lab's configuration (the reference says 5; --post-fail-delay SECS)"
                    );
                    let b = clusterlab::bench::failover(&base, runs, post_fail_delay)?;
                    if json {
                        serde_json::to_string_pretty(&b).map_err(|e| e.to_string())? + "\n"
                    } else {
                        clusterlab::bench::failover_table(&b)
                    }
                } else {
                    let b = clusterlab::bench::migrate(&base, runs)?;
                    if json {
                        serde_json::to_string_pretty(&b).map_err(|e| e.to_string())? + "\n"
                    } else {
                        clusterlab::bench::migrate_table(&b)
                    }
                };
                print!("{text}");
                let _ = std::fs::remove_dir_all(&base);
                return Ok(());
            }
            if what != "membership" {
                return Err(format!(
                    "unknown benchmark {what}; known: membership, fencing, failover, migrate"
                ));
            }
            let b = clusterlab::bench::membership(
                &base,
                &sizes,
                runs,
                Duration::from_secs(idle_secs),
                realtime,
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&b).map_err(|e| e.to_string())?
                );
            } else {
                print!("{}", clusterlab::bench::membership_table(&b));
            }
            let _ = std::fs::remove_dir_all(&base);
        }
        Cmd::Jepsen {
            config,
            time,
            seed,
            nemesis,
            dir,
            keep,
            fencing,
            vms,
        } => {
            use clusterlab::jepsen;
            let mut opts = jepsen::JepsenOptions::new(config, seed, jepsen::parse_duration(&time)?);
            opts.nemesis = jepsen::schedule::parse_kinds(&nemesis)?;
            opts.dir = dir;
            opts.keep = keep;
            if fencing {
                opts.stack = lab::Stack::Fencing;
            }
            if vms {
                opts.vms = true;
                opts.stack = lab::Stack::Full;
            }
            let (verdict, dir) = jepsen::run(&opts)?;
            print!("{}", verdict.table());
            println!("  lab dir     {}", dir.display());
            if !verdict.passed() {
                return Err(format!(
                    "verdict FAIL; replay the schedule with --seed {seed}"
                ));
            }
        }
        Cmd::Demo { dir } => clusterlab::demo::run(dir)?,
        Cmd::Check { dir } => {
            let verdict = clusterlab::jepsen::check_dir(&dir)?;
            print!("{}", verdict.table());
            if !verdict.passed() {
                return Err("verdict FAIL".into());
            }
        }
        Cmd::Start { dir, node } => faults::start(&mut load(&dir)?, &node)?,
        Cmd::Exec { .. } => unreachable!("handled in main"),
        Cmd::Status { dir, json } => {
            let lab = load(&dir)?;
            if json {
                println!("{}", clusterlab::report::status_json(&lab));
            } else {
                print!("{}", clusterlab::report::status_table(&lab));
            }
        }
        Cmd::Kill { dir, node } => faults::kill(&mut load(&dir)?, &node)?,
        Cmd::Pause { dir, node } => faults::pause(&mut load(&dir)?, &node)?,
        Cmd::Resume { dir, node } => faults::resume(&mut load(&dir)?, &node)?,
        Cmd::Stop { dir, node } => faults::stop(&mut load(&dir)?, &node)?,
        Cmd::Down { dir } => {
            load(&dir)?;
            lab::down_dir(&dir)?;
        }
        Cmd::Nemesis { dir, fault } => {
            let lab = load(&dir)?;
            let fault = faults::parse_network_fault(&lab, &fault)?;
            let drops = faults::network(&lab, &fault)?;
            let links: Vec<String> = drops.links().map(|(f, t)| format!("{f}->{t}")).collect();
            println!(
                "{fault}: dropping {}",
                if links.is_empty() {
                    "nothing".to_string()
                } else {
                    links.join(" ")
                }
            );
        }
        Cmd::Power { dir, action, node } => {
            let lab = load(&dir)?;
            let action: power::PowerAction = action.parse()?;
            power::power(&lab, &node, action).map_err(|e| e.to_string())?;
        }
        Cmd::PowerHook {
            dir,
            action,
            outlet,
        } => {
            let on = match action.as_str() {
                "on" => true,
                "off" => false,
                other => return Err(format!("unknown hook action {other:?}: on or off")),
            };
            power::hook(&dir, on, outlet)?;
        }
        Cmd::Gc => {
            let report = lab::gc()?;
            for dir in &report.labs {
                println!("tore down lab {}", dir.display());
            }
            for name in &report.names {
                println!("removed {name}");
            }
        }
    }
    Ok(())
}

/// `up --hold`: waits for SIGINT or SIGTERM, then tears the lab down.
fn hold_until_signalled(lab: &mut LabState) -> Result<(), String> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().map_err(|e| e.to_string())?;
    println!("holding the lab; SIGINT or SIGTERM tears it down");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let sig = set.wait().map_err(|e| e.to_string())?;
    eprintln!("clusterlab: {sig}: tearing the lab down");
    lab::down(lab)
}

/// Runs `cmd` as `node` and returns its exit code; its output passes through unchanged.
fn exec(dir: &Path, node: &str, cmd: &[String]) -> ExitCode {
    let result = load(dir).and_then(|lab| {
        let n = lab
            .node(node)
            .ok_or_else(|| format!("no node {node} in this lab"))?;
        lab::node_command(&lab, n, &cmd[0])
            .args(&cmd[1..])
            .status()
            .map_err(|e| format!("{}: {e}", cmd[0]))
    });
    match result {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            let code = status
                .code()
                .or(status.signal().map(|s| 128 + s))
                .unwrap_or(1);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("clusterlab: {e}");
            ExitCode::from(127)
        }
    }
}
