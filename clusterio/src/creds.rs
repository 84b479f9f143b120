//! Who is at the other end of a connection.

use libcluster::ipc::Peer;
use std::io;
use tokio::net::UnixStream;

/// The peer's credentials: uid, gid and pid from `SO_PEERCRED` (fixed when it connected),
/// supplementary groups from `/proc/<pid>/status`.
///
/// The groups are only taken when that file still shows the same effective uid and gid, so
/// a pid reused by another process cannot lend its groups; otherwise, or when the file
/// cannot be read, the peer's groups are just its gid (the safe direction: fewer rights).
pub fn peer_credentials(stream: &UnixStream) -> io::Result<Peer> {
    let cred = stream.peer_cred()?;
    let pid = cred.pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
    let (uid, gid) = (cred.uid(), cred.gid());
    // A small procfs read: it does not block on anything, so no spawn_blocking hop.
    let groups = (pid != 0)
        .then(|| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .flatten()
        .and_then(|status| groups_if_same_ids(&status, uid, gid))
        .unwrap_or_else(|| vec![gid]);
    Ok(Peer {
        pid,
        uid,
        gid,
        groups,
    })
}

/// The gid of the group named `name` (as in `<cman admin_group="NAME">`), from the system's
/// group database; `None` if there is no such group or the lookup failed.
pub fn group_id(name: &str) -> Option<u32> {
    match nix::unistd::Group::from_name(name) {
        Ok(group) => group.map(|g| g.gid.as_raw()),
        Err(e) => {
            tracing::warn!(group = name, error = %e, "cannot look up group");
            None
        }
    }
}

fn groups_if_same_ids(status: &str, uid: u32, gid: u32) -> Option<Vec<u32>> {
    let effective = |key: &str| {
        field(status, key)?
            .split_whitespace()
            .nth(1)?
            .parse::<u32>()
            .ok()
    };
    if effective("Uid:")? != uid || effective("Gid:")? != gid {
        return None;
    }
    parse_status_groups(status)
}

/// The supplementary groups listed on the `Groups:` line of a `/proc/<pid>/status` text;
/// `None` if there is no such line or it does not parse.
pub fn parse_status_groups(status: &str) -> Option<Vec<u32>> {
    field(status, "Groups:")?
        .split_whitespace()
        .map(|g| g.parse().ok())
        .collect()
}

fn field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|line| line.strip_prefix(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t4242\n\
        Uid:\t1000\t1001\t1000\t1001\nGid:\t100\t27\t100\t27\nFDSize:\t256\nGroups:\t4 24 27 100 \n";

    #[test]
    fn groups_line_parses_with_trailing_space() {
        assert_eq!(parse_status_groups(STATUS), Some(vec![4, 24, 27, 100]));
    }

    #[test]
    fn empty_groups_line_is_no_groups() {
        assert_eq!(parse_status_groups("Groups:\t\n"), Some(vec![]));
    }

    #[test]
    fn garbled_or_missing_groups_line_is_none() {
        assert_eq!(parse_status_groups("Groups:\t4 x\n"), None);
        assert_eq!(parse_status_groups("Name:\tbash\n"), None);
    }

    #[test]
    fn groups_are_used_only_when_the_effective_ids_match() {
        assert_eq!(
            groups_if_same_ids(STATUS, 1001, 27),
            Some(vec![4, 24, 27, 100])
        );
        // Real ids, or another process that took the pid, do not count.
        assert_eq!(groups_if_same_ids(STATUS, 1000, 100), None);
        assert_eq!(groups_if_same_ids(STATUS, 1001, 100), None);
    }

    #[test]
    fn group_names_resolve_to_their_gid() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-for-clusterio-tests"), None);
    }

    #[test]
    fn own_status_file_lists_our_groups() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(parse_status_groups(&status).is_some());
    }
}
