//! The native `fs` agent with tmpfs and a loop device (root only). Each test runs again in a
//! private mount namespace (`unshare --mount`), so its mounts vanish with it even if it fails.

mod resources_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use resources_support::{
    agents_in, gone, group, inside, privileged, run_inside, sh, wait_gone, Started, TempDir,
};
use rgmanagerd::resources::{AgentError, GroupError, Probe};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn mounted(mountpoint: &Path) -> bool {
    let m = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let want = mountpoint.display().to_string();
    m.lines()
        .any(|l| l.split(' ').nth(1) == Some(want.as_str()))
}

/// A process of ours, started in `cwd`.
fn spawn_in(cwd: &Path, script: &str) -> Started {
    Started(
        Command::new("/bin/sh")
            .args(["-c", script])
            .current_dir(cwd)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

const TMPFS: &str = "a_tmpfs_mounts_on_a_new_mountpoint_and_force_unmount_clears_its_users";

#[test]
fn a_tmpfs_mounts_on_a_new_mountpoint_and_force_unmount_clears_its_users() {
    if inside(TMPFS) {
        runtime().block_on(tmpfs_inside());
        return;
    }
    if privileged(TMPFS, &["unshare", "mount", "umount"]) {
        let wrapper = ["unshare", "--mount", "--propagation", "private"];
        run_inside(&wrapper, TMPFS, Duration::from_secs(120));
    }
}

async fn tmpfs_inside() {
    let dir = TempDir::new("fs-tmpfs");
    let agents = agents_in(&dir.0);
    let mp = dir.path("mnt/deep");
    let svc = format!(
        r#"<service name="scratch"><fs name="scratch" device="tmpfs" fstype="tmpfs"
             options="size=4m,mode=0755" mountpoint="{}" force_unmount="1"/></service>"#,
        mp.display()
    );
    let mut g = group(&svc, &agents);
    g.start().await.unwrap();
    assert!(mounted(&mp));
    // A fresh group has never checked: its deepest check (depth 20 writes a file) runs.
    group(&svc, &agents).status().await.unwrap();
    assert!(
        std::fs::read_dir(&mp).unwrap().next().is_none(),
        "the test file is removed"
    );
    g.start().await.unwrap(); // already mounted: success
    assert_eq!(group(&svc, &agents).probe().await, Probe::Running);

    // Users: a working directory, one ignoring SIGTERM, and an open file from elsewhere.
    let cwd_user = spawn_in(&mp, "exec sleep 300");
    let stubborn = spawn_in(&mp, "trap '' TERM; while :; do sleep 1; done");
    let held = mp.join("held");
    let fd_user = spawn_in(
        Path::new("/"),
        &format!("exec 3>{}; exec sleep 300", held.display()),
    );
    let t = Instant::now();
    while !held.exists() {
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    g.stop().await.unwrap();
    assert!(!mounted(&mp));
    for p in [&cwd_user, &stubborn, &fd_user] {
        assert!(
            wait_gone(p.pid(), Duration::from_secs(5)),
            "{} survived",
            p.pid()
        );
    }
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "the stubborn one got its grace"
    );
    g.stop().await.unwrap(); // not mounted: success
    let e = group(&svc, &agents).status().await.unwrap_err();
    assert!(
        e.to_string()
            .ends_with(&format!("{} is not mounted", mp.display())),
        "{e}"
    );

    // Without force_unmount a busy file system stays, and the stop says why.
    let mp2 = dir.path("busy");
    let svc2 = format!(
        r#"<service name="busy"><fs name="busy" device="tmpfs" fstype="tmpfs" mountpoint="{}"/></service>"#,
        mp2.display()
    );
    let mut g2 = group(&svc2, &agents);
    g2.start().await.unwrap();
    let user = spawn_in(&mp2, "exec sleep 300");
    let e = g2.stop().await.unwrap_err();
    assert!(
        matches!(&e, GroupError::Stop { failures, .. } if matches!(failures[0].1, AgentError::Exit { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("umount"), "{e}");
    assert!(mounted(&mp2) && !gone(user.pid()));
    drop(user);
    let t = Instant::now();
    loop {
        match g2.stop().await {
            Ok(()) => break,
            Err(e) if t.elapsed() < Duration::from_secs(10) => {
                eprintln!("retrying: {e}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(!mounted(&mp2));
}

const LOOP: &str = "a_block_device_mount_is_identified_by_its_device";

/// A loop device over an image file; detached on drop.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).output();
    }
}

#[test]
fn a_block_device_mount_is_identified_by_its_device() {
    if inside(LOOP) {
        runtime().block_on(loop_inside());
        return;
    }
    if privileged(
        LOOP,
        &["unshare", "mount", "umount", "losetup", "mkfs.ext4"],
    ) {
        let wrapper = ["unshare", "--mount", "--propagation", "private"];
        run_inside(&wrapper, LOOP, Duration::from_secs(120));
    }
}

async fn loop_inside() {
    let dir = TempDir::new("fs-loop");
    let agents = agents_in(&dir.0);
    let img = dir.path("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    sh(&format!("mkfs.ext4 -q -F {}", img.display()));
    let dev = Loop(
        sh(&format!("losetup -f --show {}", img.display()))
            .trim()
            .to_string(),
    );
    let mp = dir.path("disk");
    let svc = format!(
        r#"<service name="disk"><fs name="disk" device="{}" fstype="ext4" mountpoint="{}"/></service>"#,
        dev.0,
        mp.display()
    );
    let mut g = group(&svc, &agents);
    g.start().await.unwrap();
    assert!(mounted(&mp));
    group(&svc, &agents).status().await.unwrap();

    // The same device wanted at a second mountpoint: refused.
    let other = format!(
        r#"<service name="again"><fs name="again" device="{}" fstype="ext4" mountpoint="{}"/></service>"#,
        dev.0,
        dir.path("again").display()
    );
    let e = group(&other, &agents).start().await.unwrap_err();
    assert!(
        e.to_string().ends_with(&format!(
            "refused: {} is already mounted on {}",
            dev.0,
            mp.display()
        )),
        "{e}"
    );

    // Something else mounted over ours: status sees the wrong device on top.
    sh(&format!("mount -t tmpfs none {}", mp.display()));
    let e = group(&svc, &agents).status().await.unwrap_err();
    assert!(
        e.to_string()
            .ends_with(&format!("{} has none mounted, not {}", mp.display(), dev.0)),
        "{e}"
    );
    // A stop neither unmounts the stranger nor calls ours stopped while it is still there.
    let e = g.stop().await.unwrap_err();
    assert!(
        e.to_string().ends_with(&format!(
            "refused: {} is mounted on {} under none; unmount that first)",
            dev.0,
            mp.display()
        )),
        "{e}"
    );
    sh(&format!("umount {}", mp.display()));
    g.stop().await.unwrap();
    assert!(!mounted(&mp));
}
