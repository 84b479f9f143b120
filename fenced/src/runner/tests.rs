//! The runner's contract, with small shell scripts as agents.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("fenced-runner-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes an executable `#!/bin/sh` script called `name`.
    fn agent(&self, name: &str, body: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dirs: &[&Path]) -> RunnerConfig {
    RunnerConfig::new(SearchPath::new(
        dirs.iter().map(|d| d.to_path_buf()).collect(),
    ))
}

fn call(m: usize, d: usize, agent: &str, args: &[(&str, &str)]) -> DeviceCall {
    DeviceCall {
        method_index: m,
        device_index: d,
        method: format!("m{m}"),
        device: format!("dev{m}{d}"),
        agent: agent.into(),
        args: args
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        config_error: None,
    }
}

fn method(index: usize, devices: Vec<DeviceCall>) -> MethodPlan {
    MethodPlan {
        index,
        name: format!("m{index}"),
        devices,
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet: it runs no more).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Waits (bounded generously) for a file the agent writes once it is running.
async fn wait_for_file(path: &Path) -> String {
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn agent_gets_the_args_text_on_stdin_and_a_c_locale() {
    let dir = TempDir::new("stdin");
    dir.agent(
        "fence_x",
        r#"cat > "$(dirname "$0")/stdin.txt"; echo "$LANG $LC_ALL $#" > "$(dirname "$0")/env.txt""#,
    );
    let c = call(
        0,
        0,
        "fence_x",
        &[("port", "1"), ("nodename", "n1"), ("agent", "fence_x")],
    );
    let run = run_agent(&c, &config(&[&dir.0]), &mut Cancel::never()).await;
    assert_eq!(
        (run.exit.clone(), run.result),
        (AgentExit::Exited(0), DeviceResult::Success)
    );
    assert_eq!(
        dir.read("stdin.txt"),
        "port=1\nnodename=n1\nagent=fence_x\n"
    );
    assert_eq!(dir.read("env.txt"), "C C 0\n");
    assert_eq!(run.path, Some(dir.0.join("fence_x")));
}

#[tokio::test]
async fn exit_status_decides_and_output_is_captured_in_order() {
    let dir = TempDir::new("exit");
    dir.agent("fence_ok", "echo out; echo err >&2; echo out2; exit 0");
    dir.agent(
        "fence_one",
        "echo 'Unable to connect/login to fencing device' >&2; exit 1",
    );
    dir.agent("fence_two", "exit 2");
    dir.agent("fence_sig", "kill -TERM $$");
    let cfg = config(&[&dir.0]);
    let ok = run_agent(&call(0, 0, "fence_ok", &[]), &cfg, &mut Cancel::never()).await;
    assert_eq!(ok.result, DeviceResult::Success);
    assert_eq!(ok.output, "out\nerr\nout2\n");
    let one = run_agent(&call(0, 0, "fence_one", &[]), &cfg, &mut Cancel::never()).await;
    assert_eq!(
        (one.exit.clone(), one.result),
        (AgentExit::Exited(1), DeviceResult::AgentError)
    );
    assert!(one.output.contains("Unable to connect"), "{}", one.output);
    // Status "off" (2) is a failure too: fenced only knows 0 and non-zero.
    let two = run_agent(&call(0, 0, "fence_two", &[]), &cfg, &mut Cancel::never()).await;
    assert_eq!(
        (two.exit, two.result),
        (AgentExit::Exited(2), DeviceResult::AgentError)
    );
    let sig = run_agent(&call(0, 0, "fence_sig", &[]), &cfg, &mut Cancel::never()).await;
    assert_eq!(
        (sig.exit, sig.result),
        (AgentExit::Signaled(15), DeviceResult::AgentError)
    );
}

#[tokio::test]
async fn output_beyond_the_limit_is_dropped_but_the_agent_still_finishes() {
    let dir = TempDir::new("limit");
    // 200 KiB, more than the pipe buffer: the runner must keep reading.
    dir.agent(
        "fence_loud",
        "i=0; while [ $i -lt 2048 ]; do printf '%0100d\\n' 0; i=$((i+1)); done",
    );
    let mut cfg = config(&[&dir.0]);
    cfg.output_limit = 1000;
    let run = run_agent(&call(0, 0, "fence_loud", &[]), &cfg, &mut Cancel::never()).await;
    assert_eq!(run.result, DeviceResult::Success);
    assert_eq!(run.output.len(), 1000);
    assert!(run.output_truncated);
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = TempDir::new("timeout");
    dir.agent(
        "fence_hang",
        r#"sleep 1000 & echo $! > "$(dirname "$0")/child.pid"; sleep 1000"#,
    );
    let mut cfg = config(&[&dir.0]);
    cfg.timeout = Duration::from_secs(5);
    let run = run_agent(&call(0, 0, "fence_hang", &[]), &cfg, &mut Cancel::never()).await;
    assert_eq!(
        (run.exit, run.result),
        (AgentExit::TimedOut, DeviceResult::AgentError)
    );
    let pid: i32 = wait_for_file(&dir.0.join("child.pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    for _ in 0..600 {
        if process_gone(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the agent's background child {pid} survived the timeout");
}

#[tokio::test]
async fn cancel_kills_the_group_and_ends_the_attempt_unknown() {
    let dir = TempDir::new("cancel");
    dir.agent(
        "fence_hang",
        r#"sleep 1000 & echo $! > "$(dirname "$0")/child.pid"; sleep 1000"#,
    );
    dir.agent("fence_ok", r#"touch "$(dirname "$0")/ran""#);
    let cfg = config(&[&dir.0]);
    let plan = vec![
        method(0, vec![call(0, 0, "fence_hang", &[])]),
        method(1, vec![call(1, 0, "fence_ok", &[])]),
    ];
    let (tx, rx) = watch::channel(false);
    let pid_file = dir.0.join("child.pid");
    let canceller = async {
        let pid: i32 = wait_for_file(&pid_file).await.trim().parse().unwrap();
        tx.send(true).unwrap();
        pid
    };
    let mut cancel = Cancel::new(rx);
    let (out, pid) = tokio::join!(fence_once("n1", &plan, &cfg, &mut cancel), canceller);
    assert!(out.cancelled && !out.success);
    assert_eq!(out.attempts.len(), 1);
    assert_eq!(
        out.attempts[0].run.as_ref().unwrap().exit,
        AgentExit::Cancelled
    );
    assert!(!dir.0.join("ran").exists(), "method 1 ran after cancel");
    for _ in 0..600 {
        if process_gone(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the agent's background child {pid} survived the cancel");
}

#[tokio::test]
async fn search_path_order_decides_and_non_executables_are_skipped() {
    let first = TempDir::new("first");
    let second = TempDir::new("second");
    let third = TempDir::new("third");
    std::fs::write(first.0.join("fence_x"), "#!/bin/sh\nexit 0\n").unwrap(); // not executable
    second.agent("fence_x", "echo second");
    third.agent("fence_x", "echo third");
    let cfg = config(&[&first.0, &second.0, &third.0]);
    let run = run_agent(&call(0, 0, "fence_x", &[]), &cfg, &mut Cancel::never()).await;
    assert_eq!(run.output, "second\n");
    // An absolute path bypasses the search.
    let abs = third.0.join("fence_x").display().to_string();
    let run = run_agent(&call(0, 0, &abs, &[]), &cfg, &mut Cancel::never()).await;
    assert_eq!(run.output, "third\n");
}

#[tokio::test]
async fn missing_agent_and_config_errors_are_not_run() {
    let cfg = config(&[]);
    let run = run_agent(
        &call(0, 0, "fence_nowhere", &[]),
        &cfg,
        &mut Cancel::never(),
    )
    .await;
    assert_eq!(
        (run.exit, run.result),
        (AgentExit::NotFound, DeviceResult::ForkError)
    );
    let run = run_agent(
        &call(0, 0, "/nonexistent/fence_x", &[]),
        &cfg,
        &mut Cancel::never(),
    )
    .await;
    assert_eq!(run.result, DeviceResult::ForkError);
    assert!(
        matches!(run.exit, AgentExit::SpawnFailed(_)),
        "{:?}",
        run.exit
    );
    let mut bad = call(0, 0, "fence_x", &[]);
    bad.config_error = Some(DeviceResult::ConfigArgs);
    let run = run_agent(&bad, &cfg, &mut Cancel::never()).await;
    assert_eq!(
        (run.exit, run.result),
        (AgentExit::NotRun, DeviceResult::ConfigArgs)
    );
}

#[tokio::test]
async fn a_method_stops_at_its_first_failing_device_and_the_next_method_runs() {
    let dir = TempDir::new("methods");
    dir.agent("fence_fail", "exit 1");
    dir.agent("fence_ok", r#"cat >> "$(dirname "$0")/log.txt""#);
    let cfg = config(&[&dir.0]);
    let plan = vec![
        method(
            0,
            vec![
                call(0, 0, "fence_ok", &[("step", "0.0")]),
                call(0, 1, "fence_fail", &[]),
                call(0, 2, "fence_ok", &[("step", "0.2")]),
            ],
        ),
        method(1, vec![]),
        method(
            2,
            vec![
                call(2, 0, "fence_ok", &[("step", "2.0")]),
                call(2, 1, "fence_ok", &[("step", "2.1")]),
            ],
        ),
        method(3, vec![call(3, 0, "fence_ok", &[("step", "3.0")])]),
    ];
    let out = fence_once("n1", &plan, &cfg, &mut Cancel::never()).await;
    assert!(out.success && !out.cancelled && !out.undefined);
    assert_eq!(
        (out.method.as_deref(), out.device.as_deref()),
        (Some("m2"), Some("dev21"))
    );
    assert_eq!(dir.read("log.txt"), "step=0.0\nstep=2.0\nstep=2.1\n");
    assert_eq!(
        out.lines(),
        vec![
            "fence n1 dev 0.0 agent fence_ok result: success",
            "fence n1 dev 0.1 agent fence_fail result: error from agent",
            "fence n1 dev 1.0 agent none result: error no device",
            "fence n1 dev 2.0 agent fence_ok result: success",
            "fence n1 dev 2.1 agent fence_ok result: success",
        ]
    );
    assert_eq!(out.summary("fence"), "fence n1 success");
    assert_eq!(out.attempts[0].args_line, "step=0.0 ");
}

#[tokio::test]
async fn all_methods_failing_is_failed_and_no_method_is_undefined() {
    let dir = TempDir::new("fail");
    dir.agent("fence_fail", "exit 1");
    let cfg = config(&[&dir.0]);
    let plan = vec![
        method(0, vec![call(0, 0, "fence_fail", &[])]),
        method(1, vec![call(1, 0, "fence_missing", &[])]),
    ];
    let out = fence_once("n1", &plan, &cfg, &mut Cancel::never()).await;
    assert!(!out.success && !out.undefined && !out.cancelled);
    assert_eq!(out.method, None);
    assert_eq!(
        out.lines(),
        vec![
            "fence n1 dev 0.0 agent fence_fail result: error from agent",
            "fence n1 dev 1.0 agent fence_missing result: error from fork",
        ]
    );
    assert_eq!(out.summary("fence"), "fence n1 failed");
    let none = fence_once("n1", &[], &cfg, &mut Cancel::never()).await;
    assert!(none.undefined && !none.success);
    assert_eq!(
        none.lines(),
        vec!["fence n1 dev 0.0 agent none result: error no method"]
    );
    assert_eq!(none.summary("fence"), "fence n1 undefined");
}

#[tokio::test]
async fn unfence_runs_every_device_even_after_a_failure() {
    let dir = TempDir::new("unfence");
    dir.agent("fence_fail", "exit 1");
    dir.agent("fence_ok", r#"cat >> "$(dirname "$0")/log.txt""#);
    let cfg = config(&[&dir.0]);
    let calls = vec![
        call(0, 0, "fence_fail", &[]),
        call(0, 1, "fence_ok", &[("action", "on")]),
    ];
    let out = unfence_once("n1", &calls, &cfg, &mut Cancel::never()).await;
    assert!(!out.success);
    assert_eq!(dir.read("log.txt"), "action=on\n");
    assert_eq!(
        out.lines()[1],
        "unfence n1 dev 0.1 agent fence_ok result: success"
    );
    let ok = unfence_once("n1", &calls[1..], &cfg, &mut Cancel::never()).await;
    assert!(ok.success);
    assert_eq!(ok.summary("unfence"), "unfence n1 success");
    let none = unfence_once("n1", &[], &cfg, &mut Cancel::never()).await;
    assert!(none.undefined && !none.success && none.attempts.is_empty());
}
