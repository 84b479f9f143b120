//! The I/O the two tools share: asking rgmanagerd and cmand, the terminal's width and the
//! local time zone. Everything else in [`super`] is pure.

use clusterio::{call_blocking, ClientError};
use libcluster::ipc::cman::{self, CmanNode, CmanRequest, CmanResponse, CmanStatus, NodeState};
use libcluster::ipc::rgmanager::{self, RgMember, RgRequest, RgResponse, RgStatus};
use std::path::Path;
use std::time::Duration;

/// Status queries: both daemons answer from memory.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks rgmanagerd for its snapshot.
pub fn rg_status(runtime_dir: &Path) -> Result<RgStatus, ClientError> {
    let socket = clusterio::socket_path(runtime_dir, rgmanager::DAEMON);
    match call_blocking::<RgRequest, RgResponse>(&socket, &RgRequest::Status, QUERY_TIMEOUT)? {
        RgResponse::Status(s) => Ok(*s),
        _ => Err(ClientError::Closed),
    }
}

/// Asks cmand for its status and node list.
pub fn cman_view(runtime_dir: &Path) -> Result<(CmanStatus, Vec<CmanNode>), ClientError> {
    let socket = clusterio::socket_path(runtime_dir, cman::DAEMON);
    let mut client = clusterio::BlockingClient::<CmanRequest, CmanResponse>::connect(&socket)?;
    let status = match client.call(&CmanRequest::Status, QUERY_TIMEOUT)? {
        CmanResponse::Status(s) => *s,
        _ => return Err(ClientError::Closed),
    };
    let nodes = match client.call(&CmanRequest::Nodes, QUERY_TIMEOUT)? {
        CmanResponse::Nodes(n) => n,
        _ => return Err(ClientError::Closed),
    };
    Ok((status, nodes))
}

/// The snapshot clustat shows when rgmanagerd does not answer: cmand's members, none
/// flagged rgmanager, and no services.
pub fn status_from_cman(status: &CmanStatus, nodes: &[CmanNode]) -> RgStatus {
    let members = nodes
        .iter()
        .map(|n| RgMember {
            name: n.name.clone(),
            id: n.id,
            online: n.state == NodeState::Member,
            local: n.id != 0 && n.id == status.node_id,
            rgmanager: false,
            master: false,
            qdisk: n.id == 0,
            estranged: false,
        })
        .collect();
    RgStatus {
        cluster_name: status.cluster_name.clone(),
        cluster_id: status.cluster_id,
        generation: status.generation,
        quorate: status.quorate,
        local_node_id: status.node_id,
        locked: false,
        members,
        services: Vec::new(),
    }
}

/// What the system said, as `perror` prints it (`No such file or directory`).
pub fn os_reason(e: &ClientError) -> String {
    match e {
        ClientError::Connect { source, .. } | ClientError::Io(source) => {
            match source.raw_os_error() {
                Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
                None => source.to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// The local time zone's offset from UTC at `unix_s`, from the C library (TZ,
/// /etc/localtime); 0 if it cannot tell.
pub fn local_utc_offset(unix_s: i64) -> i32 {
    let t: libc::time_t = unix_s;
    // SAFETY: tm is plain data, so all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers come from live references; localtime_r (unlike localtime) writes
    // only into the tm we pass.
    let filled = unsafe { libc::localtime_r(&t, &mut tm) };
    if filled.is_null() {
        return 0;
    }
    i32::try_from(tm.tm_gmtoff).unwrap_or(0)
}

/// The terminal's width if stdout is one (`None` otherwise).
pub fn terminal_columns() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: winsize is plain data, so all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the live struct we pass; fd 1 is stdout.
    let rc = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
    if rc == 0 && ws.ws_col > 0 {
        Some(usize::from(ws.ws_col))
    } else {
        Some(super::clustat::DEFAULT_COLUMNS)
    }
}

/// The current Unix time in seconds.
pub fn now_unix_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
