//! `cman_tool`: status and administration of the local cmand, with the original tool's
//! command line, output layouts, messages and exit codes (spec/cman-qdisk.md §1.7-1.9).
//!
//! ```text
//!  argv ──parse()──▶ Cli ──run()──▶ CmanRequest ──<runtime dir>/cmand.sock──▶ cmand
//!                                   CmanResponse ──render::*──▶ stdout
//!  failures: `cman_tool: <message>` on stderr, exit 1; `-t` expiring: exit 2
//! ```
//!
//! Options are parsed like the original's getopt: options and words may come in any
//! order, short options cluster (`-aF id`), `remove`/`force` are words. The exact syntax
//! and every decision where we differ is in docs/cman_tool.md.

mod args;

use args::{die, parse, usage, Cli, Failure, Op, Parsed};
use clusterio::{BlockingClient, ClientError};
use cmand::render::{self, Field, NodesOpts};
use libcluster::ipc::cman::{
    CmanNode, CmanRequest, CmanResponse, CmanStatus, MembershipState, CMAN_PROTOCOL_VERSION, DAEMON,
};
use libcluster::wire::{write_key_file, ClusterKey, KEY_LEN_GENERATED};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Where `keygen` writes without a FILE argument (cman's key file path).
const DEFAULT_KEY_FILE: &str = "/etc/cluster/cman_authkey";
/// Status and node queries: cmand answers these from memory.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests that go through the cluster (leave asks local clients first, reload
/// distributes the file).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `wait` and `leave -w` look again (the original: once a second).
const POLL_INTERVAL: Duration = Duration::from_millis(250);

type Client = BlockingClient<CmanRequest, CmanResponse>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse(&args) {
        Ok(Parsed::Help(op)) => {
            print!("{}", usage(op));
            Ok(())
        }
        Ok(Parsed::Version) => {
            println!(
                "cman_tool {} (cman protocol {CMAN_PROTOCOL_VERSION})",
                env!("CARGO_PKG_VERSION")
            );
            println!("Licensed under the {}.", env!("CARGO_PKG_LICENSE"));
            Ok(())
        }
        Ok(Parsed::Run(cli)) => {
            for warning in &cli.warnings {
                eprintln!("{warning}");
            }
            run(&cli)
        }
        Err(failure) => Err(failure),
    };
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::TimedOut) => {
            eprintln!("{}", Failure::TimedOut);
            ExitCode::from(2)
        }
        Err(Failure::Reported) => ExitCode::FAILURE,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let socket =
        clusterio::socket_path(&clusterio::runtime_dir(cli.runtime_dir.as_deref()), DAEMON);
    match cli.op {
        Some(Op::Status) => {
            let status = query_status(&mut connect(&socket)?, "Error getting cluster info")?;
            if cli.json {
                print_json(render::status_json(&status))
            } else {
                print!("{}", render::status(&status));
                Ok(())
            }
        }
        Some(Op::Nodes) => show_nodes(cli, &socket),
        Some(Op::Version) if cli.reload => {
            let mut client = connect(&socket)?;
            match call(&mut client, &CmanRequest::ReloadConfig, CHANGE_TIMEOUT, "Not reloading")? {
                CmanResponse::ConfigVersion(v) if cli.debug > 0 => {
                    println!("Configuration successfully updated or already running (config {v})");
                }
                CmanResponse::ConfigVersion(_) | CmanResponse::Done => {}
                _ => return Err(unexpected("Not reloading")),
            }
            Ok(())
        }
        Some(Op::Version) => {
            let status = query_status(&mut connect(&socket)?, "can't get version")?;
            print!("{}", render::version(&status));
            Ok(())
        }
        Some(Op::Leave) => leave(cli, &socket),
        Some(Op::Kill) => kill(cli, &socket),
        Some(Op::Expected) => {
            let votes = cli
                .expected
                .ok_or_else(|| die("no expected votes given: use -e <votes>"))?;
            let mut client = connect(&socket)?;
            let request = CmanRequest::SetExpected { votes };
            call(&mut client, &request, CHANGE_TIMEOUT, "can't set expected votes")?;
            Ok(())
        }
        Some(Op::Wait) => wait(cli, &socket),
        Some(Op::Keygen) => keygen(cli),
        Some(Op::Join) => Err(die(
            "cmand joins the cluster when it starts: start the cmand service instead of 'cman_tool join'",
        )),
        Some(Op::Votes) => Err(die(
            "changing votes at runtime is not supported: edit <clusternode votes> in cluster.conf and run 'cman_tool version -r'",
        )),
        Some(Op::Services) => Err(die(
            "'cman_tool services' is not supported: cmand has no group_tool",
        )),
        Some(Op::Debug) => Err(die(
            "'cman_tool debug' is not supported: set RUST_LOG for cmand instead",
        )),
        None => Err(die("no operation specified")),
    }
}

fn connect(socket: &Path) -> Result<Client, Failure> {
    Client::connect(socket).map_err(|e| client_failure(e, ""))
}

/// The original's messages for a connection it could not open; `context: reason` for a
/// request the daemon refused or failed.
fn client_failure(e: ClientError, context: &str) -> Failure {
    match e {
        ClientError::Connect { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            die("Cannot open connection to cman, permission denied.")
        }
        ClientError::Connect { .. } => die("Cannot open connection to cman, is it running ?"),
        ClientError::Denied { .. } => die("Cannot open connection to cman, permission denied."),
        ClientError::Timeout { .. } => Failure::TimedOut,
        other => die(format!("{context}: {}", reason(&other))),
    }
}

/// Why the daemon said no, for a human: its own message for its own codes, the code's
/// name with the message for the generic ones, the client's words for everything else.
fn reason(e: &ClientError) -> String {
    match e {
        ClientError::Daemon { code, message } if code.name().is_none() => message.clone(),
        other => other.to_string(),
    }
}

fn unexpected(context: &str) -> Failure {
    die(format!("{context}: unexpected answer from cmand"))
}

fn call(
    client: &mut Client,
    request: &CmanRequest,
    timeout: Duration,
    context: &str,
) -> Result<CmanResponse, Failure> {
    client
        .call(request, timeout)
        .map_err(|e| client_failure(e, context))
}

fn query_status(client: &mut Client, context: &str) -> Result<CmanStatus, Failure> {
    match call(client, &CmanRequest::Status, QUERY_TIMEOUT, context)? {
        CmanResponse::Status(status) => Ok(*status),
        _ => Err(unexpected(context)),
    }
}

fn print_json(text: Result<String, serde_json::Error>) -> Result<(), Failure> {
    let text = text.map_err(|e| die(format!("cannot encode JSON: {e}")))?;
    print!("{text}");
    Ok(())
}

fn show_nodes(cli: &Cli, socket: &Path) -> Result<(), Failure> {
    let format: Option<Vec<Field>> = cli.format.as_deref().map(|spec| {
        let (fields, unknown) = render::parse_fields(spec);
        for word in unknown {
            eprintln!("cman_tool: ignoring unknown -F field '{word}'");
        }
        fields
    });
    let opts = NodesOpts {
        addresses: cli.addresses,
        names: cli.names.clone(),
        format,
        utc_offset_s: local_utc_offset,
    };
    let mut client = connect(socket)?;
    let context = "cman_get_nodes failed";
    let list: Vec<CmanNode> = match call(&mut client, &CmanRequest::Nodes, QUERY_TIMEOUT, context)?
    {
        CmanResponse::Nodes(list) => list,
        _ => return Err(unexpected(context)),
    };
    if cli.json {
        print_json(render::nodes_json(&list, &opts))
    } else {
        print!("{}", render::nodes(&list, &opts));
        Ok(())
    }
}

/// The local time zone's offset from UTC at `unix_s`, from the C library (which reads TZ
/// and /etc/localtime); 0 if it cannot tell.
fn local_utc_offset(unix_s: i64) -> i32 {
    let Some(t) = libc::time_t::try_from(unix_s).ok() else {
        return 0;
    };
    // SAFETY: `tm` is plain data for which all-zero bytes are a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers come from live references, and localtime_r (unlike localtime)
    // writes only into the `tm` we pass; a null return means failure and leaves us at 0.
    let filled = unsafe { libc::localtime_r(&t, &mut tm) };
    if filled.is_null() {
        return 0;
    }
    i32::try_from(tm.tm_gmtoff).unwrap_or(0)
}

/// `-t` as a deadline; `None` waits forever.
fn deadline(cli: &Cli) -> Option<Instant> {
    (cli.timeout_s > 0).then(|| Instant::now() + Duration::from_secs(u64::from(cli.timeout_s)))
}

/// Sleeps one poll interval, or fails with `TimedOut` once `deadline` has passed.
fn pause_until(deadline: Option<Instant>) -> Result<(), Failure> {
    let now = Instant::now();
    match deadline {
        Some(d) if now >= d => Err(Failure::TimedOut),
        Some(d) => {
            std::thread::sleep(POLL_INTERVAL.min(d - now));
            Ok(())
        }
        None => {
            std::thread::sleep(POLL_INTERVAL);
            Ok(())
        }
    }
}

/// `wait [-q] [-t secs]`: polls the status until this node is in a view (and quorate with
/// `-q`). Like the original it needs cmand running when it starts; a daemon that goes away
/// meanwhile is waited for.
fn wait(cli: &Cli, socket: &Path) -> Result<(), Failure> {
    let deadline = deadline(cli);
    let mut client = Some(connect(socket)?);
    loop {
        if client.is_none() {
            client = Client::connect(socket).ok();
        }
        if let Some(c) = client.as_mut() {
            match c.call(&CmanRequest::Status, QUERY_TIMEOUT) {
                Ok(CmanResponse::Status(s)) => {
                    let member = s.state == MembershipState::ClusterMember;
                    if member && (s.quorate || !cli.quorate) {
                        return Ok(());
                    }
                }
                Ok(_) => return Err(unexpected("Error getting cluster info")),
                // The daemon restarting, or slow: look again on a new connection.
                Err(_) => client = None,
            }
        }
        pause_until(deadline)?;
    }
}

/// `leave [-w] [-t secs] [remove] [force]`.
///
/// Without `-w` a refusal is fatal. With `-w` a refused leave is asked again every poll
/// (the help text's "wait and keep trying"), and once accepted the tool waits until
/// cmand's socket stops answering.
fn leave(cli: &Cli, socket: &Path) -> Result<(), Failure> {
    let context = "Error leaving cluster";
    let request = CmanRequest::Leave {
        remove: cli.remove,
        force: cli.force,
    };
    let mut client = connect(socket)?;
    if !cli.wait {
        return match client.call(&request, CHANGE_TIMEOUT) {
            // cmand hung up before answering: it went away, which is what was asked.
            Ok(_) | Err(ClientError::Closed) => Ok(()),
            Err(e) => Err(client_failure(e, context)),
        };
    }
    let deadline = deadline(cli);
    loop {
        match client.call(&request, CHANGE_TIMEOUT) {
            Ok(_) => break,
            Err(e @ (ClientError::Denied { .. } | ClientError::Connect { .. })) => {
                return Err(client_failure(e, context))
            }
            // Refused (clients busy) or the connection went: the daemon may be leaving.
            Err(_) => {}
        }
        pause_until(deadline)?;
        match Client::connect(socket) {
            Ok(c) => client = c,
            Err(_) => return Ok(()),
        }
    }
    drop(client);
    while Client::connect(socket).is_ok() {
        pause_until(deadline)?;
    }
    Ok(())
}

/// `kill -n NAME...`: each name on its own; a refusal is reported and the next name tried.
fn kill(cli: &Cli, socket: &Path) -> Result<(), Failure> {
    if cli.names.is_empty() {
        return Err(die("No node name specified"));
    }
    let mut client = connect(socket)?;
    let mut failed = false;
    for name in &cli.names {
        let request = CmanRequest::Kill { node: name.clone() };
        match client.call(&request, CHANGE_TIMEOUT) {
            Ok(_) => {}
            Err(e @ ClientError::Daemon { .. }) => {
                eprintln!("Can't kill node {name} : {}", reason(&e));
                failed = true;
            }
            Err(e) => return Err(client_failure(e, "kill node failed")),
        }
    }
    if failed {
        Err(Failure::Reported)
    } else {
        Ok(())
    }
}

/// `keygen [-f] [FILE]`: 64 bytes from the kernel's random source, written with mode 0600.
fn keygen(cli: &Cli) -> Result<(), Failure> {
    let path = cli
        .key_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_FILE));
    if !cli.overwrite && path.symlink_metadata().is_ok() {
        return Err(die(format!(
            "{} already exists; use -f to replace it (every node then needs the new key)",
            path.display()
        )));
    }
    let mut bytes = vec![0u8; KEY_LEN_GENERATED];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| die(format!("cannot read /dev/urandom: {e}")))?;
    let key = ClusterKey::from_bytes(bytes).map_err(|e| die(format!("cannot make a key: {e}")))?;
    write_key_file(&path, &key).map_err(|e| die(format!("cannot write the key: {e}")))?;
    println!(
        "Wrote a new {KEY_LEN_GENERATED}-byte cluster key to {} (mode 0600).",
        path.display()
    );
    println!("Copy it to the same path on every node of the cluster before starting cmand there.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_read_like_the_original() {
        let refused = ClientError::Connect {
            path: PathBuf::from("/x"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(
            client_failure(refused, "x").to_string(),
            "cman_tool: Cannot open connection to cman, is it running ?"
        );
        let denied = ClientError::Denied {
            message: "root only".into(),
        };
        assert_eq!(
            client_failure(denied, "x").to_string(),
            "cman_tool: Cannot open connection to cman, permission denied."
        );
        let timeout = ClientError::Timeout {
            after: Duration::from_secs(1),
        };
        assert_eq!(client_failure(timeout, "x"), Failure::TimedOut);
    }

    #[test]
    fn daemon_refusals_carry_the_daemons_reason() {
        let refused = ClientError::Daemon {
            code: libcluster::ipc::ErrorCode(1003),
            message: "no node named n9".into(),
        };
        assert_eq!(
            client_failure(refused, "Error leaving cluster").to_string(),
            "cman_tool: Error leaving cluster: no node named n9"
        );
        let busy = ClientError::Daemon {
            code: libcluster::ipc::ErrorCode::BUSY,
            message: "too many connections".into(),
        };
        assert_eq!(reason(&busy), "daemon busy: too many connections");
    }
}
