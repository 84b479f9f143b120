//! Running an agent or a helper command: its own process group, a bound, and output capture
//! that never waits on a daemon the agent left behind.
//!
//! A start script commonly leaves a daemon running that inherited our stdout and stderr
//! pipes. Waiting for end-of-file on them would wait for that daemon, and closing them early
//! would hand it a SIGPIPE on its next log line. So the runner waits for the agent itself,
//! collects what the pipes held a moment later, and leaves a small task draining them until
//! the daemon closes them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::error::AgentError;

/// The end of each stream kept for messages.
const OUTPUT_KEEP: usize = 8 * 1024;
/// How long after the agent exits its output may still arrive.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);
/// After SIGKILL, how long we wait to reap the agent before leaving it to tokio.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// A command to run: program, arguments, extra environment.
#[derive(Clone, Debug)]
pub(crate) struct Command {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Command {
    pub fn new(program: impl Into<PathBuf>, args: &[&str]) -> Command {
        Command {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
        }
    }

    /// Shell-like, for messages.
    pub fn display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finished {
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal, when one ended it.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn status(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "an unknown status".to_string(),
        }
    }

    /// The failure of `cmd` with this result.
    pub fn failure(&self, cmd: &Command) -> AgentError {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        AgentError::Exit {
            command: cmd.display(),
            status: self.status(),
            output: last_lines(text, 3),
        }
    }
}

/// The last `n` non-empty lines, joined with ` / `.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// Kills a process group when dropped while armed: a run that times out, or whose future
/// is dropped by an outer timeout, takes the agent and everything it forked with it.
struct GroupKill(Option<i32>);

impl GroupKill {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // The leader is not reaped yet (we reap only after this), so the group id
            // cannot have been reused.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

/// Runs `cmd` with stdin from /dev/null, in `/`, in a new process group, killing the group
/// after `limit`. `what` and `op` name the run in a timeout error.
pub(crate) async fn run(
    cmd: &Command,
    limit: Duration,
    what: &str,
    op: &'static str,
    enforced: bool,
) -> Result<Finished, AgentError> {
    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = c.spawn().map_err(|source| AgentError::Spawn {
        program: cmd.program.clone(),
        source,
    })?;
    let mut guard = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));
    let out = capture(child.stdout.take());
    let err = capture(child.stderr.take());
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => {
            guard.disarm();
            use std::os::unix::process::ExitStatusExt;
            Ok(Finished {
                code: status.code(),
                signal: status.signal(),
                stdout: out.collect().await,
                stderr: err.collect().await,
            })
        }
        Ok(Err(source)) => Err(AgentError::Spawn {
            program: cmd.program.clone(),
            source,
        }),
        Err(_) => {
            drop(guard);
            let _ = tokio::time::timeout(REAP_WAIT, child.wait()).await;
            Err(AgentError::TimedOut {
                what: what.to_string(),
                op,
                after: limit,
                enforced,
            })
        }
    }
}

/// A pipe being drained into a bounded buffer by its own task.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn capture<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Capture {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let task = pipe.map(|mut pipe| {
        let buf = Arc::clone(&buf);
        tokio::spawn(async move {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
                b.extend_from_slice(&chunk[..n]);
                if b.len() > 2 * OUTPUT_KEEP {
                    let cut = b.len() - OUTPUT_KEEP;
                    b.drain(..cut);
                }
            }
        })
    });
    Capture { buf, task }
}

impl Capture {
    /// What arrived until end-of-file or [`OUTPUT_GRACE`], whichever is first. A pipe still
    /// open after that (a daemon holds it) keeps being drained in the background.
    async fn collect(mut self) -> String {
        if let Some(task) = self.task.as_mut() {
            let _ = tokio::time::timeout(OUTPUT_GRACE, task).await;
        }
        let b = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let start = b.len().saturating_sub(OUTPUT_KEEP);
        String::from_utf8_lossy(&b[start..]).into_owned()
    }
}

/// A system tool by name: found as [`find_program`] does (a daemon's PATH may lack the
/// sbin directories), else left to the PATH lookup at spawn, whose error names it.
pub(crate) fn system(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| PathBuf::from(name))
}

/// The first `name` in `PATH` (and the sbin directories, which a daemon's PATH may lack)
/// that is a file.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_file(p))
}

fn is_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        Command::new("/bin/sh", &["-c", script])
    }

    #[tokio::test]
    async fn exit_codes_output_and_environment_come_back() {
        let mut c = sh("echo out; echo \"err $RGM_X\" >&2; exit 3");
        c.env.push(("RGM_X".into(), "42".into()));
        let f = run(&c, Duration::from_secs(10), "t", "start", false)
            .await
            .unwrap();
        assert_eq!(
            (f.code, f.stdout.as_str(), f.stderr.as_str()),
            (Some(3), "out\n", "err 42\n")
        );
        assert_eq!(
            f.failure(&c).to_string(),
            format!("`{}` failed with exit code 3: err 42", c.display())
        );
    }

    #[tokio::test]
    async fn a_hung_command_and_its_children_are_killed_at_the_limit() {
        let dir = std::env::temp_dir().join(format!("rgm-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("child.pid");
        let c = sh(&format!(
            "sleep 300 & echo $! > {}; wait",
            pidfile.display()
        ));
        let t = std::time::Instant::now();
        let e = run(&c, Duration::from_millis(300), "script:hang", "stop", true)
            .await
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(
            matches!(
                e,
                AgentError::TimedOut {
                    op: "stop",
                    enforced: true,
                    ..
                }
            ),
            "{e}"
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was in the agent's process group: gone (or a zombie of init).
        let gone = (0..50).any(|_| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            });
            if alive {
                std::thread::sleep(Duration::from_millis(20));
            }
            !alive
        });
        assert!(gone, "sleep {pid} survived");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_daemon_holding_the_pipes_does_not_delay_the_result() {
        let c = sh("sleep 3 & echo started");
        let t = std::time::Instant::now();
        let f = run(&c, Duration::from_secs(10), "t", "start", false)
            .await
            .unwrap();
        assert!(f.success());
        assert_eq!(f.stdout, "started\n");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let e = run(
            &Command::new("/nonexistent/agent.sh", &["start"]),
            Duration::from_secs(1),
            "x",
            "start",
            false,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, AgentError::Spawn { .. }), "{e}");
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-rgm").is_none());
    }
}
