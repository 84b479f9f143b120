//! Our fence agents as fenced runs them, as real processes: `fence_apc` against the lab's
//! APC simulator on 127.0.0.1 (v3 menus with paging, v6 CLI), `fence_manual` and
//! `fence_ack_manual` against a stand-in fenced serving the real IPC contract on a unix
//! socket in a temporary runtime directory.
//!
//! The agents are found next to the test binary (clusterlab::lab::default_bin_dir()); they
//! are built by `cargo test --workspace` or `cargo build -p fenced`. Missing, the tests say
//! why and pass, except under CI=true.

use clusterio::{EventPublisher, Incoming, Limits, Server};
use clusterlab::apc::{self, ApcServer, Firmware, Power, PowerChange, ServerConfig, SwitchModel};
use libcluster::ipc::fence::{
    FenceEvent, FenceHow, FenceNodeInfo, FenceRecord, FenceRequest, FenceResponse, FenceState,
};
use libcluster::ipc::{ErrorCode, ErrorReply};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Far above what a run takes; only there so that a hang cannot wedge CI.
const BOUND: Duration = Duration::from_secs(120);
/// Generous agent timeouts for runs expected to succeed on a loaded machine.
const TIMEOUTS: [&str; 6] = [
    "--shell-timeout",
    "15",
    "--login-timeout",
    "15",
    "--power-timeout",
    "30",
];

fn bin(name: &str) -> Option<PathBuf> {
    let path = clusterlab::lab::default_bin_dir().join(name);
    if path.exists() {
        return Some(path);
    }
    let why = format!(
        "{} is missing: build with `cargo build -p fenced` or `cargo test --workspace`",
        path.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {why}");
    }
    eprintln!("skipped: {why}");
    None
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn finish(mut child: Child) -> Run {
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("agent still running after {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

fn run(program: &Path, args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    finish(child)
}

fn assert_run(r: &Run, code: i32, stdout: &str) {
    assert_eq!(
        (r.code, r.stdout.trim()),
        (code, stdout),
        "stderr: {}",
        r.stderr
    );
}

type Changes = Arc<Mutex<Vec<PowerChange>>>;

fn start(model: SwitchModel) -> (ApcServer, Changes) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = ServerConfig::new(model);
    config.reboot_delay = Duration::from_millis(500);
    let changes: Changes = Arc::default();
    let seen = Arc::clone(&changes);
    let server = apc::spawn(listener, config, move |c| seen.lock().unwrap().push(c)).unwrap();
    (server, changes)
}

fn apc_run(agent: &Path, server: &ApcServer, password: &str, action: &str, extra: &[&str]) -> Run {
    let port = server.local_addr().port().to_string();
    let mut args = vec![
        "--ip",
        "127.0.0.1",
        "--ipport",
        &port,
        "--username",
        "apc",
        "--password",
        password,
    ];
    args.extend(TIMEOUTS);
    args.extend(extra);
    args.extend(["--action", action]);
    run(agent, &args, "", &[])
}

fn plug(agent: &Path, server: &ApcServer, action: &str, n: u32) -> Run {
    apc_run(agent, server, "apc", action, &["--plug", &n.to_string()])
}

fn power(server: &ApcServer, n: u32) -> Power {
    server.outlets()[n as usize - 1].power
}

fn taken(changes: &Changes) -> Vec<(u32, Power)> {
    std::mem::take(&mut *changes.lock().unwrap())
        .into_iter()
        .map(|c| (c.outlet, c.power))
        .collect()
}

#[test]
fn fence_apc_status_off_on_and_reboot_follow_the_switch() {
    let Some(agent) = bin("fence_apc") else {
        return;
    };
    let (server, changes) = start(SwitchModel::new(8).unwrap());
    assert_run(&plug(&agent, &server, "status", 5), 0, "Status: ON");
    assert_run(&plug(&agent, &server, "off", 5), 0, "Success: Powered OFF");
    assert_eq!(power(&server, 5), Power::Off);
    assert_run(&plug(&agent, &server, "status", 5), 2, "Status: OFF");
    assert_run(&plug(&agent, &server, "off", 5), 0, "Success: Already OFF");
    assert_eq!(taken(&changes), vec![(5, Power::Off)]);
    assert_run(&plug(&agent, &server, "on", 5), 0, "Success: Powered ON");
    assert_run(&plug(&agent, &server, "on", 5), 0, "Success: Already ON");
    assert_eq!(taken(&changes), vec![(5, Power::On)]);
    assert_run(&plug(&agent, &server, "reboot", 5), 0, "Success: Rebooted");
    assert_eq!(
        taken(&changes),
        vec![(5, Power::Off), (5, Power::On)],
        "reboot is off, then on"
    );
    assert!(
        server.outlets().iter().all(|o| o.power == Power::On),
        "no other outlet was touched"
    );
}

#[test]
fn fence_apc_lists_every_outlet_across_pages_and_fences_through_them() {
    let Some(agent) = bin("fence_apc") else {
        return;
    };
    let mut model = SwitchModel::new(20).unwrap();
    model.page_size = 6;
    for n in 1..=20 {
        model.rename(n, &format!("node{n}")).unwrap();
    }
    model.set_power(7, Power::Off);
    let (server, _) = start(model);
    let want: Vec<String> = (1..=20).map(|n| format!("{n},node{n}")).collect();
    assert_run(
        &apc_run(&agent, &server, "apc", "list", &[]),
        0,
        &want.join("\n"),
    );
    let want: Vec<String> = (1..=20)
        .map(|n| format!("{n},node{n},{}", if n == 7 { "OFF" } else { "ON" }))
        .collect();
    assert_run(
        &apc_run(&agent, &server, "apc", "list-status", &[]),
        0,
        &want.join("\n"),
    );
    assert_run(&plug(&agent, &server, "off", 18), 0, "Success: Powered OFF");
    assert_eq!(power(&server, 18), Power::Off);
    assert_run(&apc_run(&agent, &server, "apc", "monitor", &[]), 0, "");
}

#[test]
fn fence_apc_reads_stdin_like_fenced_sends_it() {
    let Some(agent) = bin("fence_apc") else {
        return;
    };
    let (server, changes) = start(SwitchModel::new(4).unwrap());
    let port = server.local_addr().port();
    let modern = format!(
        "agent=fence_apc\nnodename=node3\naction=off\nip=127.0.0.1\nipport={port}\n\
         username=apc\npassword=apc\nplug=3\nshell_timeout=15\nlogin_timeout=15\n"
    );
    let r = run(&agent, &[], &modern, &[]);
    assert_run(&r, 0, "Success: Powered OFF");
    assert!(
        r.stderr.is_empty(),
        "agent= and nodename= are accepted silently: {}",
        r.stderr
    );
    let old = format!(
        "# cluster.conf names\nagent=fence_apc\nipaddr=127.0.0.1\nipport={port}\nlogin=apc\n\
         passwd_script=echo apc\nport=3\noption=on\nshell_timeout=15\nlogin_timeout=15\nbogus=1\n"
    );
    let r = run(&agent, &[], &old, &[]);
    assert_run(&r, 0, "Success: Powered ON");
    assert!(
        r.stderr
            .contains("Parse error: Ignoring unknown option 'bogus=1'"),
        "{}",
        r.stderr
    );
    assert_eq!(taken(&changes), vec![(3, Power::Off), (3, Power::On)]);
}

#[test]
fn fence_apc_failures_exit_1_and_change_nothing() {
    let Some(agent) = bin("fence_apc") else {
        return;
    };
    let (server, changes) = start(SwitchModel::new(4).unwrap());
    let r = apc_run(&agent, &server, "wrong", "off", &["--plug", "1"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Unable to connect/login to fencing device"),
        "{}",
        r.stderr
    );
    let r = plug(&agent, &server, "off", 9);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("plug is not available"), "{}", r.stderr);
    assert!(server.outlets().iter().all(|o| o.power == Power::On));
    assert!(taken(&changes).is_empty());

    // A closed loopback port: refused at once, no waiting for timeouts.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let began = Instant::now();
    let r = run(
        &agent,
        &[
            "-a",
            "127.0.0.1",
            "-u",
            &port,
            "-l",
            "apc",
            "-p",
            "apc",
            "-n",
            "1",
            "-o",
            "status",
        ],
        "",
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Unable to connect/login to fencing device"),
        "{}",
        r.stderr
    );
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "a refused connection fails without waiting"
    );

    let r = run(
        &agent,
        &["-o", "status", "-a", "127.0.0.1", "-l", "apc", "-p", "apc"],
        "",
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("You have to enter plug number")
            && r.stderr.contains("Please use '-h' for usage")
    );
    let r = run(&agent, &["--bogus"], "", &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("Parse error: option --bogus not recognized"),
        "{}",
        r.stderr
    );
}

#[test]
fn fence_apc_uses_cli_mode_on_v6_firmware() {
    let Some(agent) = bin("fence_apc") else {
        return;
    };
    let mut model = SwitchModel::new(4).unwrap();
    model.firmware = Firmware::CliV6;
    let (server, changes) = start(model);
    assert_run(&plug(&agent, &server, "status", 2), 0, "Status: ON");
    assert_run(&plug(&agent, &server, "off", 2), 0, "Success: Powered OFF");
    assert_run(&plug(&agent, &server, "status", 2), 2, "Status: OFF");
    assert_run(&plug(&agent, &server, "on", 2), 0, "Success: Powered ON");
    assert_eq!(taken(&changes), vec![(2, Power::Off), (2, Power::On)]);
    let r = apc_run(&agent, &server, "apc", "list", &[]);
    assert_run(&r, 0, "1,Outlet 1\n2,Outlet 2\n3,Outlet 3\n4,Outlet 4");
}

fn parameter_names(xml: &str) -> std::collections::BTreeSet<String> {
    xml.split("<parameter name=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(String::from)
        .collect()
}

#[test]
fn fence_apc_metadata_names_every_parameter_debians_agent_names() {
    let Some(agent) = bin("fence_apc") else {
        return;
    };
    let ours = run(&agent, &["-o", "metadata"], "", &[]);
    assert_eq!(ours.code, 0);
    assert!(ours
        .stdout
        .starts_with("<?xml version=\"1.0\" ?>\n<resource-agent name=\"fence_apc\""));
    assert!(ours.stdout.contains("<action name=\"list-status\" />"));
    let via_stdin = run(&agent, &[], "action=metadata\n", &[]);
    assert_eq!(via_stdin.stdout, ours.stdout);
    let ours = parameter_names(&ours.stdout);
    let debian = Path::new("/usr/sbin/fence_apc");
    if !debian.exists() {
        let why = "/usr/sbin/fence_apc is missing (Debian package fence-agents)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but {why}");
        }
        eprintln!("skipped the comparison: {why}");
        return;
    }
    let theirs = run(debian, &["-o", "metadata"], "", &[]);
    assert_eq!(theirs.code, 0, "{}", theirs.stderr);
    let theirs = parameter_names(&theirs.stdout);
    assert!(theirs.len() > 20, "{theirs:?}");
    let missing: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "parameters Debian's fence_apc has and ours lacks: {missing:?}"
    );
}

/// A stand-in fenced: node rows, `Acknowledge` turns a victim into an override record.
struct FakeFenced {
    dir: PathBuf,
    shutdown: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FakeFenced {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fence-agents-ours-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fake_fenced(tag: &str, rows: Vec<FenceNodeInfo>) -> FakeFenced {
    let dir = temp_dir(tag);
    let path = clusterio::socket_path(&dir, libcluster::ipc::fence::DAEMON);
    let (shutdown, stop) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server =
                Server::<FenceRequest, FenceResponse, FenceEvent>::bind(&path, Limits::default())
                    .await
                    .unwrap();
            let (tx, mut rx) =
                tokio::sync::mpsc::channel::<Incoming<FenceRequest, FenceResponse>>(16);
            let publisher = EventPublisher::<FenceEvent>::new(16);
            let (_gid_tx, gid) = tokio::sync::watch::channel(None);
            let serve = tokio::spawn(server.run(tx, publisher.feed(), gid, stop));
            ready_tx.send(()).unwrap();
            let mut rows = rows;
            while let Some(inc) = rx.recv().await {
                let answer = match &inc.request {
                    FenceRequest::Nodes { .. } => Ok(FenceResponse::Nodes(rows.clone())),
                    FenceRequest::IsFenced { .. } => Ok(FenceResponse::Fenced(FenceState::Unknown)),
                    FenceRequest::Acknowledge { node } => {
                        match rows.iter_mut().find(|r| &r.name == node && r.victim) {
                            Some(r) => {
                                r.victim = false;
                                r.last = Some(FenceRecord {
                                    node: r.node,
                                    incarnation: 3,
                                    master: 1,
                                    how: FenceHow::Override,
                                    method: None,
                                    device: None,
                                    time_unix_s: 1_700_000_000,
                                });
                                Ok(FenceResponse::Done)
                            }
                            None => Err(ErrorReply::new(ErrorCode(1000), "not a victim")),
                        }
                    }
                    _ => Err(ErrorReply::new(
                        ErrorCode::BAD_REQUEST,
                        "not in the stand-in",
                    )),
                };
                inc.respond(answer);
            }
            let _ = serve.await;
        });
    });
    ready_rx
        .recv_timeout(BOUND)
        .expect("the stand-in fenced started");
    FakeFenced {
        dir,
        shutdown,
        thread: Some(thread),
    }
}

fn rows() -> Vec<FenceNodeInfo> {
    let row = |node: u32, name: &str, victim: bool| FenceNodeInfo {
        node,
        name: name.into(),
        member: !victim,
        victim,
        last: None,
    };
    vec![row(1, "node1", false), row(2, "node2", true)]
}

#[test]
fn fence_ack_manual_says_when_fenced_is_not_running() {
    let Some(ack) = bin("fence_ack_manual") else {
        return;
    };
    let dir = temp_dir("nofenced");
    let r = run(&ack, &["-y", "node2"], "", &[("CLUSTER_RUNTIME_DIR", &dir)]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("fenced is not running"), "{}", r.stderr);
    let r = run(&ack, &[], "", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("usage: fence_ack_manual"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fence_ack_manual_asks_refuses_and_acknowledges() {
    let Some(ack) = bin("fence_ack_manual") else {
        return;
    };
    let fenced = fake_fenced("ack", rows());
    let env = [("CLUSTER_RUNTIME_DIR", fenced.dir.as_path())];
    let r = run(&ack, &["node2"], "yes\n", &env);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .starts_with("About to override fencing for node2.\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Continue [NO/absolutely]? Aborted.\n"),
        "{}",
        r.stdout
    );
    let r = run(&ack, &["node9"], "absolutely\n", &env);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("node node9 is not in the cluster configuration"),
        "{}",
        r.stderr
    );
    let r = run(&ack, &["-n", "node1"], "absolutely\n", &env);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("node node1 is not waiting to be fenced"),
        "{}",
        r.stderr
    );
    let r = run(&ack, &["-n", "node2"], "absolutely\n", &env);
    assert_eq!(
        (r.code, r.stdout.ends_with("absolutely]? Done\n")),
        (0, true),
        "{} {}",
        r.stdout,
        r.stderr
    );
    let r = run(&ack, &["-y", "node2"], "", &env);
    assert_eq!(r.code, 1, "already acknowledged: {}", r.stdout);
}

#[test]
fn fence_manual_waits_for_the_acknowledgement_or_times_out() {
    let (Some(manual), Some(ack)) = (bin("fence_manual"), bin("fence_ack_manual")) else {
        return;
    };
    let fenced = fake_fenced("manual", rows());
    let dir = fenced.dir.clone();

    let r = run(
        &manual,
        &[],
        "agent=fence_manual\nnodename=node1\ntimeout=2\n",
        &[("CLUSTER_RUNTIME_DIR", &dir)],
    );
    assert_eq!(r.code, 1, "nobody acknowledges node1: {}", r.stdout);
    assert!(r.stderr.contains("fence_ack_manual node1"), "{}", r.stderr);

    let mut waiting = Command::new(&manual)
        .env("CLUSTER_RUNTIME_DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    waiting
        .stdin
        .take()
        .unwrap()
        .write_all(b"nodename=node2\ntimeout=100\n")
        .unwrap();
    // Acknowledge only once it has asked, so it has seen node2 pending first.
    let mut stderr = waiting.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&all).contains("Waiting 100 s") {
                let _ = tx.send(());
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    rx.recv_timeout(BOUND)
        .expect("fence_manual asked for the acknowledgement");
    let a = run(&ack, &["-y", "node2"], "", &[("CLUSTER_RUNTIME_DIR", &dir)]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    waiting.stderr = None;
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = waiting.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "fence_manual did not see the acknowledgement"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    waiting
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let r = Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: reader.join().unwrap(),
    };
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(
        r.stdout.starts_with("Success: node2 fenced (override"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("must be fenced by hand"), "{}", r.stderr);
    assert!(r.stderr.contains("waiting to be fenced"), "{}", r.stderr);
}
