//! `ccs_tool update FILE`: check a new cluster.conf here, then hand it to cmand, which
//! distributes it through ordered messaging; every node writes it and every daemon reloads.
//!
//! ```text
//!  FILE ──config::load──▶ errors? ──yes──▶ FILE:LINE:COL diagnostics, exit 1, nothing sent
//!                           │ no
//!  cmand status ──▶ running version v1, quorate?   (refuse: v2 <= v1, or inquorate)
//!                           │
//!  ConfigUpdate{text} ──▶ ConfigVersion(v2) ──▶ "Config file updated from version v1 to v2"
//! ```
//!
//! The messages are the original ccs_tool's (RHEL 5) where it had one. Its other
//! subcommands (addnode, lsnode, ...) edited the file in place and are not offered: edit
//! cluster.conf, check it with ccs_config_validate, then run `ccs_tool update`.

use clusterio::{BlockingClient, ClientError};
use libcluster::config::{self, Severity};
use libcluster::ipc::cman::{CmanRequest, CmanResponse, CmanStatus, DAEMON};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Reading the running status: cmand answers from memory.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The update goes through the whole cluster before cmand answers.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(60);

type Client = BlockingClient<CmanRequest, CmanResponse>;

const USAGE: &str = "\
Usage:

ccs_tool [options] <command>

Options:
  -h                  Print this usage and exit.
  -V                  Print version information and exit.
  --runtime-dir DIR   Where cmand's socket is (default $CLUSTER_RUNTIME_DIR, else /run/cluster)

Commands:
  help                Print this usage and exit.
  update <xml file>   Check the file, then distribute it to every node of the cluster.
                      Its config_version must be greater than the running one.

The original's other commands (upgrade, addnode, delnode, addfence, delfence, lsnode,
lsfence, create, addnodeids) are not offered: edit cluster.conf, check it with
ccs_config_validate, then run 'ccs_tool update'.
";

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Version,
    Update {
        file: PathBuf,
        runtime_dir: Option<PathBuf>,
    },
}

/// Why the tool stops: the lines to print on stderr, exit 1.
#[derive(Debug, PartialEq, Eq)]
struct Failure(String);

fn fail(message: impl Into<String>) -> Failure {
    Failure(message.into())
}

fn parse(args: &[String]) -> Result<Command, Failure> {
    let mut runtime_dir = None;
    let mut words = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        match arg {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--runtime-dir" => {
                let dir = args
                    .get(i)
                    .ok_or_else(|| fail("ccs_tool: option '--runtime-dir' requires an argument"))?;
                runtime_dir = Some(PathBuf::from(dir));
                i += 1;
            }
            _ if arg.starts_with("--runtime-dir=") => {
                runtime_dir = Some(PathBuf::from(&arg["--runtime-dir=".len()..]));
            }
            "--" => {
                words.extend(args[i..].iter().cloned());
                break;
            }
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return Err(fail(format!(
                    "ccs_tool: unknown option {arg}\nPlease use '-h' for usage."
                )))
            }
            _ => words.push(arg.to_string()),
        }
    }
    match words.as_slice() {
        [] => Err(fail(
            "ccs_tool: no command specified\nPlease use '-h' for usage.",
        )),
        [help] if help == "help" => Ok(Command::Help),
        [update, file] if update == "update" => Ok(Command::Update {
            file: PathBuf::from(file),
            runtime_dir,
        }),
        [update, ..] if update == "update" => {
            Err(fail("ccs_tool: usage: ccs_tool update <xml file>"))
        }
        [other, ..] => Err(fail(format!(
            "ccs_tool: '{other}' is not supported: edit cluster.conf, check it with \
             ccs_config_validate, then run 'ccs_tool update <xml file>'"
        ))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse(&args) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            Ok(())
        }
        Ok(Command::Version) => {
            println!("ccs_tool {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Ok(Command::Update { file, runtime_dir }) => update(&file, runtime_dir.as_deref()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The reason a call failed, in the words an operator needs.
fn client_failure(e: ClientError) -> Failure {
    match e {
        ClientError::Connect { source, .. } => fail(format!(
            "Unable to connect to cmand: {source}; is it running ?"
        )),
        ClientError::Denied { .. } => fail(
            "Unable to honor update request: permission denied (root or the admin group only)\n\
             \nFailed to update config file.",
        ),
        ClientError::Daemon { code, message } if code.name().is_none() => fail(format!(
            "Unable to honor update request: {message}\n\nFailed to update config file."
        )),
        other => fail(format!(
            "Unable to honor update request: {other}\n\nFailed to update config file."
        )),
    }
}

fn update(file: &Path, runtime_dir: Option<&Path>) -> Result<(), Failure> {
    // The same checks as ccs_config_validate, with its FILE:LINE:COL diagnostics. The file
    // is read once, so what was checked is what is sent; `load` explains a file that cannot
    // be read or is not UTF-8.
    let text = std::fs::read_to_string(file).ok();
    let checked = match &text {
        Some(text) => config::parse(text, &file.display().to_string()),
        None => config::load(file),
    };
    let (parsed, diagnostics) = match checked {
        Ok(parsed) => {
            let warnings = parsed.warnings.clone();
            (Some(parsed), warnings)
        }
        Err(rejected) => (None, rejected.all().to_vec()),
    };
    for d in &diagnostics {
        eprintln!("{d}");
    }
    let Some(parsed) = parsed else {
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        return Err(fail(format!(
            "Unable to parse {}: {errors} error(s); nothing was sent",
            file.display()
        )));
    };
    let proposed = u64::from(parsed.config.config_version);
    let text = text.ok_or_else(|| fail(format!("Unable to read {}", file.display())))?;

    let socket = clusterio::socket_path(&clusterio::runtime_dir(runtime_dir), DAEMON);
    let mut client = Client::connect(&socket).map_err(client_failure)?;
    let running = match client.call(&CmanRequest::Status, QUERY_TIMEOUT) {
        Ok(CmanResponse::Status(status)) => *status,
        Ok(_) => {
            return Err(fail(
                "Unable to get current config_version: unexpected answer",
            ))
        }
        Err(e) => {
            return Err(fail(format!(
                "Unable to get current config_version: {}",
                client_failure(e).0
            )))
        }
    };
    check_update(&running, proposed)?;
    let request = CmanRequest::ConfigUpdate { text };
    match client.call(&request, UPDATE_TIMEOUT) {
        Ok(CmanResponse::ConfigVersion(v)) if v == proposed => {}
        Ok(CmanResponse::Done) => {}
        Ok(CmanResponse::ConfigVersion(v)) => {
            return Err(fail(format!(
                "Warning:: Simultaneous update requests detected.\n\
                 \x20 Old config version :: {}\n\
                 \x20 Proposed config version :: {proposed}\n\
                 \x20 Winning config version  :: {v}\n\n\
                 Check cluster.conf to ensure it contains the desired contents.",
                running.config_version
            )))
        }
        Ok(_) => return Err(fail("Unable to honor update request: unexpected answer")),
        Err(e) => return Err(client_failure(e)),
    }
    println!(
        "Config file updated from version {} to {proposed}\n\nUpdate complete.",
        running.config_version
    );
    Ok(())
}

/// The original's refusals, checked before anything is sent (cmand checks again).
fn check_update(running: &CmanStatus, proposed: u64) -> Result<(), Failure> {
    if proposed <= running.config_version {
        return Err(fail(format!(
            "Proposed updated config file does not have greater version number.\n\
             \x20 Current config_version :: {}\n\
             \x20 Proposed config_version:: {proposed}",
            running.config_version
        )));
    }
    if !running.quorate {
        return Err(fail(
            "Unable to honor update request.  Cluster is not quorate.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcluster::ipc::cman::MembershipState;
    use std::collections::BTreeMap;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn status(config_version: u64, quorate: bool) -> CmanStatus {
        CmanStatus {
            config_version,
            cluster_name: "c".into(),
            cluster_id: 1,
            state: MembershipState::ClusterMember,
            generation: 1,
            coordinator: Some(1),
            members: vec![1],
            expected_votes: 1,
            qdisk_votes: None,
            total_votes: 1,
            node_votes: 1,
            quorum: 1,
            quorate,
            active_subsystems: 0,
            two_node: false,
            disallowed: vec![],
            node_name: "a".into(),
            node_id: 1,
            incarnation: 1,
            multicast_addresses: vec![],
            node_addresses: vec![],
            uptime_s: 0,
            counters: BTreeMap::new(),
        }
    }

    #[test]
    fn update_takes_exactly_one_file() {
        assert_eq!(
            parse(&words("update /etc/cluster/cluster.conf")),
            Ok(Command::Update {
                file: PathBuf::from("/etc/cluster/cluster.conf"),
                runtime_dir: None
            })
        );
        assert!(parse(&words("update")).is_err());
        assert!(parse(&words("update a b")).is_err());
    }

    #[test]
    fn other_commands_are_refused_with_the_way_forward() {
        let Err(Failure(message)) = parse(&words("addnode n3")) else {
            panic!("addnode accepted")
        };
        assert!(message.contains("'addnode' is not supported"), "{message}");
        assert!(parse(&words("-x update f")).is_err());
        assert_eq!(parse(&words("help")), Ok(Command::Help));
        assert_eq!(parse(&words("update f -h")), Ok(Command::Help));
    }

    #[test]
    fn the_runtime_dir_flag_goes_anywhere() {
        assert_eq!(
            parse(&words("update f --runtime-dir /rt")),
            Ok(Command::Update {
                file: PathBuf::from("f"),
                runtime_dir: Some(PathBuf::from("/rt"))
            })
        );
    }

    #[test]
    fn a_version_not_above_the_running_one_is_refused_naming_both() {
        let Err(Failure(message)) = check_update(&status(7, true), 7) else {
            panic!("accepted")
        };
        assert!(message.contains("Current config_version :: 7"), "{message}");
        assert!(message.contains("Proposed config_version:: 7"), "{message}");
        assert!(check_update(&status(7, true), 8).is_ok());
    }

    #[test]
    fn an_inquorate_cluster_is_not_updated() {
        assert_eq!(
            check_update(&status(1, false), 2),
            Err(fail(
                "Unable to honor update request.  Cluster is not quorate."
            ))
        );
    }
}
