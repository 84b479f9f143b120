//! Real cmand processes on loopback: n1..n3 on 127.0.0.1..3 at one free UDP port, each with
//! its own runtime directory, config file and history, talking through the real sockets.
//!
//! Every test owns a temporary directory and the processes it started; the `Lab` guard
//! SIGKILLs them (by pid) and removes the directory even when the test fails. Bounds are
//! generous (tens of seconds) and nothing asserts how long anything took.

use clusterio::{BlockingClient, ClientError};
use libcluster::history::{Event, Record};
use libcluster::ipc::cman::{CmanNode, CmanRequest, CmanResponse, CmanStatus, NodeState, DAEMON};
use libcluster::membership::Msg;
use libcluster::wire::{self, ClusterKey, Header, MAGIC_MEMBERSHIP};
use libcluster::NodeId;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(30);
const CLUSTER: &str = "dlab";

/// Ports handed out in this process, so parallel tests never share one.
static PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A UDP port free on 127.0.0.1 to 127.0.0.4 right now.
fn free_port() -> u16 {
    for _ in 0..200 {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        let port = probe.local_addr().unwrap().port();
        let free_everywhere =
            (2..=4).all(|i| UdpSocket::bind(format!("127.0.0.{i}:{port}")).is_ok());
        if free_everywhere && PORTS.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no free UDP port on 127.0.0.1-4");
}

fn config_text(port: u16, version: u32, extra_cman: &str) -> String {
    let admin = if nix::unistd::geteuid().is_root() {
        String::new()
    } else {
        // Not root: let our own group make the write requests the tests need.
        let gid = nix::unistd::getgid();
        let group = nix::unistd::Group::from_gid(gid)
            .ok()
            .flatten()
            .expect("own group");
        format!(" admin_group=\"{}\"", group.name)
    };
    format!(
        "<?xml version=\"1.0\"?>\n<cluster name=\"{CLUSTER}\" config_version=\"{version}\">\n\
         \x20 <cman port=\"{port}\"{admin}{extra_cman}/>\n  <clusternodes>\n\
         \x20   <clusternode name=\"n1\" nodeid=\"1\"/>\n\
         \x20   <clusternode name=\"n2\" nodeid=\"2\"/>\n\
         \x20   <clusternode name=\"n3\" nodeid=\"3\"/>\n\
         \x20 </clusternodes>\n</cluster>\n"
    )
}

fn write_key(path: &Path, byte: u8) {
    std::fs::write(path, [byte; 48]).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

struct Lab {
    dir: PathBuf,
    port: u16,
    children: BTreeMap<String, Child>,
}

impl Lab {
    fn new(name: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("cmand-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let lab = Lab {
            dir,
            port,
            children: BTreeMap::new(),
        };
        write_key(&lab.key(), 7);
        std::fs::write(
            lab.dir.join("hosts"),
            "# test lab\n127.0.0.1 n1\n127.0.0.2 n2\n127.0.0.3 n3\n",
        )
        .unwrap();
        for n in ["n1", "n2", "n3"] {
            std::fs::create_dir_all(lab.dir.join(n)).unwrap();
            std::fs::write(lab.conf(n), config_text(port, 1, "")).unwrap();
        }
        lab
    }

    fn key(&self) -> PathBuf {
        self.dir.join("authkey")
    }

    fn conf(&self, node: &str) -> PathBuf {
        self.dir.join(node).join("cluster.conf")
    }

    fn runtime(&self, node: &str) -> PathBuf {
        self.dir.join(node).join("run")
    }

    fn history(&self, node: &str) -> PathBuf {
        self.dir.join(node).join("history.jsonl")
    }

    fn log(&self, node: &str) -> PathBuf {
        self.dir.join(node).join("cmand.log")
    }

    /// The command for `node` with the lab's environment.
    fn command(&self, node: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cmand"));
        cmd.arg("-f")
            .env("CLUSTER_CONF", self.conf(node))
            .env("CLUSTER_NODE_NAME", node)
            .env("CLUSTER_RUNTIME_DIR", self.runtime(node))
            .env("CLUSTER_KEYFILE", self.key())
            .env("CLUSTER_HOSTS", self.dir.join("hosts"))
            .env("CLUSTER_HISTORY", self.history(node))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn start(&mut self, node: &str) {
        let cmd = self.command(node);
        self.spawn(node, cmd);
    }

    fn spawn(&mut self, node: &str, mut cmd: Command) {
        let log = std::fs::File::create(self.log(node)).unwrap();
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn cmand");
        self.children.insert(node.to_string(), child);
    }

    fn signal(&mut self, node: &str, sig: Signal) {
        let child = &self.children[node];
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
    }

    /// Waits for `node` to exit and returns its status.
    fn wait_exit(&mut self, node: &str) -> ExitStatus {
        let deadline = Instant::now() + BOUND;
        let child = self.children.get_mut(node).unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.children.remove(node);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{node} did not exit\n{}",
                self.tail(node)
            );
            sleep(Duration::from_millis(20));
        }
    }

    fn tail(&self, node: &str) -> String {
        let text = std::fs::read_to_string(self.log(node)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(15);
        format!(
            "--- last lines of {node}'s log:\n{}",
            lines[from..].join("\n")
        )
    }

    fn call(&self, node: &str, req: &CmanRequest) -> Result<CmanResponse, ClientError> {
        let sock = clusterio::socket_path(&self.runtime(node), DAEMON);
        BlockingClient::connect(&sock)?.call(req, Duration::from_secs(5))
    }

    fn status(&self, node: &str) -> Result<CmanStatus, String> {
        match self.call(node, &CmanRequest::Status) {
            Ok(CmanResponse::Status(s)) => Ok(*s),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    fn nodes(&self, node: &str) -> Vec<CmanNode> {
        match self.call(node, &CmanRequest::Nodes) {
            Ok(CmanResponse::Nodes(n)) => n,
            other => panic!("nodes from {node}: {other:?}"),
        }
    }

    /// Waits until every observer reports the same view of exactly `members`, quorate as
    /// asked. Returns the last status of the first observer.
    fn wait_view(&self, observers: &[&str], members: &[u32], quorate: bool) -> CmanStatus {
        let deadline = Instant::now() + BOUND;
        loop {
            let seen: Vec<Result<CmanStatus, String>> =
                observers.iter().map(|o| self.status(o)).collect();
            let agreed = seen.iter().all(|s| {
                s.as_ref()
                    .is_ok_and(|s| s.members == members && s.quorate == quorate)
            }) && seen.windows(2).all(|w| match (&w[0], &w[1]) {
                (Ok(a), Ok(b)) => (a.generation, a.coordinator) == (b.generation, b.coordinator),
                _ => false,
            });
            if agreed {
                return seen.into_iter().next().unwrap().unwrap();
            }
            if Instant::now() > deadline {
                let mut msg = format!("no agreed view of {members:?} (quorate {quorate}):\n");
                for (o, s) in observers.iter().zip(&seen) {
                    match s {
                        Ok(s) => {
                            msg += &format!(
                                "{o}: generation {} members {:?} quorate {}\n",
                                s.generation, s.members, s.quorate
                            )
                        }
                        Err(e) => msg += &format!("{o}: {e}\n"),
                    }
                    msg += &self.tail(o);
                    msg.push('\n');
                }
                panic!("{msg}");
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + BOUND;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn counter(s: &CmanStatus, name: &str) -> u64 {
    *s.counters
        .get(name)
        .unwrap_or_else(|| panic!("no counter {name} in {:?}", s.counters))
}

#[test]
fn three_nodes_agree_on_a_quorate_view_and_survivors_agree_after_a_sigkill() {
    let mut lab = Lab::new("formation");
    for n in ["n1", "n2", "n3"] {
        lab.start(n);
    }
    let s = lab.wait_view(&["n1", "n2", "n3"], &[1, 2, 3], true);
    assert_eq!((s.node_name.as_str(), s.node_id), ("n1", 1));
    assert_eq!((s.expected_votes, s.total_votes, s.quorum), (3, 3, 2));
    assert_eq!(s.node_addresses, vec!["127.0.0.1".to_string()]);
    let rows = lab.nodes("n2");
    let summary: Vec<(u32, &str, NodeState, bool)> = rows
        .iter()
        .map(|r| (r.id, r.name.as_str(), r.state, r.joined_unix_s.is_some()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "n1", NodeState::Member, true),
            (2, "n2", NodeState::Member, true),
            (3, "n3", NodeState::Member, true),
        ]
    );
    assert_eq!(rows[2].addresses, vec!["127.0.0.3".to_string()]);

    lab.signal("n3", Signal::SIGKILL);
    lab.wait_exit("n3");
    let after = lab.wait_view(&["n1", "n2"], &[1, 2], true);
    assert!(after.generation > s.generation);
    let n3 = lab.nodes("n1").into_iter().find(|r| r.id == 3).unwrap();
    assert_eq!(
        (n3.state, n3.joined_unix_s),
        (NodeState::Dead, None),
        "{}",
        lab.tail("n1")
    );

    // Ordered group messaging end to end. n2 sends until n1 (whose join may be ordered after
    // n2's first messages) delivers one; every delivery n1 records, n2 records too, with the
    // same position and contents.
    for n in ["n1", "n2"] {
        let join = CmanRequest::GroupJoin {
            group: "fence".into(),
        };
        assert_eq!(lab.call(n, &join).unwrap(), CmanResponse::Done);
    }
    let mut sent = 0u32;
    lab.wait_for("a group message delivered on n1", || {
        sent += 1;
        let send = CmanRequest::GroupSend {
            group: "fence".into(),
            payload: format!("message {sent}").into_bytes(),
        };
        assert_eq!(lab.call("n2", &send).unwrap(), CmanResponse::Done);
        !deliveries(&lab, "n1").is_empty()
    });
    let on_n1 = deliveries(&lab, "n1");
    lab.wait_for(
        "n2 to deliver what n1 delivered, at the same positions",
        || {
            let on_n2 = deliveries(&lab, "n2");
            on_n1.iter().all(|d| on_n2.contains(d))
        },
    );
    // The test process holds the group on n2, so a plain leave is refused.
    let leave = CmanRequest::Leave {
        remove: false,
        force: false,
    };
    match lab.call("n2", &leave) {
        Err(ClientError::Daemon { code, message }) => {
            assert_eq!(code, cmand::codes::IN_USE);
            assert!(message.contains("fence"), "{message}");
        }
        other => panic!("leave with a held group was not refused: {other:?}"),
    }

    // A clean leave on SIGTERM: exit status 0, and the last node is alone and inquorate.
    lab.signal("n2", Signal::SIGTERM);
    assert_eq!(lab.wait_exit("n2").code(), Some(0), "{}", lab.tail("n2"));
    lab.wait_view(&["n1"], &[1], false);

    let history = std::fs::read_to_string(lab.history("n2")).unwrap();
    let events: Vec<Event> = history
        .lines()
        .map(|l| Record::from_line(l).unwrap().event)
        .collect();
    assert_eq!(events.first(), Some(&Event::Start));
    assert!(
        matches!(events.last(), Some(Event::Shutdown { .. })),
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::View { members, .. } if members.len() == 3)));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Quorum { quorate: true, .. })));
}

/// The group deliveries in `node`'s history: (generation, seq, from, crc).
fn deliveries(lab: &Lab, node: &str) -> Vec<(u64, u64, u32, u32)> {
    let text = std::fs::read_to_string(lab.history(node)).unwrap_or_default();
    text.lines()
        .filter_map(|l| match Record::from_line(l).ok()?.event {
            Event::Deliver {
                generation,
                seq,
                from,
                crc,
                ..
            } => Some((generation, seq, from, crc)),
            _ => None,
        })
        .collect()
}

/// Sends `frame` to n1 and n2 from `from` (an address that is no node's).
fn inject(sock: &UdpSocket, port: u16, frame: &[u8]) {
    for i in 1..=2 {
        sock.send_to(frame, format!("127.0.0.{i}:{port}")).unwrap();
    }
}

#[test]
fn wrong_keys_forgeries_and_garbage_change_nothing_and_are_counted() {
    let mut lab = Lab::new("security");
    lab.start("n1");
    lab.start("n2");
    let before = lab.wait_view(&["n1", "n2"], &[1, 2], true);

    // n3 with another key: a real daemon that can neither join nor disturb.
    write_key(&lab.dir.join("otherkey"), 9);
    let mut cmd = lab.command("n3");
    cmd.env("CLUSTER_KEYFILE", lab.dir.join("otherkey"));
    lab.spawn("n3", cmd);

    // Raw traffic from 127.0.0.4: garbage, a foreign magic, frames sealed with the right key
    // but claiming an unknown node, or n2 from the wrong address (a Leave that would
    // otherwise drop n2 from n1's view).
    let raw = UdpSocket::bind("127.0.0.4:0").unwrap();
    let key = ClusterKey::from_bytes(vec![7; 48]).unwrap();
    let cluster_id = wire::cluster_id_from_name(CLUSTER);
    let leave = wire::body::encode(&Msg::Leave { remove: true });
    let sealed = |sender: u32| {
        let h = Header::new(MAGIC_MEMBERSHIP, 10, cluster_id, NodeId(sender), u64::MAX);
        wire::seal(&h, &leave, &key)
    };
    let mut garbage = vec![0xa5u8; 300];
    garbage[..4].copy_from_slice(b"JUNK");
    for _ in 0..5 {
        inject(&raw, lab.port, b"short");
        inject(&raw, lab.port, &garbage);
        inject(&raw, lab.port, &sealed(9));
        inject(&raw, lab.port, &sealed(1));
        inject(&raw, lab.port, &sealed(2));
        let mut flipped = sealed(2);
        flipped[wire::HEADER_LEN] ^= 1; // the body: caught by the crc32
        inject(&raw, lab.port, &flipped);
    }

    lab.wait_for("n3's frames to be refused", || {
        lab.status("n1")
            .is_ok_and(|s| counter(&s, "drop_bad_mac") > 0)
            && lab
                .status("n3")
                .is_ok_and(|s| counter(&s, "drop_bad_mac") > 0)
    });
    lab.wait_for("the raw frames to be counted", || {
        lab.status("n1")
            .is_ok_and(|s| counter(&s, "drop_wrong_address") >= 5)
    });
    // Give the forgeries time to do harm, if they could: several heartbeat periods.
    sleep(Duration::from_millis(1500));
    for n in ["n1", "n2"] {
        let s = lab.status(n).unwrap();
        assert_eq!(
            (s.generation, s.coordinator, s.members.clone(), s.quorate),
            (before.generation, before.coordinator, vec![1, 2], true),
            "{n} changed view\n{}",
            lab.tail(n)
        );
        for c in [
            "drop_short",
            "drop_bad_magic",
            "drop_unknown_sender",
            "drop_wrong_address",
            "drop_own_id",
            "drop_checksum",
            "drop_bad_mac",
        ] {
            assert!(counter(&s, c) >= 1, "{n}: {c} = 0 in {:?}", s.counters);
        }
    }
    let n3 = lab.status("n3").unwrap();
    assert!(
        !n3.members.contains(&1) && !n3.members.contains(&2),
        "{n3:?}"
    );
    assert!(!n3.quorate);
}

#[test]
fn a_missing_or_readable_key_file_refuses_to_start() {
    let mut lab = Lab::new("nokey");
    let missing = lab.dir.join("no-such-key");
    let mut cmd = lab.command("n1");
    cmd.env("CLUSTER_KEYFILE", &missing);
    lab.spawn("n1", cmd);
    assert_eq!(lab.wait_exit("n1").code(), Some(1));
    let log = std::fs::read_to_string(lab.log("n1")).unwrap();
    assert!(
        log.contains(&format!("{} does not exist", missing.display()))
            && log.contains(&format!("cman_tool keygen {}", missing.display())),
        "{log}"
    );

    std::fs::set_permissions(lab.key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    lab.start("n1");
    assert_eq!(lab.wait_exit("n1").code(), Some(1));
    let log = std::fs::read_to_string(lab.log("n1")).unwrap();
    assert!(log.contains("chmod 600"), "{log}");
}

fn config_version_on_disk(lab: &Lab, node: &str) -> Option<u32> {
    let text = std::fs::read_to_string(lab.conf(node)).ok()?;
    let parsed = libcluster::config::parse(&text, "t").ok()?;
    Some(parsed.config.config_version)
}

#[test]
fn a_newer_config_is_written_on_every_node_and_an_older_one_refused() {
    let mut lab = Lab::new("config");
    for n in ["n1", "n2", "n3"] {
        lab.start(n);
    }
    lab.wait_view(&["n1", "n2", "n3"], &[1, 2, 3], true);

    let v2 = config_text(lab.port, 2, " shutdown_timeout=\"6000\"");
    let reply = lab.call("n2", &CmanRequest::ConfigUpdate { text: v2.clone() });
    assert_eq!(reply.unwrap(), CmanResponse::ConfigVersion(2));
    lab.wait_for("version 2 on every node", || {
        ["n1", "n2", "n3"].iter().all(|n| {
            config_version_on_disk(&lab, n) == Some(2)
                && lab.status(n).is_ok_and(|s| s.config_version == 2)
        })
    });
    assert_eq!(std::fs::read_to_string(lab.conf("n3")).unwrap(), v2);

    match lab.call(
        "n1",
        &CmanRequest::ConfigUpdate {
            text: config_text(lab.port, 1, ""),
        },
    ) {
        Err(ClientError::Daemon { code, message }) => {
            assert_eq!(code, cmand::codes::CONFIG_NOT_NEWER);
            assert!(
                message.contains("config_version 1") && message.contains("2"),
                "{message}"
            );
        }
        other => panic!("an older config was not refused: {other:?}"),
    }
    match lab.call(
        "n1",
        &CmanRequest::ConfigUpdate {
            text: "<cluster name=".into(),
        },
    ) {
        Err(ClientError::Daemon { code, .. }) => assert_eq!(code, cmand::codes::CONFIG_INVALID),
        other => panic!("a malformed config was not refused: {other:?}"),
    }
    assert_eq!(config_version_on_disk(&lab, "n1"), Some(2));

    // `cman_tool version -r`: n3's file is edited by hand, reloaded and distributed.
    std::fs::write(lab.conf("n3"), config_text(lab.port, 3, "")).unwrap();
    let reply = lab.call("n3", &CmanRequest::ReloadConfig);
    assert_eq!(reply.unwrap(), CmanResponse::ConfigVersion(3));
    lab.wait_for("version 3 on every node", || {
        ["n1", "n2", "n3"]
            .iter()
            .all(|n| config_version_on_disk(&lab, n) == Some(3))
    });
    // `cman_tool kill -n n3`: n3 exits with status 1 and says why, as cman did.
    match lab.call("n1", &CmanRequest::Kill { node: "n9".into() }) {
        Err(ClientError::Daemon { code, .. }) => assert_eq!(code, cmand::codes::NO_SUCH_NODE),
        other => panic!("a kill of an unknown node was not refused: {other:?}"),
    }
    let kill_n3 = CmanRequest::Kill { node: "n3".into() };
    assert_eq!(lab.call("n1", &kill_n3).unwrap(), CmanResponse::Done);
    assert_eq!(lab.wait_exit("n3").code(), Some(1));
    let log = std::fs::read_to_string(lab.log("n3")).unwrap();
    assert!(
        log.contains(
            "cman killed by node 1 because we were killed by cman_tool or other application"
        ),
        "{log}"
    );
    lab.wait_view(&["n1", "n2"], &[1, 2], true);

    let history = std::fs::read_to_string(lab.history("n1")).unwrap();
    let changed: Vec<u64> = history
        .lines()
        .filter_map(|l| match Record::from_line(l).unwrap().event {
            Event::ConfigChanged { version } => Some(version),
            _ => None,
        })
        .collect();
    assert_eq!(changed, vec![2, 3]);
}
