//! `fence_tool <join|leave|ls|dump> [-n] [-t s] [-q s] [-m s] [-w s] [-V] [-h]
//! [--runtime-dir DIR] [--config FILE] [--json]`: the command line, the `ls` layouts and
//! the leave check (spec/fencing.md §1.10).

use super::getopt::{items, Item, UsageError};
use libcluster::ipc::fence::{FenceDomainInfo, FenceNodeInfo};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The subcommand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Join the fence domain.
    Join,
    /// Leave it.
    Leave,
    /// Show the domain.
    Ls,
    /// Print fenced's log buffer.
    Dump,
}

/// A wait in seconds: `None` forever (`-1`), `Some(0)` no wait.
pub type WaitSecs = Option<u32>;

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCli {
    /// The subcommand (`None` only with `-h`/`-V`).
    pub op: Option<Op>,
    /// `-n`: `ls` lists every node.
    pub nodes: bool,
    /// `-t`: retry the cmand connection this long.
    pub cman_retry: WaitSecs,
    /// `-q`: join waits this long for quorum, then goes on.
    pub quorum_wait: WaitSecs,
    /// `-m`: join waits this long until every cluster.conf node is a member.
    pub member_wait: WaitSecs,
    /// `-w`: wait this long for the join or leave to complete.
    pub complete_wait: WaitSecs,
    /// `-h`.
    pub help: bool,
    /// `-V`.
    pub version: bool,
    /// `--json`: `ls` as JSON.
    pub json: bool,
    /// `--runtime-dir DIR`.
    pub runtime_dir: Option<PathBuf>,
    /// `--config FILE` (for `-m`).
    pub config: Option<PathBuf>,
}

/// Reads the command line (without the program name).
pub fn parse(args: &[String]) -> Result<ToolCli, UsageError> {
    let mut cli = ToolCli {
        op: None,
        nodes: false,
        cman_retry: Some(0),
        quorum_wait: Some(0),
        member_wait: Some(0),
        complete_wait: Some(0),
        help: false,
        version: false,
        json: false,
        runtime_dir: None,
        config: None,
    };
    let long_flags = ["json", "help", "version"];
    let long_args = ["runtime-dir", "config"];
    for item in items(args, "nVh", "tqmw", &long_flags, &long_args)? {
        match item {
            Item::Short('n', _) => cli.nodes = true,
            Item::Short('V', _) => cli.version = true,
            Item::Short('h', _) => cli.help = true,
            Item::Short(c, Some(v)) => {
                let secs = seconds(c, &v)?;
                match c {
                    't' => cli.cman_retry = secs,
                    'q' => cli.quorum_wait = secs,
                    'm' => cli.member_wait = secs,
                    _ => cli.complete_wait = secs,
                }
            }
            Item::Long(l, _) if l == "json" => cli.json = true,
            Item::Long(l, _) if l == "help" => cli.help = true,
            Item::Long(l, _) if l == "version" => cli.version = true,
            Item::Long(l, v) if l == "runtime-dir" => cli.runtime_dir = v.map(PathBuf::from),
            Item::Long(l, v) if l == "config" => cli.config = v.map(PathBuf::from),
            Item::Word(w) if cli.op.is_none() => {
                cli.op = Some(match w.as_str() {
                    "join" => Op::Join,
                    "leave" => Op::Leave,
                    "ls" => Op::Ls,
                    "dump" => Op::Dump,
                    _ => return Err(UsageError(format!("unknown command {w}"))),
                })
            }
            Item::Word(w) => return Err(UsageError(format!("unexpected argument {w}"))),
            other => return Err(UsageError(format!("unhandled option {other:?}"))),
        }
    }
    if cli.op.is_none() && !cli.help && !cli.version {
        return Err(UsageError("no operation specified".into()));
    }
    Ok(cli)
}

fn seconds(opt: char, value: &str) -> Result<WaitSecs, UsageError> {
    match value.trim().parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(Some(n as u32)),
        _ => Err(UsageError(format!(
            "-{opt} wants seconds (0 or more, or -1 for no limit), not '{value}'"
        ))),
    }
}

/// The help text (stdout, exit 0).
pub fn usage() -> &'static str {
    "Usage:

fence_tool <join|leave|ls|dump> [options]

Actions:
  join               Join the default fence domain
  leave              Leave the default fence domain
  ls                 Display the fence domain
  dump               Print the debug buffer of fenced

Options:
  -n                 Show the list of nodes (ls)
  -t <seconds>       Retry the cman connection for <seconds> (-1 forever) [0]
  -q <seconds>       join: wait for quorum up to <seconds> (-1 forever) [0]
  -m <seconds>       join: wait up to <seconds> until all cluster.conf nodes are members [0]
  -w <seconds>       Wait up to <seconds> for the join or leave to complete (-1 forever) [0]
  --json             ls: print the domain and its nodes as JSON
  --runtime-dir DIR  Where fenced's and cmand's sockets are
  --config FILE      cluster.conf for -m (default: $CLUSTER_CONF, else /etc/cluster/cluster.conf)
  -V                 Print program version information, then exit
  -h                 Print this help, then exit
"
}

/// `fence_tool ls` (and `-n` when `nodes` is given), byte for byte the original layout.
pub fn render_ls(domain: &FenceDomainInfo, nodes: Option<&[FenceNodeInfo]>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "fence domain");
    let _ = writeln!(s, "member count  {}", domain.members.len());
    let _ = writeln!(s, "victim count  {}", domain.victims.len());
    let _ = writeln!(s, "victim now    {}", domain.current_victim);
    let _ = writeln!(s, "master nodeid {}", domain.master);
    let _ = writeln!(s, "wait state    {}", domain.wait_state.as_str());
    let mut members = domain.members.clone();
    members.sort_unstable();
    s.push_str("members       ");
    for id in members {
        let _ = write!(s, "{id} ");
    }
    s.push('\n');
    if let Some(nodes) = nodes {
        s.push_str("all nodes\n");
        for n in nodes {
            let (master, how) = n
                .last
                .as_ref()
                .map_or((0, "none"), |r| (r.master, r.how.as_str()));
            let _ = writeln!(
                s,
                "nodeid {} member {} victim {} last fence master {master} how {how}",
                n.node,
                u8::from(n.member),
                u8::from(n.victim),
            );
        }
    }
    s.push('\n');
    s
}

/// `fence_tool ls --json`: the fields of `ls` (same words: `wait_state` is `none`,
/// `how` is `agent`...), members and victims sorted, and the nodes when known (`null`
/// otherwise). Keys are sorted.
pub fn render_json(domain: &FenceDomainInfo, nodes: Option<&[FenceNodeInfo]>) -> String {
    use serde_json::json;
    let sorted = |ids: &[u32]| {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids
    };
    let nodes = nodes.map(|nodes| {
        nodes
            .iter()
            .map(|n| {
                let last = n.last.as_ref().map(|r| {
                    json!({
                        "master_nodeid": r.master,
                        "how": r.how.as_str(),
                        "method": r.method,
                        "device": r.device,
                        "incarnation": r.incarnation,
                        "time_unix_s": r.time_unix_s,
                    })
                });
                json!({
                    "nodeid": n.node,
                    "name": n.name,
                    "member": n.member,
                    "victim": n.victim,
                    "last_fence": last,
                })
            })
            .collect::<Vec<_>>()
    });
    let value = json!({
        "domain": {
            "joined": domain.joined,
            "member_count": domain.members.len(),
            "victim_count": domain.victims.len(),
            "victim_now": domain.current_victim,
            "master_nodeid": domain.master,
            "wait_state": domain.wait_state.as_str(),
            "members": sorted(&domain.members),
            "victims": sorted(&domain.victims),
        },
        "nodes": nodes,
    });
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
    s.push('\n');
    s
}

/// `fence_tool dump`: each `<unix seconds> <message>` line.
pub fn render_dump(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Why `leave` must refuse: one line per gfs/gfs2 mount in `mounts` (the text of
/// `/proc/mounts`) and per DLM lockspace in `lockspaces` (the names in `/sys/kernel/dlm`).
pub fn active_systems(mounts: &str, lockspaces: &[String]) -> Vec<String> {
    let mut out: Vec<String> = mounts
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (dev, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            matches!(fstype, "gfs" | "gfs2")
                .then(|| format!("found {fstype} file system mounted from {dev} on {dir}"))
        })
        .collect();
    let mut names = lockspaces.to_vec();
    names.sort();
    out.extend(
        names
            .iter()
            .map(|ls| format!("found dlm lockspace /sys/kernel/dlm/{ls}")),
    );
    out
}

/// The progress line printed every 10 s while `-w` waits.
pub fn waiting_line(op: Op) -> &'static str {
    match op {
        Op::Leave => "fence_tool: waiting for fenced to leave the fence group.",
        _ => "fence_tool: waiting for fenced to join the fence group.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcluster::ipc::fence::{FenceHow, FenceRecord, WaitState};

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn domain() -> FenceDomainInfo {
        FenceDomainInfo {
            joined: true,
            members: vec![3, 1, 2],
            victims: vec![],
            current_victim: 0,
            master: 1,
            wait_state: WaitState::None,
        }
    }

    fn nodes() -> Vec<FenceNodeInfo> {
        let record = |how| FenceRecord {
            node: 4,
            incarnation: 7,
            master: 1,
            how,
            method: Some("1".into()),
            device: Some("apc".into()),
            time_unix_s: 1_700_000_000,
        };
        vec![
            FenceNodeInfo {
                node: 1,
                name: "n1".into(),
                member: true,
                victim: false,
                last: None,
            },
            FenceNodeInfo {
                node: 2,
                name: "n2".into(),
                member: true,
                victim: false,
                last: Some(record(FenceHow::Override)),
            },
            FenceNodeInfo {
                node: 3,
                name: "n3".into(),
                member: true,
                victim: false,
                last: None,
            },
            FenceNodeInfo {
                node: 4,
                name: "n4".into(),
                member: false,
                victim: true,
                last: Some(record(FenceHow::Agent)),
            },
        ]
    }

    #[test]
    fn ls_matches_the_golden_file() {
        assert_eq!(
            render_ls(&domain(), None),
            include_str!("../../tests/data/ls.txt")
        );
    }

    #[test]
    fn ls_with_nodes_matches_the_golden_file() {
        let mut d = domain();
        d.victims = vec![4];
        d.current_victim = 4;
        d.wait_state = WaitState::Fencing;
        assert_eq!(
            render_ls(&d, Some(&nodes())),
            include_str!("../../tests/data/ls_nodes.txt")
        );
    }

    #[test]
    fn ls_json_matches_the_golden_file() {
        assert_eq!(
            render_json(&domain(), Some(&nodes()[..2])),
            include_str!("../../tests/data/ls.json")
        );
    }

    #[test]
    fn waits_parse_minus_one_as_forever_and_reject_other_negatives() {
        let cli = parse(&argv("join -w 20 -m45 -q -1")).unwrap();
        assert_eq!(cli.op, Some(Op::Join));
        assert_eq!(
            (
                cli.complete_wait,
                cli.member_wait,
                cli.quorum_wait,
                cli.cman_retry
            ),
            (Some(20), Some(45), None, Some(0))
        );
        assert!(parse(&argv("join -w -2")).is_err());
        assert!(parse(&argv("join -w x")).is_err());
        assert!(parse(&argv("frob")).is_err());
        assert!(parse(&argv("")).is_err());
        assert!(parse(&argv("ls ls")).is_err());
        let cli = parse(&argv("-n ls --json --runtime-dir /r")).unwrap();
        assert!(cli.nodes && cli.json);
        assert_eq!(cli.runtime_dir, Some(PathBuf::from("/r")));
        assert!(parse(&argv("-h")).unwrap().help);
    }

    #[test]
    fn leave_is_refused_for_gfs_mounts_and_lockspaces_only() {
        let mounts = "proc /proc proc rw 0 0\n/dev/sdb1 /mnt/a gfs2 rw 0 0\n/dev/sdc /mnt/b gfs rw 0 0\n/dev/sda1 / ext4 rw 0 0\n";
        assert_eq!(
            active_systems(mounts, &["rgmanager".into(), "clvmd".into()]),
            vec![
                "found gfs2 file system mounted from /dev/sdb1 on /mnt/a",
                "found gfs file system mounted from /dev/sdc on /mnt/b",
                "found dlm lockspace /sys/kernel/dlm/clvmd",
                "found dlm lockspace /sys/kernel/dlm/rgmanager",
            ]
        );
        assert!(active_systems("/dev/sda1 / ext4 rw 0 0\n", &[]).is_empty());
    }

    #[test]
    fn dump_prints_one_line_per_entry() {
        assert_eq!(render_dump(&["1 a".into(), "2 b".into()]), "1 a\n2 b\n");
        assert_eq!(
            waiting_line(Op::Leave),
            "fence_tool: waiting for fenced to leave the fence group."
        );
    }
}
