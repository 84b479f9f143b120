//! `clusvcadm`: service administration with the original tool's flags, messages and exit
//! codes (spec/rgmanager.md §5.1).
//!
//! ```text
//!  argv ──tools::clusvcadm::parse_args──▶ Cli
//!  rgmanagerd ── Status ──▶ service name (as given, service:, vm:), -m member (exact or
//!                           closest match) ── progress line ── Action ──▶ ActionResult
//!  ──tools::clusvcadm::outcome──▶ "Success" [+ "<svc> is now running on <owner>"], exit code
//! ```

use clusterio::{call_blocking, ClientError};
use libcluster::ipc::rgmanager::{
    resolve_service, strerror, RgRequest, RgResponse, RgStatus, DAEMON, RG_EFAIL, RG_EPERM,
};
use libcluster::rgmanager::Request;
use libcluster::NodeId;
use rgmanagerd::tools::client::{cman_view, rg_status};
use rgmanagerd::tools::clusvcadm::{
    exit_code, lock_outcome, match_member, outcome, parse_args, progress_line, ActionArgs, Cli,
    Command, Parsed, Verb,
};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Lock requests are answered at once.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// An action may be forwarded and wait for its owner: up to 60 × 10 s in the original.
const ACTION_TIMEOUT: Duration = Duration::from_secs(660);

/// stdout unless `-q` closed it.
struct Out {
    quiet: bool,
}

impl Out {
    fn print(&self, s: &str) {
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(s.as_bytes());
            let _ = out.flush();
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match parse_args(&args, env!("CARGO_PKG_VERSION")) {
        Parsed::Exit {
            stdout,
            stderr,
            code,
        } => {
            eprint!("{stderr}");
            print!("{stdout}");
            code
        }
        Parsed::Run(cli) => run(&cli),
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

fn run(cli: &Cli) -> u8 {
    let out = Out { quiet: cli.quiet };
    let dir = clusterio::runtime_dir(cli.runtime_dir.as_deref());
    match &cli.command {
        Command::Action(a) => action(&out, &dir, a),
        lock => {
            let request = match lock {
                Command::Lock => RgRequest::Lock,
                Command::Unlock => RgRequest::Unlock,
                _ => RgRequest::QueryLock,
            };
            let socket = clusterio::socket_path(&dir, DAEMON);
            let locked =
                match call_blocking::<RgRequest, RgResponse>(&socket, &request, LOCK_TIMEOUT) {
                    Ok(RgResponse::Locked(l)) => Some(l),
                    Ok(_) => None,
                    Err(ClientError::Connect { .. }) => {
                        out.print(unreachable(&dir));
                        None
                    }
                    Err(_) => None,
                };
            let (text, code) = lock_outcome(lock, locked);
            out.print(&text);
            code
        }
    }
}

/// The original's words for a daemon it could not reach: cman first, then rgmanager.
fn unreachable(dir: &Path) -> &'static str {
    match cman_view(dir) {
        Err(_) => "Could not connect to cluster service\n",
        Ok(_) => "Could not connect to resource group manager\n",
    }
}

fn action(out: &Out, dir: &Path, a: &ActionArgs) -> u8 {
    let status = match rg_status(dir) {
        Ok(s) => s,
        Err(_) => {
            let msg = unreachable(dir);
            if msg.contains("resource group manager") {
                let svc = original_name(&a.service);
                out.print(&progress_line(a.verb, &svc, a.node.as_deref()));
            }
            out.print(msg);
            return 1;
        }
    };
    let service = resolve_service(&a.service, status.services.iter().map(|s| s.name.as_str()))
        .unwrap_or_else(|| original_name(&a.service));
    let target = match &a.node {
        None => None,
        Some(word) => {
            let (lines, matched) = match_member(&status.members, word);
            for l in lines {
                out.print(&format!("{l}\n"));
            }
            let Some(m) = matched else {
                return 1;
            };
            if a.verb == Verb::Migrate && !m.online {
                out.print(&format!("'{}' is offline\n", m.name));
                return 1;
            }
            Some(m)
        }
    };
    let request = build_request(a, &status, target.as_ref().map(|m| m.id));
    out.print(&progress_line(
        a.verb,
        &service,
        target.as_ref().map(|m| m.name.as_str()),
    ));
    let body = match request {
        Some(request) => RgRequest::Action {
            service: service.clone(),
            request,
            follow_domain: a.follow_domain,
        },
        None => RgRequest::Convalesce {
            service: service.clone(),
        },
    };
    let socket = clusterio::socket_path(dir, DAEMON);
    let (code, owner) = match call_blocking::<RgRequest, RgResponse>(&socket, &body, ACTION_TIMEOUT)
    {
        Ok(RgResponse::ActionResult { code, owner_after }) => (code, owner_after),
        Ok(_) => (RG_EFAIL, None),
        Err(ClientError::Denied { .. }) => (RG_EPERM, None),
        Err(ClientError::Connect { .. }) => {
            out.print("Could not connect to resource group manager\n");
            return 1;
        }
        Err(ClientError::Daemon { message, .. }) => {
            out.print(&format!("{}\n", strerror(RG_EFAIL)));
            eprintln!("clusvcadm: {message}");
            return exit_code(RG_EFAIL);
        }
        Err(e) => {
            out.print("\n");
            eprintln!("Error receiving reply! ({e})");
            return 1;
        }
    };
    let (text, exit) = outcome(
        a.verb,
        &service,
        target.as_ref().map(|m| m.name.as_str()),
        code,
        owner.as_deref(),
    );
    out.print(&text);
    exit
}

/// The original's rule for a name it could not look up: `service:` before a bare name.
fn original_name(word: &str) -> String {
    if word.contains(':') {
        word.to_string()
    } else {
        format!("service:{word}")
    }
}

/// The core request for an action (`None` for `-c`, which has its own request). A plain
/// `-e` names the local node; `-F` leaves the choice to the failover domain.
fn build_request(a: &ActionArgs, status: &RgStatus, target: Option<u32>) -> Option<Request> {
    let target = target.map(NodeId);
    let local = (status.local_node_id != 0).then_some(NodeId(status.local_node_id));
    Some(match a.verb {
        Verb::Enable if a.follow_domain => Request::Enable { target: None },
        Verb::Enable => Request::Enable {
            target: target.or(local),
        },
        Verb::Disable => Request::Disable,
        Verb::Stop => Request::Stop,
        Verb::Relocate => Request::Relocate { target },
        // parse_args refuses -M without -m, and the member matched.
        Verb::Migrate => Request::Migrate {
            target: target.unwrap_or(NodeId(0)),
        },
        Verb::Restart => Request::Restart,
        Verb::Freeze => Request::Freeze,
        Verb::Unfreeze => Request::Unfreeze,
        Verb::Convalesce => return None,
    })
}
