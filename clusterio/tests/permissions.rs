//! The access policy on real credentials: a client running as uid 65534 ("nobody") may
//! read, may write only when the admin group is its group, and root may always write.

mod common;

use clusterio::{call_blocking, socket_path, ClientError, IpcClient};
use common::{Daemon, Ev, Req, Resp, TempDir, TIMEOUT};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

const NOBODY: u32 = 65534;
const SOCKET_ENV: &str = "CLUSTERIO_PEER_TEST_SOCKET";
const HELPER: &str = "unprivileged_peer_helper";

/// Not a test: the body of the unprivileged client, started by the test below as uid
/// 65534. Prints one line the parent checks.
#[test]
#[ignore = "helper: runs as uid 65534 under writes_need_root_or_the_admin_group"]
fn unprivileged_peer_helper() {
    let path = std::env::var_os(SOCKET_ENV).expect("run by writes_need_root_or_the_admin_group");
    let path = Path::new(&path);
    let read = call_blocking::<Req, Resp>(path, &Req::GetValue, TIMEOUT);
    let write = call_blocking::<Req, Resp>(path, &Req::SetValue(99), TIMEOUT);
    let uid = nix::unistd::geteuid();
    println!(
        "peer uid={uid} read={} write={}",
        outcome(read),
        outcome(write)
    );
}

fn outcome(result: Result<Resp, ClientError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(ClientError::Denied { .. }) => "denied".into(),
        Err(e) => format!("failed({e})"),
    }
}

/// Runs this test binary's helper as uid/gid 65534 against `socket`; its report line.
async fn run_as_nobody(exe: &Path, socket: &Path) -> String {
    let mut command = Command::new(exe);
    command
        .args([
            "--ignored",
            "--exact",
            HELPER,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SOCKET_ENV, socket)
        .current_dir(exe.parent().unwrap())
        .uid(NOBODY)
        .gid(NOBODY);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("start the helper as uid 65534");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // libtest prints the test's name on the same line, before the helper's output.
    let line = stdout
        .lines()
        .find_map(|l| l.find("peer uid=").map(|at| &l[at..]));
    match line {
        Some(line) if output.status.success() => line.to_owned(),
        _ => panic!(
            "helper failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_root_or_the_admin_group() {
    if !nix::unistd::geteuid().is_root() {
        let reason = "needs root to run a client as uid 65534";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{reason}, and CI=true requires this test to run");
        }
        eprintln!("skipped writes_need_root_or_the_admin_group: {reason}");
        return;
    }
    let dir = TempDir::new("perm");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    // The build directory may not be reachable by uid 65534: run a copy from the 0755 dir.
    let exe = dir.path().join("peer-helper");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut root = IpcClient::<Req, Resp, Ev>::connect(&daemon.path)
        .await
        .unwrap();

    // No admin group: nobody reads but may not write, and the daemon never saw the write.
    let report = run_as_nobody(&exe, &daemon.path).await;
    assert_eq!(report, "peer uid=65534 read=ok write=denied");
    assert_eq!(
        root.call(&Req::GetValue, TIMEOUT).await.unwrap(),
        Resp::Value(0)
    );

    // An admin group that is not nobody's changes nothing.
    daemon.admin_gid.send_replace(Some(4242));
    let report = run_as_nobody(&exe, &daemon.path).await;
    assert_eq!(report, "peer uid=65534 read=ok write=denied");

    // The admin group is nobody's group: the write goes through.
    daemon.admin_gid.send_replace(Some(NOBODY));
    let report = run_as_nobody(&exe, &daemon.path).await;
    assert_eq!(report, "peer uid=65534 read=ok write=ok");
    assert_eq!(
        root.call(&Req::GetValue, TIMEOUT).await.unwrap(),
        Resp::Value(99)
    );

    // Root writes whatever the admin group.
    assert_eq!(
        root.call(&Req::SetValue(1), TIMEOUT).await.unwrap(),
        Resp::Done
    );
    daemon.stop().await;
}
