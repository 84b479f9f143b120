//! Manual fencing: `fence_manual` (an agent fenced runs) and `fence_ack_manual` (the
//! administrator's answer), talking to fenced's local API.
//!
//! ```text
//!  fenced --nodename=N--> fence_manual: lock N; print where N stands (cmand, fenced) and
//!                         what to do; poll fenced every second
//!                           |  N's fencing completed (IsFenced = Fenced, or a new record)
//!                           |     -> "Success: N acknowledged", exit 0
//!                           '- timeout (default 60 s) -> exit 1 (fenced retries)
//!  admin: fence_ack_manual N -> fenced up? N known? N a victim? -> "Continue [NO/absolutely]?"
//!                           -> FenceRequest::Acknowledge{N} -> "Done"
//! ```

use super::metadata::{self, AgentInfo};
use super::options::{self, standard, ParamSpec, UsageError};
use super::power::read_options;
use clusterio::{call_blocking, socket_path, ClientError};
use libcluster::ipc::cman::{self, CmanNode, CmanRequest, CmanResponse};
use libcluster::ipc::fence::{
    self, FenceNodeInfo, FenceRecord, FenceRequest, FenceResponse, FenceState,
};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one question to a daemon may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Between two polls of fenced.
const POLL: Duration = Duration::from_secs(1);

fn manual_params() -> Vec<ParamSpec> {
    let nodename = ParamSpec {
        short: Some('n'),
        required: true,
        ..standard("nodename")
    };
    vec![
        nodename,
        standard("action").with_default("off"),
        standard("timeout"),
        standard("verbose"),
        standard("help"),
        standard("version"),
    ]
}

const MANUAL_INFO: AgentInfo = AgentInfo {
    name: "fence_manual",
    shortdesc: "Fence agent that asks an administrator",
    longdesc: "fence_manual asks the administrator to power the node off or cut it from shared storage \
               and to confirm with fence_ack_manual NODE; it waits for that acknowledgement (timeout \
               seconds, then fails so that fenced retries).",
    vendor_url: None,
    actions: &["off", "reboot", "metadata", "validate-all"],
};

/// Finds a node by name (case-insensitive) or decimal id.
fn matches(name: &str, id: u32, wanted: &str) -> bool {
    name.eq_ignore_ascii_case(wanted) || wanted.parse::<u32>().ok() == Some(id)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (no time zone database needed).
pub fn format_unix(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn describe_record(r: &FenceRecord) -> String {
    format!(
        "{} by node {} ({})",
        format_unix(r.time_unix_s),
        r.master,
        r.how.as_str()
    )
}

/// The administrator's request: where the victim stands and what to do.
pub fn describe(
    node: &str,
    cman: Result<Option<&CmanNode>, String>,
    fenced: Result<Option<&FenceNodeInfo>, String>,
    timeout: Duration,
) -> String {
    let mut s = format!("fence_manual: CRIT: node {node} must be fenced by hand.\n");
    s.push_str(&match cman {
        Ok(Some(n)) => {
            let since = n
                .joined_unix_s
                .map(|t| format!(", in the view since {}", format_unix(t)))
                .unwrap_or_default();
            format!(
                "  membership (cmand): {} (node id {}) is {}, incarnation {}{since}\n",
                n.name,
                n.id,
                n.state.word(),
                n.incarnation
            )
        }
        Ok(None) => format!("  membership (cmand): no node {node} in the configuration\n"),
        Err(e) => format!("  membership (cmand): unknown ({e})\n"),
    });
    s.push_str(&match fenced {
        Ok(Some(f)) => format!(
            "  fence domain (fenced): {}{}; last fenced: {}\n",
            if f.victim {
                "waiting to be fenced"
            } else {
                "not a victim"
            },
            if f.member { ", domain member" } else { "" },
            f.last.as_ref().map_or("never".to_owned(), describe_record)
        ),
        Ok(None) => format!("  fence domain (fenced): no node {node}\n"),
        Err(e) => format!("  fence domain (fenced): unknown ({e})\n"),
    });
    s.push_str(&format!(
        "  Make sure {node} is powered off or cut from shared storage, then run: fence_ack_manual {node}\n\
         \x20 Waiting {} s for the acknowledgement; after that this attempt fails and fenced retries.\n",
        timeout.as_secs()
    ));
    s
}

/// Whether fenced shows the node's fencing done: `IsFenced` said so, or a fencing record
/// newer than the one seen at start appeared.
pub fn acknowledged(
    initial: Option<&FenceRecord>,
    row: Option<&FenceNodeInfo>,
    is_fenced: Option<&FenceState>,
) -> Option<FenceRecord> {
    if let Some(FenceState::Fenced(r)) = is_fenced {
        return Some(r.clone());
    }
    let last = row?.last.as_ref()?;
    (Some(last) != initial).then(|| last.clone())
}

fn cman_node(dir: &Path, node: &str) -> Result<Option<CmanNode>, String> {
    match call_blocking::<CmanRequest, CmanResponse>(
        &socket_path(dir, cman::DAEMON),
        &CmanRequest::Nodes,
        CALL_TIMEOUT,
    ) {
        Ok(CmanResponse::Nodes(nodes)) => Ok(nodes
            .into_iter()
            .find(|n| n.id != 0 && matches(&n.name, n.id, node))),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

fn fenced_node(path: &Path, node: &str) -> Result<Option<FenceNodeInfo>, ClientError> {
    match call_blocking::<FenceRequest, FenceResponse>(
        path,
        &FenceRequest::Nodes { node: None },
        CALL_TIMEOUT,
    )? {
        FenceResponse::Nodes(rows) => Ok(rows.into_iter().find(|r| matches(&r.name, r.node, node))),
        _ => Ok(None),
    }
}

/// Holds `<dir>/fence_manual.<node>.lock` while one fence_manual asks about a node.
fn try_lock(dir: &Path, node: &str) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let safe: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("fence_manual.{safe}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ok()?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
}

/// `fence_manual`'s whole life; returns the exit code.
pub fn manual_main(
    args: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let params = manual_params();
    let fail = |err: &mut dyn Write, e: UsageError| {
        let _ = writeln!(err, "{e}");
        1
    };
    let opts = match read_options(MANUAL_INFO.name, &params, args, stdin, out, err) {
        Ok(Some(o)) => o,
        Ok(None) => return 0,
        Err(e) => return fail(err, e),
    };
    let action = options::value(&opts, &params, "action")
        .unwrap_or("off")
        .to_ascii_lowercase();
    match action.as_str() {
        "metadata" | "manpage" => {
            let _ = write!(out, "{}", metadata::render(&MANUAL_INFO, &params));
            return 0;
        }
        "off" | "reboot" | "validate-all" => {}
        other => {
            return fail(
                err,
                UsageError(format!("Failed: Unrecognised action '{other}'")),
            )
        }
    }
    let Some(node) = opts
        .given("nodename")
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
    else {
        return fail(
            err,
            UsageError(
                "Failed: You have to enter the node name (nodename=NODE on stdin, or -n NODE)"
                    .into(),
            ),
        );
    };
    let timeout = match options::seconds(&opts, &params, "timeout") {
        Ok(t) => t,
        Err(e) => return fail(err, e),
    };
    if action == "validate-all" {
        return 0;
    }
    clusterio::logging::init("fenced", opts.verbose > 0);
    let dir = clusterio::runtime_dir(None);
    let fenced_sock = socket_path(&dir, fence::DAEMON);
    let start = Instant::now();
    let lock = try_lock(&dir, &node);
    let cman = cman_node(&dir, &node);
    let first = fenced_node(&fenced_sock, &node).map_err(|e| e.to_string());
    let initial = first
        .as_ref()
        .ok()
        .and_then(|r| r.as_ref())
        .and_then(|r| r.last.clone());
    if lock.is_some() {
        tracing::error!(node = %node, "fencing needs an administrator: run fence_ack_manual {node} once the node is off");
        let text = describe(
            &node,
            cman.as_ref().map(Option::as_ref).map_err(Clone::clone),
            first.as_ref().map(Option::as_ref).map_err(Clone::clone),
            timeout,
        );
        let _ = write!(err, "{text}");
    } else {
        tracing::warn!(node = %node, "another fence_manual is already asking about this node; waiting for the same acknowledgement");
    }
    let incarnation = cman
        .as_ref()
        .ok()
        .and_then(|n| n.as_ref())
        .map(|n| (n.id, n.incarnation))
        .filter(|(_, inc)| *inc > 0);
    let mut reported_down = false;
    loop {
        let row = match fenced_node(&fenced_sock, &node) {
            Ok(r) => r,
            Err(e) => {
                if !reported_down {
                    tracing::warn!(error = %e, "fenced is not answering; still waiting");
                    reported_down = true;
                }
                None
            }
        };
        let state = incarnation.and_then(|(id, incarnation)| {
            match call_blocking::<FenceRequest, FenceResponse>(
                &fenced_sock,
                &FenceRequest::IsFenced {
                    node: id,
                    incarnation,
                },
                CALL_TIMEOUT,
            ) {
                Ok(FenceResponse::Fenced(s)) => Some(s),
                _ => None,
            }
        });
        if let Some(r) = acknowledged(initial.as_ref(), row.as_ref(), state.as_ref()) {
            tracing::info!(node = %node, how = r.how.as_str(), "fencing acknowledged");
            let _ = writeln!(
                out,
                "Success: {node} fenced ({}, {})",
                r.how.as_str(),
                describe_record(&r)
            );
            return 0;
        }
        if start.elapsed() >= timeout {
            let _ = writeln!(
                err,
                "Failed: no acknowledgement for {node} within {} s; fenced will retry",
                timeout.as_secs()
            );
            return 1;
        }
        std::thread::sleep(
            POLL.min(timeout.saturating_sub(start.elapsed()))
                .max(Duration::from_millis(50)),
        );
    }
}

/// `fence_ack_manual`'s command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckArgs {
    /// The node, by name or id.
    pub node: String,
    /// Skip the question (`-y`, `--yes`).
    pub yes: bool,
    /// `-r`/`--runtime-dir`.
    pub runtime_dir: Option<PathBuf>,
}

/// The usage line of `fence_ack_manual`.
pub const ACK_USAGE: &str = "usage: fence_ack_manual [-y|--yes] [-r|--runtime-dir DIR] [-n] NODE";

/// Parses `fence_ack_manual`'s arguments (without the program name). `Ok(None)` = `-h`.
pub fn parse_ack_args(args: &[String]) -> Result<Option<AckArgs>, String> {
    let (mut node, mut yes, mut dir) = (None, false, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "-y" | "--yes" => yes = true,
            "-n" => node = Some(it.next().ok_or("option -n requires a node name")?.clone()),
            "-r" | "--runtime-dir" => {
                dir = Some(PathBuf::from(
                    it.next()
                        .ok_or("option --runtime-dir requires a directory")?,
                ))
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s if node.is_none() => node = Some(s.to_owned()),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let node = node.ok_or("no node name given")?;
    Ok(Some(AckArgs {
        node,
        yes,
        runtime_dir: dir,
    }))
}

/// `fence_ack_manual`'s whole life; returns the exit code.
pub fn ack_main(
    args: &[String],
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let a = match parse_ack_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            let _ = writeln!(out, "{ACK_USAGE}");
            return 0;
        }
        Err(e) => {
            let _ = writeln!(err, "fence_ack_manual: {e}\n{ACK_USAGE}");
            return 1;
        }
    };
    let path = socket_path(
        &clusterio::runtime_dir(a.runtime_dir.as_deref()),
        fence::DAEMON,
    );
    let row = match fenced_node(&path, &a.node) {
        Ok(Some(r)) => r,
        Ok(None) => {
            let _ = writeln!(
                err,
                "fence_ack_manual: node {} is not in the cluster configuration",
                a.node
            );
            return 1;
        }
        Err(ClientError::Connect { .. }) => {
            let _ = writeln!(
                err,
                "fence_ack_manual: fenced is not running (no answer on {})",
                path.display()
            );
            return 1;
        }
        Err(e) => {
            let _ = writeln!(err, "fence_ack_manual: cannot ask fenced: {e}");
            return 1;
        }
    };
    if !row.victim {
        let _ = writeln!(
            err,
            "fence_ack_manual: node {} is not waiting to be fenced; nothing to acknowledge",
            row.name
        );
        return 1;
    }
    let _ = writeln!(out, "About to override fencing for {}.", row.name);
    let _ = writeln!(
        out,
        "Improper use of this command can cause severe file system damage."
    );
    let _ = writeln!(
        out,
        "Make sure {} is powered off or cut from shared storage first.\n",
        row.name
    );
    if !a.yes {
        let _ = write!(out, "Continue [NO/absolutely]? ");
        let _ = out.flush();
        let mut answer = String::new();
        let _ = stdin.read_line(&mut answer);
        if answer.trim() != "absolutely" {
            let _ = writeln!(out, "Aborted.");
            return 1;
        }
    }
    match call_blocking::<FenceRequest, FenceResponse>(
        &path,
        &FenceRequest::Acknowledge {
            node: row.name.clone(),
        },
        CALL_TIMEOUT,
    ) {
        Ok(_) => {
            let _ = writeln!(out, "Done");
            0
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "fence_ack_manual: fenced refused the acknowledgement: {e}"
            );
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcluster::ipc::cman::NodeState;
    use libcluster::ipc::fence::FenceHow;

    fn record(t: i64) -> FenceRecord {
        FenceRecord {
            node: 2,
            incarnation: 5,
            master: 1,
            how: FenceHow::Override,
            method: None,
            device: None,
            time_unix_s: t,
        }
    }

    fn row(last: Option<FenceRecord>) -> FenceNodeInfo {
        FenceNodeInfo {
            node: 2,
            name: "node2".into(),
            member: false,
            victim: last.is_none(),
            last,
        }
    }

    #[test]
    fn unix_times_format_as_utc_dates() {
        assert_eq!(format_unix(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_unix(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn only_a_new_record_or_is_fenced_counts_as_acknowledged() {
        let old = record(100);
        assert_eq!(
            acknowledged(Some(&old), Some(&row(Some(old.clone()))), None),
            None
        );
        assert_eq!(
            acknowledged(None, Some(&row(None)), Some(&FenceState::Pending)),
            None
        );
        assert_eq!(
            acknowledged(Some(&old), Some(&row(Some(record(200)))), None),
            Some(record(200))
        );
        assert_eq!(
            acknowledged(None, None, Some(&FenceState::Fenced(record(300)))),
            Some(record(300))
        );
    }

    #[test]
    fn the_request_says_where_the_node_stands_and_what_to_run() {
        let n = CmanNode {
            id: 2,
            name: "node2".into(),
            state: NodeState::Dead,
            incarnation: 7,
            joined_unix_s: None,
            votes: 1,
            expected_votes: 3,
            addresses: vec![],
        };
        let f = row(None);
        let text = describe("node2", Ok(Some(&n)), Ok(Some(&f)), Duration::from_secs(60));
        assert!(
            text.contains("node2 (node id 2) is Dead, incarnation 7"),
            "{text}"
        );
        assert!(
            text.contains("waiting to be fenced; last fenced: never"),
            "{text}"
        );
        assert!(text.contains("then run: fence_ack_manual node2"), "{text}");
        let text = describe(
            "node9",
            Err("cannot connect".into()),
            Ok(None),
            Duration::from_secs(5),
        );
        assert!(
            text.contains("membership (cmand): unknown (cannot connect)"),
            "{text}"
        );
    }

    #[test]
    fn ack_arguments_accept_the_old_dash_n_and_a_yes_flag() {
        let v = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse_ack_args(&v("-n node2")).unwrap().unwrap().node,
            "node2"
        );
        let a = parse_ack_args(&v("-y -r /tmp/x node3")).unwrap().unwrap();
        assert!(a.yes && a.runtime_dir == Some(PathBuf::from("/tmp/x")));
        assert!(parse_ack_args(&v("")).is_err());
        assert!(parse_ack_args(&v("a b")).is_err());
        assert_eq!(parse_ack_args(&v("--help")).unwrap(), None);
    }

    #[test]
    fn fence_manual_without_a_node_is_a_usage_error_and_metadata_works() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = manual_main(
            &[],
            &mut "agent=fence_manual\n".as_bytes(),
            &mut out,
            &mut err,
        );
        assert_eq!(code, 1);
        assert!(String::from_utf8_lossy(&err).contains("Please use '-h' for usage"));
        let code = manual_main(
            &["-o".into(), "metadata".into()],
            &mut std::io::empty(),
            &mut out,
            &mut err,
        );
        assert_eq!(code, 0);
        assert!(String::from_utf8_lossy(&out).contains("<parameter name=\"nodename\""));
    }
}
