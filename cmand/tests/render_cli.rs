//! The built `cman_tool` and `ccs_tool` end to end: arguments, messages, exit codes and
//! rendered output, against no daemon at all or a scripted stand-in for cmand served by
//! the real clusterio server in a temporary runtime directory.

use clusterio::{EventPublisher, Incoming, Limits, Server};
use libcluster::ipc::cman::{
    CmanEvent, CmanNode, CmanRequest, CmanResponse, CmanStatus, MembershipState, NodeState,
};
use libcluster::ipc::{ErrorCode, ErrorReply};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// A directory removed with its contents on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cmantool-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(bin: &str, runtime_dir: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("CLUSTER_RUNTIME_DIR", runtime_dir)
        // The golden node tables are in CEST (UTC+2): POSIX TZ names it this way.
        .env("TZ", "CEST-2")
        .output()
        .expect("the binary runs")
}

fn cman_tool(runtime_dir: &Path, args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_cman_tool"), runtime_dir, args)
}

fn ccs_tool(runtime_dir: &Path, args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_ccs_tool"), runtime_dir, args)
}

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

// ---------------------------------------------------------------------------------------
// Without a daemon.

#[test]
fn without_a_daemon_every_command_says_cman_is_not_running() {
    let empty = TempDir::new("empty");
    for args in [
        &["status"][..],
        &["nodes", "-a"],
        &["version"],
        &["leave", "remove"],
        &["kill", "-n", "node2"],
        &["expected", "-e", "2"],
        &["wait", "-q"],
    ] {
        let out = cman_tool(empty.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            text(&out.stderr),
            "cman_tool: Cannot open connection to cman, is it running ?\n",
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn the_runtime_dir_flag_beats_the_environment() {
    let empty = TempDir::new("flag");
    let daemon = FakeCmand::start(&empty);
    let elsewhere = TempDir::new("elsewhere");
    let dir = daemon.dir.to_str().unwrap().to_string();
    let out = cman_tool(elsewhere.path(), &["version", "--runtime-dir", &dir]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "6.2.0 config 3\n");
}

#[test]
fn unknown_options_and_words_fail_with_the_originals_messages() {
    let empty = TempDir::new("usage");
    let out = cman_tool(empty.path(), &["status", "-x"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "cman_tool: invalid option -- 'x'\nPlease use '-h' for usage.\n"
    );
    let out = cman_tool(empty.path(), &["statuz"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "cman_tool: unknown option statuz\n");
    let out = cman_tool(empty.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "cman_tool: no operation specified\n");
}

#[test]
fn help_and_version_exit_zero_without_a_daemon() {
    let empty = TempDir::new("help");
    let out = cman_tool(empty.path(), &["-h"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("Usage:\n"));
    let out = cman_tool(empty.path(), &["-V"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("cman_tool "));
    let out = ccs_tool(empty.path(), &["-h"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("update <xml file>"));
    assert!(text(&out.stdout).contains("not offered"));
}

#[test]
fn keygen_writes_a_private_key_and_refuses_to_overwrite_it() {
    let dir = TempDir::new("keygen");
    let key = dir.path().join("cman_authkey");
    let key_arg = key.to_str().unwrap();
    let out = cman_tool(dir.path(), &["keygen", key_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(key_arg));
    assert!(text(&out.stdout).contains("every node"));
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 64);
    let first = std::fs::read(&key).unwrap();
    assert!(libcluster::wire::ClusterKey::load(&key).is_ok());

    let again = cman_tool(dir.path(), &["keygen", key_arg]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        first,
        "refused means untouched"
    );

    let forced = cman_tool(dir.path(), &["keygen", "-f", key_arg]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));
    let second = std::fs::read(&key).unwrap();
    assert_eq!(second.len(), 64);
    assert_ne!(second, first, "a new key");
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn ccs_tool_update_of_an_invalid_file_reports_line_and_column_and_sends_nothing() {
    let empty = TempDir::new("ccs-invalid");
    let file = repo_file("libcluster/tests/data/appendix-b.conf");
    let out = ccs_tool(empty.path(), &["update", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:51:14: error: ", file.display())),
        "{stderr}"
    );
    // It stopped before looking for cmand (there is none here).
    assert!(!stderr.contains("connect"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn ccs_tool_update_without_a_daemon_fails() {
    let empty = TempDir::new("ccs-nodaemon");
    let file = repo_file("docs/examples/dom0cluster1.conf");
    let out = ccs_tool(empty.path(), &["update", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Unable to connect to cmand"),
        "{}",
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Against a scripted cmand.

/// What the stand-in answers, and what it was asked.
struct Script {
    status: CmanStatus,
    nodes: Vec<CmanNode>,
    asked: Vec<CmanRequest>,
}

const NO_SUCH_NODE: ErrorCode = ErrorCode(ErrorCode::DAEMON_BASE.0 + 1);
const INVALID: ErrorCode = ErrorCode(ErrorCode::DAEMON_BASE.0 + 2);
const BUSY_CLIENTS: ErrorCode = ErrorCode(ErrorCode::DAEMON_BASE.0 + 3);

/// cmand's stand-in: the real clusterio server, a core that answers from a [`Script`].
struct FakeCmand {
    dir: PathBuf,
    script: Arc<Mutex<Script>>,
    shutdown: Arc<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeCmand {
    fn start(dir: &TempDir) -> FakeCmand {
        let script = Arc::new(Mutex::new(Script {
            status: status(),
            nodes: nodes(),
            asked: Vec::new(),
        }));
        let socket = clusterio::socket_path(dir.path(), libcluster::ipc::cman::DAEMON);
        // Writes are for root or the admin group: make ours the admin group, whoever we are.
        let gid = std::fs::metadata(dir.path()).unwrap().gid();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shutdown = Arc::new(shutdown);
        let leave = Arc::clone(&shutdown);
        let (ready_tx, ready) = mpsc::channel();
        let core_script = Arc::clone(&script);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = Server::<CmanRequest, CmanResponse, CmanEvent>::bind(
                    &socket,
                    Limits::default(),
                )
                .await
                .expect("bind");
                let (requests_tx, mut requests) = tokio::sync::mpsc::channel(8);
                let publisher = EventPublisher::<CmanEvent>::new(8);
                let (_admin, admin_rx) = watch::channel(Some(gid));
                let served =
                    tokio::spawn(server.run(requests_tx, publisher.feed(), admin_rx, shutdown_rx));
                ready_tx.send(()).unwrap();
                while let Some(incoming) = requests.recv().await {
                    if answer(&core_script, incoming) {
                        // A granted leave: cmand goes away, its socket with it, after
                        // its answer is out (the tool accepts a closed connection too).
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        leave.send_replace(true);
                    }
                }
                served.await.unwrap();
            });
        });
        ready.recv().expect("the stand-in started");
        FakeCmand {
            dir: dir.path().to_path_buf(),
            script,
            shutdown,
            thread: Some(thread),
        }
    }

    fn set_status(&self, change: impl FnOnce(&mut CmanStatus)) {
        change(&mut self.script.lock().unwrap().status);
    }

    fn asked(&self) -> Vec<CmanRequest> {
        self.script.lock().unwrap().asked.clone()
    }
}

impl Drop for FakeCmand {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request; true when the stand-in should now stop (it granted a leave).
fn answer(script: &Mutex<Script>, incoming: Incoming<CmanRequest, CmanResponse>) -> bool {
    let mut s = script.lock().unwrap();
    let leaving = matches!(incoming.request, CmanRequest::Leave { force: true, .. });
    s.asked.push(incoming.request.clone());
    let reply = match &incoming.request {
        CmanRequest::Status => Ok(CmanResponse::Status(Box::new(s.status.clone()))),
        CmanRequest::Nodes => Ok(CmanResponse::Nodes(s.nodes.clone())),
        CmanRequest::Kill { node } if s.nodes.iter().any(|n| &n.name == node) => {
            Ok(CmanResponse::Done)
        }
        CmanRequest::Kill { .. } => Err(ErrorReply::new(NO_SUCH_NODE, "No such file or directory")),
        CmanRequest::SetExpected { votes } if *votes >= 2 => Ok(CmanResponse::Done),
        CmanRequest::SetExpected { .. } => Err(ErrorReply::new(INVALID, "Invalid argument")),
        CmanRequest::Leave { force: true, .. } => Ok(CmanResponse::Done),
        CmanRequest::Leave { .. } => Err(ErrorReply::new(BUSY_CLIENTS, "Device or resource busy")),
        CmanRequest::ReloadConfig => Ok(CmanResponse::ConfigVersion(s.status.config_version)),
        CmanRequest::ConfigUpdate { text } => match libcluster::config::parse(text, "update") {
            Ok(parsed) => {
                let v = u64::from(parsed.config.config_version);
                s.status.config_version = v;
                Ok(CmanResponse::ConfigVersion(v))
            }
            Err(e) => Err(ErrorReply::new(INVALID, e.first_error().message.clone())),
        },
        _ => Err(ErrorReply::new(ErrorCode::BAD_REQUEST, "not scripted")),
    };
    incoming.respond(reply);
    leaving
}

fn status() -> CmanStatus {
    CmanStatus {
        config_version: 3,
        cluster_name: "mycluster".into(),
        cluster_id: 56756,
        state: MembershipState::ClusterMember,
        generation: 104,
        coordinator: Some(1),
        members: vec![1, 2],
        expected_votes: 3,
        qdisk_votes: Some(1),
        total_votes: 3,
        node_votes: 1,
        quorum: 2,
        quorate: true,
        active_subsystems: 9,
        two_node: false,
        disallowed: vec![],
        node_name: "node1".into(),
        node_id: 1,
        incarnation: 104,
        multicast_addresses: vec!["239.192.221.146".into()],
        node_addresses: vec!["10.0.0.1".into()],
        uptime_s: 10,
        counters: BTreeMap::new(),
    }
}

/// The same nodes as the golden tables (cmand/tests/render_nodes.rs).
fn nodes() -> Vec<CmanNode> {
    let node = |id: u32, name: &str, state, inc, joined, addresses: &[&str]| CmanNode {
        id,
        name: name.to_string(),
        state,
        incarnation: inc,
        joined_unix_s: joined,
        votes: 1,
        expected_votes: if id == 0 { 0 } else { 3 },
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    };
    vec![
        node(
            3,
            "node3",
            NodeState::Dead,
            0,
            Some(1_317_648_082),
            &["10.0.0.3"],
        ),
        node(
            1,
            "node1",
            NodeState::Member,
            104,
            Some(1_317_648_142),
            &["10.0.0.1"],
        ),
        node(
            0,
            "/dev/block/8:17",
            NodeState::Member,
            0,
            Some(1_317_648_062),
            &[],
        ),
        node(
            2,
            "node2",
            NodeState::Member,
            96,
            Some(1_317_648_142),
            &["10.0.0.2", "192.168.1.2"],
        ),
    ]
}

#[test]
fn status_and_version_print_the_daemons_answer_in_the_spec_layout() {
    let dir = TempDir::new("status");
    let _daemon = FakeCmand::start(&dir);
    let out = cman_tool(dir.path(), &["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        include_str!("data/status_quorate_qdisk.txt")
    );
    let out = cman_tool(dir.path(), &["version"]);
    assert_eq!(text(&out.stdout), include_str!("data/version.txt"));
}

#[test]
fn status_json_is_the_daemons_status() {
    let dir = TempDir::new("json");
    let _daemon = FakeCmand::start(&dir);
    let out = cman_tool(dir.path(), &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let back: CmanStatus = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back, status());
}

#[test]
fn nodes_print_join_times_in_the_local_time_zone() {
    let dir = TempDir::new("nodes");
    let _daemon = FakeCmand::start(&dir);
    let out = cman_tool(dir.path(), &["nodes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), include_str!("data/nodes_plain.txt"));
    let out = cman_tool(dir.path(), &["-a", "nodes"]);
    assert_eq!(text(&out.stdout), include_str!("data/nodes_addresses.txt"));
    let out = cman_tool(dir.path(), &["nodes", "-n", "node3", "-nnode1"]);
    assert_eq!(text(&out.stdout), include_str!("data/nodes_filtered.txt"));
    let out = cman_tool(
        dir.path(),
        &["nodes", "-F", "id,name,type,addr,votes,exp,state"],
    );
    assert_eq!(text(&out.stdout), include_str!("data/nodes_fields.txt"));
}

#[test]
fn kill_reports_unknown_nodes_and_still_kills_the_others() {
    let dir = TempDir::new("kill");
    let daemon = FakeCmand::start(&dir);
    let out = cman_tool(dir.path(), &["kill", "-n", "nosuch", "-n", "node2"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Can't kill node nosuch : No such file or directory\n"
    );
    assert!(daemon.asked().contains(&CmanRequest::Kill {
        node: "node2".into()
    }));
    let out = cman_tool(dir.path(), &["kill", "-n", "node2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = cman_tool(dir.path(), &["kill"]);
    assert_eq!(text(&out.stderr), "cman_tool: No node name specified\n");
}

#[test]
fn refused_expected_and_leave_name_the_daemons_reason() {
    let dir = TempDir::new("refused");
    let daemon = FakeCmand::start(&dir);
    let out = cman_tool(dir.path(), &["expected", "-e", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "cman_tool: can't set expected votes: Invalid argument\n"
    );
    assert_eq!(
        cman_tool(dir.path(), &["expected", "-e", "2"])
            .status
            .code(),
        Some(0)
    );
    let out = cman_tool(dir.path(), &["leave", "remove"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "cman_tool: Error leaving cluster: Device or resource busy\n"
    );
    let out = cman_tool(dir.path(), &["leave", "remove", "force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(daemon.asked().contains(&CmanRequest::Leave {
        remove: true,
        force: true
    }));
}

#[test]
fn wait_returns_once_quorate_and_times_out_with_exit_2_otherwise() {
    let dir = TempDir::new("wait");
    let daemon = FakeCmand::start(&dir);
    let out = cman_tool(dir.path(), &["wait", "-q", "-t", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    daemon.set_status(|s| s.quorate = false);
    // Membership alone is enough without -q.
    assert_eq!(cman_tool(dir.path(), &["wait"]).status.code(), Some(0));
    let out = cman_tool(dir.path(), &["wait", "-q", "-t", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "Timed-out waiting for cluster\n");
}

#[test]
fn version_reload_asks_cmand_to_reload() {
    let dir = TempDir::new("reload");
    let daemon = FakeCmand::start(&dir);
    let out = cman_tool(dir.path(), &["version", "-r"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(daemon.asked().contains(&CmanRequest::ReloadConfig));
}

/// The reference example with its config_version replaced.
fn example_with_version(dir: &TempDir, version: u32) -> PathBuf {
    let text = std::fs::read_to_string(repo_file("docs/examples/dom0cluster1.conf")).unwrap();
    let marker = "config_version=\"";
    let start = text.find(marker).expect("the example has a config_version") + marker.len();
    let end = start + text[start..].find('"').unwrap();
    let changed = format!("{}{version}{}", &text[..start], &text[end..]);
    let path = dir.path().join(format!("cluster-{version}.conf"));
    std::fs::write(&path, changed).unwrap();
    path
}

#[test]
fn ccs_tool_update_needs_a_greater_version_and_reports_both() {
    let dir = TempDir::new("ccs");
    let daemon = FakeCmand::start(&dir);
    let same = example_with_version(&dir, 3);
    let out = ccs_tool(dir.path(), &["update", same.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("does not have greater version number"),
        "{stderr}"
    );
    assert!(stderr.contains("Current config_version :: 3"), "{stderr}");
    assert!(stderr.contains("Proposed config_version:: 3"), "{stderr}");
    assert!(!daemon
        .asked()
        .iter()
        .any(|r| matches!(r, CmanRequest::ConfigUpdate { .. })));

    let newer = example_with_version(&dir, 4);
    let out = ccs_tool(dir.path(), &["update", newer.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Config file updated from version 3 to 4\n\nUpdate complete.\n"
    );
    let sent = std::fs::read_to_string(&newer).unwrap();
    assert!(daemon
        .asked()
        .contains(&CmanRequest::ConfigUpdate { text: sent }));
}

#[test]
fn ccs_tool_update_refuses_an_inquorate_cluster() {
    let dir = TempDir::new("ccs-inquorate");
    let daemon = FakeCmand::start(&dir);
    daemon.set_status(|s| s.quorate = false);
    let newer = example_with_version(&dir, 9);
    let out = ccs_tool(dir.path(), &["update", newer.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    // The example's two warnings come first, as ccs_config_validate prints them.
    let stderr = text(&out.stderr);
    assert!(
        stderr.ends_with("\nUnable to honor update request.  Cluster is not quorate.\n"),
        "{stderr}"
    );
}

#[test]
fn leave_wait_returns_once_cmand_is_gone() {
    let dir = TempDir::new("leave-wait");
    let daemon = FakeCmand::start(&dir);
    let out = cman_tool(dir.path(), &["leave", "-w", "force", "-t", "60"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let socket = clusterio::socket_path(&daemon.dir, libcluster::ipc::cman::DAEMON);
    assert!(!socket.exists(), "cman_tool returned before cmand was gone");
}

#[test]
fn leave_wait_keeps_asking_until_its_time_runs_out() {
    let dir = TempDir::new("leave-refused");
    let daemon = FakeCmand::start(&dir);
    let out = cman_tool(dir.path(), &["leave", "-w", "-t", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "Timed-out waiting for cluster\n");
    let asked = daemon
        .asked()
        .iter()
        .filter(|r| matches!(r, CmanRequest::Leave { .. }))
        .count();
    assert!(asked >= 2, "asked {asked} times");
}
