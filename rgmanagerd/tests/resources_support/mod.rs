//! Shared by the resource group tests: temporary directories, scripts, cluster.conf
//! snippets, and running a test again inside a namespace (root only).
#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libcluster::config::{self, Rm};
use rgmanagerd::resources::{AgentConfig, ResourceGroup};

/// A directory for one test, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("rgm-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes an executable `#!/bin/sh` script. The file is written by a child process: an
    /// executable we wrote ourselves could be held open for writing by a sibling test's
    /// fork (the ETXTBSY race), a child's descriptors cannot.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path(name);
        let mut child = Command::new("/bin/sh")
            .args([
                "-c",
                "cat > \"$1.new\" && chmod 755 \"$1.new\" && mv \"$1.new\" \"$1\"",
                "sh",
            ])
            .arg(&path)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(format!("#!/bin/sh\n{body}\n").as_bytes())
                .unwrap();
        }
        assert!(child.wait().unwrap().success());
        path
    }

    /// The lines of a log file (empty when absent).
    pub fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `<rm>` of a cluster.conf with `body` inside.
pub fn rm(body: &str) -> Rm {
    let text = format!(
        r#"<cluster name="t" config_version="1">
             <clusternodes><clusternode name="a" nodeid="1"/></clusternodes>
             <rm>{body}</rm>
           </cluster>"#
    );
    match config::parse(&text, "test.conf") {
        Ok(p) => p.config.rm,
        Err(d) => panic!("{d}"),
    }
}

/// The first service of `body`, compiled with `agents`.
pub fn group(body: &str, agents: &AgentConfig) -> ResourceGroup {
    let rm = rm(body);
    match ResourceGroup::compile(&rm.services[0], &rm, agents) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// Agents searched in `dir` only, with a short SIGTERM-to-SIGKILL grace.
pub fn agents_in(dir: &Path) -> AgentConfig {
    let mut a = AgentConfig::with_path(Some(&dir.display().to_string()));
    a.kill_grace = Duration::from_secs(1);
    a
}

/// Whether a PID is gone (or a zombie).
pub fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// Waits up to `limit` for `pid` to be gone.
pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    gone(pid)
}

/// A process a test started (or learned the PID of from its own script), killed by PID
/// when dropped.
pub struct Pid(pub i32);

impl Drop for Pid {
    fn drop(&mut self) {
        if !gone(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A child process a test started; killed and reaped when dropped.
pub struct Started(pub std::process::Child);

impl Started {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).unwrap_or(i32::MAX)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads a PID a script wrote, waiting for it to appear.
pub fn read_pid(path: &Path) -> Pid {
    let t = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return Pid(pid);
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no pid in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Root and the programs a test needs; otherwise a printed skip, or a failure under CI=true.
pub fn privileged(test: &str, programs: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for p in programs {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(format!("the `{p}` program"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs {what} (CI=true makes this a failure)");
    }
    eprintln!("{test}: skipped: needs {what}");
    false
}

/// Set in the copy of the test binary that runs inside a namespace.
const INNER: &str = "RGM_RESOURCES_INNER";

/// Whether this process is the copy running `test` inside its namespace.
pub fn inside(test: &str) -> bool {
    std::env::var(INNER).as_deref() == Ok(test)
}

/// Runs this test binary again as `wrapper... <exe> <test> --exact`, with [`inside`] true
/// for `test`, and fails if it fails or takes longer than `limit` (then it is killed).
pub fn run_inside(wrapper: &[&str], test: &str, limit: Duration) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, test)
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{test}: the run inside the namespace took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "{test}: the run inside the namespace failed: {status}"
    );
}

/// Runs a command that must succeed (test set-up).
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
